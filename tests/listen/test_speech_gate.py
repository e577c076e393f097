"""The speech gate: speech passes, sounds that are not speech never do (a test each), through
the gate that ``listen`` and ``predict`` share and through the ``listen`` command itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _listen_support import DATA, SR, listen_cmd

from ser_edge.audio import load, resample
from ser_edge.listen.gatebench import active_rms
from ser_edge.listen.sounds import SOUNDS
from ser_edge.pipeline.gate import GateConfig
from ser_edge.pipeline.speech import SpeechModel, speech_spans

ENERGY = GateConfig(speech=False)
HELD_OUT = [
    DATA / "emodb/wav/15a01Wa.wav",
    DATA / "emodb/wav/16b10Tb.wav",
    DATA / "ravdess/Actor_18/03-01-01-01-01-01-18.flac",
    DATA / "ravdess/Actor_19/03-01-03-02-02-01-19.flac",
]
FOLD2 = DATA / "noise/urbansound8k/fold2"
# a held-out (fold-2) recording: a dog barking on and off
BARKS = FOLD2 / "100652-3-0-0.ogg"
WORDS = [DATA / "turev/Angry/1358_kz_kibir.flac", DATA / "turev/Calm/1984_sk_igde.flac"]  # ~0.5 s of speech each


def at_level(y: np.ndarray, dbfs: float) -> np.ndarray:
    return (y * (10 ** (dbfs / 20) / max(active_rms(y), 1e-12))).astype(np.float32)


def sound(name: str, seconds: float = 8.0, dbfs: float = -20.0, seed: int = 0) -> np.ndarray:
    y = SOUNDS[name](seconds, SR, np.random.default_rng(seed))
    return y if name in ("silence", "dc") else at_level(y, dbfs)


@pytest.mark.parametrize("name", ["silence", "dc", "tone", "chord", "beeping_alarm", "square_wave"])
@pytest.mark.parametrize("dbfs", [-35.0, -15.0])
def test_no_utterance_for_a_sound_that_is_not_speech(name: str, dbfs: float) -> None:
    y = np.concatenate([np.zeros(SR // 2, np.float32), sound(name, dbfs=dbfs), np.zeros(SR // 2, np.float32)])
    assert speech_spans(y, SR) == []


def test_the_energy_gate_alone_would_pass_those_sounds() -> None:
    """What the speech model adds: the energy gate passes a tone, an alarm and a square wave."""
    for name in ("tone", "beeping_alarm", "square_wave"):
        assert speech_spans(np.concatenate([np.zeros(SR, np.float32), sound(name)]), SR, ENERGY), name


@pytest.mark.parametrize("path", HELD_OUT, ids=lambda p: p.name)
def test_held_out_speakers_pass_clean_and_in_10_db_household_noise(path: Path) -> None:
    s = at_level(load(path, sr=SR)[0], -25.0)
    y = np.zeros(len(s) + 3 * SR, np.float32)
    a, b = 2 * SR, 2 * SR + len(s)
    y[a:b] = s
    spans = speech_spans(y, SR)
    assert spans and all(u0 < b and u1 > a for u0, u1 in spans)  # a pause may split it, nothing else
    noise = np.resize(load(FOLD2 / "102858-5-0-0.ogg", sr=SR)[0], len(y))
    noisy = y + noise * (active_rms(s) / 10 ** (10 / 20) / np.sqrt(np.mean(noise**2)))
    assert any(u0 < b and u1 > a for u0, u1 in speech_spans(noisy.astype(np.float32), SR))


@pytest.mark.parametrize("sr", [8000, 44100])
def test_other_rates_are_resampled_for_the_model(sr: int) -> None:
    """A model at another rate (an 8 kHz bundle, a 44.1 kHz microphone) gets the same gate: the
    speech model hears its 16 kHz, boundaries stay in samples at ``sr``."""
    s = at_level(load(HELD_OUT[0], sr=sr)[0], -25.0)
    y = np.concatenate([np.zeros(2 * sr, np.float32), s, np.zeros(sr, np.float32)])
    a, b = 2 * sr, 2 * sr + len(s)
    spans = speech_spans(y, sr)
    assert spans and all(u0 < b and u1 > a for u0, u1 in spans)
    for name in ("beeping_alarm", "chord"):
        assert speech_spans(resample(sound(name, 5.0), orig_sr=SR, target_sr=sr), sr) == [], name


def test_real_household_sounds_of_the_held_out_fold_give_no_utterance() -> None:
    """One clip of each UrbanSound8K class in fold 2 (engine, drill, siren, dog, ...) at -20 dBFS."""
    clips, seen = [], set()
    for p in sorted(FOLD2.glob("*.ogg")):
        cls = p.name.split("-")[1]
        if cls not in seen:
            seen.add(cls)
            clips += [np.zeros(SR, np.float32), at_level(load(p, sr=SR)[0], -20.0)]
    assert len(seen) == 8
    y = np.concatenate(clips)
    assert len(speech_spans(y, SR, ENERGY)) >= 4  # the energy gate alone passes several
    assert speech_spans(y, SR) == []


def test_a_dog_barking_now_and_then_gives_no_utterance() -> None:
    y = np.concatenate([np.zeros(SR, np.float32), at_level(load(BARKS, sr=SR)[0], -25.0), np.zeros(SR, np.float32)])
    assert len(speech_spans(y, SR, ENERGY)) >= 1  # loud enough for the energy gate
    assert speech_spans(y, SR) == []


class _Decisions:
    """A stand-in for the speech model whose decisions repeat ``pattern``: the utterance rule,
    not the model, is under test."""

    def __init__(self, pattern: list[float]) -> None:
        self.pattern, self.n = pattern, 0

    def probability(self, x: np.ndarray) -> np.ndarray:
        out = [self.pattern[(self.n + i) % len(self.pattern)] for i in range(len(x))]
        self.n += len(x)
        return np.array(out, np.float32)


@pytest.mark.parametrize(
    ("hits", "misses", "passes"),
    [(6, 12, False), (6, 3, True), (6, 6, True)],  # speech-probable 1/3, 2/3, 1/2 of the time
)
def test_the_utterance_rule_drops_sounds_speech_like_now_and_then(hits: int, misses: int, passes: bool) -> None:
    """Runs of ``hits`` speech-probable decisions between ``misses`` others, on one 6 s sound the
    energy gate holds open: step 1 (5 of 6) passes each run; step 2 (half of the decisions over
    15) passes only sounds that are speech-probable at least half of the time."""
    y = np.concatenate([np.zeros(SR, np.float32), sound("chord", 6.0, -25.0), np.zeros(SR, np.float32)])
    pattern = [0.95] * hits + [0.1] * misses
    assert len(speech_spans(y, SR, GateConfig(speech_fraction=0.0), model=_Decisions(pattern))) == 1  # type: ignore[arg-type]
    assert len(speech_spans(y, SR, model=_Decisions(pattern))) == int(passes)  # type: ignore[arg-type]


@pytest.mark.parametrize("dbfs", [-35.0, -25.0, -15.0])
@pytest.mark.parametrize("path", WORDS, ids=lambda p: p.name)
def test_a_single_short_word_is_an_utterance(path: Path, dbfs: float) -> None:
    """A word too short to hold ``speech_window`` decisions still passes (judged at its end)."""
    s = at_level(load(path, sr=SR)[0], dbfs)
    y = np.concatenate([np.zeros(SR, np.float32), s, np.zeros(SR, np.float32)])
    spans = speech_spans(y, SR)
    assert len(spans) == 1 and spans[0][0] < SR + len(s) and spans[0][1] > SR
    assert speech_spans(y, SR, chunk=0.0123) == spans


def test_speech_gate_boundaries_do_not_depend_on_chunking() -> None:
    s = at_level(load(HELD_OUT[0], sr=SR)[0], -25.0)
    y = np.concatenate([np.zeros(SR, np.float32), s, sound("beeping_alarm", 3.0), s, np.zeros(SR, np.float32)])
    spans = speech_spans(y, SR)
    assert len(spans) >= 1
    assert speech_spans(y, SR, chunk=0.0123) == spans
    assert speech_spans(y, SR, chunk=0.5) == spans


def test_bad_settings_and_rates_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speech_threshold"):
        GateConfig(speech_threshold=1.5)
    with pytest.raises(ValueError, match="speech_min"):
        GateConfig(speech_min=6, speech_window=5)
    with pytest.raises(ValueError, match="speech_fraction"):
        GateConfig(speech_fraction=1.5)
    with pytest.raises(ValueError, match="speech_span"):
        GateConfig(speech_span=0)
    with pytest.raises(ValueError, match="speech model"):
        SpeechModel(tmp_path)


def test_listen_emits_nothing_for_an_alarm_and_a_tone_but_does_for_speech(tmp_path: Path) -> None:
    s = at_level(load(HELD_OUT[2], sr=SR)[0], -25.0)
    z = np.zeros(SR, np.float32)
    y = np.concatenate([z, sound("beeping_alarm", 5.0), z, sound("tone", 5.0), z, s, z])
    f = tmp_path / "alarm-tone-speech.wav"
    sf.write(f, y, SR, subtype="PCM_16")
    r = subprocess.run(listen_cmd("--source", str(f)), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    utts = [e for e in map(json.loads, r.stdout.splitlines()) if e["type"] == "utterance"]
    speech_start = (3 * SR + 10 * SR) / SR
    assert len(utts) == 1 and utts[0]["end"] > speech_start, utts
    r = subprocess.run(listen_cmd("--source", str(f), "--no-speech-gate"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len([e for e in map(json.loads, r.stdout.splitlines()) if e["type"] == "utterance"]) >= 3


def test_the_bench_rooms_start_at_the_direct_path() -> None:
    """``gatebench --rir`` takes the room benchmark's ``reverberate``: a response's leading silence
    (the sound's travel time) is dropped: a delayed impulse with an echo gives the clip and its
    echo (at the clip's RMS), not a shifted clip."""
    from ser_edge.training.augment import reverberate

    y = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    rir = np.zeros(300, np.float32)
    rir[100], rir[250] = 1.0, 0.5
    out = reverberate(y, rir)
    assert len(out) == len(y)  # the room benchmark's clips keep their length
    ref = y.astype(np.float64).copy()
    ref[150:] += 0.5 * y[:850]
    ref *= np.sqrt(np.mean(y.astype(np.float64) ** 2) / np.mean(ref**2))
    np.testing.assert_allclose(out[:150], ref[:150], atol=1e-5)
    np.testing.assert_allclose(out[150:1000], ref[150:], atol=1e-5)
