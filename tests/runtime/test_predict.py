"""``ser-edge predict``: one result per file in any format, segments, clear errors for bad files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_edge.audio import load
from ser_edge.bundle import load_bundle
from ser_edge.predict import predict_files, run
from ser_edge.runtime import Recognizer


def test_one_result_per_file_equal_to_the_recognizer(corpus: list[Path], spoken: Path, bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    files = [*corpus, spoken]
    results = list(predict_files(map(str, files), model=str(bundle_dir)))
    assert [r["file"] for r in results] == [str(f) for f in files]
    for f, r in zip(files, results):
        want = Recognizer(bundle_dir, adapt=False).predict(load(f, sr=b.input.sr)[0])
        assert r["label"] == want.label and r["scores"] == pytest.approx(want.scores, abs=1e-4)
        assert r["model_id"] == b.model_id and set(r["scores"]) == set(b.labels)
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-3)
        assert r["confidence"] == pytest.approx(max(r["scores"].values()), abs=1e-4)


def test_any_rate_bit_depth_and_channel_count(spoken: Path, bundle_dir: Path, tmp_path: Path) -> None:
    y, sr = load(spoken)
    variants = {
        "stereo.wav": (np.stack([y, y], 1), sr, "PCM_16"),  # same samples in both channels
        "s24.flac": (y, sr, "PCM_24"),
        "f32_48k.wav": (load(spoken, sr=48000)[0], 48000, "FLOAT"),
        "u8_8k.wav": (load(spoken, sr=8000)[0], 8000, "PCM_U8"),
    }
    for name, (data, rate, subtype) in variants.items():
        sf.write(tmp_path / name, data, rate, subtype=subtype)
    results = {
        Path(r["file"]).name: r
        for r in predict_files([str(spoken), *(str(tmp_path / n) for n in variants)], model=str(bundle_dir))
    }
    assert all("error" not in r for r in results.values()), results
    base = results[spoken.name]
    assert results["stereo.wav"]["scores"] == base["scores"]
    assert results["s24.flac"]["scores"] == pytest.approx(base["scores"], abs=0.02)
    for name in ("f32_48k.wav", "u8_8k.wav"):
        assert results[name]["label"] in base["scores"]
        assert results[name]["seconds"] == pytest.approx(base["seconds"], abs=0.01)


@pytest.fixture
def bad_files(tmp_path: Path, spoken: Path) -> dict[str, Path]:
    y, sr = load(spoken)
    trunc = io.BytesIO()
    sf.write(trunc, y, sr, format="WAV", subtype="PCM_16")
    files = {
        "missing": tmp_path / "missing.wav",
        "empty": tmp_path / "empty.wav",
        "text": tmp_path / "notes.flac",
        "truncated": tmp_path / "truncated.wav",
        "directory": tmp_path / "adir",
        "tiny": tmp_path / "tiny.wav",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not audio")
    files["truncated"].write_bytes(trunc.getvalue()[:4000])
    files["directory"].mkdir()
    sf.write(files["tiny"], np.zeros(0, np.float32), 16000)
    return files


def test_bad_files_get_clear_errors_and_the_rest_get_results(
    bad_files: dict[str, Path], spoken: Path, bundle_dir: Path
) -> None:
    paths = [str(spoken), *map(str, bad_files.values()), str(spoken)]
    out, err = io.StringIO(), io.StringIO()
    assert run(paths, model=str(bundle_dir), as_json=True, out=out, err=err) == 1
    results = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["file"] for r in results] == paths
    assert "label" in results[0] and "label" in results[-1]
    for r, path in zip(results[1:-1], bad_files.values()):
        assert "label" not in r and str(path) in r["error"], r
    assert "truncated WAV" in results[1 + list(bad_files).index("truncated")]["error"]
    assert f"{len(bad_files)} of {len(paths)} files failed" in err.getvalue()
    for path in bad_files.values():
        assert str(path) in err.getvalue()


def test_segments_follow_the_utterances(spoken: Path, bundle_dir: Path, tmp_path: Path) -> None:
    y, sr = load(spoken, sr=16000)
    z = np.zeros(16000, np.float32)
    sf.write(tmp_path / "two.wav", np.concatenate([z, y, z, y, z]), 16000)
    (r,) = predict_files([str(tmp_path / "two.wav")], model=str(bundle_dir), segments=True)
    segs = r["segments"]
    assert len(segs) >= 2 and segs == sorted(segs, key=lambda s: s["start"])
    assert segs[0]["start"] >= 0.7 and segs[-1]["end"] <= r["seconds"] - 0.9
    assert all(s["label"] in r["scores"] and s["end"] > s["start"] for s in segs)


def test_a_packaged_model_is_chosen_by_its_name(spoken: Path) -> None:
    (r,) = predict_files([str(spoken)], model="room")
    assert r["model_id"] == load_bundle("room").model_id != load_bundle().model_id


def test_cli_text_output_exit_codes_and_bad_model(spoken: Path, bundle_dir: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "ser_edge", "predict"]
    r = subprocess.run([*cmd, str(spoken), "--model", str(bundle_dir)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"{spoken}: ")
    r = subprocess.run(
        [*cmd, str(spoken), str(tmp_path / "nope.wav"), "--model", str(bundle_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and r.stdout.startswith(f"{spoken}: ") and "nope.wav" in r.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{}")
    (broken / "model.tflite").write_bytes(b"0000")
    r = subprocess.run([*cmd, str(spoken), "--model", str(broken)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a ser-edge bundle" in r.stderr
