"""Time-domain frame features: framing, RMS, zero-crossing rate, energy entropy."""

from __future__ import annotations

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in
from ser_edge.features.spectral import PadMode


def frame(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Overlapping frames of ``y`` (``librosa.util.frame``), float32 ``(frame_length, n_frames)``."""
    return _dsp.frame(_in.audio(y), _in.count("frame_length", frame_length), _in.count("hop_length", hop_length))


def _frames(
    name: str, params: dict, y: np.ndarray, frame_length: int, hop_length: int, center: bool, pad_mode: str
) -> np.ndarray:
    s = _in.spec([(name, params)], n_fft=frame_length, hop_length=hop_length, center=center, pad_mode=pad_mode)
    y = _in.audio(y)
    if not center and 0 < len(y) < frame_length:
        raise ValueError(
            f"frame_length={frame_length} is too large for uncentered analysis of input signal of length={len(y)}"
        )
    return _dsp.extract(y, s)


def rms(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Root-mean-square of each frame (``librosa.feature.rms``), float32 ``(1, t)``.

    From audio, or from a magnitude spectrogram ``S`` by Parseval's theorem
    (``S.shape[0]`` must be ``frame_length // 2 + 1``).
    """
    _in.exactly_one(y, S)
    frame_length = _in.count("frame_length", frame_length)
    if S is not None:
        S = _in.matrix(S)
        if S.shape[0] != frame_length // 2 + 1:
            raise ValueError(
                f"S has {S.shape[0]} rows, so frame_length is expected to be "
                f"{2 * S.shape[0] - 2} or {2 * S.shape[0] - 1}; found frame_length={frame_length}"
            )
        return _dsp.from_spectrogram(S, _in.spec([("rms", {})], n_fft=frame_length))
    assert y is not None  # exactly_one
    return _frames("rms", {}, y, frame_length, hop_length, center, pad_mode)


def zero_crossing_rate(
    y: np.ndarray,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    threshold: float = 1e-10,
    pad_mode: PadMode = "edge",
) -> np.ndarray:
    """Fraction of sign changes per frame (``librosa.feature.zero_crossing_rate``), float32 ``(1, t)``.

    Values within ``threshold`` of 0 count as 0, and 0 as positive. librosa pads with the edge
    sample (``pad_mode='edge'``); feature configurations use their own pad mode.
    """
    threshold = _in.number("threshold", threshold)
    return _frames("zero_crossing_rate", {"threshold": threshold}, y, frame_length, hop_length, center, pad_mode)


def energy_entropy(
    *,
    y: np.ndarray,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: PadMode = "constant",
    n_blocks: int = 10,
) -> np.ndarray:
    """Shannon entropy (bits) of each frame's energy over ``n_blocks`` equal blocks of
    ``floor(frame_length / n_blocks)`` samples (trailing samples dropped), float32 ``(1, t)``.

    ``log2(n_blocks)`` for a steady signal, near 0 for a click; 0 for silence.
    """
    return _frames(
        "energy_entropy", {"n_blocks": _in.count("n_blocks", n_blocks)}, y, frame_length, hop_length, center, pad_mode
    )
