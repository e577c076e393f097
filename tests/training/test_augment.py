"""Preprocessing and augmentation on real speech and on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from training_data import EMODB

from ser_edge.audio import load
from ser_edge.training import augment as A

SR = 16000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load(EMODB / "wav" / "03a01Wa.wav", sr=SR)[0]


def peak_hz(y: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SR)[spec.argmax()])


def test_loudness_normalize(speech: np.ndarray) -> None:
    out = A.loudness_normalize(speech, -30.0)
    assert A.rms_dbfs(out) == pytest.approx(-30.0, abs=0.01)
    loud = A.loudness_normalize(speech, 0.0)  # would clip: limited to the peak instead
    assert np.abs(loud).max() <= 0.999 + 1e-6 and A.rms_dbfs(loud) < 0
    silence = np.zeros(1000, np.float32)
    assert (A.loudness_normalize(silence) == 0).all()


def test_trim_silence() -> None:
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR).astype(np.float32)
    y = np.concatenate([np.zeros(SR // 2, np.float32), tone, np.zeros(SR, np.float32)])
    out = A.trim_silence(y, top_db=40)
    assert SR <= len(out) <= SR + 2048  # the tone plus at most a frame either side
    assert np.allclose(out[np.flatnonzero(out)[0]:][:100], tone[:100], atol=1e-6) or len(out) >= SR


def test_pad_or_crop() -> None:
    y = np.arange(10, dtype=np.float32) + 1
    assert A.pad_or_crop(y, 4).tolist() == [4, 5, 6, 7]
    assert A.pad_or_crop(y, 4, where="end").tolist() == [1, 2, 3, 4]
    assert A.pad_or_crop(y, 14).tolist() == [0, 0] + list(range(1, 11)) + [0, 0]
    with pytest.raises(ValueError, match="n=0"):
        A.pad_or_crop(y, 0)


def test_noise_at_snr(speech: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = A.add_noise(speech, 10.0, rng)
    noise = noisy - speech
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)


def test_speed_and_pitch_on_a_tone() -> None:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    fast = A.change_speed(tone, 1.25, SR)
    assert len(fast) == pytest.approx(SR / 1.25, abs=2)
    assert peak_hz(fast) == pytest.approx(375, abs=3)
    up = A.pitch_shift(tone, SR, 2.0)
    assert len(up) == len(tone)
    assert peak_hz(up) == pytest.approx(300 * 2 ** (2 / 12), abs=4)
    slow = A.time_stretch(tone, 0.8)
    assert len(slow) == pytest.approx(SR / 0.8, rel=0.03) and peak_hz(slow) == pytest.approx(300, abs=3)


def test_augmentation_is_random_but_seeded(speech: np.ndarray) -> None:
    aug = A.parse("noise=20,gain=6,shift=0.1,speed=0.1,pitch=1,copies=2")
    assert aug == A.Augmentation(noise=20.0, gain=6.0, shift=0.1, speed=0.1, pitch=1.0, copies=2)
    a = aug(speech, SR, np.random.default_rng(1))
    b = aug(speech, SR, np.random.default_rng(1))
    c = aug(speech, SR, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.85 * len(speech) <= len(a) <= 1.15 * len(speech) and np.isfinite(a).all()


@pytest.mark.parametrize("spec, match", [("noise", "NAME=VALUE"), ("volume=3", "NAME=VALUE"),
                                         ("gain=loud", "not a number"), ("copies=0", "copies"),
                                         ("speed=0.9", "speed")])
def test_parse_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        A.parse(spec)
