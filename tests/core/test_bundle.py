"""The model bundle: every way a bundle can be wrong is refused with a clear ``BundleError`` that
names the bundle and the field, and a good bundle round-trips through ``save_bundle``."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_edge.bundle import (
    META_FILE,
    MODEL_FILE,
    Bundle,
    BundleError,
    Normalization,
    default_bundle_path,
    load_bundle,
    packaged_bundle_path,
    save_bundle,
)

Meta = dict[str, Any]


@pytest.fixture()
def bundle_copy(tmp_path: Path) -> Path:
    d = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), d)
    return d


def edit_meta(d: Path, change: Callable[[Meta], None]) -> None:
    meta = json.loads((d / META_FILE).read_text())
    change(meta)
    (d / META_FILE).write_text(json.dumps(meta))


def test_the_default_bundle_is_valid_and_small() -> None:
    b = load_bundle()
    assert b.path == default_bundle_path()
    assert b.quantization == "int8" and (b.path / MODEL_FILE).stat().st_size <= 256 * 1024
    assert set(b.labels) <= {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom"}
    assert b.model_id == f"{b.name}-{hashlib.sha256(b.model).hexdigest()[:12]}"
    assert b.input_shape == b.input.input_shape and b.input.sr == 16000
    assert b.metrics and b.training  # how it was trained and what it scored travel with it


def test_the_room_model_is_packaged_and_found_by_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    room, default = load_bundle("room"), load_bundle()
    assert room.path == packaged_bundle_path("room") != default.path
    assert room.quantization == "int8" and (room.path / MODEL_FILE).stat().st_size <= 256 * 1024
    assert room.labels == default.labels and room.input == default.input  # same features, other training
    assert room.model_id != default.model_id
    monkeypatch.chdir(tmp_path)  # a folder of that name is a path first
    shutil.copytree(default_bundle_path(), tmp_path / "room")
    assert load_bundle("room").path == Path("room") and load_bundle("room").model_id == default.model_id
    with pytest.raises(BundleError, match="no such model bundle"):
        load_bundle("kitchen")
    with pytest.raises(BundleError, match="not a packaged model"):
        packaged_bundle_path("kitchen")


@pytest.mark.parametrize("name", [None, META_FILE, MODEL_FILE])
def test_a_bundle_is_found_by_its_directory_or_either_file(bundle_copy: Path, name: str | None) -> None:
    b = load_bundle(bundle_copy if name is None else bundle_copy / name)
    assert b.path == bundle_copy and b.sha256 == load_bundle().sha256


def test_save_bundle_round_trips(bundle_copy: Path, tmp_path: Path) -> None:
    b = load_bundle(bundle_copy)
    out = save_bundle(
        tmp_path / "saved",
        tflite=b.model,
        name="copy",
        labels=b.labels,
        input=b.input,
        normalization=b.normalization,
        quantization=b.quantization,
        training={"corpus": "x"},
        metrics={"uar": 0.5},
    )
    again = load_bundle(tmp_path / "saved")
    assert isinstance(out, Bundle) and again.model_id == f"copy-{b.sha256[:12]}"
    assert again.labels == b.labels and again.input == b.input and again.metrics == {"uar": 0.5}
    np.testing.assert_array_equal(again.normalization.input_std, b.normalization.input_std)
    assert not list((tmp_path / "saved").glob(".*.tmp"))


def test_save_bundle_refuses_an_inconsistent_bundle_and_writes_nothing(tmp_path: Path) -> None:
    b = load_bundle()
    with pytest.raises(BundleError, match="labels"):
        save_bundle(
            tmp_path / "bad",
            tflite=b.model,
            name="x",
            labels=["angry", "angry"],
            input=b.input,
            normalization=b.normalization,
            quantization="int8",
        )
    assert not (tmp_path / "bad").exists()


def _drop(key: str) -> Callable[[Meta], None]:
    return lambda m: m.pop(key)


def _set(key: str, value: Any) -> Callable[[Meta], None]:
    return lambda m: m.__setitem__(key, value)


def _norm(key: str, value: Any) -> Callable[[Meta], None]:
    return lambda m: m["normalization"].__setitem__(key, value)


BAD_META = {
    "format": (_set("format", "something-else"), "not a ser-edge bundle"),
    "version": (_set("version", 3), "version 3 is not supported"),
    "version bool": (_set("version", True), "version True is not supported"),
    "name": (_set("name", "../evil"), "name="),
    "labels missing": (_drop("labels"), "labels="),
    "one label": (_set("labels", ["angry"]), "at least two distinct"),
    "duplicate labels": (lambda m: m["labels"].__setitem__(1, m["labels"][0]), "at least two distinct"),
    "input": (lambda m: m["input"].__setitem__("pooling", "max"), "input: "),
    "features": (lambda m: m["input"]["features"].__setitem__("n_fft", -1), "input: "),
    "normalization missing": (_drop("normalization"), "normalization must be a mapping"),
    "normalization key": (_norm("extra", 1), "unknown keys: extra"),
    "frame_mean length": (lambda m: m["normalization"]["frame_mean"].pop(), "frame_mean has 220 values"),
    "frame_std NaN": (lambda m: m["normalization"]["frame_std"].__setitem__(0, float("nan")), "finite numbers"),
    "frame_std text": (_norm("frame_std", "abc"), "frame_std must be a list of finite numbers"),
    "negative std": (lambda m: m["normalization"]["frame_std"].__setitem__(0, -1.0), "must be > 0"),
    "input_std missing": (_norm("input_std", None), "input_std must have 1105 values"),
    "prior_frames": (_norm("prior_frames", -3), "prior_frames"),
    "quantization": (_set("quantization", "int4"), "quantization='int4'"),
    "input_shape": (_set("input_shape", [1054]), "does not match the input configuration"),
    "sample_rate": (_set("sample_rate", 22050), "sample_rate=22050 does not match"),
    "sha256": (_set("sha256", "0" * 64), "does not match the sha256"),
    "metrics": (_set("metrics", [1, 2]), "metrics must be a mapping"),
}


@pytest.mark.parametrize("case", BAD_META)
def test_bad_metadata_is_refused_naming_the_field(bundle_copy: Path, case: str) -> None:
    change, message = BAD_META[case]
    edit_meta(bundle_copy, change)
    with pytest.raises(BundleError, match=message) as e:
        load_bundle(bundle_copy)
    assert str(bundle_copy) in str(e.value)


BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "no model": (lambda d: (d / MODEL_FILE).unlink(), "has no model.tflite"),
    "no metadata": (lambda d: (d / META_FILE).unlink(), "not a model bundle"),
    "empty model": (lambda d: (d / MODEL_FILE).write_bytes(b""), "not a TFLite flatbuffer"),
    "not a model": (lambda d: (d / MODEL_FILE).write_bytes(b"RIFF0000WAVEfmt " * 64), "not a TFLite flatbuffer"),
    "truncated model": (
        lambda d: (d / MODEL_FILE).write_bytes((d / MODEL_FILE).read_bytes()[:5000]),
        "does not match the sha256",
    ),
    "bad JSON": (lambda d: (d / META_FILE).write_text("{'labels': "), "not valid JSON"),
    "binary metadata": (lambda d: (d / META_FILE).write_bytes(b"\xff\xfe\x00"), "not valid JSON"),
    "JSON list": (lambda d: (d / META_FILE).write_text("[1, 2]"), "not a ser-edge bundle"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_missing_truncated_and_foreign_files_are_refused(bundle_copy: Path, case: str) -> None:
    damage, message = BAD_FILES[case]
    damage(bundle_copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_paths_that_are_not_bundles(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such model bundle"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="give its directory"):
        load_bundle(tmp_path / "notes.txt")
    with pytest.raises(BundleError, match="no bundle.json"):
        load_bundle(tmp_path)


def test_a_valid_flatbuffer_that_is_a_different_model_is_refused_by_the_runtime(
    bundle_copy: Path, tmp_path: Path
) -> None:
    """A bundle whose metadata matches its bytes but whose model has another input size (a
    consistent-looking but wrong model) fails when the runtime loads it, not at inference."""
    from ser_edge.runtime import Classifier

    good = load_bundle(bundle_copy)
    other = dict(good.input.to_dict(), deltas=1)  # a smaller input than the model takes
    from ser_edge.inputs import InputConfig

    small = InputConfig.from_dict(other)
    d = small.n_frame_features
    norm = Normalization(np.zeros(d), np.ones(d), 10.0, np.zeros(small.input_shape[0]), np.ones(small.input_shape[0]))
    wrong = save_bundle(
        tmp_path / "wrong",
        tflite=good.model,
        name="wrong",
        labels=good.labels,
        input=small,
        normalization=norm,
        quantization="int8",
    )
    with pytest.raises(BundleError, match="is not the bundle's input_shape"):
        Classifier(wrong)
    few = save_bundle(
        tmp_path / "few",
        tflite=good.model,
        name="few",
        labels=good.labels[:2],
        input=good.input,
        normalization=good.normalization,
        quantization="int8",
    )
    with pytest.raises(BundleError, match="outputs for 2 labels"):
        Classifier(few)


# -- issue 14: one validation of every number, size caps, a hash over bundle.json -----------------


def _feat(key: str, value: Any) -> Callable[[Meta], None]:
    return lambda m: m["input"]["features"].__setitem__(key, value)


HOSTILE_META = {
    "n_fft 2**40": (_feat("n_fft", 2**40), "n_fft=1099511627776 is too large"),
    "n_fft 2**63": (_feat("n_fft", 2**63), "n_fft=9223372036854775808 is too large"),
    "n_mels 2**40": (_feat("n_mels", 2**40), "n_mels=1099511627776 is too large"),
    "n_chroma 2**62": (_feat("n_chroma", 2**62), "n_chroma=4611686018427387904 is too large"),
    "n_fft float": (_feat("n_fft", 1024.0), "input.features.n_fft=1024.0 must be an integer"),
    "n_fft bool": (_feat("n_fft", True), "input.features.n_fft=True must be an integer"),
    "sr zero": (_feat("sr", 0), "input.features.sr=0 must be a sample rate"),
    "sr huge": (_feat("sr", 1e300), "must be a sample rate"),
    "power text": (_feat("power", "2"), "input.features.power='2' must be a finite number"),
    "deltas bool": (lambda m: m["input"].__setitem__("deltas", True), "input.deltas=True must be an integer"),
    "vad_db inf": (lambda m: m["input"].__setitem__("vad_db", 1e309), "vad_db="),
    "delta_width even": (lambda m: m["input"].__setitem__("delta_width", 8), "delta_width=8 must be an odd"),
    "seq_frames huge": (lambda m: m["input"].__setitem__("seq_frames", 2**40), "seq_frames="),
    "features missing": (lambda m: m["input"].pop("features"), "input is missing features"),
    "n_mels missing": (lambda m: m["input"]["features"].pop("n_mels"), "input.features is missing n_mels"),
    "zero std": (lambda m: m["normalization"]["frame_std"].__setitem__(3, 0.0), r"frame_std\[3\]=0.0"),
    "zero input std": (lambda m: m["normalization"]["input_std"].__setitem__(0, 0), r"input_std\[0\]=0.0"),
    "overflowing mean": (lambda m: m["normalization"]["frame_mean"].__setitem__(0, 1e300), "within"),
    "overflowing std": (lambda m: m["normalization"]["input_std"].__setitem__(0, 1e308), "within"),
    "bool in stats": (lambda m: m["normalization"]["frame_mean"].__setitem__(0, True), "finite numbers"),
    "huge prior": (_norm("prior_frames", 1e308), r"prior_frames=1e\+308"),
    "bool prior": (_norm("prior_frames", True), "prior_frames=True"),
    "synonym label": (lambda m: m["labels"].__setitem__(0, "Angry"), "not canonical"),
    "unknown label": (lambda m: m["labels"].__setitem__(0, "xyz"), "not canonical"),
}


@pytest.mark.parametrize("case", HOSTILE_META)
def test_every_number_and_label_is_validated_in_a_child_process(bundle_copy: Path, case: str) -> None:
    """Run in a child process: before the checks, n_fft 2**40 aborted the interpreter."""
    import subprocess
    import sys

    change, message = HOSTILE_META[case]
    edit_meta(bundle_copy, change)
    code = (
        "import sys\nfrom ser_edge.bundle import load_bundle, BundleError\n"
        f"try:\n    load_bundle({str(bundle_copy)!r})\n    print('LOADED')\n"
        "except BundleError as e:\n    print('BundleError:', e)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-1500:]
    assert p.stdout.startswith("BundleError:"), p.stdout
    import re

    assert re.search(message, p.stdout) and str(bundle_copy) in p.stdout, p.stdout


def test_an_edited_bundle_json_is_refused_by_its_content_hash(bundle_copy: Path) -> None:
    edit_meta(bundle_copy, lambda m: m["labels"].reverse())  # valid on its own: the outputs would swap
    with pytest.raises(BundleError, match="does not match its content_sha256"):
        load_bundle(bundle_copy)
    edit_meta(bundle_copy, lambda m: m["labels"].reverse())
    edit_meta(bundle_copy, lambda m: m["normalization"].__setitem__("prior_frames", 30.0))
    with pytest.raises(BundleError, match="content_sha256"):
        load_bundle(bundle_copy)


def test_a_version_1_bundle_without_content_hash_still_loads(bundle_copy: Path) -> None:
    def to_v1(m: Meta) -> None:
        m["version"] = 1
        m.pop("content_sha256")

    edit_meta(bundle_copy, to_v1)
    assert load_bundle(bundle_copy).sha256 == load_bundle().sha256


def test_saved_bundles_carry_a_content_hash(bundle_copy: Path, tmp_path: Path) -> None:
    from ser_edge.bundle import content_sha256

    b = load_bundle(bundle_copy)
    save_bundle(
        tmp_path / "s",
        tflite=b.model,
        name="s",
        labels=b.labels,
        input=b.input,
        normalization=b.normalization,
        quantization=b.quantization,
    )
    meta = json.loads((tmp_path / "s" / META_FILE).read_text())
    assert meta["version"] == 2 and meta["content_sha256"] == content_sha256(meta)


def test_a_huge_model_file_is_refused_before_it_is_read(bundle_copy: Path) -> None:
    import tracemalloc

    with open(bundle_copy / MODEL_FILE, "r+b") as f:
        f.truncate(1 << 30)  # 1 GB, sparse: the size is what matters
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="1073741824 bytes; at most 67108864"):
            load_bundle(bundle_copy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_huge_bundle_json_is_refused_before_it_is_read(bundle_copy: Path) -> None:
    with open(bundle_copy / META_FILE, "ab") as f:
        f.write(b" " * (5 << 20))
    with pytest.raises(BundleError, match="bundle.json is .* bytes; at most"):
        load_bundle(bundle_copy)


def test_the_f0_method_is_optional_in_a_bundle(bundle_copy: Path, tmp_path: Path) -> None:
    """``input.features.f0`` (added with ``f0="shs"``) may be left out, meaning "yin": the shipped
    bundle has none and loads unchanged; a bundle saved with "shs" states it and loads it back."""
    import dataclasses

    meta = json.loads((bundle_copy / META_FILE).read_text())
    assert "f0" not in meta["input"]["features"]
    b = load_bundle(bundle_copy)
    assert b.input.features.f0 == "yin" and "f0" not in b.input.features.to_dict()
    shs = dataclasses.replace(b.input, features=dataclasses.replace(b.input.features, f0="shs"))
    save_bundle(
        tmp_path / "shs",
        tflite=b.model,
        name="shs",
        labels=b.labels,
        input=shs,
        normalization=b.normalization,
        quantization=b.quantization,
    )
    assert json.loads((tmp_path / "shs" / META_FILE).read_text())["input"]["features"]["f0"] == "shs"
    assert load_bundle(tmp_path / "shs").input == shs
