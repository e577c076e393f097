"""The inverse STFT of the training-side signal tools (noise reduction, time stretch): one
weighted overlap-add."""

from __future__ import annotations

import numpy as np


def hann(n: int) -> np.ndarray:
    """Periodic Hann window (the STFT's ``window="hann"``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def overlap_add(frames: np.ndarray, window: np.ndarray, hop_length: int) -> np.ndarray:
    """Weighted overlap-add of time-domain ``frames`` ``(t, n)`` taken ``hop_length`` apart:
    each frame times ``window``, summed, divided by the summed squared window (where it is not
    ~0). The least-squares inverse of a windowed STFT (Griffin and Lim)."""
    n = len(window)
    total = n + hop_length * (len(frames) - 1)
    out, norm = np.zeros(total), np.zeros(total)
    for k, f in enumerate(frames):
        out[k * hop_length : k * hop_length + n] += f * window
        norm[k * hop_length : k * hop_length + n] += window**2
    return out / np.where(norm > 1e-8, norm, 1.0)


def istft(S: np.ndarray, *, hop_length: int, n_fft: int, length: int | None = None) -> np.ndarray:
    """Inverse of a centred Hann-window STFT (``librosa.istft``). ``S``: complex
    ``(1 + n_fft // 2, t)``; ``length``: samples of the output (default: as many as the frames
    cover, less the centring pad)."""
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] != 1 + n_fft // 2:
        raise ValueError(f"S must be shaped (1 + n_fft // 2 = {1 + n_fft // 2}, frames); got {S.shape}")
    if hop_length < 1 or hop_length > n_fft:
        raise ValueError(f"hop_length={hop_length} must be in [1, n_fft={n_fft}]")
    frames = np.fft.irfft(S.T.astype(np.complex128), n=n_fft, axis=1)
    out = overlap_add(frames, hann(n_fft), hop_length)[n_fft // 2 :]
    n = len(out) - n_fft // 2 if length is None else int(length)
    return np.pad(out, (0, max(0, n - len(out))))[:n].astype(np.float32)


__all__ = ["hann", "istft", "overlap_add"]
