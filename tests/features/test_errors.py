"""Invalid input must raise ValueError (never a panic / TypeError / SystemError) and the message
must name the offending parameter.  Also: int16 and list input conversions."""

from __future__ import annotations

import re
import warnings

import librosa
import numpy as np
import pytest
from feature_support import as_ref64, call_guarded, expect_value_error, get_signal

import ser_edge.features as F

SR = 16000
GOOD = np.random.default_rng(1).uniform(-0.5, 0.5, 4000).astype(np.float32)

# Every public function that takes audio `y`, called with small valid parameters.
Y_FUNCS = {
    "frame": lambda y, **k: F.frame(y, frame_length=k.get("n_fft", 512), hop_length=k.get("hop_length", 160)),
    "stft": lambda y, **k: F.stft(y, **{"n_fft": 512, "hop_length": 160, **k}),
    "spectrogram": lambda y, **k: F.spectrogram(y, **{"n_fft": 512, "hop_length": 160, **k}),
    "melspectrogram": lambda y, **k: F.melspectrogram(
        y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, "n_mels": 40, **k}
    ),
    "mfcc": lambda y, **k: F.mfcc(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, "n_mels": 40, **k}),
    "rms": lambda y, **k: F.rms(y=y, **{"frame_length": k.pop("n_fft", 512), "hop_length": 160, **k}),
    "zero_crossing_rate": lambda y, **k: F.zero_crossing_rate(
        y, **{"frame_length": k.pop("n_fft", 512), "hop_length": 160, **k}
    ),
    "spectral_centroid": lambda y, **k: F.spectral_centroid(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, **k}),
    "spectral_bandwidth": lambda y, **k: F.spectral_bandwidth(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, **k}),
    "spectral_rolloff": lambda y, **k: F.spectral_rolloff(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, **k}),
    "spectral_flatness": lambda y, **k: F.spectral_flatness(y=y, **{"n_fft": 512, "hop_length": 160, **k}),
    "spectral_contrast": lambda y, **k: F.spectral_contrast(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, **k}),
    "chroma_stft": lambda y, **k: F.chroma_stft(y=y, **{"sr": SR, "n_fft": 512, "hop_length": 160, "tuning": 0.0, **k}),
    "spectral_flux": lambda y, **k: F.spectral_flux(y=y, **{"n_fft": 512, "hop_length": 160, **k}),
    "spectral_entropy": lambda y, **k: F.spectral_entropy(y=y, **{"n_fft": 512, "hop_length": 160, **k}),
    "energy_entropy": lambda y, **k: F.energy_entropy(
        y=y, **{"frame_length": k.pop("n_fft", 512), "hop_length": 160, **k}
    ),
    "extract": lambda y, **k: F.extract(y, F.FeatureConfig(**k)),
}
ALL_Y = list(Y_FUNCS)
# functions that have an STFT (n_fft/win_length/window/pad_mode)
STFT_FUNCS = [
    "stft",
    "spectrogram",
    "melspectrogram",
    "mfcc",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_flatness",
    "spectral_contrast",
    "chroma_stft",
    "spectral_flux",
    "spectral_entropy",
    "extract",
]
# functions that frame the signal (hop_length)
HOP_FUNCS = ALL_Y  # extract: FeatureConfig(...) or extract(...) may raise, either is fine
SR_FUNCS = [
    "melspectrogram",
    "mfcc",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_contrast",
    "chroma_stft",
    "extract",
]
PAD_FUNCS = STFT_FUNCS + ["rms", "energy_entropy"]


def mentions(exc, name):
    return re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", str(exc)) is not None


def expect_param_error(fn, param, *args, **kwargs):
    e = expect_value_error(fn, *args, **kwargs)
    assert mentions(e, param), f"ValueError message {str(e)!r} does not name {param!r}"


def test_good_input_works_everywhere():
    for name, fn in Y_FUNCS.items():
        status, res = call_guarded(fn, GOOD)
        assert status == "ok", f"{name} rejected valid input: {res}"
        assert res.dtype in (np.float32, np.complex64), name


# ---------------------------------------------------------------------------------------------
# bad y
# ---------------------------------------------------------------------------------------------

BAD_Y = {
    "nan": np.r_[GOOD, np.float32(np.nan)].astype(np.float32),
    "inf": np.r_[np.float32(np.inf), GOOD].astype(np.float32),
    "neg_inf64": np.r_[GOOD[:2000], -np.inf, GOOD[2000:]].astype(np.float64),
    "empty32": np.zeros(0, dtype=np.float32),
    "empty64": np.zeros(0, dtype=np.float64),
    "empty_list": [],
    "complex64": GOOD.astype(np.complex64),
    "complex128": GOOD.astype(np.complex128),
    "int32": (GOOD * 1000).astype(np.int32),
    "int64": (GOOD * 1000).astype(np.int64),
    "uint8": np.full(4000, 128, dtype=np.uint8),
    "float16": GOOD.astype(np.float16),
    "bool": GOOD > 0,
    "object": np.array(["a"] * 4000, dtype=object),
    "strings": np.array(["0.1"] * 4000),
    "2d_row": GOOD[None, :],
    "2d_stereo": np.stack([GOOD, GOOD]),
    "0d": np.float32(0.5),
    "none": None,
    "list_of_str": ["x", "y"],
}


@pytest.mark.parametrize("bad", list(BAD_Y))
@pytest.mark.parametrize("func", ALL_Y)
def test_bad_y_raises_value_error_naming_y(func, bad):
    expect_param_error(Y_FUNCS[func], "y", BAD_Y[bad])


@pytest.mark.parametrize("bad", ["nan", "inf", "complex64", "int32", "2d_stereo", "object"])
def test_bad_chunk_in_stream_push(bad):
    s = F.Stream(F.FeatureConfig())
    e = expect_value_error(s.push, BAD_Y[bad])
    assert mentions(e, "chunk") or mentions(e, "y"), f"Stream.push message {str(e)!r} names neither chunk nor y"


# ---------------------------------------------------------------------------------------------
# bad parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hop", [0, -1, -160])
@pytest.mark.parametrize("func", HOP_FUNCS)
def test_bad_hop_length(func, hop):
    expect_param_error(Y_FUNCS[func], "hop_length", GOOD, hop_length=hop)


@pytest.mark.parametrize(
    "func", [f for f in STFT_FUNCS if f != "extract"] + ["rms", "zero_crossing_rate", "energy_entropy", "frame"]
)
def test_n_fft_larger_than_signal_uncentered(func):
    short = GOOD[:300]
    kw = {"n_fft": 512}
    if func != "frame":
        kw["center"] = False
    param = "frame_length" if func in ("rms", "zero_crossing_rate", "energy_entropy", "frame") else "n_fft"
    expect_param_error(Y_FUNCS[func], param, short, **kw)


def test_n_fft_larger_than_signal_uncentered_extract():
    expect_param_error(F.extract, "n_fft", GOOD[:300], F.FeatureConfig(n_fft=512, center=False))


@pytest.mark.parametrize("n_fft", [0, -512])
@pytest.mark.parametrize("func", ["stft", "melspectrogram", "spectral_centroid", "spectral_flux"])
def test_bad_n_fft(func, n_fft):
    expect_param_error(Y_FUNCS[func], "n_fft", GOOD, n_fft=n_fft)


@pytest.mark.parametrize("func", ["stft", "melspectrogram", "mfcc", "spectral_centroid"])
def test_float_n_fft_raises_even_after_the_same_int_was_cached(func):
    Y_FUNCS[func](GOOD, n_fft=512, hop_length=160)  # 512 == 512.0: the cached call must not serve it
    expect_param_error(Y_FUNCS[func], "n_fft", GOOD, n_fft=512.0)
    expect_param_error(Y_FUNCS[func], "hop_length", GOOD, hop_length=160.0)


@pytest.mark.parametrize("sr", [0, -16000, 0.0])
@pytest.mark.parametrize("func", SR_FUNCS)
def test_bad_sr(func, sr):
    expect_param_error(Y_FUNCS[func], "sr", GOOD, sr=sr)


@pytest.mark.parametrize("sr", [0, -8000])
def test_bad_sr_mel_filters(sr):
    expect_param_error(F.mel_filters, "sr", sr=sr, n_fft=512)


@pytest.mark.parametrize("func", STFT_FUNCS)
def test_win_length_larger_than_n_fft(func):
    expect_param_error(Y_FUNCS[func], "win_length", GOOD, n_fft=512, win_length=1024)


@pytest.mark.parametrize("func", STFT_FUNCS)
def test_unknown_window(func):
    expect_param_error(Y_FUNCS[func], "window", GOOD, window="no_such_window")


@pytest.mark.parametrize("mode", ["no_such_mode", "", "CONSTANT"])
@pytest.mark.parametrize("func", PAD_FUNCS)
def test_unknown_pad_mode(func, mode):
    expect_param_error(Y_FUNCS[func], "pad_mode", GOOD, pad_mode=mode)


@pytest.mark.parametrize("n_mels", [0, -1])
def test_bad_n_mels(n_mels):
    expect_param_error(F.mel_filters, "n_mels", sr=SR, n_fft=512, n_mels=n_mels)
    expect_param_error(F.melspectrogram, "n_mels", y=GOOD, sr=SR, n_fft=512, n_mels=n_mels)
    expect_param_error(F.mfcc, "n_mels", y=GOOD, sr=SR, n_fft=512, n_mels=n_mels)


def test_fmax_above_nyquist_is_allowed_like_librosa():
    """librosa.filters.mel accepts fmax > sr/2 (it only warns about empty filters): mirror it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40, fmax=12000.0)
        status, ours = call_guarded(F.mel_filters, sr=SR, n_fft=512, n_mels=40, fmax=12000.0)
    assert status == "ok", f"mel_filters(fmax > sr/2) raised {ours}"
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4 * float(np.max(ref)))


@pytest.mark.parametrize(
    "kw,param",
    [
        (dict(width=4), "width"),
        (dict(width=1), "width"),
        (dict(width=0), "width"),
        (dict(width=-3), "width"),
        (dict(order=0), "order"),
        (dict(order=-1), "order"),
        (dict(mode="bogus"), "mode"),
        (dict(width=31), "width"),  # interp mode: width cannot exceed the number of frames (20)
        (dict(axis=2), "axis"),
    ],
)
def test_bad_delta(kw, param):
    data = np.random.default_rng(2).standard_normal((13, 20)).astype(np.float32)
    expect_param_error(F.delta, param, data, **kw)


@pytest.mark.parametrize(
    "kw,param", [(dict(amin=0.0), "amin"), (dict(amin=-1.0), "amin"), (dict(top_db=-1.0), "top_db")]
)
def test_bad_power_to_db(kw, param):
    expect_param_error(F.power_to_db, param, np.ones((4, 5), dtype=np.float32), **kw)


def test_rms_S_frame_length_mismatch():
    expect_param_error(F.rms, "frame_length", S=np.ones((257, 3), dtype=np.float32), frame_length=1024)


@pytest.mark.parametrize(
    "func",
    [
        "melspectrogram",
        "mfcc",
        "rms",
        "spectral_centroid",
        "spectral_bandwidth",
        "spectral_rolloff",
        "spectral_flatness",
        "spectral_contrast",
        "chroma_stft",
        "spectral_flux",
        "spectral_entropy",
    ],
)
def test_neither_y_nor_S(func):
    e = expect_value_error(getattr(F, func))
    assert mentions(e, "y") or mentions(e, "S"), str(e)


def test_contrast_band_above_nyquist():
    e = expect_value_error(F.spectral_contrast, y=GOOD, sr=8000, n_fft=512, hop_length=160)  # fmin*2**5 >= 4000
    assert mentions(e, "fmin") or mentions(e, "n_bands"), str(e)


@pytest.mark.parametrize("n_blocks", [0, -3])
def test_bad_n_blocks(n_blocks):
    expect_param_error(F.spectral_entropy, "n_blocks", y=GOOD, n_fft=512, hop_length=160, n_blocks=n_blocks)
    expect_param_error(F.energy_entropy, "n_blocks", y=GOOD, frame_length=512, hop_length=160, n_blocks=n_blocks)


def test_frame_too_short():
    expect_param_error(F.frame, "frame_length", GOOD[:10], frame_length=20, hop_length=5)


# ---------------------------------------------------------------------------------------------
# accepted conversions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("func", ALL_Y)
def test_int16_equals_float_over_32768(func):
    y16 = (get_signal("ravdess", SR)[:8000] * 32767).astype(np.int16)
    a = Y_FUNCS[func](y16)
    b = Y_FUNCS[func](y16.astype(np.float32) / np.float32(32768.0))
    c = Y_FUNCS[func](y16.astype(np.float64) / 32768.0)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b), f"{func}: int16 input != float32 input / 32768"
    tol = 1e-5 * max(float(np.max(np.abs(c))), 1e-30)
    np.testing.assert_allclose(a, c, rtol=0, atol=tol if func not in ("mfcc",) else 1e-3)


def test_int16_full_scale_maps_to_minus_one():
    y = np.array([-32768] * 600 + [32767] * 600, dtype=np.int16)
    fr = F.frame(y, frame_length=1200, hop_length=1)
    assert fr[0, 0] == -1.0 and fr[-1, 0] == np.float32(32767 / 32768)


@pytest.mark.parametrize("func", ["stft", "rms", "zero_crossing_rate", "mfcc", "extract"])
def test_list_input_equals_array(func):
    y = get_signal("ravdess", SR)[:3000]
    a = Y_FUNCS[func](y.tolist())
    b = Y_FUNCS[func](as_ref64(y))
    assert np.array_equal(a, b), f"{func}: list input differs from float64 array input"


@pytest.mark.parametrize("func", ["stft", "melspectrogram", "rms", "spectral_centroid", "zero_crossing_rate"])
def test_float32_and_float64_input_agree(func):
    y = get_signal("emodb", 22050)
    a = Y_FUNCS[func](y)
    b = Y_FUNCS[func](as_ref64(y))
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(np.abs(a - b).max(), 0.0, atol=1e-5 * float(np.max(np.abs(b))))


@pytest.mark.parametrize("func", ["stft", "mfcc", "rms", "extract"])
def test_non_contiguous_input(func):
    y = get_signal("ravdess", SR)[:8000]
    strided = np.repeat(y, 2)[::2]
    assert not strided.flags.c_contiguous
    a = Y_FUNCS[func](strided)
    b = Y_FUNCS[func](np.ascontiguousarray(y))
    assert np.array_equal(a, b)


def test_input_not_modified():
    y = get_signal("ravdess", SR)[:8000].copy()
    before = y.copy()
    for fn in Y_FUNCS.values():
        fn(y)
    assert np.array_equal(y, before)


def test_mfcc_checks_survive_its_config_cache():
    """`mfcc` keeps validated configs by their raw arguments; a bad value next to a cached good
    one is still checked, and audio is checked on every call."""
    kw = dict(sr=SR, n_fft=512, hop_length=160, n_mels=40)
    F.mfcc(y=GOOD, **kw)
    for bad, name in [
        (dict(dct_type=3), "dct_type"),
        (dict(norm="l2"), "norm"),
        (dict(lifter=-1.0), "lifter"),
        (dict(n_mfcc=41), "n_mfcc"),
        (dict(top_db=-1.0), "top_db"),
        (dict(fmin=9000.0), "fmax"),
    ]:
        for _ in range(2):
            expect_value_error(lambda bad=bad: F.mfcc(y=GOOD, **{**kw, **bad}), match=name)
    expect_value_error(lambda: F.mfcc(y=np.array([0.0, np.nan], np.float32), **kw), match="y[1]")
    expect_value_error(lambda: F.mfcc(y=GOOD, S=np.ones((40, 3)), **kw), match="exactly one")
    np.testing.assert_array_equal(F.mfcc(y=GOOD, **kw), F.mfcc(y=GOOD, **kw))
