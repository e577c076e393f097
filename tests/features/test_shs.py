"""``f0="shs"``: openSMILE's eGeMAPS v02 F0 chain (subharmonic summation + Viterbi smoother) and
the HNR, jitter and shimmer derived from it, against the real openSMILE (the ``opensmile``
package) on real speech; streaming with the smoother's look-ahead; errors.

Alignment: ours ``t`` = openSMILE's ``k + 3`` (docs/prosody.md, difference 2). At 22.05 kHz the
60 ms frame is 1323 samples (odd) and ours, centred in the 2048-sample ``n_fft`` frame by
``(n_fft - 1323) // 2``, starts one sample after openSMILE's frame ``k + 3``: the tests prepend
``3 hop - n_fft / 2 + (n_fft - frame) // 2`` zero samples (1 at 22.05 kHz, 0 at 16 kHz) so both read
the same samples. openSMILE's LLD columns are ``*_sma3nz`` (3-frame average of the non-zero
values); the same average is applied to ours before comparing.
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
    opensmile_raw,
    sma3nz,
)

import ser_edge.features as F

FILES = [EMODB_FILE, EMODB_FILE_2, RAVDESS_FILE, RAVDESS_FILE_2]
NAMES = ("f0_semitones", "hnr", "jitter", "shimmer")
COLUMNS = {
    "f0_semitones": "F0semitoneFrom27.5Hz_sma3nz",
    "hnr": "HNRdBACF_sma3nz",
    "jitter": "jitterLocal_sma3nz",
    "shimmer": "shimmerLocaldB_sma3nz",
}
# openSMILE's unsmoothed values of the same descriptors (levels sunk from its eGeMAPS graph).
RAW_COLUMNS = {
    "f0_semitones": "F0finalLog",
    "voicing": "voicingFinalUnclipped",
    "hnr": "HarmonicsToNoiseRatioACFLogdB",
    "jitter": "jitterLocal",
    "shimmer": "shimmerLocalDB",
}
MIN_R = 0.95  # the target per descriptor; measured 1.0000 on every one (docs/prosody.md)
MAX_LAG = 39  # the smoother's bufferLength (40) - 1


def framing(sr: int) -> tuple[int, int, int]:
    """``(hop, n_fft, pad)``: openSMILE's 10 ms step, the FFT holding the 60 ms frame, and the
    zero samples that put our 60 ms frame ``t`` on openSMILE's ``t - 3``."""
    hop = F.voice.frame_length(sr, 0.010)
    frame = F.voice.frame_length(sr, 0.060)
    n_fft = 1 << (frame - 1).bit_length()
    return hop, n_fft, 3 * hop - n_fft // 2 + (n_fft - frame) // 2


def ours(y: np.ndarray, sr: int, names=NAMES) -> np.ndarray:
    """Our ``f0="shs"`` rows aligned with openSMILE's frames (float64, ``(len(names), k)``)."""
    hop, n_fft, pad = framing(sr)
    x = np.concatenate([np.zeros(pad, np.float32), y])
    config = F.FeatureConfig(sr=sr, n_fft=n_fft, hop_length=hop, features=names, f0="shs")
    return F.extract(x, config)[:, 3:].astype(np.float64)


def aligned(rel: str):
    """Ours (``sma3nz``) and openSMILE's eGeMAPS LLD columns, ``{name: (ours, theirs)}``."""
    y, sr, df = opensmile_lld(rel)
    x = ours(y, sr)
    out = {}
    for i, name in enumerate(NAMES):
        b = df[COLUMNS[name]].to_numpy(dtype=np.float64)
        n = min(x.shape[1], len(b))
        assert n > 100, f"{rel}: only {n} aligned frames"
        out[name] = (sma3nz(x[i, :n]), b[:n])
    return out


def test_frame_level_correlation_with_opensmile_egemaps():
    """Per-frame Pearson r with openSMILE's eGeMAPS LLDs, pooled over EMO-DB and RAVDESS files:
    on the frames both give a value, and on all frames (zeros included)."""
    pooled = {k: ([], []) for k in NAMES}
    pooled_all = {k: ([], []) for k in NAMES}
    for rel in FILES:
        cols = aligned(rel)
        f0, rf0 = cols["f0_semitones"]
        agreement = float(np.mean((f0 > 0) == (rf0 > 0)))
        print(rel, f"voiced/unvoiced agreement {agreement:.4f}")
        assert agreement >= 0.99, f"{rel}: voiced/unvoiced agreement {agreement:.4f}"
        for name, (a, b) in cols.items():
            m = (a != 0) & (b != 0)
            assert m.sum() > 40, f"{rel} {name}: only {m.sum()} frames with a value on both sides"
            pooled[name][0].append(a[m])
            pooled[name][1].append(b[m])
            pooled_all[name][0].append(a)
            pooled_all[name][1].append(b)
    r = {k: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1]) for k, (a, b) in pooled.items()}
    r_all = {k: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1]) for k, (a, b) in pooled_all.items()}
    print("pooled r, frames both non-zero", {k: round(v, 6) for k, v in r.items()})
    print("pooled r, all frames", {k: round(v, 6) for k, v in r_all.items()})
    low = {k: v for k, v in {**r, **{f"{k} (all)": v for k, v in r_all.items()}}.items() if not v >= MIN_R}
    assert not low, f"correlation below {MIN_R}: {low}"


@pytest.mark.parametrize("rel", FILES)
def test_frames_equal_opensmile_unsmoothed_values(rel):
    """Not only correlated: each frame's F0 (semitones), voicing, HNR, jitter and shimmer equal
    openSMILE's unsmoothed values (float32 noise: within 1e-3 relative)."""
    y, sr, df = opensmile_raw(rel, "gemapsv01b_logPitch;gemapsv01b_jitterShimmer;gemapsv01b_harmonics")
    names = ("f0_semitones", "voicing", "hnr", "jitter", "shimmer")
    x = ours(y, sr, names)
    fractions = {}
    for i, name in enumerate(names):
        b = df[RAW_COLUMNS[name]].to_numpy(dtype=np.float64)
        n = min(x.shape[1], len(b))
        a, b = x[i, :n], b[:n]
        assert (b != 0).sum() > 40
        fractions[name] = float(np.mean(np.abs(a - b) <= 1e-3 * np.abs(b) + 1e-5))
    print(rel, "frames equal to openSMILE's", fractions)
    assert min(fractions.values()) >= 0.99, fractions


def test_utterance_means_equal_opensmile():
    """Mean of each descriptor over its non-zero frames, per utterance, correlated across 40
    utterances (every 27th EMO-DB file, every 60th RAVDESS file), as test_voice.py's YIN test."""
    root = data_path(EMODB_FILE).parents[2]
    files = (
        sorted((root / "emodb" / "wav").glob("*.wav"))[::27][:20]
        + sorted(root.glob("ravdess/Actor_*/*.flac"))[::60][:20]
    )
    assert len(files) == 40
    # Ours as the Rust core gives them (unsmoothed, every frame), and smoothed like openSMILE's
    # over the frames openSMILE has.
    means: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in NAMES}
    smoothed: dict[str, list[float]] = {k: [] for k in NAMES}
    for f in files:
        y, sr, df = opensmile_lld(str(f.relative_to(root)))
        x = ours(y, sr)
        for i, name in enumerate(NAMES):
            a, b = x[i][x[i] != 0], df[COLUMNS[name]].to_numpy()
            s = sma3nz(x[i][: len(b)])
            b = b[b != 0]
            assert len(a) and len(b), f"{f.name}: no voiced frame for {name}"
            means[name][0].append(float(a.mean()))
            means[name][1].append(float(b.mean()))
            smoothed[name].append(float(s[s != 0].mean()))
    r = {k: float(np.corrcoef(a, b)[0, 1]) for k, (a, b) in means.items()}
    r_smoothed = {k: float(np.corrcoef(smoothed[k], means[k][1])[0, 1]) for k in NAMES}
    print("utterance-mean r", {k: round(v, 6) for k, v in r.items()})
    print("utterance-mean r, ours smoothed as openSMILE's", {k: round(v, 6) for k, v in r_smoothed.items()})
    low = {k: v for k, v in {**r, **{f"{k} (smoothed)": v for k, v in r_smoothed.items()}}.items() if not v >= MIN_R}
    assert not low, f"utterance means below {MIN_R}: {low}"


def test_harmonic_tone_and_silence():
    sr = 16000
    t = np.arange(sr, dtype=np.float64) / sr
    y = sum(0.2 / h * np.sin(2 * np.pi * 220.0 * h * t) for h in range(1, 8)).astype(np.float32)
    st = F.f0_semitones(y=y, sr=sr, f0="shs")[0, 5:-5]
    assert np.allclose(st, 12 * np.log2(220.0 / 27.5), atol=0.1), st
    assert (F.voicing(y=y, sr=sr, f0="shs")[0, 5:-5] > 0.7).all()
    assert (F.hnr(y=y, sr=sr, f0="shs")[0, 5:-5] > 10).all()
    quiet = np.zeros(sr, dtype=np.float32)
    for fn in (F.f0_semitones, F.voicing, F.hnr, F.jitter, F.shimmer):
        assert not fn(y=quiet, sr=sr, f0="shs").any(), fn.__name__


@pytest.mark.parametrize("name", F.voice.PERIODIC_FEATURES)
def test_public_function_equals_config_row(name):
    sr = 22050
    y = get_signal("emodb", sr)
    got = getattr(F, name)(y=y, sr=sr, f0="shs")
    config = F.FeatureConfig(sr=sr, n_fft=2048, hop_length=221, features=(name,), f0="shs")
    assert got.dtype == np.float32 and got.shape == (1, config.n_frames(len(y)))
    assert np.array_equal(got, F.extract(y, config))
    # The other voice descriptors and the rest do not depend on the F0 method.
    if name == "f0_semitones":
        assert not np.array_equal(got, getattr(F, name)(y=y, sr=sr))


def test_stream_delay_is_bounded_by_the_smoother():
    """Hop-sized chunks: a frame's row comes out at most 39 frames after its last sample (the
    smoother's buffer), and every row does come out (stream == batch)."""
    config = F.FeatureConfig(features=("f0_semitones", "jitter", "loudness"), n_fft=1024, f0="shs")
    y = get_signal("ravdess", 16000)
    s = F.Stream(config)
    got, lags = [], []
    half, hop = config.n_fft // 2, config.hop_length
    for i in range(0, len(y), hop):
        got.append(s.push(y[i : i + hop]))
        seen = min(i + hop, len(y))
        complete = (seen - half) // hop + 1 if seen >= half else 0  # frames whose last sample is in
        lags.append(complete - sum(o.shape[1] for o in got))
    got.append(s.flush())
    assert np.array_equal(np.concatenate(got, axis=1), F.extract(y, config))
    print("max rows held", max(lags))
    assert max(lags) <= MAX_LAG, max(lags)
    assert max(lags) > 0  # it does wait (YIN would not)


def test_extract_many_equals_extract():
    config = F.FeatureConfig(features=("mfcc", *F.voice.VOICE_FEATURES), n_fft=1024, f0="shs")
    clips = [get_signal("ravdess", 16000), get_signal("emodb", 16000)[:12345], get_signal("ravdess", 16000)[:3000]]
    for got, y in zip(F.extract_many(clips, config, n_jobs=2), clips):
        assert np.array_equal(got, F.extract(y, config))


def test_to_dict_omits_the_default_f0():
    yin = F.FeatureConfig(features=("f0_semitones",), n_fft=1024)
    assert "f0" not in yin.to_dict()
    shs = F.FeatureConfig(features=("f0_semitones",), n_fft=1024, f0="shs")
    assert shs.to_dict()["f0"] == "shs"
    assert F.FeatureConfig.from_dict(shs.to_dict()) == shs
    assert F.FeatureConfig.from_dict(yin.to_dict()) == yin
    assert shs != yin


@pytest.mark.parametrize("bad", ["pyin", "SHS", "", None, 1])
def test_bad_f0_method_is_refused(bad):
    expect_value_error(F.FeatureConfig, features=("f0_semitones",), n_fft=1024, f0=bad, match="f0=")
    y = get_signal("ravdess", 16000)
    for fn in (F.f0_semitones, F.voicing, F.hnr, F.jitter, F.shimmer):
        expect_value_error(fn, y=y, sr=16000, f0=bad, match="'yin'")
