"""Speed of yin and pyin against librosa 0.11 (same run, same speech, single thread).

librosa's recommended range (C2-C7: fmin 65.4 Hz, fmax 2093 Hz), frame_length 2048, hop 512,
16 kHz. ``benches/report_pitch.py`` writes the "Pitch" section of docs/benchmarks.md.
"""

import itertools

import librosa
import numpy as np
import pytest

import ser_edge.features as F

SR = 16000
KW = dict(sr=SR, fmin=65.4, fmax=2093.0)
LENGTHS = [1, 60]


@pytest.fixture(scope="module", autouse=True)
def warm(speech):
    """librosa's numba kernels compile on first use; time them warm, as a fair reference."""
    librosa.pyin(speech[1], **KW)
    librosa.yin(speech[1], **KW)


def _rounds(seconds: int) -> dict:
    return dict(rounds=3 if seconds == 60 else 10, warmup_rounds=1 if seconds == 1 else 0)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.parametrize("fn", ["yin", "pyin"])
def test_librosa(benchmark, speech, fn, seconds):
    benchmark.group = fn
    benchmark.pedantic(getattr(librosa, fn), args=(speech[seconds],), kwargs=KW, **_rounds(seconds))


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="yin")
def test_yin_ser_edge(benchmark, speech, seconds):
    out = benchmark(F.yin, speech[seconds], **KW)
    assert out.shape == librosa.yin(speech[seconds], **KW).shape


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="pyin")
def test_pyin_ser_edge(benchmark, speech, seconds):
    f0, voiced, prob = benchmark(F.pyin, speech[seconds], **KW)
    assert voiced.any() and np.all((prob >= 0) & (prob <= 1))


@pytest.mark.benchmark(group="pyin")
def test_pyin_ser_edge_first_call(benchmark, speech):
    """1 s with a new parameter set every round: pYIN's model (cached per parameter set) is built
    in every call, as in the first call of a process."""
    fmins = itertools.count(60.0, 0.01)
    f0, voiced, prob = benchmark.pedantic(
        F.pyin, setup=lambda: ((speech[1],), {**KW, "fmin": next(fmins)}), rounds=10, warmup_rounds=1
    )
    assert voiced.any()
