"""InputConfig: the one description of a model's input, and the flow audio -> model input."""

import json
from pathlib import Path

import numpy as np
import pytest

import ser_edge.features as F
from ser_edge.audio import load
from ser_edge.inputs import LOG_EPS, STATS, Adapter, FrameStats, InputConfig, normalize

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SPEECH = DATA / "emodb" / "wav" / "03a01Fa.wav"
CFG = InputConfig()


@pytest.fixture(scope="module")
def speech():
    return load(SPEECH, sr=16000)[0]


def test_default_input_is_the_documented_recipe():
    assert CFG.n_frame_features == 211
    assert CFG.input_shape == (len(STATS) * 211,)
    assert CFG.sr == 16000
    fc = CFG.features
    assert (fc.n_fft, fc.win_length, fc.hop_length, fc.n_mels, fc.n_mfcc) == (1024, 800, 160, 64, 40)


def test_frames_are_the_feature_core_plus_logs_and_deltas(speech):
    x = CFG.frames(speech)
    fc = CFG.features
    assert x.shape == (fc.n_frames(len(speech)), 211) and x.dtype == np.float32
    kw = dict(sr=16000, n_fft=1024, win_length=800, hop_length=160)
    mel = F.power_to_db(F.melspectrogram(y=speech, n_mels=64, fmax=8000.0, **kw), top_db=None)
    np.testing.assert_allclose(x[:, :64], mel.T, atol=1e-3)
    m = F.mfcc(y=speech, n_mfcc=40, n_mels=64, fmax=8000.0, top_db=None, **kw)
    np.testing.assert_allclose(x[:, 64:104], m.T, atol=1e-2)
    rms = F.rms(y=speech, frame_length=1024, hop_length=160)[0]
    np.testing.assert_allclose(x[:, CFG.row("rms")], np.log(rms + LOG_EPS), atol=1e-4)
    d1 = F.delta(x[:, 64:104].T, width=9)
    d2 = F.delta(x[:, 64:104].T, width=9, order=2)
    np.testing.assert_allclose(x[:, 211 - 80 : 211 - 40], d1.T, atol=1e-5)
    np.testing.assert_allclose(x[:, 211 - 40 :], d2.T, atol=1e-5)


def test_voice_gate_drops_silence_and_keeps_short_clips_whole(speech):
    silence = np.zeros(16000, np.float32)
    padded = np.concatenate([silence, speech, silence])
    frames = CFG.frames(padded)
    voiced = CFG.voiced(frames)
    assert len(voiced) < len(frames) - 150  # most of the 2 s of silence goes
    assert len(CFG.voiced(frames[:3])) == 3  # fewer than min_frames pass: keep all
    assert len(InputConfig(vad_db=None).voiced(frames)) == len(frames)


def test_noise_floor_gate_drops_pauses_filled_with_noise(speech):
    pause = np.zeros(16000, np.float32)
    y = np.concatenate([pause, speech, pause])
    speech_rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    noisy = y + np.random.default_rng(0).standard_normal(len(y)).astype(np.float32) * speech_rms / 10 ** (15 / 20)
    level_only, floor = CFG, InputConfig(vad_floor_db=6.0)
    frames = CFG.frames(noisy)
    pause_frames = np.r_[np.arange(20, 80), np.arange(len(frames) - 80, len(frames) - 20)]  # well inside the pauses
    kept = lambda cfg: set(np.flatnonzero(cfg.voiced_mask(frames[:, CFG.row("rms")])))  # noqa: E731
    assert len(kept(level_only) & set(pause_frames)) > 100  # 15 dB down: the level gate keeps the noise
    assert len(kept(floor) & set(pause_frames)) < 10  # 6 dB above the floor: the pauses go
    assert len(kept(floor)) > 0.3 * len(CFG.voiced(CFG.frames(speech)))  # and speech stays
    quiet = InputConfig(vad_floor_db=6.0).frames(pause + 1e-4)  # no level above the floor: keep all
    assert len(InputConfig(vad_floor_db=6.0).voiced(quiet)) == len(quiet)


def test_stats_pooling_is_mean_std_and_percentiles():
    z = np.random.default_rng(1).standard_normal((50, 211)).astype(np.float32)
    v = CFG.pool(z)
    want = np.concatenate([z.mean(0), z.std(0), *np.percentile(z, (10, 50, 90), axis=0)])
    np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-6)


def test_sequence_pooling_crops_the_centre_and_pads_with_zeros():
    cfg = InputConfig(pooling="sequence", seq_frames=10)
    z = np.arange(30 * 211, dtype=np.float32).reshape(30, 211)
    np.testing.assert_array_equal(cfg.pool(z), z[10:20])
    short = cfg.pool(z[:4])
    np.testing.assert_array_equal(short[:4], z[:4])
    assert not short[4:].any() and cfg.input_shape == (10, 211)


def test_no_frames_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        CFG.pool(np.zeros((0, 211), np.float32))


@pytest.mark.parametrize(
    "bad, match", [(np.zeros(0, np.float32), "empty"), (np.full(1600, np.nan, np.float32), "finite|NaN")]
)
def test_bad_audio_is_an_error(bad, match):
    with pytest.raises(ValueError, match=match):
        CFG.frames(bad)


def test_round_trip_through_json():
    cfg = InputConfig(deltas=1, vad_db=25.0, pooling="sequence", seq_frames=200, normalization="global")
    again = InputConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.features == cfg.features


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(deltas=3), "deltas=3"),
        (dict(pooling="max"), "pooling='max'"),
        (dict(normalization="utterance"), "normalization='utterance'"),
        (dict(vad_db=-3), "vad_db=-3"),
        (dict(features=F.FeatureConfig(features=("mfcc",))), "vad_db and vad_floor_db need 'rms'"),
        (dict(features=F.FeatureConfig(features=("rms",))), "deltas need 'mfcc'"),
    ],
)
def test_invalid_configuration_names_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InputConfig(**kwargs)


def test_unknown_keys_are_an_error():
    with pytest.raises(ValueError, match="unknown keys: colour"):
        InputConfig.from_dict({**CFG.to_dict(), "colour": 1})


def test_frame_stats_merge_equals_the_whole():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 7)) * rng.uniform(0.1, 9, 7) + rng.uniform(-5, 5, 7)
    s = FrameStats.empty(7)
    for part in np.split(x, [1, 40, 41, 200]):
        s.add(part)
    assert s.count == 300
    np.testing.assert_allclose(s.mean, x.mean(0))
    np.testing.assert_allclose(s.std, x.std(0))


def test_adapter_moves_from_the_prior_to_the_speaker():
    rng = np.random.default_rng(3)
    speaker = (rng.standard_normal((20000, 4)) * 2 + 5).astype(np.float32)
    a = Adapter(np.zeros(4), np.ones(4), prior_frames=100)
    np.testing.assert_allclose(a.normalize(speaker[:5]), normalize(speaker[:5], np.zeros(4), np.ones(4)))
    a.update(speaker)
    z = a.normalize(speaker)
    assert np.all(np.abs(z.mean(0)) < 0.05) and np.all(np.abs(z.std(0) - 1) < 0.05)
    frozen = Adapter(np.zeros(4), np.ones(4), prior_frames=100, adapt=False)
    frozen.update(speaker)
    assert frozen.heard.count == 0
    a.reset()
    assert a.heard.count == 0
