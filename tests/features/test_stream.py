"""FeatureConfig / extract / extract_many / Stream.

Stream contract (API.md): concatenating every push() output and the flush() output, over ANY
chunking, equals extract(np.concatenate(chunks), config) exactly (np.array_equal).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from feature_support import HYPOTHESIS_DERANDOMIZE, assert_rel_peak, call_guarded, expect_value_error, get_signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ser_edge.features as F

BLOCK_TOL = 1e-5  # extract() row block vs the public function, relative to the block's peak

ALL_FEATURES = (
    "mfcc",
    "log_melspectrogram",
    "melspectrogram",
    "rms",
    "zero_crossing_rate",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_flatness",
    "spectral_flux",
    "spectral_entropy",
    "energy_entropy",
    "chroma_stft",
)

CONFIGS = {
    "mfcc_default": dict(),
    "log_mel": dict(features=("log_melspectrogram",)),
    "all": dict(features=ALL_FEATURES),
    "all_uncentered": dict(features=ALL_FEATURES, center=False),
    "all_reflect": dict(features=ALL_FEATURES, pad_mode="reflect"),
    "all_edge": dict(features=ALL_FEATURES, pad_mode="edge"),
    "win400": dict(features=("mfcc", "rms", "spectral_centroid", "zero_crossing_rate"), n_fft=512, win_length=400),
    "hop_not_dividing": dict(
        features=("log_melspectrogram", "spectral_flux", "energy_entropy", "chroma_stft"),
        n_fft=400,
        hop_length=128,
        pad_mode="reflect",
        n_mels=64,
    ),
    "contrast": dict(features=("rms", "spectral_contrast", "mfcc"), n_fft=1024, win_length=800, contrast_fmin=100.0),
    "big_22k": dict(
        features=("mfcc", "spectral_rolloff", "spectral_entropy"),
        sr=22050,
        n_fft=2048,
        hop_length=512,
        n_mfcc=20,
        n_mels=128,
        lifter=22.0,
        fmin=50.0,
        fmax=8000.0,
        htk=True,
    ),
    # eGeMAPS descriptors (20 ms frame centred in each n_fft frame), mixed with spectral features.
    "voice": dict(
        features=(
            "mfcc",
            "loudness",
            "alpha_ratio",
            "hammarberg_index",
            "slope_0_500",
            "slope_500_1500",
            "spectral_flux",
        ),
        n_fft=512,
        pad_mode="reflect",
    ),
    "voice_22k": dict(features=F.voice.VOICE_FEATURES, sr=22050, n_fft=2048, hop_length=221, center=False),
    "voice_f0": dict(features=("f0_semitones", "voicing", "hnr", "mfcc"), n_fft=1024, win_length=400),
    # openSMILE's SHS + Viterbi F0: rows wait for the smoother (up to 39 frames), all features alike.
    "voice_shs": dict(features=("mfcc", *F.voice.VOICE_FEATURES), n_fft=1024, f0="shs"),
    "voice_shs_22k": dict(
        features=("jitter", "f0_semitones", "shimmer"), sr=22050, n_fft=2048, hop_length=221, center=False, f0="shs"
    ),
}


def cfg(name) -> F.FeatureConfig:
    return F.FeatureConfig(**CONFIGS[name])


def speech(sr=16000, seconds=None):
    y = get_signal("ravdess", sr)
    return y if seconds is None else y[: int(seconds * sr)]


def run_stream(config, chunks):
    s = F.Stream(config)
    outs = []
    for c in chunks:
        o = s.push(c)
        assert isinstance(o, np.ndarray) and o.dtype == np.float32, (
            f"push returned {type(o)} {getattr(o, 'dtype', None)}"
        )
        assert o.ndim == 2 and o.shape[0] == config.n_features, f"push shape {o.shape}"
        outs.append(o)
    o = s.flush()
    assert o.dtype == np.float32 and o.ndim == 2 and o.shape[0] == config.n_features, f"flush shape {o.shape}"
    outs.append(o)
    return np.concatenate(outs, axis=1)


def assert_stream_equals_extract(config, y, chunks):
    ref = F.extract(y, config)
    got = run_stream(config, chunks)
    assert got.shape == ref.shape, f"stream shape {got.shape} != extract {ref.shape}"
    if not np.array_equal(got, ref):
        diff = np.abs(got - ref)
        r, t = np.unravel_index(int(np.argmax(diff)), diff.shape)
        bad_cols = np.flatnonzero(np.any(got != ref, axis=0))
        raise AssertionError(
            f"stream != extract in {bad_cols.size} of {ref.shape[1]} frames (first {bad_cols[:5].tolist()}); "
            f"max |diff| {diff.max():.3g} at row {r}, frame {t}"
        )


def split(y, size):
    return [y[i : i + size] for i in range(0, len(y), size)]


# ---------------------------------------------------------------------------------------------
# Stream == extract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunking", ["whole", "160", "1000", "odd_sizes", "with_empty"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_stream_fixed_chunkings(name, chunking):
    config = cfg(name)
    y = speech(config.sr)
    if chunking == "whole":
        chunks = [y]
    elif chunking == "odd_sizes":
        sizes = [1, 7, 511, 513, 3, 160, 2049, 999]
        chunks, i, k = [], 0, 0
        while i < len(y):
            chunks.append(y[i : i + sizes[k % len(sizes)]])
            i += sizes[k % len(sizes)]
            k += 1
    elif chunking == "with_empty":
        chunks = []
        for c in split(y, 700):
            chunks += [c, y[:0]]
        chunks = [y[:0]] + chunks
    else:
        chunks = split(y, int(chunking))
    assert_stream_equals_extract(config, y, chunks)


@pytest.mark.parametrize("name", ["mfcc_default", "all_reflect", "all_uncentered", "voice_shs"])
def test_stream_chunk_size_one(name):
    config = cfg(name)
    y = speech(config.sr, seconds=0.3)
    assert_stream_equals_extract(config, y, split(y, 1))


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=HYPOTHESIS_DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(list(CONFIGS)),
    cuts=st.lists(st.integers(0, 16000), max_size=12),
    n=st.integers(1, 16000),
    start=st.integers(0, 30000),
)
def test_stream_random_chunkings(name, cuts, n, start):
    config = cfg(name)
    y = speech(config.sr)[start : start + n]
    if len(y) == 0:
        return
    points = sorted(min(c, len(y)) for c in cuts)
    bounds = [0] + points + [len(y)]
    chunks = [y[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    status, ref = call_guarded(F.extract, y, config)
    if status == "raised":  # too short for an uncentered frame: the stream must not invent frames
        got = call_guarded(run_stream, config, chunks)
        assert got[0] == "raised" or got[1].shape[1] == 0, "stream produced frames where extract raised"
        return
    assert_stream_equals_extract(config, y, chunks)


def test_stream_float64_and_int16_chunks():
    config = cfg("all")
    y = speech()
    y16 = (y * 32767).astype(np.int16)
    assert_stream_equals_extract(config, y16, split(y16, 333))
    y64 = y.astype(np.float64)
    assert_stream_equals_extract(config, y64, split(y64, 333))


@pytest.mark.parametrize("name", ["mfcc_default", "all", "all_uncentered", "all_reflect"])
@pytest.mark.parametrize("n", [1, 100, 300, 511])
def test_flush_with_less_than_one_frame(name, n):
    config = cfg(name)
    y = speech(config.sr)[:n]
    status, ref = call_guarded(F.extract, y, config)
    s = F.Stream(config)
    pushed = s.push(y)
    st_flush, flushed = call_guarded(s.flush)
    if status == "ok":
        assert st_flush == "ok", f"flush raised {flushed!r} though extract works"
        got = np.concatenate([pushed, flushed], axis=1)
        assert np.array_equal(got, ref)
    else:  # uncentered and shorter than n_fft: no frame at all
        assert pushed.shape == (config.n_features, 0)
        assert st_flush == "raised" or flushed.shape == (config.n_features, 0), flushed


def test_flush_of_empty_stream_does_not_panic():
    s = F.Stream(cfg("all"))
    status, res = call_guarded(s.flush)
    assert status == "raised" or (
        res.shape == (F.FeatureConfig(features=ALL_FEATURES).n_features, 0) and res.dtype == np.float32
    )


def test_stream_reset():
    config = cfg("all_reflect")
    a = speech()[:12345]
    b = get_signal("emodb", 16000)[:20000]
    s = F.Stream(config)
    s.push(a)
    s.reset()
    outs = [s.push(c) for c in split(b, 999)] + [s.flush()]
    assert np.array_equal(np.concatenate(outs, axis=1), F.extract(b, config))
    # reuse after flush + reset
    s.reset()
    outs = [s.push(b)] + [s.flush()]
    assert np.array_equal(np.concatenate(outs, axis=1), F.extract(b, config))


def test_config_has_no_top_db():
    """top_db clips relative to the loudest frame of a whole signal, which a stream cannot know,
    so a FeatureConfig has no such field (dB values depend on their own frame only)."""
    with pytest.raises(TypeError):
        F.FeatureConfig(top_db=80.0)
    e = expect_value_error(lambda: F.FeatureConfig.from_dict({**F.FeatureConfig().to_dict(), "top_db": 80.0}))
    assert "top_db" in str(e)


def test_extract_with_ref_and_amin_matches_public_functions():
    c = F.FeatureConfig(features=("log_melspectrogram", "mfcc"), ref=0.01, amin=1e-8)
    y = speech()
    out = F.extract(y, c)
    row = 0
    for feat in c.features:
        block = _public_block(feat, y, c)
        assert_rel_peak(
            out[row : row + block.shape[0]],
            block.astype(np.float64),
            BLOCK_TOL,
            f"extract block {feat} ref=0.01 amin=1e-8",
        )
        row += block.shape[0]


def test_push_returns_frames_incrementally():
    """A real stream must emit frames before flush once enough audio arrived."""
    config = cfg("mfcc_default")
    y = speech()
    s = F.Stream(config)
    got = sum(s.push(c).shape[1] for c in split(y, 1600))
    total = F.extract(y, config).shape[1]
    # at most the last ~ n_fft/hop frames can be held back for end padding
    assert got >= total - (config.n_fft // config.hop_length + 2), (got, total)


# ---------------------------------------------------------------------------------------------
# extract row blocks == public functions
# ---------------------------------------------------------------------------------------------


def _public_block(name, y, c):
    stft_kw = dict(
        n_fft=c.n_fft,
        hop_length=c.hop_length,
        win_length=c.win_length,
        window=c.window,
        center=c.center,
        pad_mode=c.pad_mode,
    )
    mel_kw = dict(sr=c.sr, power=c.power, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=c.htk, **stft_kw)
    frame_kw = dict(frame_length=c.n_fft, hop_length=c.hop_length, center=c.center, pad_mode=c.pad_mode)
    if name == "mfcc":
        if c.ref == 1.0 and c.amin == 1e-10:
            return F.mfcc(
                y=y, n_mfcc=c.n_mfcc, lifter=c.lifter, mel_norm=c.mel_norm, top_db=getattr(c, "top_db", None), **mel_kw
            )
        # mfcc() has no ref/amin: the config's dB step is the S= route
        log_mel = F.power_to_db(
            F.melspectrogram(y=y, norm=c.mel_norm, **mel_kw), ref=c.ref, amin=c.amin, top_db=getattr(c, "top_db", None)
        )
        return F.mfcc(S=log_mel, n_mfcc=c.n_mfcc, lifter=c.lifter)
    if name == "melspectrogram":
        return F.melspectrogram(y=y, norm=c.mel_norm, **mel_kw)
    if name == "log_melspectrogram":
        return F.power_to_db(
            F.melspectrogram(y=y, norm=c.mel_norm, **mel_kw), ref=c.ref, amin=c.amin, top_db=getattr(c, "top_db", None)
        )
    if name == "rms":
        return F.rms(y=y, **frame_kw)
    if name == "energy_entropy":
        return F.energy_entropy(y=y, **frame_kw)
    if name == "zero_crossing_rate":  # extract pads with the config's pad_mode (librosa's zcr uses 'edge')
        yp = np.pad(y, c.n_fft // 2, mode=c.pad_mode) if c.center else y
        return F.zero_crossing_rate(yp, frame_length=c.n_fft, hop_length=c.hop_length, center=False)
    if name == "chroma_stft":
        return F.chroma_stft(y=y, sr=c.sr, tuning=0.0, n_chroma=c.n_chroma, **stft_kw)
    if name in ("spectral_flatness", "spectral_flux", "spectral_entropy"):
        return getattr(F, name)(y=y, **stft_kw)
    return getattr(F, name)(y=y, sr=c.sr, **stft_kw)


@pytest.mark.parametrize(
    "name", ["all", "all_uncentered", "all_reflect", "all_edge", "win400", "hop_not_dividing", "big_22k", "log_mel_dB"]
)
def test_extract_blocks_equal_public_functions(name):
    if name == "log_mel_dB":
        c = F.FeatureConfig(features=("log_melspectrogram", "mfcc"), ref=0.01, amin=1e-8)
    else:
        c = cfg(name)
    y = speech(c.sr)
    out = F.extract(y, c)
    assert out.dtype == np.float32 and out.shape[0] == c.n_features
    row = 0
    for feat in c.features:
        block = _public_block(feat, y, c)
        assert_rel_peak(out[row : row + block.shape[0]], block.astype(np.float64), BLOCK_TOL, f"extract block {feat}")
        row += block.shape[0]
    assert row == out.shape[0]


def test_extract_contrast_is_per_frame_contrast_in_db():
    """Without librosa's whole-signal top_db=80 clip (not streamable), the block equals
    spectral_contrast on a signal whose bands all lie within 80 dB of each other."""
    c = cfg("contrast")
    y = get_signal("noise", 16000)
    out = F.extract(y, c)
    ref = F.spectral_contrast(y=y, sr=16000, n_fft=1024, win_length=800, hop_length=160, fmin=100.0)
    assert out.shape[0] == 1 + 7 + 40
    np.testing.assert_allclose(out[1:8], ref, atol=1e-3)
    with pytest.raises(ValueError):
        F.extract(
            y, F.FeatureConfig(features=("spectral_contrast",), n_fft=1024, contrast_fmin=400.0)
        )  # 400 x 2^6 > 8 kHz


def test_extract_default_is_40_mfcc():
    y = speech()
    c = F.FeatureConfig()
    ref = F.mfcc(y=y, sr=16000, n_mfcc=40, n_fft=512, hop_length=160, n_mels=40, top_db=None)
    assert_rel_peak(F.extract(y, c), ref.astype(np.float64), BLOCK_TOL, "extract(default)")


# ---------------------------------------------------------------------------------------------
# extract_many
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [1, 2, None])
def test_extract_many_equals_extract(n_jobs):
    config = cfg("all")
    base = speech()
    clips = [
        base,
        base[:5000].astype(np.float64),
        (get_signal("emodb", 16000) * 32767).astype(np.int16),
        base[1000:1600],
        get_signal("noise", 16000)[:12345],
        base[:1],
    ]
    out = F.extract_many(clips, config, n_jobs=n_jobs)
    assert isinstance(out, list) and len(out) == len(clips)
    for i, (o, c) in enumerate(zip(out, clips)):
        ref = F.extract(c, config)
        assert o.shape == ref.shape and o.dtype == np.float32, i
        assert np.array_equal(o, ref), f"extract_many clip {i} differs from extract"


def test_extract_many_empty_list_and_bad_clip():
    config = cfg("mfcc_default")
    assert F.extract_many([], config, n_jobs=2) == []
    clips = [speech()[:4000], np.array([np.nan] * 1000, dtype=np.float32)]
    expect_value_error(F.extract_many, clips, config, n_jobs=2)


# ---------------------------------------------------------------------------------------------
# FeatureConfig
# ---------------------------------------------------------------------------------------------


def test_feature_config_defaults():
    c = F.FeatureConfig()
    expected = dict(
        sr=16000,
        n_fft=512,
        hop_length=160,
        win_length=None,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=40,
        fmin=0.0,
        fmax=None,
        htk=False,
        mel_norm="slaney",
        n_mfcc=40,
        lifter=0.0,
        ref=1.0,
        amin=1e-10,
        n_chroma=12,
    )
    for k, v in expected.items():
        assert getattr(c, k) == v, k
    assert tuple(c.features) == ("mfcc",)
    assert c.n_features == 40
    assert not hasattr(c, "top_db")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_n_features_matches_extract(name):
    c = cfg(name)
    y = speech(c.sr)[:8000]
    assert F.extract(y, c).shape[0] == c.n_features
    sizes = {
        "mfcc": c.n_mfcc,
        "log_melspectrogram": c.n_mels,
        "melspectrogram": c.n_mels,
        "chroma_stft": c.n_chroma,
        "spectral_contrast": c.contrast_bands + 1,
    }
    assert c.n_features == sum(sizes.get(f, 1) for f in c.features)


@pytest.mark.parametrize("name", list(CONFIGS) + ["dB"])
def test_config_round_trip(name):
    c = F.FeatureConfig(ref=0.5, amin=1e-6, mel_norm=None, htk=True, fmax=7000.0) if name == "dB" else cfg(name)
    d = c.to_dict()
    assert isinstance(d, dict)
    assert F.FeatureConfig.from_dict(d) == c
    # to_dict is meant for saving next to a model: it must survive JSON
    assert F.FeatureConfig.from_dict(json.loads(json.dumps(d))) == c


def test_config_is_frozen():
    c = F.FeatureConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.n_fft = 1024


@pytest.mark.parametrize(
    "bad",
    [
        {"n_fft": 512, "bogus_key": 1},
        {"features": ["mfcc", "not_a_feature"]},
        {"features": ["MFCC"]},
    ],
)
def test_from_dict_rejects_bad_input(bad):
    e = expect_value_error(F.FeatureConfig.from_dict, bad)
    key = "bogus_key" if "bogus_key" in bad else "features"
    assert key in str(e) or ("not_a_feature" in str(e)) or ("MFCC" in str(e)), str(e)


def test_config_rejects_bad_feature_name():
    expect_value_error(F.FeatureConfig, features=("mfcc", "nope"))


@pytest.mark.parametrize(
    "n_fft,hop,center", [(512, 160, True), (400, 160, True), (511, 100, True), (512, 160, False), (256, 300, False)]
)
@pytest.mark.parametrize("n", [1, 255, 256, 511, 512, 513, 1600, 4001])
def test_n_frames_predicts_extract(n_fft, hop, center, n):
    c = F.FeatureConfig(n_fft=n_fft, hop_length=hop, center=center)
    y = speech()[:n]
    if c.n_frames(n) == 0:
        expect_value_error(lambda: F.extract(y, c))
    else:
        assert F.extract(y, c).shape[1] == c.n_frames(n)
