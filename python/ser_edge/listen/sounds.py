"""Synthetic sounds that are not speech, for training and testing the speech gate: silence, DC,
pure tones, chords, beeping alarms, square and sawtooth waves, sirens, clicks and coloured noise.

Every generator takes ``(seconds, sr, rng)`` and returns float32 mono audio with peak 0.5
(silence is zeros); :data:`SOUNDS` names them all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Generator = Callable[[float, int, np.random.Generator], np.ndarray]


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(round(seconds * sr))) / sr


def _peak(y: np.ndarray, peak: float = 0.5) -> np.ndarray:
    m = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y * (peak / m) if m > 0 else y).astype(np.float32)


def silence(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), np.float32)


def dc(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    return np.full(int(round(seconds * sr)), rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.5), np.float32)


def tone(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    f = float(np.exp(rng.uniform(np.log(60.0), np.log(6000.0))))
    return _peak(np.sin(2 * np.pi * f * _t(seconds, sr) + rng.uniform(0, 2 * np.pi)))


def chord(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    root = float(np.exp(rng.uniform(np.log(80.0), np.log(800.0))))
    t = _t(seconds, sr)
    ratios = [1.0, 1.26, 1.5, 2.0][: int(rng.integers(2, 5))]
    y = np.zeros_like(t)
    for k, r in enumerate(ratios):
        y += np.sin(2 * np.pi * root * r * t) * 0.8**k
        y += sum(0.3 * np.sin(2 * np.pi * root * r * h * t) / h for h in (2, 3, 4))
    return _peak(y)


def beeping_alarm(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(seconds, sr)
    f = rng.uniform(800.0, 4000.0)
    rate, duty = rng.uniform(1.0, 8.0), rng.uniform(0.2, 0.7)
    gate = ((t * rate) % 1.0) < duty
    wave = np.sign(np.sin(2 * np.pi * f * t)) if rng.random() < 0.5 else np.sin(2 * np.pi * f * t)
    return _peak(wave * gate)


def square_wave(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    f = float(np.exp(rng.uniform(np.log(40.0), np.log(3000.0))))
    return _peak(np.sign(np.sin(2 * np.pi * f * _t(seconds, sr) + 0.1)))


def sawtooth(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    f = float(np.exp(rng.uniform(np.log(40.0), np.log(2000.0))))
    return _peak(2 * ((f * _t(seconds, sr)) % 1.0) - 1)


def siren(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(seconds, sr)
    lo, hi, rate = rng.uniform(400, 900), rng.uniform(1000, 2000), rng.uniform(0.2, 4.0)
    f = lo + (hi - lo) * 0.5 * (1 + np.sin(2 * np.pi * rate * t))
    return _peak(np.sin(2 * np.pi * np.cumsum(f) / sr))


def clicks(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(int(round(seconds * sr)))
    step = max(1, int(sr / rng.uniform(1.0, 20.0)))
    y[::step] = 1.0
    return _peak(y)


def coloured_noise(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise."""
    n = int(round(seconds * sr))
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 1.0)
    spec /= f ** (rng.choice([0.0, 0.5, 1.0]))
    return _peak(np.fft.irfft(spec, n))


SOUNDS: dict[str, Generator] = {
    "silence": silence,
    "dc": dc,
    "tone": tone,
    "chord": chord,
    "beeping_alarm": beeping_alarm,
    "square_wave": square_wave,
    "sawtooth": sawtooth,
    "siren": siren,
    "clicks": clicks,
    "coloured_noise": coloured_noise,
}
