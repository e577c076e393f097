"""``predict`` against hostile and careless files (issue 14): headers that lie about the rate, FIFOs
and devices, clips shorter than the model's context, samples that overflow the features, and
long recordings (memory must not follow the file's length). Calls that blocked or grew memory for
minutes before run in a child process with a timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_edge.audio import blocks, load
from ser_edge.file_input import FrameStream
from ser_edge.inputs import InputConfig
from ser_edge.predict import predict_files
from ser_edge.runtime import Recognizer


def _predict_in_child(path: Path, timeout: float = 60) -> str:
    code = (
        "import json, sys\nfrom ser_edge.predict import predict_files\n"
        f"print(json.dumps(list(predict_files([{str(path)!r}]))[0]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-1500:]
    return p.stdout


@pytest.mark.parametrize("rate", [1, 0, 2**31 - 1, 999, 10_000_000])
def test_a_header_that_lies_about_the_rate_is_refused_fast(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"rate{rate}.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.3, 0.3, 48000).astype(np.float32), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    raw[24:28] = rate.to_bytes(4, "little")  # fmt chunk: sample rate
    raw[28:32] = (rate * 2 % 2**32).to_bytes(4, "little")  # byte rate
    path.write_bytes(bytes(raw))
    out = _predict_in_child(path)
    assert '"error"' in out and '"label"' not in out and str(path) in out, out


def test_fifos_devices_and_directories_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path, what in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "is a directory"),
    ):
        out = _predict_in_child(path, timeout=30)
        assert what in out and '"label"' not in out, out
    with pytest.raises(ValueError, match="not a regular file"):
        load(fifo)


def test_a_clip_shorter_than_the_model_context_gets_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.3, 0.3, 600).astype(np.float32), 16000)
    (r,) = predict_files([str(path)])
    assert "too short" in r["error"] and "interp" not in r["error"], r
    with pytest.raises(ValueError, match="too short"):
        Recognizer(adapt=False).predict(load(path)[0])


def test_samples_that_overflow_the_features_never_get_a_label(tmp_path: Path) -> None:
    path = tmp_path / "huge.wav"
    y = np.random.default_rng(0).uniform(-1, 1, 32000) * 1e20
    sf.write(path, y.astype(np.float32), 16000, subtype="FLOAT")
    (r,) = predict_files([str(path)])
    assert "label" not in r and "not finite" in r["error"], r
    rec = Recognizer(adapt=False)
    frames = rec.bundle.input.frames(np.random.default_rng(1).uniform(-0.3, 0.3, 16000).astype(np.float32))
    frames[3, 5] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        rec.predict_frames(frames)


@pytest.mark.parametrize("chunk", [1, 157, 4000, 16000])
def test_the_frame_stream_equals_the_frames_of_the_whole_clip(chunk: int) -> None:
    cfg = Recognizer(adapt=False).bundle.input
    y = load(Path(__file__).resolve().parents[2].parent / "shared/data/emodb/wav/03a01Fa.wav", sr=16000)[0]
    fs = FrameStream(cfg)
    got = np.vstack([fs.push(y[i : i + chunk]) for i in range(0, len(y), chunk)] + [fs.flush()])
    assert np.array_equal(got, cfg.frames(y))
    plain = InputConfig(deltas=0)
    fs = FrameStream(plain)
    assert np.array_equal(np.vstack([fs.push(y[:5000]), fs.push(y[5000:]), fs.flush()]), plain.frames(y))


def test_predict_memory_does_not_follow_the_file_length(tmp_path: Path) -> None:
    """Python-side peak allocations (numpy included) for a 10-minute 48 kHz stereo file: the
    whole-file path held the audio (230 MB at 48 kHz stereo) and every frame; the stream holds a
    block and one column group. The CLI's RSS for 30 minutes is in docs/reliability.md."""
    path = tmp_path / "long.wav"
    y = load(Path(__file__).resolve().parents[2].parent / "shared/data/emodb/wav/03a01Fa.wav", sr=48000)[0]
    with sf.SoundFile(path, "w", 48000, 2, "PCM_16") as f:
        for _ in range(int(600 * 48000 / len(y)) + 1):
            f.write(np.stack([y, y], 1))
    sf.write(tmp_path / "short.wav", np.stack([y, y], 1), 48000, subtype="PCM_16")
    assert sum(len(b) for b in blocks(path, sr=16000)) == pytest.approx(600 * 16000, rel=0.02)

    def peak(p: Path) -> int:
        tracemalloc.start()
        try:
            (r,) = predict_files([str(p)])
            assert "label" in r, r
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short, long = peak(tmp_path / "short.wav"), peak(path)
    assert long - short < 8 << 20, f"peak {short / 2**20:.1f} MB for 2 s, {long / 2**20:.1f} MB for 10 minutes"
