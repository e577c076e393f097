"""Benchmarks: ser-edge against librosa (the reference) in the same run. Not part of the test
suite; run with ``scripts/bench``, which also writes docs/benchmarks.md."""

import numpy as np
import pytest

SR = 16000


@pytest.fixture(scope="session")
def speech():
    """1 s and 60 s of real speech at 16 kHz: RAVDESS clips (read in place) joined end to end."""
    from pathlib import Path

    from ser_edge.audio import load

    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"
    files = sorted(root.glob("Actor_0[1-4]/*.flac"))
    if not files:
        raise RuntimeError(f"no RAVDESS audio under {root}")
    y = np.concatenate([load(f, sr=SR)[0] for f in files[:40]])
    assert len(y) >= 60 * SR
    return {1: np.ascontiguousarray(y[SR : 2 * SR]), 60: np.ascontiguousarray(y[: 60 * SR])}


def hop_pusher(stream, y: np.ndarray, hop: int = 160):
    """A function that pushes the next ``hop`` samples of ``y`` into ``stream`` (cycling), after
    pushes that fill the stream up to its first frame: each call then returns one frame."""
    hops = y[: len(y) // hop * hop].reshape(-1, hop)
    state = {"i": 0}
    while stream.push(hops[state["i"]]).shape[1] == 0:
        state["i"] += 1
    state["i"] += 1

    def push():
        out = stream.push(hops[state["i"] % len(hops)])
        state["i"] += 1
        return out

    return push
