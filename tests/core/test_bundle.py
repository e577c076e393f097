"""The model bundle: every way a bundle can be wrong is refused with a clear ``BundleError`` that
names the bundle and the field, and a good bundle round-trips through ``save_bundle``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from ser_edge.bundle import (META_FILE, MODEL_FILE, Bundle, BundleError, Normalization, default_bundle_path,
                             load_bundle, save_bundle)

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


@pytest.mark.parametrize("name", [None, META_FILE, MODEL_FILE])
def test_a_bundle_is_found_by_its_directory_or_either_file(bundle_copy: Path, name: str | None) -> None:
    b = load_bundle(bundle_copy if name is None else bundle_copy / name)
    assert b.path == bundle_copy and b.sha256 == load_bundle().sha256


def test_save_bundle_round_trips(bundle_copy: Path, tmp_path: Path) -> None:
    b = load_bundle(bundle_copy)
    out = save_bundle(tmp_path / "saved", tflite=b.model, name="copy", labels=b.labels, input=b.input,
                      normalization=b.normalization, quantization=b.quantization, training={"corpus": "x"},
                      metrics={"uar": 0.5})
    again = load_bundle(tmp_path / "saved")
    assert isinstance(out, Bundle) and again.model_id == f"copy-{b.sha256[:12]}"
    assert again.labels == b.labels and again.input == b.input and again.metrics == {"uar": 0.5}
    np.testing.assert_array_equal(again.normalization.input_std, b.normalization.input_std)
    assert not list((tmp_path / "saved").glob(".*.tmp"))


def test_save_bundle_refuses_an_inconsistent_bundle_and_writes_nothing(tmp_path: Path) -> None:
    b = load_bundle()
    with pytest.raises(BundleError, match="labels"):
        save_bundle(tmp_path / "bad", tflite=b.model, name="x", labels=["angry", "angry"], input=b.input,
                    normalization=b.normalization, quantization="int8")
    assert not (tmp_path / "bad").exists()


def _drop(key: str) -> Callable[[Meta], None]:
    return lambda m: m.pop(key)


def _set(key: str, value: Any) -> Callable[[Meta], None]:
    return lambda m: m.__setitem__(key, value)


def _norm(key: str, value: Any) -> Callable[[Meta], None]:
    return lambda m: m["normalization"].__setitem__(key, value)


BAD_META = {
    "format": (_set("format", "something-else"), "not a ser-edge bundle"),
    "version": (_set("version", 2), "version 2 is not supported"),
    "name": (_set("name", "../evil"), "name="),
    "labels missing": (_drop("labels"), "labels="),
    "one label": (_set("labels", ["angry"]), "at least two distinct"),
    "duplicate labels": (lambda m: m["labels"].__setitem__(1, m["labels"][0]), "at least two distinct"),
    "input": (lambda m: m["input"].__setitem__("pooling", "max"), "input: "),
    "features": (lambda m: m["input"]["features"].__setitem__("n_fft", -1), "input: "),
    "normalization missing": (_drop("normalization"), "normalization must be a mapping"),
    "normalization key": (_norm("extra", 1), "unknown keys: extra"),
    "frame_mean length": (lambda m: m["normalization"]["frame_mean"].pop(), "frame_mean has 210 values"),
    "frame_std NaN": (lambda m: m["normalization"]["frame_std"].__setitem__(0, float("nan")), "finite numbers"),
    "frame_std text": (_norm("frame_std", "abc"), "frame_std must be a list of finite numbers"),
    "negative std": (lambda m: m["normalization"]["frame_std"].__setitem__(0, -1.0), ">= 0"),
    "input_std missing": (_norm("input_std", None), "input_std must have 1055 values"),
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
    "truncated model": (lambda d: (d / MODEL_FILE).write_bytes((d / MODEL_FILE).read_bytes()[:5000]),
                        "does not match the sha256"),
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


def test_a_valid_flatbuffer_that_is_a_different_model_is_refused_by_the_runtime(bundle_copy: Path,
                                                                                  tmp_path: Path) -> None:
    """A bundle whose metadata matches its bytes but whose model has another input size (a
    consistent-looking but wrong model) fails when the runtime loads it, not at inference."""
    from ser_edge.runtime import Classifier

    good = load_bundle(bundle_copy)
    other = dict(good.input.to_dict(), deltas=1)  # a smaller input than the model takes
    from ser_edge.inputs import InputConfig

    small = InputConfig.from_dict(other)
    d = small.n_frame_features
    norm = Normalization(np.zeros(d), np.ones(d), 10.0, np.zeros(small.input_shape[0]), np.ones(small.input_shape[0]))
    wrong = save_bundle(tmp_path / "wrong", tflite=good.model, name="wrong", labels=good.labels, input=small,
                        normalization=norm, quantization="int8")
    with pytest.raises(BundleError, match="is not the bundle's input_shape"):
        Classifier(wrong)
    few = save_bundle(tmp_path / "few", tflite=good.model, name="few", labels=good.labels[:2], input=good.input,
                      normalization=good.normalization, quantization="int8")
    with pytest.raises(BundleError, match="outputs for 2 labels"):
        Classifier(few)
