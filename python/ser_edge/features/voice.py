"""Voice-quality and loudness descriptors as openSMILE's eGeMAPS v02 low-level descriptors
define them (see ``docs/prosody.md`` for each definition and every difference from openSMILE).

Each value describes an analysis frame centred in frame ``t`` of the usual
``n_fft``/``hop_length``/``center`` framing, so the rows line up with every other feature of a
:class:`~ser_edge.features.FeatureConfig` and stream exactly: 20 ms (``floor(0.02 sr + 0.5)``
samples, symmetric Hamming window, FFT zero-padded to the next power of two) for loudness, alpha
ratio, Hammarberg index and the slopes; 60 ms (``floor(0.06 sr + 0.5)``) for F0, voicing and HNR.
``n_fft`` must be at least that frame. Unlike openSMILE's ``*_sma3``/``*_sma3nz`` columns, values
are not smoothed over 3 frames. Jitter and shimmer carry their period walk from frame to frame (a
stream still equals batch exactly).

F0 and the voiced/unvoiced decision of the 60 ms descriptors (``f0_semitones``, ``voicing``,
``hnr``, ``jitter``, ``shimmer``) come from ``f0="yin"`` (default: frame-local YIN, every row final
with its frame) or ``f0="shs"``: openSMILE's own tracker (subharmonic summation on a log-frequency
spectrum and its Viterbi smoother), which gives openSMILE's values frame by frame; its smoother
decides a frame up to 39 frames later, so a :class:`~ser_edge.features.Stream` returns those rows
that much later (still equal to batch).
"""

from __future__ import annotations

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in
from ser_edge.features.spectral import PadMode

#: Feature names a FeatureConfig accepts for these descriptors (one row each).
VOICE_FEATURES = (
    "loudness",
    "alpha_ratio",
    "hammarberg_index",
    "slope_0_500",
    "slope_500_1500",
    "f0_semitones",
    "voicing",
    "hnr",
    "jitter",
    "shimmer",
)


#: Descriptors read from the 60 ms frame.
PERIODIC_FEATURES = ("f0_semitones", "voicing", "hnr", "jitter", "shimmer")


def frame_length(sr: float, seconds: float = 0.020) -> int:
    """An eGeMAPS analysis frame (20 ms; 60 ms for F0) in samples at ``sr`` (openSMILE's rounding)."""
    return int(np.floor(seconds * _in.number("sr", sr) + 0.5))


def _descriptor(
    name: str,
    y: np.ndarray,
    sr: float,
    n_fft: int | None,
    hop_length: int | None,
    center: bool,
    pad_mode: PadMode,
    f0: str = "yin",
) -> np.ndarray:
    sr = _in.number("sr", sr)
    if sr <= 0:
        raise ValueError(f"sr={sr} must be positive")
    if n_fft is None:
        seconds = 0.060 if name in PERIODIC_FEATURES else 0.020
        n_fft = 1 << max(frame_length(sr, seconds) - 1, 1).bit_length()
    if hop_length is None:
        hop_length = max(int(np.floor(0.010 * sr + 0.5)), 1)
    y = _in.audio(y)
    n_fft = _in.count("n_fft", n_fft)
    if not center and 0 < len(y) < n_fft:
        raise ValueError(f"n_fft={n_fft} is too large for uncentered analysis of input signal of length={len(y)}")
    s = _in.spec([(name, {})], sr=sr, n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode, f0=f0)
    return _dsp.extract(y, s)


def loudness(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Loudness of each frame (eGeMAPS ``Loudness``), float32 ``(1, t)``: 26 mel bands of the power
    spectrum (20 Hz to 8 kHz), equal-loudness weighted, raised to 0.33, averaged.

    ``n_fft`` defaults to the 20 ms frame rounded up to a power of two, ``hop_length`` to 10 ms.
    """
    return _descriptor("loudness", y, sr, n_fft, hop_length, center, pad_mode)


def alpha_ratio(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Alpha ratio in dB (eGeMAPS ``alphaRatio``): energy in 1-5 kHz over energy in 0-1 kHz,
    float32 ``(1, t)``; 0 for a frame with no energy below 1 kHz."""
    return _descriptor("alpha_ratio", y, sr, n_fft, hop_length, center, pad_mode)


def hammarberg_index(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Hammarberg index in dB (eGeMAPS ``hammarbergIndex``): the strongest power-spectrum bin in
    0-2 kHz over the strongest in 2-5 kHz, float32 ``(1, t)``; 0 for a frame silent above 2 kHz."""
    return _descriptor("hammarberg_index", y, sr, n_fft, hop_length, center, pad_mode)


def slope_0_500(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Spectral slope 0-500 Hz (eGeMAPS ``slope0-500``): regression slope of the dB power
    spectrum over frequency in Hz, with openSMILE's band-edge weights, float32 ``(1, t)``."""
    return _descriptor("slope_0_500", y, sr, n_fft, hop_length, center, pad_mode)


def slope_500_1500(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Spectral slope 500-1500 Hz (eGeMAPS ``slope500-1500``), as :func:`slope_0_500`."""
    return _descriptor("slope_500_1500", y, sr, n_fft, hop_length, center, pad_mode)


def f0_semitones(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
    f0: str = "yin",
) -> np.ndarray:
    """F0 in semitones above 27.5 Hz (eGeMAPS ``F0semitoneFrom27.5Hz``), 0 where unvoiced,
    float32 ``(1, t)``. ``f0="yin"``: frame-local YIN (55-600 Hz) on the 60 ms frame; voiced where
    the CMNDF at YIN's period is below 0.4 and the Gaussian-windowed RMS is at least 0.001.
    ``f0="shs"``: openSMILE's SHS + Viterbi track (55-1000 Hz, ``F0finalLog``), the same RMS gate.

    ``n_fft`` defaults to the 60 ms frame rounded up to a power of two, ``hop_length`` to 10 ms.
    Any other ``f0`` is a ``ValueError``.
    """
    return _descriptor("f0_semitones", y, sr, n_fft, hop_length, center, pad_mode, f0)


def voicing(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
    f0: str = "yin",
) -> np.ndarray:
    """Periodicity of the 60 ms frame in [0, 1], float32 ``(1, t)``: with ``f0="yin"``
    ``1 - CMNDF`` at YIN's period (not an eGeMAPS descriptor; :func:`f0_semitones` calls a frame
    voiced above 0.6); with ``f0="shs"`` openSMILE's ``voicingFinalUnclipped`` (the SHS voicing of
    the smoother's chosen candidate, 0 below the energy gate)."""
    return _descriptor("voicing", y, sr, n_fft, hop_length, center, pad_mode, f0)


def hnr(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
    f0: str = "yin",
) -> np.ndarray:
    """Harmonics-to-noise ratio in dB from the autocorrelation (eGeMAPS ``HNRdBACF``), 0 where
    unvoiced, float32 ``(1, t)``: ``10 log10(a[T] / (a[0] - a[T]))`` with ``a`` the autocorrelation
    of the Gaussian-windowed 60 ms frame and ``T`` the ACF peak nearest the period of F0 (``f0``:
    ``"yin"`` or ``"shs"``, as :func:`f0_semitones`)."""
    return _descriptor("hnr", y, sr, n_fft, hop_length, center, pad_mode, f0)


def jitter(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
    f0: str = "yin",
) -> np.ndarray:
    """Local jitter (eGeMAPS ``jitterLocal``), float32 ``(1, t)``: mean absolute difference of
    consecutive periods over the mean period, 0 where unvoiced. As openSMILE's ``cPitchJitter``,
    the periods are walked continuously through the signal (waveform cross-correlation within
    +-10 % of the period of F0; ``f0`` as :func:`f0_semitones`), each frame adding the one or two
    periods of its first hop; a voiced frame without a new period repeats the last value, an
    unvoiced one restarts the walk."""
    return _descriptor("jitter", y, sr, n_fft, hop_length, center, pad_mode, f0)


def shimmer(
    *,
    y: np.ndarray,
    sr: float = 22050,
    n_fft: int | None = None,
    hop_length: int | None = None,
    center: bool = True,
    pad_mode: PadMode = "constant",
    f0: str = "yin",
) -> np.ndarray:
    """Local shimmer in dB (eGeMAPS ``shimmerLocaldB``), float32 ``(1, t)``:
    ``20 log10(1 + mean |A_i - A_i+1| / mean A)`` over the period pairs of :func:`jitter`'s walk,
    A each period's peak-to-peak amplitude; 0 where unvoiced (``f0`` as :func:`f0_semitones`)."""
    return _descriptor("shimmer", y, sr, n_fft, hop_length, center, pad_mode, f0)


__all__ = [
    "PERIODIC_FEATURES",
    "VOICE_FEATURES",
    "alpha_ratio",
    "f0_semitones",
    "frame_length",
    "hammarberg_index",
    "hnr",
    "jitter",
    "loudness",
    "shimmer",
    "slope_0_500",
    "slope_500_1500",
    "voicing",
]
