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
    assert np.allclose(out[np.flatnonzero(out)[0] :][:100], tone[:100], atol=1e-6) or len(out) >= SR


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
    # no blow-up where few windows overlap (the first and last samples): the level stays the tone's
    assert np.abs(slow).max() < 1.5 * np.abs(tone).max() and np.abs(up).max() < 1.5 * np.abs(tone).max()


def test_colour_is_a_smooth_bounded_equaliser(speech: np.ndarray) -> None:
    noise = np.random.default_rng(3).standard_normal(4 * SR).astype(np.float32)
    f = np.fft.rfftfreq(len(noise), 1 / SR)
    bands = [(lo, lo * 1.25) for lo in (60, 120, 250, 500, 1000, 2000, 4000, 6000)]
    shapes = []
    for seed in range(6):
        out = A.colour(noise, SR, 6.0, np.random.default_rng(seed))
        ratio = np.abs(np.fft.rfft(out)) ** 2 / np.abs(np.fft.rfft(noise)) ** 2
        db = np.array([10 * np.log10(ratio[(f >= lo) & (f < hi)].mean()) for lo, hi in bands])
        shapes.append(db - db.mean())
        assert np.ptp(db) <= 12.5  # within ±6 dB of each other (the RMS rescaling shifts them all)
        assert A.rms_dbfs(out) == pytest.approx(A.rms_dbfs(noise), abs=0.01)
    assert max(np.ptp(s) for s in shapes) > 3  # it does colour the sound, differently each time
    assert not np.allclose(shapes[0], shapes[1], atol=0.5)
    assert np.array_equal(A.colour(speech, SR, 0.0, np.random.default_rng(0)), speech)  # 0 dB: unchanged
    coloured = A.parse("eq=6")(speech, SR, np.random.default_rng(0))
    assert coloured.shape == speech.shape and np.isfinite(coloured).all() and not np.array_equal(coloured, speech)


def test_augmentation_is_random_but_seeded(speech: np.ndarray) -> None:
    aug = A.parse("noise=20,gain=6,shift=0.1,speed=0.1,pitch=1,copies=2")
    assert aug == A.Augmentation(noise=20.0, gain=6.0, shift=0.1, speed=0.1, pitch=1.0, copies=2)
    a = aug(speech, SR, np.random.default_rng(1))
    b = aug(speech, SR, np.random.default_rng(1))
    c = aug(speech, SR, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.85 * len(speech) <= len(a) <= 1.15 * len(speech) and np.isfinite(a).all()


@pytest.mark.parametrize(
    "spec, match",
    [
        ("noise", "NAME=VALUE"),
        ("volume=3", "NAME=VALUE"),
        ("gain=loud", "not a number"),
        ("copies=0", "copies"),
        ("speed=0.9", "speed"),
        ("eq=-3", "eq"),
    ],
)
def test_parse_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        A.parse(spec)


def test_window_starts_rule() -> None:
    from ser_edge.training.dataset import window_starts

    assert window_starts(10, 4, 2).tolist() == [0, 2, 4, 6]  # 6 + 4 = 10: no partial window left
    assert window_starts(11, 4, 2).tolist() == [0, 2, 4, 6, 7]  # the last window ends at the last item
    assert window_starts(4, 4, 1).tolist() == [0] and window_starts(3, 4, 2).tolist() == [0]
    assert window_starts(0, 4, 2).tolist() == []
    for n in range(1, 40):  # every item is in some window, every window is full (or the clip is short)
        starts = window_starts(n, 7, 3)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + 7] = True
            assert s + 7 <= n or (n < 7 and s == 0)
        assert covered.all() and (np.diff(starts) > 0).all()
    for window, hop in ((0, 1), (4, 0), (4, 5)):
        with pytest.raises(ValueError, match="hop"):
            window_starts(10, window, hop)


def test_sliding_windows(speech: np.ndarray) -> None:
    w = A.sliding_windows(speech, SR, window=1.0, hop=0.5)
    assert w.shape[1] == SR and w.dtype == np.float32
    n_full = 1 + (len(speech) - SR) // (SR // 2)
    assert len(w) == n_full + (1 if (len(speech) - SR) % (SR // 2) else 0)
    assert np.array_equal(w[1], speech[SR // 2 : SR // 2 + SR])
    assert np.array_equal(w[-1], speech[-SR:])  # the last partial window is aligned to the end
    short = A.sliding_windows(speech[:4000], SR, window=1.0, hop=0.5)
    assert short.shape == (1, SR) and np.array_equal(short[0, :4000], speech[:4000]) and not short[0, 4000:].any()
    with pytest.raises(ValueError, match="hop"):
        A.sliding_windows(speech, SR, window=1.0, hop=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        A.sliding_windows(np.zeros(0, np.float32), SR)
    assert A.parse_windows("2.0,1.0") == A.parse_windows([2, 1]) == (2.0, 1.0)
    for bad in ("2", "1,2", "a,b", "0,0"):
        with pytest.raises(ValueError, match="windows"):
            A.parse_windows(bad)
