"""A real PortAudio capture path: PulseAudio with a null sink, PyAudio recording its monitor
while ``paplay`` plays real speech into it; device loss by stopping the sound server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _listen_support import Pulse

from ser_edge.bundle import load_bundle


def test_devices_lists_the_pulse_input(pulse: Pulse) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ser_edge", "devices", "--json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **pulse.env},
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    devices = [json.loads(x) for x in r.stdout.splitlines()]
    assert any(d["name"] == "pulse" and d["channels"] >= 1 for d in devices), devices
    assert sum(d["default"] for d in devices) == 1


def test_microphone_through_pulseaudio_gives_events(speech: dict, bundle_dir: Path, pulse: Pulse, daemons: Any) -> None:
    b = load_bundle(bundle_dir)
    d = daemons("--source", "mic", "--device", "pulse", "--model", str(bundle_dir), env=pulse.env)
    opened = d.wait_for(lambda: d.log("source open"), message="the microphone opens")[0]
    assert opened["device"] == "pulse" and opened["rate"] != b.input.sr  # native rate, resampled
    player = pulse.play(speech["conversation"])
    assert player.wait(30) == 0
    d.wait_for(lambda: len(d.utterances()) >= 2, message="2 utterances from the microphone")
    for e in d.utterances():
        assert e["label"] in b.labels and e["model_id"] == b.model_id and e["delay_ms"] >= 0
    first, second = d.utterances()[:2]
    assert 0.9 < second["start"] - first["end"] < 2.1  # the 1.5 s pause between the sentences
    assert d.stop() == 0


def test_device_loss_is_retried_and_listening_resumes(
    speech: dict, bundle_dir: Path, pulse: Pulse, daemons: Any
) -> None:
    d = daemons("--source", "mic", "--model", str(bundle_dir), env=pulse.env)
    d.wait_for(lambda: d.log("source open"), message="the microphone opens")
    pulse.stop()  # the sound server goes away: the device is lost for real
    d.wait_for(lambda: d.log("source lost; retrying"), message="loss detected")
    d.wait_for(lambda: d.log("source unavailable; retrying"), message="retries while it is gone")
    pulse.start()
    d.wait_for(lambda: len(d.log("source open")) >= 2, timeout=40, message="reopened")
    player = pulse.play(speech["one"])
    assert player.wait(30) == 0
    d.wait_for(lambda: d.utterances(), message="an event after recovery")
    retries = [x["retry_s"] for x in d.log("source unavailable; retrying")]
    assert retries == sorted(retries) and retries[0] >= 0.5  # exponential backoff
    assert d.stop() == 0
