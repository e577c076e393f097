"""Spectral-gating noise reduction on real speech with white noise at a known SNR."""

from __future__ import annotations

import numpy as np
import pytest
from training_data import EMODB, RAVDESS

from ser_edge.audio import load
from ser_edge.features import stft
from ser_edge.training import denoise as D
from ser_edge.training.augment import add_noise
from ser_edge.training.istft import istft

SR = 16000
CLIPS = (
    EMODB / "wav" / "03a01Wa.wav",
    EMODB / "wav" / "03a01Fa.wav",
    RAVDESS / "Actor_01" / "03-01-05-01-01-01-01.flac",
)


def snr_db(clean: np.ndarray, y: np.ndarray) -> float:
    """SNR of ``y`` with the clean clip as the reference (everything else is error)."""
    clean64 = clean.astype(np.float64)
    return float(10 * np.log10(np.sum(clean64**2) / np.sum((y.astype(np.float64) - clean64) ** 2)))


@pytest.fixture(scope="module", params=CLIPS, ids=lambda p: p.stem)
def speech(request: pytest.FixtureRequest) -> np.ndarray:
    return load(request.param, sr=SR)[0]


def test_istft_inverts_the_stft(speech: np.ndarray) -> None:
    S = stft(speech, n_fft=1024, hop_length=256, center=True)
    back = istft(S, hop_length=256, n_fft=1024, length=len(speech))
    assert back.shape == speech.shape and np.abs(back - speech).max() < 1e-5


def test_gate_raises_snr_of_noisy_speech(speech: np.ndarray) -> None:
    noisy = add_noise(speech, 5.0, np.random.default_rng(0))
    before = snr_db(speech, noisy)
    assert before == pytest.approx(5.0, abs=0.3)
    out = D.spectral_gate(noisy, SR)
    assert out.shape == noisy.shape and out.dtype == np.float32
    # Measured on these clips: +5.2 to +7.1 dB. A broken mask (all 0, all 1) gains nothing.
    assert snr_db(speech, out) - before > 3.0
    # A separate noise clip gives the profile as well as the quietest frames do.
    noise_only = add_noise(np.full(SR, 1e-3, np.float32), -40.0, np.random.default_rng(1)) - 1e-3
    noise_only *= np.sqrt(np.mean((noisy - speech) ** 2) / np.mean(noise_only**2))
    assert snr_db(speech, D.spectral_gate(noisy, SR, y_noise=noise_only)) - before > 3.0
    # prop_decrease=0 leaves the clip as it is; 0.5 removes less than 1.
    assert snr_db(noisy, D.spectral_gate(noisy, SR, prop_decrease=0.0)) > 60
    assert before < snr_db(speech, D.spectral_gate(noisy, SR, prop_decrease=0.5)) < snr_db(speech, out)


def test_gate_changes_clean_speech_little(speech: np.ndarray) -> None:
    out = D.spectral_gate(speech, SR)
    assert snr_db(speech, out) > 15.0  # measured 19.8-32 dB; the noisy input above is at 5 dB
    assert D.SpectralGate()(speech, SR) == pytest.approx(out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.zeros(500, np.float32)), "at least n_fft"),
        (dict(y=np.zeros((2, 4000), np.float32)), "mono"),
        (dict(y=np.full(4000, np.nan, np.float32)), "NaN"),
        (dict(y=np.ones(4000, np.float32), prop_decrease=1.5), "prop_decrease"),
        (dict(y=np.ones(4000, np.float32), n_std=-1), "n_std"),
        (dict(y=np.ones(4000, np.float32), y_noise=np.ones(100, np.float32)), "y_noise"),
        (dict(y=np.ones(4000, np.float32), noise_fraction=0.0), "noise_fraction"),
    ],
)
def test_gate_errors(kwargs: dict, match: str) -> None:
    y = kwargs.pop("y")
    with pytest.raises(ValueError, match=match):
        D.spectral_gate(y, SR, **kwargs)


def test_parse() -> None:
    assert D.parse(False) is None and D.parse("") is None and D.parse("off") is None
    assert D.parse(True) == D.parse("on") == D.SpectralGate()
    assert D.parse("n_std=2,prop_decrease=0.8") == D.SpectralGate(n_std=2.0, prop_decrease=0.8)
    assert D.SpectralGate(n_std=2).key() != D.SpectralGate().key()
    for bad, match in (
        ("n_std", "NAME=VALUE"),
        ("colour=2", "NAME=VALUE"),
        ("n_std=x", "not a number"),
        ("prop_decrease=2", "prop_decrease"),
    ):
        with pytest.raises(ValueError, match=match):
            D.parse(bad)
    with pytest.raises(ValueError, match="S must be shaped"):
        istft(np.zeros((10, 4), complex), hop_length=256, n_fft=1024)
