"""Numerical parity of ser_edge.features with librosa 0.11.

librosa always gets a float64 copy of exactly the same (float32) samples we get.
Instead of the full cartesian product, CASES spreads signals over sample rates, n_fft, hops,
win_length, center and pad modes so that every value of each axis is covered several times.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pytest
from feature_support import (
    as_ref64,
    assert_abs,
    assert_rel_peak,
    check_shape_dtype,
    get_signal,
    ref_energy_entropy,
    ref_magnitude,
    ref_spectral_entropy_from_power,
    ref_spectral_flux_from_S,
    rel_peak_err,
)

import ser_edge.features as F

# ---------------------------------------------------------------------------------------------
# Tolerances.  "rel" = max|ours - librosa| / max|librosa| over the whole output array.
# ---------------------------------------------------------------------------------------------
SPEC_TOL = 1e-4  # stft / spectrogram / mel filters / mel spectrogram, relative to the peak
DB_TOL = 1e-2  # power_to_db (dB) and MFCC, absolute
FEAT_TOL = 1e-4  # rms, centroid, bandwidth, rolloff, flatness, contrast, chroma, relative
DELTA_TOL = 1e-4  # delta of identical input data, relative to the peak of the INPUT data
ENTROPY_TOL = 1e-4  # spectral_entropy / energy_entropy (bits), absolute, vs numpy reference
# zero_crossing_rate: exact equality with librosa cast to float32 (np.array_equal)
# frame: exact equality (it is a copy of the samples)

# (signal, sr, n_fft, hop_length, win_length, center, pad_mode)
CASES = [
    ("emodb", 22050, 2048, 512, None, True, "constant"),  # librosa defaults, natural rate
    ("ravdess", 16000, 512, 160, None, True, "constant"),  # the project default
    ("ravdess_stereo", 16000, 512, 160, 400, True, "reflect"),
    ("emodb", 8000, 256, 64, None, True, "edge"),
    ("ravdess", 44100, 4096, 1024, None, False, "constant"),
    ("emodb", 48000, 1024, 256, None, True, "reflect"),
    ("clipped", 22050, 512, 128, None, False, "constant"),
    ("ravdess_stereo", 8000, 256, 80, 200, False, "constant"),
    ("noise", 16000, 1024, 333, None, False, "constant"),
    ("chirp", 22050, 2048, 512, 1536, True, "edge"),
    ("sine", 48000, 4096, 2048, None, True, "constant"),
    ("silence", 16000, 512, 160, None, True, "constant"),
    ("dc", 8000, 256, 100, None, True, "reflect"),
    ("impulses", 44100, 2048, 441, None, True, "constant"),
    ("clipped", 44100, 1024, 512, 512, True, "edge"),
]
CASE_IDS = [f"{c[0]}-{c[1]}-nfft{c[2]}-hop{c[3]}-win{c[4]}-{'c' if c[5] else 'nc'}-{c[6]}" for c in CASES]

# A smaller spread used for the more expensive or more numerous parameter variations.
SMALL = [CASES[i] for i in (0, 1, 3, 5, 8)]
SMALL_IDS = [CASE_IDS[i] for i in (0, 1, 3, 5, 8)]


def _stft_kw(case):
    _, _, n_fft, hop, win, center, pad_mode = case
    return dict(n_fft=n_fft, hop_length=hop, win_length=win, center=center, pad_mode=pad_mode)


def _sig(case):
    y = get_signal(case[0], case[1])
    return y, as_ref64(y), case[1]


def _lib(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _contrast_kw(sr):
    # librosa requires fmin * 2**(n_bands-1) < sr/2
    return dict(fmin=200.0, n_bands=6) if sr >= 16000 else dict(fmin=200.0, n_bands=5)


# ---------------------------------------------------------------------------------------------
# frame / stft / spectrogram
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_length,hop_length", [(256, 64), (400, 160), (2048, 512), (1024, 1000), (5, 1)])
@pytest.mark.parametrize("name", ["ravdess", "noise"])
def test_frame(name, frame_length, hop_length):
    y = get_signal(name, 16000)
    ours = F.frame(y, frame_length=frame_length, hop_length=hop_length)
    ref = librosa.util.frame(as_ref64(y), frame_length=frame_length, hop_length=hop_length)
    check_shape_dtype(ours, ref, np.float32, "frame")
    assert np.array_equal(ours, ref.astype(np.float32))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_stft(case):
    y, y64, sr = _sig(case)
    ours = F.stft(y, **_stft_kw(case))
    ref = librosa.stft(y64, **_stft_kw(case))
    assert_rel_peak(ours, ref, SPEC_TOL, "stft", dtype=np.complex64)


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman"])
def test_stft_windows(window):
    y = get_signal("ravdess", 16000)
    ours = F.stft(y, n_fft=512, hop_length=160, window=window)
    ref = librosa.stft(as_ref64(y), n_fft=512, hop_length=160, window=window)
    assert_rel_peak(ours, ref, SPEC_TOL, f"stft window={window}", dtype=np.complex64)


def test_stft_default_hop_is_quarter_nfft():
    y = get_signal("emodb", 22050)
    ours = F.stft(y, n_fft=1024)
    ref = librosa.stft(as_ref64(y), n_fft=1024)
    assert_rel_peak(ours, ref, SPEC_TOL, "stft default hop", dtype=np.complex64)


@pytest.mark.parametrize("power", [1.0, 2.0])
@pytest.mark.parametrize("case", CASES[::2], ids=CASE_IDS[::2])
def test_spectrogram(case, power):
    y, y64, sr = _sig(case)
    ours = F.spectrogram(y, power=power, **_stft_kw(case))
    ref = np.abs(librosa.stft(y64, **_stft_kw(case))) ** power
    assert_rel_peak(ours, ref, SPEC_TOL, f"spectrogram power={power}")


# ---------------------------------------------------------------------------------------------
# mel filters / mel spectrogram
# ---------------------------------------------------------------------------------------------

MEL_FILTER_CASES = [
    dict(sr=16000, n_fft=512, n_mels=40),
    dict(sr=22050, n_fft=2048),
    dict(sr=22050, n_fft=2048, htk=True),
    dict(sr=16000, n_fft=512, n_mels=64, norm=None),
    dict(sr=8000, n_fft=256, n_mels=26, htk=True, norm=None),
    dict(sr=44100, n_fft=4096, n_mels=128, fmin=50.0, fmax=14000.0),
    dict(sr=48000, n_fft=1024, n_mels=80, fmin=20.0, fmax=20000.0, htk=True),
    dict(sr=16000, n_fft=400 + 112, n_mels=40, fmin=300.0, fmax=7600.0, norm=None),
    dict(sr=16000, n_fft=512, n_mels=40, fmax=10000.0),  # fmax > sr/2 is allowed by librosa
]


@pytest.mark.parametrize("kw", MEL_FILTER_CASES, ids=[str(k) for k in MEL_FILTER_CASES])
def test_mel_filters(kw):
    ours = F.mel_filters(**kw)
    ref = _lib(librosa.filters.mel, **kw)
    assert_rel_peak(ours, ref, SPEC_TOL, f"mel_filters {kw}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_melspectrogram(case):
    y, y64, sr = _sig(case)
    n_mels = 40 if case[2] <= 512 else 128
    ours = F.melspectrogram(y=y, sr=sr, n_mels=n_mels, **_stft_kw(case))
    ref = _lib(librosa.feature.melspectrogram, y=y64, sr=sr, n_mels=n_mels, **_stft_kw(case))
    assert_rel_peak(ours, ref, SPEC_TOL, "melspectrogram")


MEL_VARIANTS = [
    dict(power=1.0),
    dict(htk=True, norm=None),
    dict(fmin=80.0, fmax=7000.0),
    dict(n_mels=64, htk=True, fmin=20.0),
]


@pytest.mark.parametrize("variant", MEL_VARIANTS, ids=[str(v) for v in MEL_VARIANTS])
@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_melspectrogram_variants(case, variant):
    y, y64, sr = _sig(case)
    kw = dict(n_mels=40, **_stft_kw(case))
    kw.update(variant)
    ours = F.melspectrogram(y=y, sr=sr, **kw)
    ref = _lib(librosa.feature.melspectrogram, y=y64, sr=sr, **kw)
    assert_rel_peak(ours, ref, SPEC_TOL, f"melspectrogram {variant}")


@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_melspectrogram_from_S(case):
    y, y64, sr = _sig(case)
    S = (np.abs(librosa.stft(y64, **_stft_kw(case))) ** 2).astype(np.float32)
    ours = F.melspectrogram(S=S, sr=sr, n_fft=case[2], n_mels=40)
    ref = _lib(librosa.feature.melspectrogram, S=as_ref64(S), sr=sr, n_fft=case[2], n_mels=40)
    assert_rel_peak(ours, ref, SPEC_TOL, "melspectrogram(S=)")


# ---------------------------------------------------------------------------------------------
# power_to_db / mfcc / delta
# ---------------------------------------------------------------------------------------------

DB_VARIANTS = [
    dict(),
    dict(top_db=None),
    dict(ref=np.max),
    dict(ref=np.max, top_db=None),
    dict(ref="half_max", top_db=80.0),  # float ref = 0.5 * max(S)
    dict(ref=1e-3, amin=1e-5, top_db=None),
    dict(top_db=40.0),
]


@pytest.mark.parametrize("variant", DB_VARIANTS, ids=[str(v) for v in DB_VARIANTS])
@pytest.mark.parametrize(
    "case", [CASES[i] for i in (0, 1, 4, 8, 10, 11, 12)], ids=[CASE_IDS[i] for i in (0, 1, 4, 8, 10, 11, 12)]
)
def test_power_to_db(case, variant):
    y, y64, sr = _sig(case)
    S = _lib(librosa.feature.melspectrogram, y=y64, sr=sr, n_mels=40, **_stft_kw(case)).astype(np.float32)
    kw = dict(variant)
    if kw.get("ref") == "half_max":
        kw["ref"] = float(0.5 * S.max()) if S.max() > 0 else 1.0
    ours = F.power_to_db(S, **kw)
    ref = librosa.power_to_db(as_ref64(S), **kw)
    assert_abs(ours, ref, DB_TOL, f"power_to_db {variant}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_mfcc(case):
    y, y64, sr = _sig(case)
    n_mels = 40 if case[2] <= 512 else 128
    ours = F.mfcc(y=y, sr=sr, n_mels=n_mels, **_stft_kw(case))
    ref = _lib(librosa.feature.mfcc, y=y64, sr=sr, n_mels=n_mels, **_stft_kw(case))
    assert_abs(ours, ref, DB_TOL, "mfcc")


MFCC_VARIANTS = [
    dict(n_mfcc=13),
    dict(n_mfcc=20, lifter=22.0),
    dict(n_mfcc=40, n_mels=40, lifter=0.0),
    dict(n_mfcc=12, lifter=5.0, htk=True, mel_norm=None, fmin=20.0, fmax=4000.0),
    dict(n_mfcc=30, norm=None),
    dict(n_mfcc=1),
]


@pytest.mark.parametrize("variant", MFCC_VARIANTS, ids=[str(v) for v in MFCC_VARIANTS])
@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_mfcc_variants(case, variant):
    y, y64, sr = _sig(case)
    kw = dict(n_mels=64, **_stft_kw(case))
    kw.update(variant)
    ours = F.mfcc(y=y, sr=sr, **kw)
    ref = _lib(librosa.feature.mfcc, y=y64, sr=sr, **kw)
    assert_abs(ours, ref, DB_TOL, f"mfcc {variant}")


@pytest.mark.parametrize("n_mfcc,lifter", [(20, 0.0), (13, 22.0)])
@pytest.mark.parametrize("case", SMALL[:3], ids=SMALL_IDS[:3])
def test_mfcc_from_S(case, n_mfcc, lifter):
    y, y64, sr = _sig(case)
    S = librosa.power_to_db(_lib(librosa.feature.melspectrogram, y=y64, sr=sr, n_mels=40, **_stft_kw(case))).astype(
        np.float32
    )
    ours = F.mfcc(S=S, sr=sr, n_mfcc=n_mfcc, lifter=lifter)
    ref = librosa.feature.mfcc(S=as_ref64(S), sr=sr, n_mfcc=n_mfcc, lifter=lifter)
    assert_abs(ours, ref, DB_TOL, "mfcc(S=)")


@pytest.mark.parametrize("case", SMALL[:3], ids=SMALL_IDS[:3])
def test_mfcc_top_db_none_extension(case):
    """top_db=None: librosa equivalent is dct(power_to_db(mel, top_db=None))."""
    y, y64, sr = _sig(case)
    mel = _lib(librosa.feature.melspectrogram, y=y64, sr=sr, n_mels=40, **_stft_kw(case))
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=20)
    ours = F.mfcc(y=y, sr=sr, n_mels=40, n_mfcc=20, top_db=None, **_stft_kw(case))
    assert_abs(ours, ref, DB_TOL, "mfcc top_db=None")


@pytest.fixture(scope="module")
def mfcc_data():
    y = get_signal("ravdess", 16000)
    return _lib(librosa.feature.mfcc, y=as_ref64(y), sr=16000, n_fft=512, hop_length=160, n_mels=40).astype(np.float32)


@pytest.mark.parametrize("mode", ["interp", "nearest", "mirror", "constant", "wrap"])
@pytest.mark.parametrize("width,order", [(9, 1), (9, 2), (3, 1), (5, 2), (7, 1)])
def test_delta(mfcc_data, width, order, mode):
    ours = F.delta(mfcc_data, width=width, order=order, mode=mode)
    ref = librosa.feature.delta(as_ref64(mfcc_data), width=width, order=order, mode=mode)
    assert_abs(
        ours, ref, DELTA_TOL * float(np.max(np.abs(mfcc_data))), f"delta width={width} order={order} mode={mode}"
    )


@pytest.mark.parametrize("order", [1, 2])
def test_delta_axis0(mfcc_data, order):
    ours = F.delta(mfcc_data, width=5, order=order, axis=0)
    ref = librosa.feature.delta(as_ref64(mfcc_data), width=5, order=order, axis=0)
    assert_abs(ours, ref, DELTA_TOL * float(np.max(np.abs(mfcc_data))), f"delta axis=0 order={order}")


# ---------------------------------------------------------------------------------------------
# rms / zcr
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rms(case):
    y, y64, sr = _sig(case)
    _, _, n_fft, hop, _, center, pad_mode = case
    ours = F.rms(y=y, frame_length=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)
    ref = librosa.feature.rms(y=y64, frame_length=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)
    assert_rel_peak(ours, ref, FEAT_TOL, "rms(y=)")


@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_rms_from_S(case):
    y, y64, sr = _sig(case)
    S = np.abs(librosa.stft(y64, **_stft_kw(case))).astype(np.float32)
    ours = F.rms(S=S, frame_length=case[2], hop_length=case[3])
    ref = librosa.feature.rms(S=as_ref64(S), frame_length=case[2], hop_length=case[3])
    assert_rel_peak(ours, ref, FEAT_TOL, "rms(S=)")


@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_rms_S_route_matches_y_route(case):
    """Parseval: |rfft| of unwindowed frames fed as S gives exactly rms(y) (both libraries)."""
    y, y64, sr = _sig(case)
    _, _, n_fft, hop, _, center, pad_mode = case
    yp = np.pad(y64, n_fft // 2, mode=pad_mode) if center else y64
    S = np.abs(np.fft.rfft(librosa.util.frame(yp, frame_length=n_fft, hop_length=hop), axis=0))
    from_S = F.rms(S=S.astype(np.float32), frame_length=n_fft, hop_length=hop)
    from_y = F.rms(y=y, frame_length=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)
    assert_rel_peak(from_S, from_y.astype(np.float64), FEAT_TOL, "rms(S=|rfft|) vs rms(y=)")
    ref_S = librosa.feature.rms(S=S, frame_length=n_fft, hop_length=hop)
    assert_rel_peak(from_S, ref_S, FEAT_TOL, "rms(S=|rfft|) vs librosa")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_zero_crossing_rate(case):
    y, y64, sr = _sig(case)
    _, _, n_fft, hop, _, center, _ = case
    ours = F.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop, center=center)
    ref = librosa.feature.zero_crossing_rate(y64, frame_length=n_fft, hop_length=hop, center=center)
    check_shape_dtype(ours, ref, np.float32, "zero_crossing_rate")
    ref32 = ref.astype(np.float32)
    assert np.array_equal(ours, ref32), (
        f"zero_crossing_rate differs in {int(np.sum(ours != ref32))} frames; "
        f"max diff {float(np.max(np.abs(ours - ref32)))}"
    )


# ---------------------------------------------------------------------------------------------
# spectral features
# ---------------------------------------------------------------------------------------------

SPECTRAL = {
    # name: (extra kwargs, takes sr)
    "spectral_centroid": ({}, True),
    "spectral_bandwidth": ({}, True),
    "spectral_rolloff": ({}, True),
    "spectral_flatness": ({}, False),
    "spectral_contrast": ({}, True),
    "chroma_stft": ({"tuning": 0.0}, True),
}


def _spectral_kw(name, case):
    extra, takes_sr = SPECTRAL[name]
    kw = dict(extra, **_stft_kw(case))
    if takes_sr:
        kw["sr"] = case[1]
    if name == "spectral_contrast":
        kw.update(_contrast_kw(case[1]))
    return kw


def _rolloff_tie_report(y64, case, ours, ref, roll_percent=0.85):
    """Explain rolloff mismatches: how close was the reference to the threshold there?"""
    S = np.abs(librosa.stft(y64, **_stft_kw(case)))
    cs = np.cumsum(S, axis=0)
    thr = roll_percent * cs[-1]
    lines = []
    for t in np.flatnonzero(np.abs(ours[0] - ref[0]) > 0)[:5]:
        k = int(np.argmax(cs[:, t] >= thr[t]))
        margins = [(cs[j, t] - thr[t]) / max(thr[t], 1e-300) for j in (k - 1, k) if j >= 0]
        lines.append(
            f"frame {t}: ours {ours[0, t]:.3f} Hz librosa {ref[0, t]:.3f} Hz, "
            f"relative margins to threshold at bins k-1,k = {margins}"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(SPECTRAL))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_spectral(case, name):
    y, y64, sr = _sig(case)
    kw = _spectral_kw(name, case)
    ours = getattr(F, name)(y=y, **kw)
    ref = _lib(getattr(librosa.feature, name), y=y64, **kw)
    if name == "spectral_rolloff" and rel_peak_err(ours, ref) > FEAT_TOL:
        check_shape_dtype(ours, ref, np.float32, name)
        pytest.fail(
            f"spectral_rolloff mismatch (rel err {rel_peak_err(ours, ref):.3g} > {FEAT_TOL}); "
            f"tie analysis:\n{_rolloff_tie_report(y64, case, ours, ref)}"
        )
    assert_rel_peak(ours, ref, FEAT_TOL, name)


@pytest.mark.parametrize("name", list(SPECTRAL))
@pytest.mark.parametrize("case", SMALL, ids=SMALL_IDS)
def test_spectral_from_S(case, name):
    """S= route: magnitude spectrogram (chroma_stft: POWER spectrogram, like librosa)."""
    y, y64, sr = _sig(case)
    kw = _spectral_kw(name, case)
    for k in ("hop_length", "win_length", "center", "pad_mode"):
        kw.pop(k)
    S = np.abs(librosa.stft(y64, **_stft_kw(case)))
    if name == "chroma_stft":
        S = S**2
    S = S.astype(np.float32)
    ours = getattr(F, name)(S=S, **kw)
    ref = _lib(getattr(librosa.feature, name), S=as_ref64(S), **kw)
    assert_rel_peak(ours, ref, FEAT_TOL, f"{name}(S=)")


SPECTRAL_VARIANTS = [
    ("spectral_bandwidth", dict(p=1.0)),
    ("spectral_bandwidth", dict(p=3.0, norm=False)),
    ("spectral_rolloff", dict(roll_percent=0.5)),
    ("spectral_rolloff", dict(roll_percent=0.99)),
    ("spectral_flatness", dict(power=1.0)),
    ("spectral_flatness", dict(amin=1e-6)),
    ("spectral_contrast", dict(linear=True)),
    ("spectral_contrast", dict(quantile=0.1, n_bands=4, fmin=100.0)),
    ("chroma_stft", dict(tuning=0.0, n_chroma=24)),
    ("chroma_stft", dict(tuning=0.0, norm=None)),
    ("chroma_stft", dict(tuning=0.0, norm=2)),
    ("chroma_stft", dict(tuning=0.25)),
]


@pytest.mark.parametrize("name,variant", SPECTRAL_VARIANTS, ids=[f"{n}-{v}" for n, v in SPECTRAL_VARIANTS])
@pytest.mark.parametrize("case", [CASES[1], CASES[0]], ids=[CASE_IDS[1], CASE_IDS[0]])
def test_spectral_variants(case, name, variant):
    y, y64, sr = _sig(case)
    kw = _spectral_kw(name, case)
    kw.update(variant)
    ours = getattr(F, name)(y=y, **kw)
    ref = _lib(getattr(librosa.feature, name), y=y64, **kw)
    assert_rel_peak(ours, ref, FEAT_TOL, f"{name} {variant}")


@pytest.mark.parametrize(
    "case", [CASES[i] for i in (0, 1, 2, 5, 9, 10, 11)], ids=[CASE_IDS[i] for i in (0, 1, 2, 5, 9, 10, 11)]
)
def test_chroma_stft_estimated_tuning(case):
    y, y64, sr = _sig(case)
    kw = dict(sr=sr, tuning=None, **_stft_kw(case))
    ours = F.chroma_stft(y=y, **kw)
    ref = _lib(librosa.feature.chroma_stft, y=y64, **kw)
    assert_rel_peak(ours, ref, FEAT_TOL, "chroma_stft(tuning=None)")


def test_chroma_default_tuning_is_estimated():
    """Default tuning=None must equal librosa's default (estimated), not tuning=0."""
    y = get_signal("emodb", 22050)
    ours = F.chroma_stft(y=y, sr=22050)
    ref = _lib(librosa.feature.chroma_stft, y=as_ref64(y), sr=22050)
    assert_rel_peak(ours, ref, FEAT_TOL, "chroma_stft default")


# ---------------------------------------------------------------------------------------------
# Non-librosa features: compare with the numpy reference implementations of API.md
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[::2], ids=CASE_IDS[::2])
def test_custom_features_vs_reference(case):
    y, y64, sr = _sig(case)
    kw = _stft_kw(case)
    S = ref_magnitude(y, **kw)
    flux = F.spectral_flux(y=y, **kw)
    assert_rel_peak(flux, ref_spectral_flux_from_S(S), FEAT_TOL, "spectral_flux")
    ent = F.spectral_entropy(y=y, **kw)
    assert_abs(ent, ref_spectral_entropy_from_power(S**2), ENTROPY_TOL, "spectral_entropy")
    ee = F.energy_entropy(y=y, frame_length=case[2], hop_length=case[3], center=case[5], pad_mode=case[6])
    ref_ee = ref_energy_entropy(y, frame_length=case[2], hop_length=case[3], center=case[5], pad_mode=case[6])
    assert_abs(ee, ref_ee, ENTROPY_TOL, "energy_entropy")
