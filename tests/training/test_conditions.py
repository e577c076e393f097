"""Acoustic conditions on real speech, real household sounds and measured rooms; the room
benchmark's scoring through the shipped path (int8 bundle, LiteRT, Recognizer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_data import EMODB, NOISE, RIR

from ser_edge.audio import load
from ser_edge.bundle import load_bundle
from ser_edge.runtime import Recognizer
from ser_edge.training.augment import active_rms, decay_time, mix_at_snr, retime_rir, reverberate
from ser_edge.training.conditions import Degrader, RoomAugmentation, Step, parse_condition
from ser_edge.training.corpora import load_corpus
from ser_edge.training.evaluate import score_clips

SR = 16000
FOLD2 = str(NOISE / "fold2")
HOUSE = str(RIR / "house")


@pytest.fixture(scope="module")
def clips() -> list:
    """Two EMO-DB speakers, every emotion (neutral included)."""
    return [c for c in load_corpus("emodb", EMODB) if c.speaker in ("03", "08")][::4]


def snr_of(clean: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - clean
    return 20 * np.log10(active_rms(clean, SR) / np.sqrt(np.mean(noise**2)))


def test_parse_condition() -> None:
    assert parse_condition("clean") == ()
    assert parse_condition(f"noise:{FOLD2}@-5") == (Step("noise", folder=FOLD2, snr=-5.0),)
    assert parse_condition("babble:4@10.5") == (Step("babble", n=4, snr=10.5),)
    assert parse_condition(f"reverb:{HOUSE}+white@0") == (Step("reverb", folder=HOUSE), Step("white", snr=0.0))
    assert parse_condition(f"reverb:{HOUSE}~0.35") == (Step("reverb", folder=HOUSE, t60=0.35),)
    for bad in ("noise:@10", "babble:0@10", "reverb:x@3", "reverb:x~", "reverb:x~fast", "fan", "white@loud", ""):
        with pytest.raises(ValueError, match="is not clean, noise"):
            parse_condition(bad)


@pytest.mark.parametrize("spec, snr", [(f"noise:{FOLD2}@10", 10.0), (f"noise:{FOLD2}@0", 0.0), ("white@20", 20.0)])
def test_noise_at_the_asked_snr(clips: list, spec: str, snr: float) -> None:
    d = Degrader(SR, seed=3)
    clean = load(clips[0].path, sr=SR)[0]
    noisy = d.clip(clips[0], spec)
    assert noisy.shape == clean.shape and np.isfinite(noisy).all()
    assert snr_of(clean, noisy) == pytest.approx(snr, abs=0.01)  # relative to the active speech level


def test_conditions_are_seeded_per_clip(clips: list) -> None:
    spec = f"reverb:{HOUSE}+noise:{FOLD2}@5"
    a = [Degrader(SR, seed=1).clip(c, spec) for c in clips[:3]]
    b = [Degrader(SR, seed=1).clip(c, spec) for c in reversed(clips[:3])][::-1]  # other order, same result
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    other = Degrader(SR, seed=2).clip(clips[0], spec)
    assert not np.array_equal(other, a[0])


def test_reverb_with_a_measured_room(clips: list) -> None:
    clean = load(clips[0].path, sr=SR)[0]
    wet = Degrader(SR).clip(clips[0], f"reverb:{HOUSE}")
    assert wet.shape == clean.shape
    assert np.sqrt(np.mean(wet.astype(np.float64) ** 2)) == pytest.approx(
        np.sqrt(np.mean(clean.astype(np.float64) ** 2)), rel=1e-3
    )
    env = [
        np.sqrt(np.mean(x[: len(x) // 320 * 320].astype(np.float64).reshape(-1, 320) ** 2, axis=1))
        for x in (clean, wet)
    ]
    assert np.corrcoef(*env)[0, 1] > 0.5 and not np.allclose(clean, wet)  # the same speech, smeared by the room
    quiet = env[0] < env[0].max() * 1e-2  # pauses fill with the room's reverberation
    assert quiet.any() and env[1][quiet].mean() > 3 * env[0][quiet].mean()
    # An impulse through a room gives the room's response from its direct path on.
    rir = load(sorted(Path(HOUSE).glob("*.flac"))[0], sr=SR)[0]
    imp = np.zeros(SR, np.float32)
    imp[100] = 1.0
    out = reverberate(imp, rir)
    k = int(np.argmax(np.abs(rir)))
    tail = rir[k : k + SR - 100].astype(np.float64)
    assert np.abs(out[:100]).max() < 1e-12 and np.corrcoef(out[100 : 100 + len(tail)], tail)[0, 1] > 0.9999


def test_retimed_rooms_decay_as_asked(clips: list) -> None:
    """A measured warehouse (T60 about 2.5 s) shortened to a living room's decay; never lengthened."""
    rir = load(sorted((RIR / "warehouse").glob("*.flac"))[0], sr=SR)[0]
    measured = decay_time(rir, SR)
    assert 1.5 < measured < 4.0
    for t60 in (0.3, 0.6, 1.0):
        short = retime_rir(rir, SR, t60)
        k = int(np.argmax(np.abs(rir)))
        assert short.shape == rir.shape and np.array_equal(short[: k + 1], rir[: k + 1])  # the direct path kept
        assert decay_time(short, SR) == pytest.approx(t60, rel=0.25)
    assert np.array_equal(retime_rir(rir, SR, measured + 1.0), rir)
    # The condition uses it: a shorter room leaves less in the pauses than the measured one.
    d = Degrader(SR)
    clean = load(clips[0].path, sr=SR)[0]
    env = [
        np.sqrt(np.mean(x[: len(x) // 320 * 320].astype(np.float64).reshape(-1, 320) ** 2, axis=1))
        for x in (
            clean,
            d.clip(clips[0], f"reverb:{RIR / 'warehouse'}"),
            d.clip(clips[0], f"reverb:{RIR / 'warehouse'}~0.3"),
        )
    ]
    quiet = env[0] < env[0].max() * 1e-2
    assert env[2][quiet].mean() < 0.5 * env[1][quiet].mean()
    with pytest.raises(ValueError, match="t60"):
        retime_rir(rir, SR, 0.0)
    with pytest.raises(ValueError, match="impulse response"):
        decay_time(np.zeros(5), SR)


def test_babble_never_holds_the_speaker(clips: list) -> None:
    own = [c for c in clips if c.speaker == "03"]
    with pytest.raises(ValueError, match="babble needs a pool of other speakers"):
        Degrader(SR, babble_pool=own).clip(own[0], "babble:3@10")
    d = Degrader(SR, babble_pool=clips)
    clean = load(own[0].path, sr=SR)[0]
    mixed = d.clip(own[0], "babble:3@5")
    assert snr_of(clean, mixed) == pytest.approx(5.0, abs=0.01)


def test_mix_at_snr_errors() -> None:
    with pytest.raises(ValueError, match="noise shape"):
        mix_at_snr(np.ones(10, np.float32), np.ones(9), 10.0)
    with pytest.raises(ValueError, match="impulse response"):
        reverberate(np.ones(10, np.float32), np.zeros(5))


def test_room_augmentation(clips: list) -> None:
    aug = RoomAugmentation.from_dict(
        {"noise": str(NOISE / "fold1"), "rir": [str(RIR / "warehouse")], "babble": 2, "snr": [5, 15], "copies": 2},
        babble_pool=clips,
    )
    assert aug.copies == 2 and len(aug.choices()) == 4 and "clean" not in aug.choices()
    y = load(clips[0].path, sr=SR)[0]
    outs = [aug(y, SR, np.random.default_rng(k)) for k in range(6)]
    assert all(o.shape == y.shape and np.isfinite(o).all() for o in outs)
    assert all(not np.array_equal(o, y) for o in outs)
    rooms = RoomAugmentation.from_dict({"rir": str(RIR / "warehouse"), "t60": [0.2, 0.8], "babble": 0})
    assert rooms.t60 == (0.2, 0.8) and rooms.key() != RoomAugmentation.from_dict({"rir": str(RIR / "warehouse")}).key()
    wet = [rooms(y, SR, np.random.default_rng(k)) for k in range(2)]
    assert all(o.shape == y.shape and np.isfinite(o).all() for o in wet)
    with pytest.raises(ValueError, match="t60"):
        RoomAugmentation.from_dict({"t60": [0.8, 0.2]})
    with pytest.raises(ValueError, match="unknown keys: fan"):
        RoomAugmentation.from_dict({"fan": 1})
    with pytest.raises(ValueError, match="low <= high"):
        RoomAugmentation.from_dict({"snr": [20, 0]})
    with pytest.raises(ValueError, match="no such folder"):
        RoomAugmentation.from_dict({"noise": "/nonexistent"})


def test_score_clips_is_the_recognizer(clips: list) -> None:
    bundle = load_bundle()
    res = score_clips(bundle, clips, conditions=("clean", "white@10"), normalizations=("cold", "neutral", "speaker"))
    assert set(res) == {(c, n) for c in ("clean", "white@10") for n in ("cold", "neutral", "speaker")}
    assert res[("white@10", "speaker")]["n"] == len(clips) and res[("white@10", "speaker")]["condition"] == "white@10"
    labels = res[("clean", "cold")]["labels"]
    raw = score_clips(bundle, clips, normalizations=("cold", "neutral"), raw=True)
    cfg = bundle.input
    frames = {c.path: cfg.frames(load(c.path, sr=SR)[0]) for c in clips}
    # cold: what a fresh, non-adapting Recognizer says about each clip on its own
    rec = Recognizer(bundle, adapt=False, allowed=labels)
    assert raw[("clean", "cold")]["pred"] == [rec.predict_frames(frames[c.path]).label for c in clips]
    # neutral: the Adapter heard only the speaker's neutral clips, then classifies every clip
    expect = []
    for spk in ("03", "08"):
        mine = [c for c in clips if c.speaker == spk]
        assert any(c.label == "neutral" for c in mine)
        rec = Recognizer(bundle, allowed=labels)
        for c in mine:
            if c.label == "neutral":
                rec.adapter.update(cfg.voiced(frames[c.path]))
        expect += [rec.predict_frames(frames[c.path], new_frames=0).label for c in mine]
    assert raw[("clean", "neutral")]["pred"] == expect
    assert raw[("clean", "neutral")]["true"] == [c.label for c in clips]
    no_neutral = [c for c in clips if c.label != "neutral"]
    with pytest.raises(ValueError, match="needs neutral clips of every speaker"):
        score_clips(bundle, no_neutral, normalizations=("neutral",))
    with pytest.raises(ValueError, match="normalization='loud'"):
        score_clips(bundle, clips, normalizations=("loud",))


def test_neutral_stats_are_the_enrolled_adapter(clips: list, tmp_path: Path) -> None:
    from ser_edge.inputs import Adapter, InputConfig
    from ser_edge.training import dataset as ds
    from ser_edge.training.trainer import neutral_stats

    cfg = InputConfig()
    mine = [c for c in clips if c.speaker == "08"] + [c for c in clips if c.speaker == "03" and c.label != "neutral"]
    frames = ds.load_frames(mine, cfg, cache_dir=tmp_path)
    population = ds.population_stats(frames)
    got = neutral_stats(frames, population, 300.0)
    assert set(got) == {"emodb/08"}  # speaker 03 has no neutral clip here
    a = Adapter(population.mean, population.std, 300.0)
    for c, x in zip(frames.clips, frames.frames):
        if c.speaker == "08" and c.label == "neutral":
            a.update(x)
    assert a.heard.count > 0
    np.testing.assert_allclose(got["emodb/08"].mean, a.stats().mean)
    np.testing.assert_allclose(got["emodb/08"].std, a.stats().std)
