"""``ser-edge predict`` gives emotions for speech only: a file without speech gets
``"speech": false`` and no emotion; segments are speech utterances only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from ser_edge.audio import load
from ser_edge.listen.sounds import SOUNDS
from ser_edge.predict import predict_files

SR = 16000
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FOLD2 = DATA / "noise" / "urbansound8k" / "fold2"


def _write(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, y, sr, subtype="PCM_16")
    return path


def test_files_without_speech_get_no_emotion(tmp_path: Path, bundle_dir: Path, corpus: list[Path]) -> None:
    rng = np.random.default_rng(0)
    alarm = _write(tmp_path / "alarm.wav", 0.2 * SOUNDS["beeping_alarm"](6.0, SR, rng))
    silence = _write(tmp_path / "silence.wav", np.zeros(3 * SR, np.float32))
    siren = FOLD2 / "102871-8-0-0.ogg"  # real UrbanSound8K siren (held-out fold)
    out = list(predict_files([str(alarm), str(silence), str(siren), str(corpus[0])], model=str(bundle_dir)))
    for r in out[:3]:
        assert r["speech"] is False, r
        assert not {"label", "confidence", "scores"} & set(r)
        assert r["seconds"] > 0 and r["model_id"]
    assert out[3]["speech"] is True and out[3]["label"] in out[3]["scores"]


def test_segments_are_speech_only(tmp_path: Path, bundle_dir: Path, spoken: Path) -> None:
    y, _ = load(spoken, sr=SR)
    rng = np.random.default_rng(1)
    z = np.zeros(SR, np.float32)
    alarm = 0.2 * SOUNDS["beeping_alarm"](4.0, SR, rng)
    chord = 0.2 * SOUNDS["chord"](4.0, SR, rng)
    f = _write(tmp_path / "mixed.wav", np.concatenate([z, alarm, z, y, z, chord, z]))
    (r,) = predict_files([str(f)], model=str(bundle_dir), segments=True)
    speech_at = (6 * SR) / SR, (6 * SR + len(y)) / SR
    assert r["speech"] is True and len(r["segments"]) >= 1
    for s in r["segments"]:
        assert s["end"] > speech_at[0] and s["start"] < speech_at[1], s
    (n,) = predict_files(
        [str(_write(tmp_path / "chord.wav", np.concatenate([z, chord, z])))], model=str(bundle_dir), segments=True
    )
    assert n["speech"] is False and n["segments"] == [] and "label" not in n


def test_cli_says_no_speech_in_text_and_json(tmp_path: Path, bundle_dir: Path, spoken: Path) -> None:
    tone = _write(tmp_path / "tone.wav", 0.3 * SOUNDS["tone"](3.0, SR, np.random.default_rng(2)))
    cmd = [sys.executable, "-m", "ser_edge", "predict", str(tone), str(spoken), "--model", str(bundle_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{tone}: no speech (3.00 s)"
    assert lines[1].startswith(f"{spoken}: ") and "no speech" not in lines[1]
    r = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
    a, b = map(json.loads, r.stdout.splitlines())
    assert a["speech"] is False and "label" not in a
    assert b["speech"] is True and b["label"] in b["scores"]
