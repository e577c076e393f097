"""Sizes are checked before anything is allocated, thread pools are bounded, and results that
overflow float32 are refused. Each hostile call runs in a child process: on a core without the
checks it aborts the interpreter (``memory allocation failed``, rc 134) or panics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ser_edge.features as F

PRELUDE = """
import numpy as np, ser_edge.features as F
y = np.random.default_rng(0).uniform(-0.5, 0.5, 4000).astype(np.float32)
"""


def outcome(call: str) -> str:
    """``ValueError: <message>`` (or what else happened) of ``call`` in a child process."""
    code = PRELUDE + textwrap.dedent(f"""
    try:
        {call}
        print("RETURNED")
    except ValueError as e:
        print("ValueError:", e)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{call}: rc={p.returncode}\n{p.stderr[-1500:]}"
    return p.stdout.strip()


@pytest.mark.parametrize(
    "call, names",
    [
        ("F.mfcc(y=y, sr=16000, n_fft=2**40)", "n_fft=1099511627776 is too large"),
        ("F.stft(y, n_fft=2**62)", "n_fft=4611686018427387904 is too large"),
        ("F.stft(y, n_fft=2**30)", "n_fft=1073741824 is too large"),
        ("F.FeatureConfig(n_fft=2**40)", "n_fft="),
        ("F.mfcc(y=y, sr=16000, n_mels=2**40)", "n_mels=1099511627776 is too large"),
        ("F.mel_filters(sr=16000, n_fft=512, n_mels=2**40)", "n_mels="),
        ("F.mfcc(y=y, sr=16000, n_fft=4, n_mels=2**24)", "n_mels=16777216 is too large"),
        ("F.mfcc(y=y, sr=16000, n_fft=4, n_mels=2**14, n_mfcc=2**14)", "n_mfcc=16384 is too large"),
        ("F.chroma_stft(y=y, sr=16000, n_chroma=2**40)", "n_chroma=1099511627776 is too large"),
        ("F.chroma_stft(y=y, sr=16000, n_chroma=2**62, tuning=0.0)", "n_chroma="),
        ("F.spectral_contrast(y=y, sr=16000, n_bands=2**40)", "n_bands=1099511627776"),
        ("F.frame(np.zeros(40000, np.float32), frame_length=20000, hop_length=1)", "more than 268435456"),
        ("F.delta(np.ones((2, 50)), width=2**40 + 1, mode='nearest')", "width="),
        ("F.spectrogram(y, n_fft=2**18, hop_length=1)", "result would hold"),
        ("F.mfcc(y=y, sr=16000, n_fft=2**64)", "n_fft=18446744073709551616 is too large"),
    ],
)
def test_huge_sizes_raise_value_error_before_allocating(call: str, names: str) -> None:
    got = outcome(call)
    assert got.startswith("ValueError:") and names in got, got


def test_distinct_n_jobs_do_not_keep_a_pool_each() -> None:
    code = (
        PRELUDE
        + """
import os
cfg = F.FeatureConfig()
for n in range(1, 200):
    F.extract_many([y, y], cfg, n_jobs=n)
F.extract_many([y], cfg, n_jobs=2**62)
threads = int([l for l in open('/proc/self/status') if l.startswith('Threads:')][0].split()[1])
print(threads)
"""
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-1500:]
    cores = os.cpu_count() or 1
    # At most one pool per thread count up to the cores: sum(1..cores) workers, plus the main thread.
    assert int(p.stdout) <= cores * (cores + 1) // 2 + 8, p.stdout


@pytest.mark.parametrize("scale", [1e20, 1e30, 3e38])
def test_samples_that_overflow_float32_features_are_refused(scale: float) -> None:
    y = (np.random.default_rng(0).uniform(-1, 1, 8000) * scale).astype(np.float32)
    cfg = F.FeatureConfig(features=("log_melspectrogram", "mfcc", "chroma_stft", "spectral_entropy", "rms"))
    for call in (
        lambda: F.extract(y, cfg),
        lambda: F.mfcc(y=y, sr=16000),
        lambda: F.spectrogram(y),
        lambda: F.melspectrogram(y=y, sr=16000),
        lambda: F.chroma_stft(y=y, sr=16000, tuning=0.0),
    ):
        with pytest.raises(ValueError, match="not finite"):
            call()
    s = F.Stream(cfg)
    with pytest.raises(ValueError, match="not finite"):
        s.push(y)
    # The stream was reset: ordinary audio afterwards gives exactly the batch frames.
    z = y / np.float32(scale)
    assert np.array_equal(np.hstack([s.push(z), s.flush()]), F.extract(z, cfg))


def test_samples_up_to_1e15_still_give_finite_features() -> None:
    y = (np.random.default_rng(0).uniform(-1, 1, 8000) * 1e15).astype(np.float32)
    assert np.isfinite(F.extract(y, F.FeatureConfig(features=("mfcc", "rms", "spectral_centroid")))).all()
