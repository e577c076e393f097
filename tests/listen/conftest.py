"""Fixtures for the listen daemon's tests (helpers in ``_listen_support``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _listen_support import SR, Broker, Daemon, Pulse, bundle_path, espeak, free_port, speech_bounds


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``listen`` keeps the user's adapter state under ``$XDG_STATE_HOME``: the tests (and the
    daemons they start) use a folder of their own, never the real user's."""
    import os

    d = tmp_path_factory.mktemp("xdg-state")
    os.environ["XDG_STATE_HOME"] = str(d)
    return d


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    p = bundle_path()
    assert (p / "bundle.json").is_file(), f"no model bundle at {p}"
    return p


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two English sentences from espeak-ng (22.05 kHz WAV), and a 16 kHz "conversation": 1 s
    silence, sentence one, 1.5 s silence, sentence two, 1 s silence, with where speech is."""
    import soundfile as sf

    from ser_edge.audio import load

    d = tmp_path_factory.mktemp("speech")
    one = espeak("Hello there, I am so happy to see you again today.", d / "one.wav")
    two = espeak("Please close the door when you leave the room.", d / "two.wav")
    parts, truth, pos = [np.zeros(SR, np.float32)], [], SR
    for f in (one, two):
        y, _ = load(f, sr=SR)
        a, b = speech_bounds(y)
        y = y[a:b]
        truth.append((pos, pos + len(y)))
        parts += [y, np.zeros(int(1.5 * SR), np.float32)]
        pos += len(y) + int(1.5 * SR)
    parts[-1] = np.zeros(SR, np.float32)
    conv = np.concatenate(parts)
    sf.write(d / "conversation.wav", conv, SR, subtype="PCM_16")
    return {"one": one, "two": two, "conversation": d / "conversation.wav", "audio": conv, "truth": truth, "dir": d}


@pytest.fixture
def daemons() -> Any:
    started: list[Daemon] = []

    def start(*args: str, **kw: Any) -> Daemon:
        d = Daemon(list(args), **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    assert shutil.which("mosquitto"), "mosquitto is not installed (apt install mosquitto)"
    b = Broker(free_port(), tmp_path)
    yield b
    b.stop()


@pytest.fixture
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    for tool in ("pulseaudio", "pactl", "paplay"):
        assert shutil.which(tool), f"{tool} is not installed (apt install pulseaudio pulseaudio-utils)"
    p = Pulse(tmp_path_factory.mktemp("xdg"))
    yield p.start()
    p.stop()
