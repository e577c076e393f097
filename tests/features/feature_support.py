"""Shared fixtures and helpers for the ser_edge.features test-suite.

Test modules import the helpers below with ``from feature_support import ...`` (pytest puts this
directory on sys.path because tests/features has no __init__.py).

Signals
-------
``get_signal(name, sr)`` returns a 1-D float32 signal at sample rate ``sr``.
Real speech comes from the shared corpora (never copied):
  * ``emodb``          EMO-DB 03a01Fa.wav (22 050 Hz, 2 s)
  * ``ravdess``        RAVDESS Actor_01 03-01-01-01-01-01-01.flac (16 kHz, mono)
  * ``ravdess_stereo`` RAVDESS Actor_01 03-01-02-01-01-02-01.flac (16 kHz, stereo -> mean)
  * ``clipped``        EMO-DB speech * 4 clipped to [-1, 1]
Synthetic: ``sine``, ``chirp``, ``noise`` (seeded), ``silence``, ``dc``, ``impulses``.
Speech at a rate other than its natural one is resampled with librosa.resample (soxr_hq) --
a test-time reference only.  If the data directory is missing, tests that need real speech FAIL.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

# --------------------------------------------------------------------------------------------
# data location
# --------------------------------------------------------------------------------------------

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_dir() -> Path:
    env = os.environ.get("SER_EDGE_DATA")
    d = Path(env) if env else DEFAULT_DATA_DIR
    if not (d / "emodb" / "wav").is_dir() or not (d / "ravdess").is_dir():
        pytest.fail(
            f"real-speech test data not found at {d} (expected emodb/wav/*.wav and "
            f"ravdess/Actor_NN/*.flac); set SER_EDGE_DATA to the shared data directory",
            pytrace=False,
        )
    return d


EMODB_FILE = "emodb/wav/03a01Fa.wav"
EMODB_FILE_2 = "emodb/wav/08a01Na.wav"
RAVDESS_FILE = "ravdess/Actor_01/03-01-01-01-01-01-01.flac"
RAVDESS_FILE_2 = "ravdess/Actor_12/03-01-05-02-01-01-12.flac"
RAVDESS_STEREO_FILE = "ravdess/Actor_01/03-01-02-01-01-02-01.flac"


def data_path(rel: str) -> Path:
    p = data_dir() / rel
    if not p.is_file():
        pytest.fail(f"expected test data file {p} is missing", pytrace=False)
    return p


@functools.cache
def _read_raw(rel: str):
    import soundfile as sf

    y, sr = sf.read(str(data_path(rel)), dtype="float64", always_2d=True)
    return y, int(sr)


SPEECH = ("emodb", "ravdess", "ravdess_stereo", "clipped")
SYNTH = ("sine", "chirp", "noise", "silence", "dc", "impulses")
ALL_SIGNALS = SPEECH + SYNTH
SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)


@functools.cache
def _natural(name: str):
    """(float64 1-D signal, natural sr) for the real-speech signals."""
    if name in ("emodb", "clipped"):
        y, sr = _read_raw(EMODB_FILE)
        y = y[:, 0]
        if name == "clipped":
            y = np.clip(4.0 * y, -1.0, 1.0)
        return y, sr
    if name == "ravdess":
        y, sr = _read_raw(RAVDESS_FILE)
        assert y.shape[1] == 1
        return y[:, 0], sr
    if name == "ravdess_stereo":
        y, sr = _read_raw(RAVDESS_STEREO_FILE)
        assert y.shape[1] == 2, "expected a stereo RAVDESS file"
        return y.mean(axis=1), sr
    raise KeyError(name)


@functools.cache
def _signal_cached(name: str, sr: int, seconds: float) -> np.ndarray:
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if name in SPEECH:
        y, nat = _natural(name)
        if nat != sr:
            import librosa

            y = librosa.resample(y, orig_sr=nat, target_sr=sr, res_type="soxr_hq")
            if name == "clipped":
                y = np.clip(y, -1.0, 1.0)
    elif name == "sine":
        y = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    elif name == "chirp":
        from scipy.signal import chirp

        y = 0.5 * chirp(t, f0=100.0, t1=seconds, f1=0.45 * sr, method="logarithmic")
    elif name == "noise":
        y = 0.1 * np.random.default_rng(20240607).standard_normal(n)
    elif name == "silence":
        y = np.zeros(n)
    elif name == "dc":
        y = np.full(n, 0.25)
    elif name == "impulses":
        y = np.zeros(n)
        step = max(1, sr // 10)
        y[step // 2 :: step] = 1.0
        y[step // 2 + 7 :: step] = -0.5
    else:
        raise KeyError(name)
    y = np.ascontiguousarray(y, dtype=np.float32)
    y.setflags(write=False)
    return y


def get_signal(name: str, sr: int, seconds: float = 1.0) -> np.ndarray:
    """float32, read-only, 1-D.  Real speech keeps its full length (2-4 s)."""
    return _signal_cached(name, int(sr), float(seconds))


# Hypothesis: deterministic (derandomized) by default so CI is reproducible; set
# SER_EDGE_HYPOTHESIS_RANDOM=1 to explore new random examples locally.
HYPOTHESIS_DERANDOMIZE = os.environ.get("SER_EDGE_HYPOTHESIS_RANDOM") != "1"


# --------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------


def as_ref64(y) -> np.ndarray:
    """float64 copy of the very same samples, for librosa."""
    return np.array(y, dtype=np.float64, copy=True)


def _peak(ref) -> float:
    p = float(np.max(np.abs(ref))) if np.size(ref) else 0.0
    return p if p > 0 and np.isfinite(p) else 1.0


def check_shape_dtype(ours, ref, dtype=np.float32, what=""):
    assert isinstance(ours, np.ndarray), f"{what}: expected ndarray, got {type(ours)}"
    assert ours.shape == np.shape(ref), f"{what}: shape {ours.shape} != librosa {np.shape(ref)}"
    assert ours.dtype == np.dtype(dtype), f"{what}: dtype {ours.dtype} != {np.dtype(dtype)}"


def rel_peak_err(ours, ref, floor=0.0) -> float:
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    if ref.size == 0:
        return 0.0
    d = np.abs(ours.astype(np.complex128 if np.iscomplexobj(ours) else np.float64) - ref)
    return float(np.max(d)) / max(_peak(ref), floor)


def assert_rel_peak(ours, ref, tol, what="", dtype=np.float32, floor=0.0):
    """max|ours - ref| / max(max|ref|, floor) <= tol  (shape and dtype must match too).

    ``floor`` keeps "relative to the peak" meaningful when the whole reference is rounding noise
    around zero (e.g. the contrast of a constant signal: librosa 3.6e-15 dB, exact value 0)."""
    check_shape_dtype(ours, ref, dtype, what)
    assert np.all(np.isfinite(ours)), f"{what}: non-finite values in our output"
    err = rel_peak_err(ours, ref, floor)
    if not err <= tol:
        d = np.abs(np.asarray(ours, dtype=np.complex128) - np.asarray(ref))
        idx = np.unravel_index(int(np.argmax(d)), d.shape)
        raise AssertionError(
            f"{what}: max rel-to-peak error {err:.3g} > tol {tol:g} at index {idx} "
            f"(ours={np.asarray(ours)[idx]!r}, librosa={np.asarray(ref)[idx]!r}, "
            f"peak={_peak(ref):.6g})"
        )


def assert_abs(ours, ref, tol, what="", dtype=np.float32):
    check_shape_dtype(ours, ref, dtype, what)
    assert np.all(np.isfinite(ours)), f"{what}: non-finite values in our output"
    if np.size(ref) == 0:
        return
    d = np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
    err = float(np.max(d))
    if not err <= tol:
        idx = np.unravel_index(int(np.argmax(d)), d.shape)
        raise AssertionError(
            f"{what}: max abs error {err:.3g} > tol {tol:g} at index {idx} "
            f"(ours={np.asarray(ours)[idx]!r}, librosa={np.asarray(ref)[idx]!r})"
        )


def call_guarded(fn, *args, **kwargs):
    """Call fn; return ("ok", result) or ("raised", exc).

    Any BaseException that is not a ValueError (e.g. pyo3_runtime.PanicException, TypeError,
    SystemError) makes the test fail immediately with a descriptive message.
    """
    try:
        return "ok", fn(*args, **kwargs)
    except ValueError as e:  # the only allowed failure mode
        return "raised", e
    except BaseException as e:  # noqa: BLE001 - we want to see panics too
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise AssertionError(
            f"{getattr(fn, '__name__', fn)} raised {type(e).__module__}.{type(e).__name__} (not ValueError): {e!r}"
        ) from e


def expect_value_error(fn, *args, match=None, **kwargs):
    """Assert fn raises ValueError (and nothing else); if match, the message must contain it."""
    status, res = call_guarded(fn, *args, **kwargs)
    assert status == "raised", f"{getattr(fn, '__name__', fn)} did not raise ValueError (returned {type(res)})"
    if match is not None:
        assert match in str(res), f"ValueError message {str(res)!r} does not mention {match!r}"
    return res


# --------------------------------------------------------------------------------------------
# numpy reference implementations of the non-librosa features (definitions in API.md)
# --------------------------------------------------------------------------------------------


def ref_magnitude(y, n_fft, hop_length, win_length=None, window="hann", center=True, pad_mode="constant"):
    import librosa

    return np.abs(
        librosa.stft(
            as_ref64(y),
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
        )
    )


def ref_spectral_flux_from_S(S):
    S = np.asarray(S, dtype=np.float64)
    tot = S.sum(axis=0, keepdims=True)
    ok = tot >= np.finfo(np.float32).tiny
    p = np.where(ok, S / np.where(ok, tot, 1.0), 0.0)
    flux = np.zeros((1, S.shape[1]))
    if S.shape[1] > 1:
        flux[0, 1:] = np.sum(np.diff(p, axis=1) ** 2, axis=0)
    return flux


def _block_entropy(energies):
    """energies: (n_blocks, t) non-negative; entropy in bits per column, silent column -> 0."""
    tot = energies.sum(axis=0, keepdims=True)
    out = np.zeros((1, energies.shape[1]))
    nz = tot[0] > 0
    e = energies[:, nz] / tot[:, nz]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(e > 0, e * np.log2(np.where(e > 0, e, 1.0)), 0.0), axis=0)
    out[0, nz] = h
    return out


def ref_spectral_entropy_from_power(P, n_blocks=10):
    P = np.asarray(P, dtype=np.float64)
    size = P.shape[0] // n_blocks
    blocks = P[: size * n_blocks].reshape(n_blocks, size, P.shape[1]).sum(axis=1)
    return _block_entropy(blocks)


def ref_energy_entropy(y, frame_length=2048, hop_length=512, center=True, pad_mode="constant", n_blocks=10):
    import librosa

    y = as_ref64(y)
    if center:
        y = np.pad(y, frame_length // 2, mode=pad_mode)
    fr = librosa.util.frame(y, frame_length=frame_length, hop_length=hop_length)
    size = frame_length // n_blocks
    blocks = (fr[: size * n_blocks] ** 2).reshape(n_blocks, size, fr.shape[1]).sum(axis=1)
    return _block_entropy(blocks)


# --- openSMILE (the eGeMAPS v02 reference; the ``opensmile`` package of the extra "dev") ------


@functools.cache
def opensmile_lld(rel: str):
    """``(y, sr, frame)``: openSMILE's eGeMAPS v02 low-level descriptors of a corpus file."""
    import opensmile  # imported here so the modules load without it

    from ser_edge.audio import load

    y, sr = load(data_path(rel), sr=None)
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    )
    return y, sr, smile.process_signal(y, sr)


@functools.cache
def opensmile_raw(rel: str, levels: str = "gemapsv01b_logPitch;gemapsv01b_jitterShimmer"):
    """``(y, sr, frame)``: openSMILE's eGeMAPS v02 LLD graph sinking the data-memory ``levels``
    (unsmoothed: ``F0final`` after the energy gate, ``cPitchJitter``'s output, ...) instead of the
    smoothed LLDs."""
    import tempfile

    import opensmile

    from ser_edge.audio import load

    conf = Path(opensmile.__file__).parent / "core" / "config"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.conf"
        path.write_text(
            "[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\n"
            "\\{\\cm[source{?}:include external source]}\n"
            f"\\{{{conf}/gemaps/v01b/GeMAPSv01b_core.lld.conf.inc}}\n"
            f"\\{{{conf}/egemaps/v02/eGeMAPSv02_core.lld.conf.inc}}\n"
            "[componentInstances:cComponentManager]\ninstance[lldconcat].type=cVectorConcat\n"
            f"[lldconcat:cVectorConcat]\nreader.dmLevel = {levels}\n"
            "writer.dmLevel = lld\nincludeSingleElementFields = 1\n"
            "\\{\\cm[sink{?}:include external sink]}\n"
        )
        y, sr = load(data_path(rel), sr=None)
        df = opensmile.Smile(feature_set=str(path), feature_level="lld").process_signal(y, sr)
    return y, sr, df


def sma3nz(x: np.ndarray) -> np.ndarray:
    """openSMILE's 3-frame moving average of the non-zero values (zeros stay 0)."""
    out = np.zeros(len(x))
    for i in np.flatnonzero(x):
        w = x[max(i - 1, 0) : i + 2]
        out[i] = w[w != 0].mean()
    return out
