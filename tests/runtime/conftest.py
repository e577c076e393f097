"""Fixtures for ``ser-edge predict`` and the edge path: the model bundle and real speech."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


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
    from ser_edge.bundle import default_bundle_path

    p = Path(os.environ.get("SER_EDGE_TEST_BUNDLE") or default_bundle_path())
    assert (p / "bundle.json").is_file(), f"no model bundle at {p}"
    return p


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An English sentence from espeak-ng (22.05 kHz 16-bit WAV)."""
    path = tmp_path_factory.mktemp("espeak") / "spoken.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "I cannot believe you did that again."], check=True, capture_output=True
    )
    return path


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    """Real recordings: EMO-DB WAV (22.05 kHz) and RAVDESS FLAC (16 kHz, one of them stereo)."""
    files = [
        DATA / "emodb/wav/03a01Fa.wav",
        DATA / "emodb/wav/08a01Wa.wav",
        DATA / "ravdess/Actor_01/03-01-05-01-01-01-01.flac",
    ]
    for f in files:
        assert f.is_file(), f
    return files
