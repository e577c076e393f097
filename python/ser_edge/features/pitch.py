"""Fundamental frequency: YIN and probabilistic YIN (``librosa.yin``, ``librosa.pyin``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in
from ser_edge.features.spectral import PadMode


def _range(
    sr: Any, fmin: Any, fmax: Any, frame_length: Any, hop_length: Any, win_length: Any, center: Any, pad_mode: Any
) -> dict[str, Any]:
    """Checked framing keywords shared by ``yin`` and ``pyin`` (librosa's rules and messages)."""
    if fmin is None or fmax is None:
        raise ValueError('both "fmin" and "fmax" must be provided')
    if win_length is not None:
        warnings.warn("win_length is deprecated (librosa 0.11) and has no effect", FutureWarning, stacklevel=3)
    sr, fmin, fmax = _in.number("sr", sr), _in.number("fmin", fmin), _in.number("fmax", fmax)
    frame_length = _in.count("frame_length", frame_length)
    hop_length = None if hop_length is None else _in.count("hop_length", hop_length)
    if not isinstance(pad_mode, str):
        raise ValueError(f"pad_mode={pad_mode!r} must be a string")
    if 0 < fmin < fmax <= sr / 2 and frame_length - 1 > sr / fmin >= frame_length // 2:
        warnings.warn(
            f"With fmin={fmin:.3f}, sr={sr} and frame_length={frame_length}, less than two periods of "
            f"fmin fit into the frame, which can cause inaccurate pitch detection. Consider increasing "
            f"to fmin={sr / (frame_length / 2):.3f} or frame_length={int(np.ceil(sr / fmin) * 2 + 1)}.",
            UserWarning,
            stacklevel=3,
        )
    return dict(
        sr=sr,
        fmin=fmin,
        fmax=fmax,
        frame_length=frame_length,
        hop_length=hop_length,
        center=bool(center),
        pad_mode=pad_mode,
    )


def yin(
    y: np.ndarray,
    *,
    fmin: float,
    fmax: float,
    sr: float = 22050,
    frame_length: int = 2048,
    win_length: int | None = None,
    hop_length: int | None = None,
    trough_threshold: float = 0.1,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Fundamental frequency of each frame by YIN (``librosa.yin``).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio.
    fmin, fmax : float
        Search range in Hz: ``0 < fmin < fmax <= sr / 2``, and one period of ``fmin`` must fit
        into ``frame_length - 1`` samples.
    sr : float
        Sampling rate of ``y``.
    frame_length : int
        Samples per frame (the autocorrelation spans the whole frame).
    win_length : None
        Deprecated in librosa 0.11 and ignored (a ``FutureWarning`` when given).
    hop_length : int or None
        Samples between frames; ``None``: ``frame_length // 4``.
    trough_threshold : float
        The first trough of the cumulative mean normalised difference below this is the period;
        if there is none, the global minimum.
    center : bool
        Pad ``y`` by ``frame_length // 2`` on both sides so that frame ``t`` is centred at
        ``y[t * hop_length]``.
    pad_mode : str
        ``np.pad`` mode of that padding: ``'constant'`` (zeros), ``'reflect'`` or ``'edge'``.

    Returns
    -------
    f0 : np.ndarray [shape=(n_frames,), dtype=float32]
        Frequency in Hz of every frame (never NaN; YIN has no voicing decision).
    """
    kw = _range(sr, fmin, fmax, frame_length, hop_length, win_length, center, pad_mode)
    return _dsp.yin(_in.audio(y), trough_threshold=_in.number("trough_threshold", trough_threshold), **kw)


def pyin(
    y: np.ndarray,
    *,
    fmin: float,
    fmax: float,
    sr: float = 22050,
    frame_length: int = 2048,
    win_length: int | None = None,
    hop_length: int | None = None,
    n_thresholds: int = 100,
    beta_parameters: tuple[float, float] = (2, 18),
    boltzmann_parameter: float = 2,
    resolution: float = 0.1,
    max_transition_rate: float = 35.92,
    switch_prob: float = 0.01,
    no_trough_prob: float = 0.01,
    fill_na: float | None = np.nan,
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fundamental frequency and voicing of each frame by probabilistic YIN (``librosa.pyin``).

    Each frame's troughs of the cumulative mean normalised difference become pitch candidates,
    weighted by a beta prior over ``n_thresholds`` thresholds and a Boltzmann prior over the
    troughs; an HMM over voiced and unvoiced pitch bins (``resolution`` semitones) then picks
    the most likely sequence by Viterbi decoding.

    Parameters
    ----------
    y, fmin, fmax, sr, frame_length, win_length, hop_length, center, pad_mode
        As for :func:`yin`.
    n_thresholds : int
        Number of thresholds between 0 and 1.
    beta_parameters : (float, float)
        Shape parameters of the beta prior over the thresholds.
    boltzmann_parameter : float
        Shape of the Boltzmann prior over troughs (larger favours shorter periods).
    resolution : float in (0, 1)
        Width of a pitch bin in semitones (0.1: 10 cents).
    max_transition_rate : float
        Fastest pitch change in octaves per second.
    switch_prob : float in (0, 1)
        Probability of switching between voiced and unvoiced.
    no_trough_prob : float in (0, 1)
        Probability mass given to the global minimum when no trough is below a threshold.
    fill_na : float or None
        ``f0`` in unvoiced frames; ``None``: the decoded (best-guess) pitch.

    Returns
    -------
    f0 : np.ndarray [shape=(n_frames,), dtype=float32]
        Frequency in Hz, ``fill_na`` where unvoiced.
    voiced_flag : np.ndarray [shape=(n_frames,), dtype=bool]
        Whether the decoded state is voiced.
    voiced_prob : np.ndarray [shape=(n_frames,), dtype=float32]
        Probability that the frame is voiced.
    """
    kw = _range(sr, fmin, fmax, frame_length, hop_length, win_length, center, pad_mode)
    try:
        a, b = beta_parameters
    except (TypeError, ValueError):
        raise ValueError(f"beta_parameters={beta_parameters!r} must be a pair of numbers") from None
    if fill_na is not None:
        try:
            fill_na = float(fill_na)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"fill_na={fill_na!r} must be None or a float") from None
    f0, voiced_flag, voiced_prob = _dsp.pyin(
        _in.audio(y),
        n_thresholds=_in.count("n_thresholds", n_thresholds),
        beta_parameters=(_in.number("beta_parameters[0]", a), _in.number("beta_parameters[1]", b)),
        boltzmann_parameter=_in.number("boltzmann_parameter", boltzmann_parameter),
        resolution=_in.number("resolution", resolution),
        max_transition_rate=_in.number("max_transition_rate", max_transition_rate),
        switch_prob=_in.number("switch_prob", switch_prob),
        no_trough_prob=_in.number("no_trough_prob", no_trough_prob),
        fill_na=fill_na,
        **kw,
    )
    if not np.all(np.isfinite(voiced_prob)):  # extreme priors overflow the probabilities
        raise ValueError(
            f"beta_parameters={beta_parameters!r} and boltzmann_parameter={boltzmann_parameter!r} give non-finite "
            "voicing probabilities; use moderate prior parameters"
        )
    return f0, voiced_flag, voiced_prob
