"""Argument checks shared by the feature functions: dtype and shape in Python, values in Rust."""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np

from ser_edge import _dsp


def audio(y: Any, name: str = "y") -> np.ndarray:
    """``y`` as contiguous mono float32; int16 is scaled by 1/32768."""
    if y is None:
        raise ValueError(f"{name} is required: pass a 1-D audio array")
    arr = np.asarray(y)
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / np.float32(32768.0)
    elif arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a float32, float64 or int16 array; got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (mono audio); got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def matrix(S: Any, name: str = "S") -> np.ndarray:
    """``S`` as a finite 2-D float32 array (features x frames)."""
    arr = np.asarray(S)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ValueError(f"{name} must be a real-valued array; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (bins x frames); got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def count(name: str, value: Any, minimum: int = 1) -> int:
    """A whole number >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} must be an integer, not a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} must be an integer") from None
    if v < minimum:
        raise ValueError(f"{name}={v} must be an integer >= {minimum}")
    if v > _MAX_COUNT:
        raise ValueError(f"{name}={v} is too large (at most 2**63 - 1; the core bounds each size further)")
    return v


#: Larger integers do not fit the core's sizes; each size has a tighter documented bound there.
_MAX_COUNT = 2**63 - 1


def number(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """A finite real number (or +-inf with ``allow_inf``)."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={value!r} must be a number") from None
    if not (math.isfinite(v) or (allow_inf and math.isinf(v))):
        raise ValueError(f"{name}={v} must be finite")
    return v


def spec(features: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> _dsp.Spec:
    """The native, validated configuration for one call. Cached on the raw arguments: checking
    and building one costs more than a short clip's features."""
    try:
        # Call sites pass keywords in a fixed order, so no sorting is needed for cache hits. Types
        # are part of the key: 2048.0 == 2048, but only the int passes the checks.
        key = (
            tuple([(name, tuple(p.items())) for name, p in features]),
            tuple([(k, v, type(v)) for k, v in kwargs.items()]),
        )
        hash(key)
    except TypeError:  # an array window
        return _build(features, **kwargs)
    return _cached(key)


@functools.lru_cache(maxsize=256)
def _cached(key: tuple) -> _dsp.Spec:
    features, kwargs = key
    return _build([(name, dict(params)) for name, params in features], **{k: v for k, v, _ in kwargs})


def _build(
    features: list[tuple[str, dict[str, Any]]],
    *,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    mel_norm: Any = "slaney",
    n_mfcc: int = 20,
    dct_ortho: bool = True,
    lifter: float = 0.0,
    ref: float = 1.0,
    amin: float = 1e-10,
    n_chroma: int = 12,
    single_precision: bool = False,
    f0: str = "yin",
) -> _dsp.Spec:
    if not isinstance(window, str):
        w = np.asarray(window)
        if w.dtype.kind not in "fiu" or w.ndim != 1:
            raise ValueError(f"window must be a name or a 1-D real array; got dtype {w.dtype}, shape {w.shape}")
        if not np.all(np.abs(w.astype(np.float64)) <= np.finfo(np.float32).max):
            raise ValueError("window coefficients must be finite float32 values")
        window = w.astype(np.float32).tolist()
    if not isinstance(pad_mode, str):
        raise ValueError(f"pad_mode={pad_mode!r} must be a string")
    return _dsp.Spec(
        features,
        sr=number("sr", sr),
        n_fft=count("n_fft", n_fft),
        hop_length=count("hop_length", hop_length),
        win_length=None if win_length is None else count("win_length", win_length),
        window=window,
        center=bool(center),
        pad_mode=pad_mode,
        power=number("power", power),
        n_mels=count("n_mels", n_mels),
        fmin=number("fmin", fmin),
        fmax=None if fmax is None else number("fmax", fmax),
        htk=bool(htk),
        mel_norm=mel_norm,
        n_mfcc=count("n_mfcc", n_mfcc),
        dct_ortho=bool(dct_ortho),
        lifter=number("lifter", lifter),
        ref=number("ref", ref),
        amin=number("amin", amin),
        n_chroma=count("n_chroma", n_chroma),
        single_precision=bool(single_precision),
        f0=f0_method(f0),
    )


#: How the 60 ms voice descriptors get F0: frame-local YIN, or openSMILE's SHS + Viterbi smoother.
F0_METHODS = ("yin", "shs")


def f0_method(f0: Any) -> str:
    """``f0`` checked against :data:`F0_METHODS`."""
    if not isinstance(f0, str) or f0 not in F0_METHODS:
        raise ValueError(
            f"f0={f0!r} must be 'yin' (frame-local YIN) or 'shs' (openSMILE's subharmonic summation + Viterbi)"
        )
    return f0


def n_fft_of(S: np.ndarray, n_fft: int | None) -> int:
    """``n_fft`` implied by a spectrogram's row count (librosa's rule)."""
    rows = S.shape[0]
    if rows < 2:
        raise ValueError(f"S has {rows} row(s); a spectrogram needs at least 2 frequency bins")
    if n_fft is None or n_fft // 2 + 1 != rows:
        return 2 * (rows - 1)
    return n_fft


def exactly_one(y: Any, S: Any) -> None:
    if (y is None) == (S is None):
        raise ValueError("pass exactly one of y (audio) or S (spectrogram)")
