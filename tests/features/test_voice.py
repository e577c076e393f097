"""eGeMAPS v02 voice descriptors against the real openSMILE (the ``opensmile`` package) on real
speech, the public functions against FeatureConfig rows, and their errors.

Alignment: frame ``t`` of a centred configuration with ``hop_length`` = openSMILE's 10 ms step is
centred at ``t * hop``; openSMILE's frame ``k`` starts at ``k * hop``, so its 20 ms frame is
centred at ``(k + 1) * hop`` (ours ``t = k + 1``) and its 60 ms frame (F0, HNR) at
``(k + 3) * hop`` (ours ``t = k + 3``). openSMILE writes its LLDs after a 3-frame moving average
(``*_sma3``; ``*_sma3nz`` averages the non-zero values only), so the same average is applied to
ours before the correlation. F0 and HNR are compared on frames both call voiced.
"""

from __future__ import annotations

import numpy as np
import pytest
from feature_support import (
    EMODB_FILE,
    EMODB_FILE_2,
    RAVDESS_FILE,
    RAVDESS_FILE_2,
    data_path,
    expect_value_error,
    get_signal,
    opensmile_lld,
    sma3nz,
)

import ser_edge.features as F

COLUMNS = {
    "loudness": "Loudness_sma3",
    "alpha_ratio": "alphaRatio_sma3",
    "hammarberg_index": "hammarbergIndex_sma3",
    "slope_0_500": "slope0-500_sma3",
    "slope_500_1500": "slope500-1500_sma3",
}
FILES = [EMODB_FILE, EMODB_FILE_2, RAVDESS_FILE, RAVDESS_FILE_2]
MIN_R = 0.999  # the issue asks >= 0.95; measured >= 0.9996 (docs/prosody.md)
# Frame-local YIN against openSMILE's SHS + Viterbi track (measured, docs/prosody.md): pooled over
# FILES on frames both call voiced, F0 r = 0.965 and HNR r = 0.964; voiced/unvoiced agreement
# 0.75-0.93 per file.
MIN_R_F0 = 0.95
MIN_R_HNR = 0.95
MIN_VOICING_AGREEMENT = 0.74
# Jitter and shimmer walk the periods continuously as openSMILE's cPitchJitter does; pooled over
# FILES on frames both give a value, measured r = 0.661 / 0.859 (the per-frame re-walk before it:
# 0.08 / 0.18). They differ where the F0 tracks or voicing onsets differ (docs/prosody.md).
MIN_R_JITTER = 0.6
MIN_R_SHIMMER = 0.8
# Utterance means over the voiced frames of 40 files (20 EMO-DB, 20 RAVDESS), measured:
# F0 0.993, HNR 0.933, jitter 0.651, shimmer 0.688 (openSMILE's means are driven by its
# voicing-edge frames, which ours does not call voiced: docs/prosody.md).
MIN_R_UTTERANCE = {"f0_semitones": 0.98, "hnr": 0.9, "jitter": 0.6, "shimmer": 0.62}
UTTERANCE_COLUMNS = {
    "f0_semitones": "F0semitoneFrom27.5Hz_sma3nz",
    "hnr": "HNRdBACF_sma3nz",
    "jitter": "jitterLocal_sma3nz",
    "shimmer": "shimmerLocaldB_sma3nz",
}


def sma3(x: np.ndarray) -> np.ndarray:
    """openSMILE's 3-frame moving average (end frames kept)."""
    out = x.astype(np.float64).copy()
    out[1:-1] = (x[:-2] + x[1:-1] + x[2:]) / 3.0
    return out


def correlations(rel: str) -> dict[str, float]:
    y, sr, df = opensmile_lld(rel)
    hop = int(np.floor(0.010 * sr + 0.5))
    config = F.FeatureConfig(sr=sr, n_fft=512, hop_length=hop, features=tuple(COLUMNS))
    ours = F.extract(y, config)
    out = {}
    for i, (name, column) in enumerate(COLUMNS.items()):
        a = sma3(ours[i, 1:])
        b = df[column].to_numpy(dtype=np.float64)
        n = min(len(a), len(b))
        assert n > 100, f"only {n} aligned frames"
        out[name] = float(np.corrcoef(a[:n], b[:n])[0, 1])
    return out


def periodic(rel: str):
    """Ours and openSMILE's smoothed F0 (semitones) and HNR, aligned by frame centre."""
    y, sr, df = opensmile_lld(rel)
    hop = int(np.floor(0.010 * sr + 0.5))
    n_fft = 1 << (F.voice.frame_length(sr, 0.060) - 1).bit_length()
    names = ("f0_semitones", "hnr", "jitter", "shimmer")
    x = F.extract(y, F.FeatureConfig(sr=sr, n_fft=n_fft, hop_length=hop, features=names))
    ours = [sma3nz(row[3:].astype(np.float64)) for row in x]
    ref = [df[UTTERANCE_COLUMNS[k]].to_numpy(dtype=np.float64) for k in names]
    n = min(len(ours[0]), len(ref[0]))
    return [a[:n] for a in ours] + [b[:n] for b in ref]


def test_f0_hnr_jitter_shimmer_correlation_with_opensmile():
    pooled = {"f0": ([], []), "hnr": ([], []), "jitter": ([], []), "shimmer": ([], [])}
    for rel in FILES:
        f0, h, jit, shim, rf0, rh, rjit, rshim = periodic(rel)
        agreement = float(np.mean((f0 > 0) == (rf0 > 0)))
        both = (f0 > 0) & (rf0 > 0)
        assert both.sum() > 40, f"{rel}: only {both.sum()} frames voiced in both"
        assert agreement >= MIN_VOICING_AGREEMENT, f"{rel}: voiced/unvoiced agreement {agreement:.3f}"
        print(
            rel,
            f"agreement {agreement:.3f}",
            f"f0 r {np.corrcoef(f0[both], rf0[both])[0, 1]:.4f}",
            f"hnr r {np.corrcoef(h[both], rh[both])[0, 1]:.4f}",
        )
        for key, a, b in (("f0", f0, rf0), ("hnr", h, rh)):
            pooled[key][0].append(a[both])
            pooled[key][1].append(b[both])
        for key, a, b in (("jitter", jit, rjit), ("shimmer", shim, rshim)):
            m = (a > 0) & (b > 0)
            print(f"  {key} r {np.corrcoef(a[m], b[m])[0, 1]:.3f} over {m.sum()} frames")
            pooled[key][0].append(a[m])
            pooled[key][1].append(b[m])
    r = {k: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1]) for k, (a, b) in pooled.items()}
    print("pooled", r)
    assert r["f0"] >= MIN_R_F0 and r["hnr"] >= MIN_R_HNR, r
    assert r["jitter"] >= MIN_R_JITTER and r["shimmer"] >= MIN_R_SHIMMER, r


def test_jitter_and_shimmer_equal_opensmile_where_the_walks_agree():
    """The walk is openSMILE's: where both sides walked the same periods (same onset, F0 within
    the +-10 % search range), the smoothed values are equal, not only correlated. The frames
    where they differ are the F0 track's (docs/prosody.md, difference 6)."""
    equal = {"jitter": 0, "shimmer": 0}
    for rel in FILES:
        _, _, jit, shim, _, _, rjit, rshim = periodic(rel)
        for key, a, b in (("jitter", jit, rjit), ("shimmer", shim, rshim)):
            m = (a != 0) & (b != 0)
            equal[key] += int(np.sum(np.abs(a[m] - b[m]) <= 1e-3 * np.abs(b[m])))
    print("frames equal to openSMILE's within 1e-3", equal)  # measured: jitter 19, shimmer 58 of 227 / 262
    assert equal["jitter"] >= 10 and equal["shimmer"] >= 30, equal


def test_utterance_means_track_opensmile():
    """Mean of each descriptor over the frames each side calls voiced, per utterance, correlated
    across 40 utterances (every 27th EMO-DB file, every 60th RAVDESS file)."""
    root = data_path(EMODB_FILE).parents[2]
    files = (
        sorted((root / "emodb" / "wav").glob("*.wav"))[::27][:20]
        + sorted(root.glob("ravdess/Actor_*/*.flac"))[::60][:20]
    )
    assert len(files) == 40
    ours, ref = {k: [] for k in UTTERANCE_COLUMNS}, {k: [] for k in UTTERANCE_COLUMNS}
    # Printed: the same means over the frames both call voiced (ours smoothed and aligned).
    both = {k: ([], []) for k in UTTERANCE_COLUMNS}
    for f in files:
        rel = str(f.relative_to(root))
        y, sr, df = opensmile_lld(rel)
        hop = int(np.floor(0.010 * sr + 0.5))
        n_fft = 1 << (F.voice.frame_length(sr, 0.060) - 1).bit_length()
        x = F.extract(y, F.FeatureConfig(sr=sr, n_fft=n_fft, hop_length=hop, features=tuple(UTTERANCE_COLUMNS)))
        for i, (name, column) in enumerate(UTTERANCE_COLUMNS.items()):
            a, b = x[i][x[i] != 0], df[column].to_numpy()
            b = b[b != 0]
            assert len(a) and len(b), f"{rel}: no voiced frame for {name}"
            ours[name].append(float(a.mean()))
            ref[name].append(float(b.mean()))
            a, b = sma3nz(x[i][3:].astype(np.float64)), df[column].to_numpy()
            n = min(len(a), len(b))
            m = (a[:n] != 0) & (b[:n] != 0)
            both[name][0].append(a[:n][m].mean() if m.any() else 0.0)
            both[name][1].append(b[:n][m].mean() if m.any() else 0.0)
    r = {k: round(float(np.corrcoef(ours[k], ref[k])[0, 1]), 3) for k in UTTERANCE_COLUMNS}
    print("utterance-mean r", r)
    print("utterance-mean r, frames both voiced", {k: round(float(np.corrcoef(*v)[0, 1]), 3) for k, v in both.items()})
    low = {k: v for k, v in r.items() if not v >= MIN_R_UTTERANCE[k]}
    assert not low, f"utterance means below {MIN_R_UTTERANCE}: {low}"


@pytest.mark.parametrize("rel", [RAVDESS_FILE, RAVDESS_FILE_2])
def test_f0_tracks_opensmile_within_a_semitone(rel):
    f0, _, _, _, rf0, _, _, _ = periodic(rel)
    both = (f0 > 0) & (rf0 > 0)
    assert np.median(np.abs(f0[both] - rf0[both])) < 0.25
    assert np.corrcoef(f0[both], rf0[both])[0, 1] > 0.99


@pytest.mark.parametrize("rel", FILES)
def test_correlation_with_opensmile(rel):
    r = correlations(rel)
    print(rel, {k: round(v, 6) for k, v in r.items()})
    low = {k: v for k, v in r.items() if not v >= MIN_R}
    assert not low, f"{rel}: correlation below {MIN_R}: {low}"


def test_loudness_equals_opensmile_in_value_at_16k():
    # Not only correlated: at 16 kHz the frame is 320 samples and the FFT 512, as in openSMILE.
    y, sr, df = opensmile_lld(RAVDESS_FILE)
    ours = sma3(F.loudness(y=y, sr=sr)[0, 1:])
    ref = df["Loudness_sma3"].to_numpy()
    n = min(len(ours), len(ref))
    np.testing.assert_allclose(ours[:n], ref[:n], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", F.voice.VOICE_FEATURES)
@pytest.mark.parametrize("sr", [16000, 22050])
def test_public_function_equals_config_row(name, sr):
    y = get_signal("emodb", sr)
    got = getattr(F, name)(y=y, sr=sr)
    seconds = 0.060 if name in F.voice.PERIODIC_FEATURES else 0.020
    n_fft = 1 << (F.voice.frame_length(sr, seconds) - 1).bit_length()
    config = F.FeatureConfig(sr=sr, n_fft=n_fft, hop_length=int(np.floor(0.01 * sr + 0.5)), features=(name,))
    assert got.dtype == np.float32 and got.shape == (1, config.n_frames(len(y)))
    assert np.array_equal(got, F.extract(y, config))


def test_descriptors_respond_to_the_spectrum():
    sr = 16000
    t = np.arange(sr, dtype=np.float64) / sr
    low = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    high = (0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    assert np.median(F.alpha_ratio(y=low, sr=sr)) < -20 < 20 < np.median(F.alpha_ratio(y=high, sr=sr))
    assert np.median(F.hammarberg_index(y=low, sr=sr)) > 20 > -20 > np.median(F.hammarberg_index(y=high, sr=sr))
    quiet = F.loudness(y=low * 0.1, sr=sr)
    loud = F.loudness(y=low, sr=sr)
    ratio = np.median(loud[0, 5:-5] / quiet[0, 5:-5])
    assert abs(ratio - 100**0.33) < 0.01 * ratio  # power x100 -> loudness x100^0.33


def test_f0_of_a_harmonic_tone():
    sr = 16000
    t = np.arange(sr, dtype=np.float64) / sr
    y = sum(0.2 / h * np.sin(2 * np.pi * 220.0 * h * t) for h in range(1, 6)).astype(np.float32)
    st = F.f0_semitones(y=y, sr=sr)[0, 5:-5]
    assert np.allclose(st, 12 * np.log2(220.0 / 27.5), atol=0.05)
    assert (F.voicing(y=y, sr=sr)[0, 5:-5] > 0.95).all()
    assert (F.hnr(y=y, sr=sr)[0, 5:-5] > 10).all()
    quiet = np.zeros(sr, dtype=np.float32)
    assert not F.f0_semitones(y=quiet, sr=sr).any() and not F.hnr(y=quiet, sr=sr).any()


def test_jitter_and_shimmer_rise_with_perturbation():
    sr = 16000
    rng = np.random.default_rng(0)

    def pulses(jitter, shimmer):
        out, n = [], 0
        while n < sr:
            p = int(round(100 * (1 + jitter * rng.standard_normal())))
            a = 0.3 * (1 + shimmer * rng.standard_normal())
            i = np.arange(p)
            out.append(a * np.exp(-i / 8.0) * np.cos(2 * np.pi * i / 20.0))
            n += p
        return np.concatenate(out)[:sr].astype(np.float32)

    steady, rough = pulses(0.0, 0.0), pulses(0.01, 0.1)
    for fn in (F.jitter, F.shimmer):
        a, b = fn(y=steady, sr=sr)[0, 5:-5], fn(y=rough, sr=sr)[0, 5:-5]
        assert np.median(a) < 0.5 * np.median(b), (fn.__name__, np.median(a), np.median(b))


def test_n_fft_shorter_than_the_60ms_frame_is_refused():
    expect_value_error(F.FeatureConfig, sr=16000, n_fft=512, features=("hnr",), match="n_fft=512")
    expect_value_error(F.f0_semitones, y=get_signal("ravdess", 16000), sr=16000, n_fft=900, match="n_fft=900")


def test_n_fft_shorter_than_the_20ms_frame_is_refused():
    expect_value_error(F.FeatureConfig, sr=16000, n_fft=256, features=("loudness",), match="n_fft=256")
    y = get_signal("ravdess", 16000)
    expect_value_error(F.loudness, y=y, sr=16000, n_fft=300, match="n_fft=300")


@pytest.mark.parametrize("name", F.voice.VOICE_FEATURES)
def test_bad_input(name):
    fn = getattr(F, name)
    y = get_signal("ravdess", 16000)
    expect_value_error(fn, y=y, sr=0, match="sr")
    expect_value_error(fn, y=y, sr=1000, match="sr=1000")
    expect_value_error(fn, y=np.stack([y, y]), sr=16000, match="1-D")
    expect_value_error(fn, y=np.array([0.0, np.nan], dtype=np.float32), sr=16000, match="y")
    expect_value_error(fn, y=y, sr=16000, hop_length=0, match="hop_length")
    expect_value_error(fn, y=y[:100], sr=16000, center=False, match="n_fft")
