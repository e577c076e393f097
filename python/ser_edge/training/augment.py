"""Waveform preprocessing and train-only augmentation (numpy and the Rust resampler only).

Preprocessing (defined in :mod:`ser_edge.waveform`, which the edge path shares):
:func:`loudness_normalize` (RMS to a target dBFS), :func:`trim_silence` (leading/trailing frames
more than ``top_db`` below the loudest), :func:`pad_or_crop`, :func:`sliding_windows` (and
:func:`parse_windows` for ``--windows 2.0,1.0``); spectral-gating
noise reduction is in ``denoise.py``.
Augmentation (:class:`Augmentation`, parsed from ``"noise=20,gain=6,shift=0.1,speed=0.1,pitch=2,eq=6,copies=1"``):
additive white noise at a random SNR in ``[noise, noise + 10]`` dB, gain in ``±gain`` dB, circular
time shift by up to ``shift`` of the clip, speed change by a factor in ``1 ± speed`` (resampling:
tempo and pitch together), pitch shift by up to ``±pitch`` semitones at constant duration
(:func:`pitch_shift`: resampling plus a phase-vocoder time stretch), and a random smooth
equaliser of up to ``±eq`` dB (:func:`colour`: another microphone or room colouring). Augmented copies are added
to the training set only (``copies`` per clip); test clips are never augmented.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ser_edge.audio import resample
from ser_edge.inputs import InputConfig
from ser_edge.training.dataset import Denoise, FrameSet, clip_frames
from ser_edge.training.istft import istft
from ser_edge.waveform import loudness_normalize, pad_or_crop, rms_dbfs, sliding_windows, trim_silence


def parse_windows(spec: object) -> tuple[float, float]:
    """``"2.0,1.0"`` or ``[2.0, 1.0]`` -> ``(window, hop)`` in seconds (``0 < hop <= window``)."""
    parts = [p for p in spec.split(",") if p.strip()] if isinstance(spec, str) else list(spec)  # type: ignore[call-overload]
    try:
        window, hop = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"windows {spec!r} must be WINDOW,HOP in seconds, e.g. 2.0,1.0") from None
    if not window > 0 or not 0 < hop <= window:
        raise ValueError(f"windows {spec!r}: need window > 0 and 0 < hop <= window")
    return window, hop


def active_rms(y: np.ndarray, sr: int, *, floor_db: float = 30.0) -> float:
    """RMS of the 20 ms frames within ``floor_db`` of the loudest (the active speech level: pauses
    and padding do not lower it). 0 for silence."""
    y = np.asarray(y, np.float64)
    n = max(1, int(0.02 * sr))
    frames = y[: len(y) // n * n].reshape(-1, n) if len(y) >= n else y[None]
    power = np.mean(frames**2, axis=1)
    if power.max() <= 0:
        return 0.0
    return float(np.sqrt(power[power >= power.max() * 10.0 ** (-floor_db / 10.0)].mean()))


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float, *, sr: int | None = None) -> np.ndarray:
    """``y`` plus ``noise`` (same length) scaled to ``snr_db`` below ``y``'s level: the RMS of the
    whole clip, or with ``sr`` its active level (:func:`active_rms`). The one mixing function of
    augmentation and of the evaluation conditions (``conditions.py``)."""
    y = np.asarray(y, np.float32)
    noise = np.asarray(noise, np.float64)
    if noise.shape != y.shape:
        raise ValueError(f"noise shape {noise.shape} must equal the clip's {y.shape}")
    level = active_rms(y, sr) if sr is not None else float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    n_rms = float(np.sqrt(np.mean(noise**2)))
    if level <= 0 or n_rms <= 0:
        return y
    return (y + noise * (level / n_rms / 10.0 ** (snr_db / 20.0))).astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Adds white Gaussian noise at ``snr_db`` relative to the clip's RMS."""
    return mix_at_snr(y, rng.standard_normal(len(y)), snr_db)


def reverberate(y: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``y`` convolved with the room impulse response ``rir`` (FFT), aligned on its direct path
    (the RIR's peak), cut to ``len(y)`` and scaled back to ``y``'s RMS."""
    y = np.asarray(y, np.float64)
    rir = np.asarray(rir, np.float64)
    if rir.ndim != 1 or len(rir) == 0 or not np.abs(rir).max() > 0:
        raise ValueError("rir must be a non-empty, non-silent mono impulse response")
    rir = rir[int(np.argmax(np.abs(rir))) :]
    n = len(y) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    return _at_rms_of(np.fft.irfft(np.fft.rfft(y, size) * np.fft.rfft(rir, size), size)[: len(y)], y)


def _at_rms_of(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``out`` scaled to ``y``'s RMS (left as it is when silent), as float32."""
    r_in = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    r_out = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    return (out * (r_in / r_out) if r_out > 0 else out).astype(np.float32)


def decay_time(rir: np.ndarray, sr: int) -> float:
    """The reverberation time (T60, seconds) of an impulse response: Schroeder's backward-integrated
    energy from the direct path (its peak), the -5 to -25 dB slope extrapolated to 60 dB (T20 x 3)."""
    h = np.asarray(rir, np.float64)
    if h.ndim != 1 or len(h) == 0 or not np.abs(h).max() > 0:
        raise ValueError("rir must be a non-empty, non-silent mono impulse response")
    h = h[int(np.argmax(np.abs(h))) :]
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    edc = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-30))
    start, end = int(np.argmax(edc <= -5.0)), int(np.argmax(edc <= -25.0))
    if end <= start:  # decays by less than 25 dB: too short to tell, call it the response's length
        return len(h) / sr
    return 3.0 * (end - start) / sr


def retime_rir(rir: np.ndarray, sr: int, t60: float) -> np.ndarray:
    """``rir`` with its reverberant tail decaying to a reverberation time of ``t60`` seconds (only
    ever shortened): after the direct path (the peak plus 2.5 ms) the samples are multiplied by
    the exponential that turns the measured decay (:func:`decay_time`) into ``t60``'s. One measured
    room so stands in for smaller, deader ones (training augmentation; Bryan 2020)."""
    if not t60 > 0:
        raise ValueError(f"t60={t60} must be > 0 seconds")
    h = np.asarray(rir, np.float64)
    measured = decay_time(h, sr)
    if t60 >= measured:
        return h.astype(np.float32)
    start = int(np.argmax(np.abs(h))) + int(0.0025 * sr)
    t = np.maximum(np.arange(len(h)) - start, 0) / sr
    return (h * np.exp(-3.0 * np.log(10.0) * t * (1.0 / t60 - 1.0 / measured))).astype(np.float32)


def colour(y: np.ndarray, sr: int, db: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` through a random smooth equaliser of at most ``±db`` dB, as another microphone or a
    room's colouring would change it: a tilt plus three cosine bumps over log frequency from
    50 Hz to Nyquist (flat below), applied by FFT and scaled back to ``y``'s RMS."""
    y = np.asarray(y, np.float32)
    if not db > 0 or len(y) < 2:
        return y
    f = np.fft.rfftfreq(len(y), 1.0 / sr)
    t = np.clip(np.log2(np.maximum(f, 50.0) / 50.0) / np.log2(sr / 2 / 50.0), 0.0, 1.0)
    shape = rng.uniform(-1, 1) * (t - 0.5) * 2 + sum(rng.uniform(-0.5, 0.5) * np.cos(np.pi * k * t) for k in (1, 2, 3))
    gain = 10.0 ** (np.clip(db * shape, -db, db) / 20.0)
    return _at_rms_of(np.fft.irfft(np.fft.rfft(y.astype(np.float64)) * gain, n=len(y)), y)


def change_speed(y: np.ndarray, factor: float, sr: int) -> np.ndarray:
    """Plays ``y`` ``factor`` times faster (shorter, higher pitch) by resampling."""
    if factor <= 0:
        raise ValueError(f"speed factor={factor} must be > 0")
    if abs(factor - 1.0) < 1e-6:
        return np.asarray(y, np.float32)
    return resample(np.asarray(y, np.float32), orig_sr=sr * factor, target_sr=sr)


def time_stretch(y: np.ndarray, rate: float, *, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate > 1`` is faster (``round(len(y) / rate)`` samples),
    pitch unchanged. Centred STFT (the Rust core's) -> phase vocoder -> centred inverse STFT, as
    ``librosa.effects.time_stretch``: every output sample lies under full window overlap."""
    from ser_edge.features import stft

    if rate <= 0:
        raise ValueError(f"rate={rate} must be > 0")
    y = np.asarray(y, np.float32)
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    spec = stft(y, n_fft=n_fft, hop_length=hop, window="hann", center=True).T.astype(np.complex128)
    spec = np.vstack([spec, np.zeros((1, spec.shape[1]), spec.dtype)])  # the last step's right neighbour
    steps = np.arange(0, len(spec) - 1, rate)
    omega = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    phase = np.angle(spec[0])
    out = np.zeros((len(steps), spec.shape[1]), complex)
    for k, s in enumerate(steps):
        i, frac = int(s), s - int(s)
        a, b = spec[i], spec[i + 1]
        out[k] = ((1 - frac) * np.abs(a) + frac * np.abs(b)) * np.exp(1j * phase)
        dphi = np.angle(b) - np.angle(a) - omega
        phase = phase + omega + (dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)))
    return istft(out.T, hop_length=hop, n_fft=n_fft, length=int(round(len(y) / rate)))


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shifts the pitch by ``semitones`` and keeps the length (time stretch, then resampling)."""
    if abs(semitones) < 1e-6:
        return np.asarray(y, np.float32)
    factor = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(y, 1.0 / factor)
    return pad_or_crop(change_speed(stretched, factor, sr), len(y), where="end")


@dataclass(frozen=True)
class Augmentation:
    """Random train-only changes of a waveform (0 turns each off); ``copies`` augmented copies
    of every training clip are added to the training set."""

    noise: float | None = None  # lowest SNR in dB (None: no noise)
    gain: float = 0.0  # ± dB
    shift: float = 0.0  # fraction of the clip
    speed: float = 0.0  # ± fraction
    pitch: float = 0.0  # ± semitones
    eq: float = 0.0  # ± dB of a random smooth equaliser (:func:`colour`)
    copies: int = 1

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError(f"copies={self.copies} must be >= 1")
        if not 0 <= self.shift < 1 or not 0 <= self.speed < 0.5 or self.gain < 0 or self.pitch < 0 or self.eq < 0:
            raise ValueError("augment: need 0 <= shift < 1, 0 <= speed < 0.5, gain >= 0, pitch >= 0, eq >= 0")

    def key(self) -> str:
        """What the augmented frames depend on (their cache key)."""
        return repr(self)

    def __call__(self, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        y = np.asarray(y, np.float32)
        if self.speed:
            y = change_speed(y, float(rng.uniform(1 - self.speed, 1 + self.speed)), sr)
        if self.pitch:
            y = pitch_shift(y, sr, float(rng.uniform(-self.pitch, self.pitch)))
        if self.shift:
            y = np.roll(y, int(rng.integers(-int(self.shift * len(y)), int(self.shift * len(y)) + 1)))
        if self.eq:
            y = colour(y, sr, self.eq, rng)
        if self.gain:
            y = (y * 10.0 ** (rng.uniform(-self.gain, self.gain) / 20.0)).astype(np.float32)
        if self.noise is not None:
            y = add_noise(y, float(rng.uniform(self.noise, self.noise + 10.0)), rng)
        return y


def parse(spec: str) -> Augmentation:
    """``"noise=20,gain=6,shift=0.1,speed=0.1,pitch=2,copies=1"`` -> :class:`Augmentation`."""
    names = {f.name for f in fields(Augmentation)}
    kw: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in names:
            raise ValueError(f"augment: {part!r} must be NAME=VALUE with NAME in {', '.join(sorted(names))}")
        try:
            kw[key] = int(value) if key == "copies" else float(value)
        except ValueError:
            raise ValueError(f"augment: {key}={value!r} is not a number") from None
    return Augmentation(**kw)  # type: ignore[arg-type]


def is_copy(clip: Any) -> bool:
    """Whether ``clip`` is an augmented copy (:func:`augmented_frames` names its speaker ``<speaker>~augK``)."""
    return "~aug" in clip.speaker


def augmented_frames(
    frames: FrameSet,
    config: InputConfig,
    augmentation: Any,
    *,
    seed: int = 0,
    progress: bool = False,
    denoise: Denoise | None = None,
    cache_dir: Any | None = None,
    use_cache: bool = True,
) -> FrameSet:
    """``augmentation.copies`` augmented copies of every clip of ``frames`` (a
    :class:`~ser_edge.training.dataset.FrameSet`) as a FrameSet whose ``source`` gives the index
    of each copy's original. Each copy's speaker is ``<speaker>~augK`` so its normalisation
    statistics are its own (as a device would have them for that voice). ``denoise`` is applied
    after the augmentation (as to every clip). Copy ``K`` of a clip draws its random numbers from
    ``(seed, K, the clip's path)`` only, so it is the same in every run and is cached on disk like
    the clean frames (``dataset.load_frames``) when ``augmentation`` has a ``key()``."""
    import hashlib
    import os
    import zlib
    from dataclasses import replace
    from pathlib import Path

    from ser_edge.training.dataset import _file_key, _read_cached, config_key, default_cache_dir

    folder = None
    key = getattr(augmentation, "key", None)
    if use_cache and key is not None:
        denoise_key = getattr(denoise, "key", None)
        text = f"{key()}|{seed}|{denoise_key() if denoise_key is not None else None}"
        root = Path(os.fspath(cache_dir)) if cache_dir is not None else default_cache_dir()
        folder = root / f"{config_key(config)}-aug{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        folder.mkdir(parents=True, exist_ok=True)
    clips, out, source = [], [], []
    todo: Any = [(k, i) for k in range(augmentation.copies) for i in range(len(frames))]
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc="augment", unit="clip", leave=False)
    for k, i in todo:
        c = frames.clips[i]
        path = folder / f"{_file_key(c.path)}-{k}.npy" if folder is not None else None
        x = _read_cached(path) if path is not None else None
        if x is None:
            rng = np.random.default_rng([seed + 1, k, zlib.crc32(c.path.encode())])
            x = clip_frames(c, config, augment=augmentation, rng=rng, denoise=denoise)
            if path is not None:
                tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, x)
                os.replace(tmp, path)
        out.append(x)
        clips.append(replace(c, speaker=f"{c.speaker}~aug{k}"))
        source.append(i)
    return FrameSet(clips, out, np.array(source, int))


__all__ = [
    "Augmentation",
    "active_rms",
    "add_noise",
    "augmented_frames",
    "change_speed",
    "decay_time",
    "is_copy",
    "loudness_normalize",
    "pad_or_crop",
    "mix_at_snr",
    "parse",
    "parse_windows",
    "pitch_shift",
    "retime_rir",
    "reverberate",
    "rms_dbfs",
    "sliding_windows",
    "time_stretch",
    "trim_silence",
]
