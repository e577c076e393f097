"""The device keeps what it learned about its user: the adapter's statistics are saved (0600)
and restored across restarts of ``listen``, never published; ``--enrol SECONDS`` learns a
user's speech, saves it and exits with a summary. Real speech through ``--source``."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from _listen_support import SR, listen_cmd

from ser_edge.bundle import load_bundle
from ser_edge.inputs import FrameStats, InputConfig
from ser_edge.listen.state import FILE, load_stats, save_stats


def listen(*args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], list[dict[str, Any]]]:
    r = subprocess.run(listen_cmd(*args), capture_output=True, text=True, timeout=120)
    out = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    logs = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    return r, out, logs


def test_stats_round_trip_private_and_keyed_to_the_inputs(tmp_path: Path) -> None:
    cfg = load_bundle().input
    rng = np.random.default_rng(0)
    s = FrameStats.of(rng.standard_normal((50, cfg.n_frame_features)))
    path = tmp_path / "state" / FILE
    save_stats(path, s, cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = load_stats(path, cfg)
    assert back is not None and back.count == 50
    np.testing.assert_allclose(back.mean, s.mean)
    np.testing.assert_allclose(back.m2, s.m2)
    other = InputConfig(deltas=1)
    assert load_stats(path, other) is None  # other frames: not this user's statistics for them
    assert load_stats(tmp_path / "none" / FILE, cfg) is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="adapter state"):
        load_stats(path, cfg)


def test_listen_saves_the_user_state_and_restores_it(speech: dict, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r, events, logs = listen("--source", str(speech["conversation"]), "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert any(e["type"] == "utterance" for e in events)
    f = state / FILE
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    first = json.loads(f.read_text())["count"]
    assert first > 0
    assert "adapter state restored" not in {x["msg"] for x in logs}
    r, events, logs = listen("--source", str(speech["conversation"]), "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    restored = [x for x in logs if x["msg"] == "adapter state restored"]
    assert restored and restored[0]["frames"] == int(first)
    assert json.loads(f.read_text())["count"] > first  # learned on from where it was
    assert all("state" not in e and "mean" not in e for e in events)  # never in what is published


def test_enrolment_learns_enough_speech_saves_and_summarises(speech: dict, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r, out, _ = listen("--source", str(speech["conversation"]), "--state-dir", str(state), "--enrol", "1.0")
    assert r.returncode == 0, r.stderr
    summary = out[-1]
    assert summary["type"] == "enrolment" and summary["complete"] is True
    assert summary["learned_s"] >= 1.0 and summary["utterances"] >= 1 and summary["state"] == str(state / FILE)
    assert json.loads((state / FILE).read_text())["count"] == summary["frames"]
    # too little speech in the source: not complete, exit 1, what it learned is still saved
    r, out, _ = listen("--source", str(speech["conversation"]), "--state-dir", str(state), "--enrol", "600")
    assert r.returncode == 1 and out[-1]["complete"] is False and out[-1]["learned_s"] > 0
    assert json.loads((state / FILE).read_text())["count"] == out[-1]["frames"]


def test_enrolment_without_speech_keeps_the_saved_state(speech: dict, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r, _, _ = listen("--source", str(speech["conversation"]), "--state-dir", str(state))
    saved = (state / FILE).read_text()
    t = np.arange(5 * SR) / SR
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR, subtype="PCM_16")
    r, out, _ = listen("--source", str(tone), "--state-dir", str(state), "--enrol", "2")
    assert r.returncode == 1 and out[-1]["complete"] is False and out[-1]["learned_s"] == 0
    assert (state / FILE).read_text() == saved


def test_bad_enrol_and_corrupt_state_are_clear(speech: dict, tmp_path: Path) -> None:
    r, _, _ = listen("--source", str(speech["conversation"]), "--enrol", "-3")
    assert r.returncode == 2 and "enrol" in r.stderr
    state = tmp_path / "state"
    state.mkdir()
    (state / FILE).write_text("garbage")
    r, events, logs = listen("--source", str(speech["conversation"]), "--state-dir", str(state))
    assert r.returncode == 0 and any(e["type"] == "utterance" for e in events)
    assert any(x["msg"] == "adapter state ignored" for x in logs)
