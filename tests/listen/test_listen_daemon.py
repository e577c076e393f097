"""``ser-edge listen`` as a subprocess: sources, events, signals, reloads, hot swap, privacy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from _listen_support import SR, listen_cmd, speech_bounds

from ser_edge.audio import load, resample
from ser_edge.bundle import load_bundle, save_bundle


def run_listen(*args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(listen_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)


def events_of(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def check_utterances(
    events: list[dict[str, Any]], truth: list[tuple[int, int]], labels: tuple[str, ...], model_id: str
) -> None:
    utts = [e for e in events if e["type"] == "utterance"]
    assert len(utts) == len(truth), utts
    for e, (a, b) in zip(utts, truth):
        assert a / SR - 0.35 <= e["start"] <= a / SR + 0.05
        assert abs(e["end"] - b / SR) <= 0.1
        assert e["label"] in labels and e["model_id"] == model_id
        assert set(e["scores"]) == set(labels)
        assert sum(e["scores"].values()) == pytest.approx(1.0, abs=0.01)
        assert e["confidence"] == pytest.approx(max(e["scores"].values()), abs=1e-3)
        assert e["scores"][e["label"]] == max(e["scores"].values())


def test_file_source_gives_one_event_per_utterance(speech: dict, bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    r = run_listen("--source", str(speech["conversation"]), "--model", str(bundle_dir))
    assert r.returncode == 0, r.stderr
    check_utterances(events_of(r.stdout), speech["truth"], b.labels, b.model_id)
    logs = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    assert {"listening", "stopped"} <= {x["msg"] for x in logs}


def test_a_packaged_model_is_chosen_by_its_name(speech: dict) -> None:
    room = load_bundle("room")
    r = run_listen("--source", str(speech["conversation"]), "--model", "room")
    assert r.returncode == 0, r.stderr
    check_utterances(events_of(r.stdout), speech["truth"], room.labels, room.model_id)
    assert room.model_id != load_bundle().model_id


def test_window_events_and_their_smoothing(speech: dict, bundle_dir: Path) -> None:
    r = run_listen(
        "--source",
        str(speech["conversation"]),
        "--model",
        str(bundle_dir),
        "--window-events",
        "--window",
        "1.0",
        "--hop",
        "0.5",
    )
    assert r.returncode == 0, r.stderr
    events = events_of(r.stdout)
    utts = [e for e in events if e["type"] == "utterance"]
    wins = [e for e in events if e["type"] == "window"]
    assert len(utts) == 2 and all(u["windows"] >= 3 for u in utts)
    for u in utts:
        inside = [w for w in wins if u["start"] <= w["start"] and w["end"] <= u["end"] + 1e-6]
        assert all(w["end"] - w["start"] == pytest.approx(1.0, abs=1e-3) for w in inside)
        assert len(inside) >= u["windows"] - 1  # the last (tail) window is folded into the utterance
        # the utterance's score is the weighted mean of its windows: between their min and max
        for label, score in u["scores"].items():
            vals = [w["scores"][label] for w in inside]
            if vals:
                assert min(vals) - 0.02 <= score <= max(vals) + 0.02 or len(inside) < u["windows"]


def test_stdin_raw_pcm_at_another_rate_and_channels(speech: dict, bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    y = resample(speech["audio"], orig_sr=SR, target_sr=48000)
    raw = (np.clip(np.stack([y, y], 1), -1, 1) * 32767).astype("<i2").tobytes()
    r = subprocess.run(
        listen_cmd("--source", "-", "--rate", "48000", "--channels", "2", "--model", str(bundle_dir)),
        input=raw,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    check_utterances(events_of(r.stdout.decode()), speech["truth"], b.labels, b.model_id)


def test_bad_inputs_are_clear_errors(tmp_path: Path, bundle_dir: Path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all")
    r = run_listen("--source", str(bad), "--model", str(bundle_dir))
    assert r.returncode == 1 and "bad.flac" in r.stderr
    r = run_listen("--source", str(bad), "--model", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such model bundle" in r.stderr
    conf = tmp_path / "c.toml"
    conf.write_text("[gate]\nhangover = -1\n")
    r = run_listen("--config", str(conf))
    assert r.returncode == 2 and "hangover" in r.stderr


def test_sigterm_drains_the_open_utterance_and_exits_0(speech: dict, bundle_dir: Path, daemons: Any) -> None:
    d = daemons("--source", "-", "--model", str(bundle_dir), stdin=True)
    d.wait_for(lambda: d.log("source open"), message="source open")
    y, _ = load(speech["one"], sr=SR)
    a, b = speech_bounds(y)
    d.write(np.concatenate([np.zeros(SR // 2, np.float32), y[a:b]]))  # speech still going: no end yet
    time.sleep(1.0)
    assert d.utterances() == []
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=2.0) == 0
    d.stop()
    assert len(d.utterances()) == 1 and d.log("stopped")


def _speak(d: Any, y: np.ndarray) -> None:
    d.write(np.concatenate([y, np.zeros(SR // 2, np.float32)]))


def test_sighup_reloads_configuration_and_model(speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any) -> None:
    src = load_bundle(bundle_dir)
    other = save_bundle(
        tmp_path / "other",
        tflite=src.model_path.read_bytes(),
        name="reloaded",
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{bundle_dir}"\n[source]\nkind = "-"\n')
    d = daemons("--config", str(conf), stdin=True)
    y, _ = load(speech["one"], sr=SR)
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 1, message="first event")
    assert d.utterances()[0]["model_id"] == src.model_id and not [e for e in d.events if e["type"] == "window"]
    conf.write_text(
        f'model = "{other.path}"\n[source]\nkind = "-"\n[windows]\nevents = true\nwindow = 1.0\nhop = 0.5\n'
    )
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: d.log("configuration reloaded"), message="reload")
    # the new model is checked in a child process while the daemon listens, then swapped in
    d.wait_for(
        lambda: [x for x in d.log("model loaded") if x["model_id"] == other.model_id], timeout=90, message="swap"
    )
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 2, message="second event")
    assert d.utterances()[1]["model_id"] == other.model_id
    assert [e for e in d.events if e["type"] == "window"]
    conf.write_text("[gate]\nhangover = 'x'\n")  # a bad file on reload: keep running as before
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(
        lambda: [x for x in d.logs if x.get("msg", "").startswith("configuration reload failed")],
        message="refused reload",
    )
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 3, message="third event")
    assert d.utterances()[2]["model_id"] == other.model_id
    assert d.stop() == 0


def test_new_model_file_is_hot_swapped_and_a_corrupt_one_refused(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    src = load_bundle(bundle_dir)
    live = save_bundle(
        tmp_path / "model",
        tflite=src.model_path.read_bytes(),
        name=src.name,
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{live.path}"\n[source]\nkind = "-"\n[watch]\ninterval = 0.2\n')
    d = daemons("--config", str(conf), stdin=True)
    y, _ = load(speech["two"], sr=SR)
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 1, message="first event")
    assert d.utterances()[0]["model_id"] == live.model_id

    swapped = save_bundle(
        live.path,
        tflite=src.model_path.read_bytes(),
        name="swapped",
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    d.wait_for(
        lambda: [x for x in d.log("model loaded") if x["model_id"] == swapped.model_id], timeout=90, message="swap"
    )
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 2, message="second event")
    assert d.utterances()[1]["model_id"] == swapped.model_id

    (live.path / "model.tflite").write_bytes(b"TFL3" + os.urandom(5000))  # corrupt: refused
    d.wait_for(lambda: d.log("model refused; keeping the running model"), timeout=90, message="refusal")
    (live.path / "bundle.json").write_text("{ not json")
    d.wait_for(
        lambda: len(d.log("model refused; keeping the running model")) >= 2, timeout=90, message="second refusal"
    )
    _speak(d, y)
    d.wait_for(lambda: len(d.utterances()) == 3, message="third event")
    assert d.utterances()[2]["model_id"] == swapped.model_id
    assert d.stop() == 0


def test_audio_is_written_only_with_record_dir(speech: dict, bundle_dir: Path, tmp_path: Path) -> None:
    home, work, tmp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for p in (home, work, tmp):
        p.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    r = run_listen("--source", str(speech["conversation"]), "--model", str(bundle_dir), cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert [list(p.iterdir()) for p in (home, work, tmp)] == [[], [], []]

    rec = tmp_path / "rec"
    r = run_listen(
        "--source", str(speech["conversation"]), "--model", str(bundle_dir), "--record-dir", str(rec), cwd=work, env=env
    )
    assert r.returncode == 0, r.stderr
    events = [e for e in events_of(r.stdout) if e["type"] == "utterance"]
    wavs = sorted(rec.glob("*.wav"))
    assert len(wavs) == len(events) == 2
    for e in events:
        info = sf.info(e["recording"])
        assert info.samplerate == SR and info.frames == round(e["duration"] * SR)
        assert json.loads(Path(e["recording"]).with_suffix(".json").read_text())["label"] == e["label"]
    assert [list(p.iterdir()) for p in (home, work, tmp)] == [[], [], []]
