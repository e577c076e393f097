"""Spectral features: STFT, mel, dB, MFCC, deltas, spectral shape, chroma (librosa's names,
keywords and defaults)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in

Window = str | np.ndarray
PadMode = Literal["constant", "reflect", "edge"]


def stft(
    y: np.ndarray,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Short-time Fourier transform (``librosa.stft``).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32/float64/int16
    n_fft : int > 0
    hop_length : int > 0 or None (``win_length // 4``)
    win_length : int in [1, n_fft] or None (``n_fft``)
    window : 'hann', 'hamming', 'blackman', 'boxcar' or an array of ``win_length`` coefficients
    center : bool, pad ``n_fft // 2`` on both sides with ``pad_mode``
    pad_mode : 'constant', 'reflect' or 'edge'

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, t), dtype=complex64]
    """
    win = _in.count("win_length", win_length) if win_length is not None else _in.count("n_fft", n_fft)
    hop = _in.count("hop_length", hop_length) if hop_length is not None else max(win // 4, 1)
    s = _in.spec(
        [("mfcc", {})],
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        n_mels=1,
        n_mfcc=1,
    )
    return _dsp.stft(_in.audio(y), s)


def spectrogram(
    y: np.ndarray,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    power: float = 2.0,
) -> np.ndarray:
    """``|stft(y)| ** power``: power (2) or magnitude (1) spectrogram, float32 ``(1 + n_fft // 2, t)``."""
    win = _in.count("win_length", win_length) if win_length is not None else _in.count("n_fft", n_fft)
    hop = _in.count("hop_length", hop_length) if hop_length is not None else max(win // 4, 1)
    s = _in.spec(
        [("spectrogram", {"power": _in.number("power", power)})],
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    return _dsp.extract(_in.audio(y), s)


def mel_filters(
    *,
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | float | None = "slaney",
) -> np.ndarray:
    """Mel filterbank (``librosa.filters.mel``), float32 ``(n_mels, 1 + n_fft // 2)``.

    ``htk=False`` is the Slaney scale (linear below 1 kHz, logarithmic above); ``norm='slaney'``
    divides each triangle by its bandwidth, a number p gives unit p-norm rows, None peak 1.
    """
    s = _in.spec(
        [("melspectrogram", {})],
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        mel_norm=norm,
        n_mfcc=1,
    )
    return _dsp.mel_filters(s)


def melspectrogram(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | float | None = "slaney",
) -> np.ndarray:
    """Mel spectrogram (``librosa.feature.melspectrogram``), float32 ``(n_mels, t)``.

    From audio ``y``, or from ``S = |stft| ** power`` (then ``n_fft`` follows ``S``'s rows). The
    FFT runs in float32 here: its rounding (~1e-7 of each frame's peak) is invisible on a linear
    scale. Take dB through ``mfcc``/``FeatureConfig`` for float64 spectra.
    """
    _in.exactly_one(y, S)
    kw = dict(
        sr=sr, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, mel_norm=norm, power=power, n_mfcc=1, single_precision=True
    )
    if S is not None:
        S = _in.matrix(S)
        s = _in.spec([("melspectrogram", {})], n_fft=_in.n_fft_of(S, n_fft), **kw)
        return _dsp.from_spectrogram(S, s)
    s = _in.spec(
        [("melspectrogram", {})],
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        **kw,
    )
    return _dsp.extract(_in.audio(y), s)


def power_to_db(
    S: np.ndarray,
    *,
    ref: float | Callable[[np.ndarray], Any] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """``10 log10(S / ref)`` with floor ``amin`` and, if ``top_db``, clipped at ``max - top_db``
    over the whole array (``librosa.power_to_db``). ``ref`` may be a callable such as ``np.max``."""
    arr = np.asarray(S)
    if np.iscomplexobj(arr):
        arr = np.abs(arr)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"S must be a real-valued array; got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("S is empty")
    ref_value = ref(arr) if callable(ref) else ref
    top = None if top_db is None else _in.number("top_db", top_db)
    flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    return _dsp.power_to_db(flat, _in.number("ref", ref_value), _in.number("amin", amin), top).reshape(arr.shape)


def mfcc(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_mfcc: int = 20,
    dct_type: int = 2,
    norm: Literal["ortho"] | None = "ortho",
    lifter: float = 0.0,
    mel_norm: Literal["slaney"] | float | None = "slaney",
    top_db: float | None = 80.0,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients (``librosa.feature.mfcc``), float32 ``(n_mfcc, t)``.

    DCT-II of ``power_to_db(melspectrogram(...), top_db=top_db)``, or of a given log-power mel
    spectrogram ``S``. ``lifter > 0`` scales coefficient k by ``1 + lifter/2 sin(pi (k+1) / lifter)``.
    ``top_db`` is an addition to librosa's signature (which always clips at 80 dB below the
    maximum): ``top_db=None`` gives frame-local values, as streaming needs. With ``top_db <= 100``
    the FFT runs in float32 (its noise floor, ~140 dB below each frame's peak, is clipped away);
    otherwise in float64.
    """
    key = None
    if S is None and y is not None:
        # Repeat calls skip the argument checks: a key is stored only once they have passed.
        # The integer and flag arguments' types are part of the key: 2048.0 == 2048 and 1 == True,
        # but only the int (bool) passes the checks.
        key = (
            sr,
            n_mfcc,
            dct_type,
            norm,
            lifter,
            mel_norm,
            n_fft,
            hop_length,
            win_length,
            window,
            center,
            pad_mode,
            power,
            n_mels,
            fmin,
            fmax,
            htk,
            type(n_mfcc),
            type(n_fft),
            type(hop_length),
            type(win_length),
            type(n_mels),
            type(center),
            type(htk),
        )
        try:
            spec = _MFCC_SPECS.get(key)
        except TypeError:  # an array window
            key, spec = None, None
        if spec is not None:
            return _dsp.mfcc(_in.audio(y), spec, None if top_db is None else _in.number("top_db", top_db))
    _in.exactly_one(y, S)
    if dct_type != 2:
        raise ValueError(f"dct_type={dct_type!r}: only the type-II DCT is supported")
    if norm not in ("ortho", None):
        raise ValueError(f"norm={norm!r} must be 'ortho' or None")
    lifter = _in.number("lifter", lifter)
    if lifter < 0:
        raise ValueError(f"lifter={lifter} must be a non-negative number")
    kw = dict(
        sr=sr,
        n_mfcc=n_mfcc,
        dct_ortho=norm == "ortho",
        lifter=lifter,
        mel_norm=mel_norm,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        power=power,
    )
    if S is not None:
        S = _in.matrix(S)
        return _dsp.from_spectrogram(S, _in.spec([("mfcc", {})], n_mels=S.shape[0], **kw))
    s = _in.spec(
        [("mfcc", {})],
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        n_mels=n_mels,
        **kw,
    )
    if key is not None:
        if len(_MFCC_SPECS) >= 256:
            _MFCC_SPECS.clear()
        _MFCC_SPECS[key] = s
    return _dsp.mfcc(_in.audio(y), s, None if top_db is None else _in.number("top_db", top_db))


# `mfcc`'s validated configurations by its raw arguments: a 1 s clip's features take ~80 µs,
# and building the general key of `_in.spec` would add ~3 µs to each call.
_MFCC_SPECS: dict[tuple, _dsp.Spec] = {}


def delta(
    data: np.ndarray,
    *,
    width: int = 9,
    order: int = 1,
    axis: int = -1,
    mode: Literal["interp", "nearest", "mirror", "constant", "wrap"] = "interp",
) -> np.ndarray:
    """Local derivative by Savitzky-Golay filtering along ``axis`` (``librosa.feature.delta``)."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "fiu" or arr.ndim == 0:
        raise ValueError(f"data must be a real-valued array; got dtype {arr.dtype}, shape {arr.shape}")
    width = _in.count("width", width, minimum=3)
    order = _in.count("order", order)
    axis = _in.count("axis", axis, minimum=-arr.ndim)
    if axis >= arr.ndim:
        raise ValueError(f"axis={axis} is out of range for data with {arr.ndim} dimension(s)")
    moved = np.moveaxis(arr, axis, -1)
    rows = np.ascontiguousarray(moved, dtype=np.float32).reshape(-1, moved.shape[-1])
    out = _dsp.delta(rows, width, order, mode)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def _spectral(
    name: str,
    params: dict[str, Any],
    y: Any,
    S: Any,
    sr: float,
    n_fft: int,
    hop_length: int,
    win_length: Any,
    window: Any,
    center: bool,
    pad_mode: str,
) -> np.ndarray:
    """One spectral feature from audio or from a magnitude (power, for chroma) spectrogram."""
    _in.exactly_one(y, S)
    if S is not None:
        S = _in.matrix(S)
        return _dsp.from_spectrogram(S, _in.spec([(name, params)], sr=sr, n_fft=_in.n_fft_of(S, n_fft)))
    s = _in.spec(
        [(name, params)],
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    return _dsp.extract(_in.audio(y), s)


def spectral_centroid(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Magnitude-weighted mean frequency of each frame (Hz), float32 ``(1, t)``."""
    return _spectral("spectral_centroid", {}, y, S, sr, n_fft, hop_length, win_length, window, center, pad_mode)


def spectral_bandwidth(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    norm: bool = True,
    p: float = 2.0,
) -> np.ndarray:
    """p-th order spread of frequency around the centroid (Hz), float32 ``(1, t)``."""
    return _spectral(
        "spectral_bandwidth",
        {"p": _in.number("p", p), "norm": bool(norm)},
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
    )


def spectral_rolloff(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    roll_percent: float = 0.85,
) -> np.ndarray:
    """Lowest bin frequency below which ``roll_percent`` of the magnitude lies, float32 ``(1, t)``."""
    return _spectral(
        "spectral_rolloff",
        {"roll_percent": _in.number("roll_percent", roll_percent)},
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
    )


def spectral_flatness(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    amin: float = 1e-10,
    power: float = 2.0,
) -> np.ndarray:
    """Geometric over arithmetic mean of ``max(amin, |X|**power)``: 1 for white noise, near 0 for
    a tone. float32 ``(1, t)``."""
    params = {"amin": _in.number("amin", amin), "power": _in.number("power", power)}
    return _spectral("spectral_flatness", params, y, S, 22050, n_fft, hop_length, win_length, window, center, pad_mode)


def spectral_contrast(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    fmin: float = 200.0,
    n_bands: int = 6,
    quantile: float = 0.02,
    linear: bool = False,
) -> np.ndarray:
    """Peak-to-valley contrast of ``n_bands + 1`` octave bands, float32 ``(n_bands + 1, t)``.

    In dB by default (both peaks and valleys through ``power_to_db`` with its 80 dB ``top_db``
    over the whole signal, as librosa does); ``linear=True`` gives ``peak - valley``.
    """
    params = {
        "fmin": _in.number("fmin", fmin),
        "n_bands": _in.count("n_bands", n_bands),
        "quantile": _in.number("quantile", quantile),
    }
    raw = _spectral("spectral_contrast_raw", params, y, S, sr, n_fft, hop_length, win_length, window, center, pad_mode)
    if linear:
        half = raw.shape[0] // 2
        return raw[:half] - raw[half:]
    return _dsp.contrast_db(raw)


def chroma_stft(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    norm: float | None = np.inf,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    tuning: float | None = None,
    n_chroma: int = 12,
) -> np.ndarray:
    """Chromagram (``librosa.feature.chroma_stft``), float32 ``(n_chroma, t)``.

    From audio or a power spectrogram ``S``. ``tuning=None`` estimates the tuning deviation from
    the whole signal (``librosa.estimate_tuning``); a fixed value makes frames independent.
    """
    _in.exactly_one(y, S)
    n_chroma = _in.count("n_chroma", n_chroma)
    if tuning is None:
        if S is not None:
            _in.matrix(S)
            S64 = np.ascontiguousarray(S, dtype=np.float64)
            s = _in.spec([("chroma_stft", {})], sr=sr, n_fft=_in.n_fft_of(S64, n_fft))
            tuning = _dsp.estimate_tuning(s, n_chroma, s=S64)
        else:
            s = _in.spec(
                [("chroma_stft", {})],
                sr=sr,
                n_fft=n_fft,
                hop_length=hop_length,
                win_length=win_length,
                window=window,
                center=center,
                pad_mode=pad_mode,
            )
            tuning = _dsp.estimate_tuning(s, n_chroma, y=_in.audio(y))
    params = {
        "tuning": _in.number("tuning", tuning),
        "norm": None if norm is None else _in.number("norm", norm, allow_inf=True),
    }
    if S is not None:
        S = _in.matrix(S)
        s = _in.spec([("chroma_stft", params)], sr=sr, n_fft=_in.n_fft_of(S, n_fft), n_chroma=n_chroma)
        return _dsp.from_spectrogram(S, s)
    s = _in.spec(
        [("chroma_stft", params)],
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        n_chroma=n_chroma,
    )
    return _dsp.extract(_in.audio(y), s)


def spectral_flux(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
) -> np.ndarray:
    """Squared change of the sum-normalised magnitude spectrum between frames, float32 ``(1, t)``.

    ``p_t = S[:, t] / sum(S[:, t])`` (a column summing to less than float32's tiny is left as is);
    ``flux[t] = sum_k (p_t[k] - p_{t-1}[k])**2`` and ``flux[0] = 0``.
    """
    return _spectral("spectral_flux", {}, y, S, 22050, n_fft, hop_length, win_length, window, center, pad_mode)


def spectral_entropy(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: PadMode = "constant",
    n_blocks: int = 10,
) -> np.ndarray:
    """Shannon entropy (bits) of the power spectrum's energy over ``n_blocks`` equal sub-bands,
    float32 ``(1, t)``.

    Each frame's power spectrum ``|X|**2`` (or the power spectrogram ``S``) is cut into
    ``n_blocks`` blocks of ``floor(n_bins / n_blocks)`` bins (trailing bins dropped);
    ``e_b`` = block energy / total; ``H = -sum e_b log2 e_b`` (0 for a silent frame).
    Near 0 for a pure tone, near ``log2(n_blocks)`` for white noise.
    """
    return _spectral(
        "spectral_entropy",
        {"n_blocks": _in.count("n_blocks", n_blocks)},
        y,
        S,
        22050,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
    )
