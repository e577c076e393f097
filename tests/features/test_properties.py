"""Hypothesis property tests: on random lengths (0..5000), random framing parameters and random
signals (noise / tones / impulses / constants / silence, amplitudes 1e-12..1e4) our functions
  * never raise anything but ValueError (a Rust panic would be pyo3_runtime.PanicException),
  * raise iff librosa raises (exception: empty y must raise per API.md, librosa accepts it),
  * otherwise return librosa's shape and dtype and match it within the parity tolerances.
spectral_rolloff is left out on purpose: exact threshold ties in synthetic spectra (impulses,
constants) legitimately flip one bin between float32 and float64 arithmetic.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
from feature_support import (
    HYPOTHESIS_DERANDOMIZE,
    as_ref64,
    assert_abs,
    assert_rel_peak,
    call_guarded,
    check_shape_dtype,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ser_edge.features as F

SPEC_TOL = 1e-4  # relative to peak (stft, spectrogram, mel)
DB_TOL = 1e-2  # absolute (dB, MFCC)
FEAT_TOL = 1e-4  # relative to peak (rms, centroid, bandwidth, flatness, contrast, chroma)

PROFILE = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=HYPOTHESIS_DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

N_FFTS = [16, 64, 128, 256, 400, 512, 1024, 2048]
PAD_MODES = ["constant", "reflect", "edge"]
KINDS = ["noise", "sine", "impulses", "constant", "silence", "square"]


@st.composite
def signals(draw, max_len=5000):
    n = draw(st.integers(0, max_len))
    kind = draw(st.sampled_from(KINDS))
    amp = 10.0 ** draw(st.floats(-12.0, 4.0))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "noise":
        y = rng.standard_normal(n)
    elif kind == "sine":
        y = np.sin(2 * np.pi * rng.uniform(0.001, 0.499) * t + rng.uniform(0, 6.28))
    elif kind == "impulses":
        y = np.zeros(n)
        if n:
            y[rng.integers(0, n, size=max(1, n // 500))] = rng.choice([-1.0, 1.0])
    elif kind == "constant":
        y = np.full(n, rng.choice([-1.0, 1.0]))
    elif kind == "square":
        y = np.where((t // max(1, int(rng.integers(1, 50)))) % 2 == 0, 1.0, -1.0)
    else:
        y = np.zeros(n)
    return (amp * y).astype(np.float32)


@st.composite
def framing(draw):
    n_fft = draw(st.sampled_from(N_FFTS))
    hop = draw(st.integers(max(1, n_fft // 8), n_fft))
    use_win = draw(st.booleans())
    win = draw(st.integers(max(2, n_fft // 2), n_fft)) if use_win else None
    return dict(
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        center=draw(st.booleans()),
        pad_mode=draw(st.sampled_from(PAD_MODES)),
    )


def _run_pair(ours_fn, ref_fn, y, what):
    """Run both; enforce the raise/no-raise contract; return (ours, ref) or None if both raised."""
    status, ours = call_guarded(ours_fn)
    if y.size == 0:
        assert status == "raised", f"{what}: empty y must raise ValueError (API.md)"
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref = ref_fn()
            ref_exc = None
        except Exception as e:  # librosa.ParameterError or ValueError from numpy/scipy
            ref, ref_exc = None, e
    if ref_exc is not None:
        assert status == "raised", f"{what}: librosa raised {ref_exc!r} but we returned a result"
        return None
    assert status == "ok", f"{what}: we raised {ours!r} but librosa returned shape {np.shape(ref)}"
    return ours, ref


@PROFILE
@given(y=signals(), fr=framing())
def test_stft_and_spectrogram_match_librosa(y, fr):
    y64 = as_ref64(y)
    pair = _run_pair(lambda: F.stft(y, **fr), lambda: librosa.stft(y64, **fr), y, f"stft {fr}")
    if pair:
        assert_rel_peak(*pair, SPEC_TOL, f"stft {fr} n={y.size}", dtype=np.complex64)
    pair = _run_pair(
        lambda: F.spectrogram(y, power=1.0, **fr), lambda: np.abs(librosa.stft(y64, **fr)), y, "spectrogram"
    )
    if pair:
        assert_rel_peak(*pair, SPEC_TOL, f"spectrogram {fr} n={y.size}")


@PROFILE
@given(
    y=signals(),
    fr=framing(),
    sr=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    n_mels=st.integers(1, 64),
    htk=st.booleans(),
    n_mfcc=st.integers(1, 20),
    top_db=st.sampled_from([80.0, None]),
)
def test_mel_and_mfcc_match_librosa(y, fr, sr, n_mels, htk, n_mfcc, top_db):
    assume(n_mfcc <= n_mels)
    y64 = as_ref64(y)
    kw = dict(sr=sr, n_mels=n_mels, htk=htk, **fr)
    pair = _run_pair(
        lambda: F.melspectrogram(y=y, **kw), lambda: librosa.feature.melspectrogram(y=y64, **kw), y, "melspectrogram"
    )
    if pair:
        assert_rel_peak(*pair, SPEC_TOL, f"melspectrogram {kw} n={y.size}")

    def ref_mfcc():
        mel = librosa.feature.melspectrogram(y=y64, **kw)
        return librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=top_db), n_mfcc=n_mfcc)

    pair = _run_pair(lambda: F.mfcc(y=y, n_mfcc=n_mfcc, top_db=top_db, **kw), ref_mfcc, y, "mfcc")
    if pair:
        assert_abs(*pair, DB_TOL, f"mfcc n_mfcc={n_mfcc} top_db={top_db} {kw} n={y.size}")


@PROFILE
@given(y=signals(), fr=framing())
def test_rms_and_zcr_match_librosa(y, fr):
    y64 = as_ref64(y)
    L, hop, center, pad_mode = fr["n_fft"], fr["hop_length"], fr["center"], fr["pad_mode"]
    pair = _run_pair(
        lambda: F.rms(y=y, frame_length=L, hop_length=hop, center=center, pad_mode=pad_mode),
        lambda: librosa.feature.rms(y=y64, frame_length=L, hop_length=hop, center=center, pad_mode=pad_mode),
        y,
        "rms",
    )
    if pair:
        assert_rel_peak(*pair, FEAT_TOL, f"rms {fr} n={y.size}")
    pair = _run_pair(
        lambda: F.zero_crossing_rate(y, frame_length=L, hop_length=hop, center=center),
        lambda: librosa.feature.zero_crossing_rate(y64, frame_length=L, hop_length=hop, center=center),
        y,
        "zero_crossing_rate",
    )
    if pair:
        ours, ref = pair
        check_shape_dtype(ours, ref, np.float32, "zero_crossing_rate")
        assert np.array_equal(ours, ref.astype(np.float32)), (
            f"zcr {fr} n={y.size}: {int(np.sum(ours != ref.astype(np.float32)))} frames differ"
        )


@PROFILE
@given(
    y=signals(max_len=4000),
    fr=framing(),
    sr=st.sampled_from([16000, 22050, 44100]),
    name=st.sampled_from(
        ["spectral_centroid", "spectral_bandwidth", "spectral_flatness", "spectral_contrast", "chroma_stft"]
    ),
)
def test_spectral_features_match_librosa(y, fr, sr, name):
    y64 = as_ref64(y)
    kw = dict(fr)
    if name != "spectral_flatness":
        kw["sr"] = sr
    if name == "chroma_stft":
        kw["tuning"] = 0.0
    if name == "spectral_contrast":
        assume(fr["n_fft"] >= 256)  # narrow FFTs leave librosa's octave bands empty (IndexError in librosa)
        kw.update(fmin=200.0, n_bands=4)
    pair = _run_pair(lambda: getattr(F, name)(y=y, **kw), lambda: getattr(librosa.feature, name)(y=y64, **kw), y, name)
    if pair:
        # Contrast is in dB: below a 1 dB peak, compare against 1 dB (1e-4 dB absolute).
        floor = 1.0 if name == "spectral_contrast" else 0.0
        assert_rel_peak(*pair, FEAT_TOL, f"{name} {kw} n={y.size}", floor=floor)


@PROFILE
@given(
    data=st.integers(1, 60).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, 30), st.integers(0, 2**31 - 1))),
    width=st.sampled_from([3, 5, 7, 9]),
    order=st.sampled_from([1, 2]),
    mode=st.sampled_from(["interp", "nearest", "mirror", "constant", "wrap"]),
)
def test_delta_matches_librosa(data, width, order, mode):
    t, rows, seed = data
    x = (np.random.default_rng(seed).standard_normal((rows, t)) * 10).astype(np.float32)
    pair = _run_pair(
        lambda: F.delta(x, width=width, order=order, mode=mode),
        lambda: librosa.feature.delta(as_ref64(x), width=width, order=order, mode=mode),
        x,
        "delta",
    )
    if pair:
        # relative to the input's scale: a (near-)zero reference is pure round-off
        assert_abs(*pair, 1e-4 * float(np.max(np.abs(x))), f"delta t={t} width={width} order={order} mode={mode}")


@PROFILE
@given(y=signals(), frame_length=st.integers(1, 3000), hop_length=st.integers(-2, 3000))
def test_frame_matches_librosa(y, frame_length, hop_length):
    pair = _run_pair(
        lambda: F.frame(y, frame_length=frame_length, hop_length=hop_length),
        lambda: librosa.util.frame(as_ref64(y), frame_length=frame_length, hop_length=hop_length),
        y,
        "frame",
    )
    if pair:
        ours, ref = pair
        check_shape_dtype(ours, ref, np.float32, "frame")
        assert np.array_equal(ours, ref.astype(np.float32))


@PROFILE
@given(y=signals(max_len=3000), fr=framing(), n_blocks=st.integers(-1, 12))
def test_custom_features_never_panic(y, fr, n_blocks):
    """No librosa reference: only the error contract and output shape (= stft frame count)."""
    for fn, kw in (
        (F.spectral_flux, dict(fr)),
        (F.spectral_entropy, dict(fr, n_blocks=n_blocks)),
        (
            F.energy_entropy,
            dict(
                frame_length=fr["n_fft"],
                hop_length=fr["hop_length"],
                center=fr["center"],
                pad_mode=fr["pad_mode"],
                n_blocks=n_blocks,
            ),
        ),
    ):
        status, res = call_guarded(fn, y=y, **kw)
        size = fr["n_fft"] if fn is F.energy_entropy else fr["n_fft"] // 2 + 1
        if status == "raised" and n_blocks > size and fn is not F.spectral_flux:
            continue  # fewer samples/bins than blocks: rejecting is acceptable (API.md is silent)
        if y.size == 0 or (n_blocks <= 0 and fn is not F.spectral_flux):
            assert status == "raised", f"{fn.__name__} {kw} n={y.size}: expected ValueError"
            continue
        status_ref, ref = call_guarded(
            F.rms,
            y=y,
            frame_length=fr["n_fft"],
            hop_length=fr["hop_length"],
            center=fr["center"],
            pad_mode=fr["pad_mode"],
        )
        if status_ref == "raised":
            assert status == "raised", f"{fn.__name__} {kw}: rms raised but this did not"
            continue
        assert status == "ok", f"{fn.__name__} {kw} n={y.size}: raised {res!r}"
        assert res.dtype == np.float32 and res.shape == ref.shape, (fn.__name__, res.shape, ref.shape)
        assert np.all(np.isfinite(res)) and np.all(res >= 0), fn.__name__
        if fn is not F.spectral_flux:
            assert float(np.max(res)) <= np.log2(n_blocks) + 1e-4
