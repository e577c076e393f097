"""Trains the speech/non-speech model of :mod:`ser_edge.pipeline.speech` and writes it (int8
LiteRT) to ``python/ser_edge/models/speech``.

Speech: EMO-DB (all speakers but 15 and 16), RAVDESS actors 01-16, half of TESS and part of
TurEV-DB, each clean, mixed with UrbanSound8K **fold 1** at -5..20 dB SNR, and some through the
warehouse and concert-hall impulse responses. Not speech: fold 1 at -50..-10 dBFS and the
synthetic sounds of :mod:`ser_edge.listen.sounds`. Fold 2, the house rooms and the held-out
speakers (EMO-DB 15/16, RAVDESS 17-20) are never read here; ``python -m
ser_edge.listen.gatebench`` evaluates on them.

Run: ``python -m ser_edge.training.speech_gate --members 3 [--data ../shared/data] [--out DIR]``
(the packaged model: three networks trained apart on all of fold 1, their mean probability is
the model). ``--validate`` trains on 4 in 5 fold-1 recordings and reports false events per
hour on the others (how the utterance rule was chosen).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ser_edge.listen.gatebench import validation_recording
from ser_edge.listen.sounds import SOUNDS
from ser_edge.pipeline import speech as S

HELD_OUT_EMODB = ("15", "16")
HELD_OUT_RAVDESS = tuple(f"Actor_{a:02d}" for a in range(17, 21))
SR = S.FEATURES.sr


def speech_files(data: Path, rng: np.random.Generator) -> list[Path]:
    """Training speakers' recordings (held-out speakers excluded)."""
    emodb = [p for p in sorted((data / "emodb" / "wav").glob("*.wav")) if p.name[:2] not in HELD_OUT_EMODB]
    ravdess = [p for p in sorted((data / "ravdess").glob("Actor_*/*.flac")) if p.parent.name not in HELD_OUT_RAVDESS]
    tess = sorted((data / "tess").glob("*/*.flac"))
    turev = sorted((data / "turev").glob("*/*.flac"))
    pick = lambda xs, n: [xs[i] for i in sorted(rng.permutation(len(xs))[:n])]  # noqa: E731
    return emodb + pick(ravdess, 700) + pick(tess, 500) + pick(turev, 500)


def _level(y: np.ndarray, db: float) -> np.ndarray:
    """``y`` scaled so that its loudest 25 ms frames average ``db`` dBFS (RMS)."""
    n = 400
    frames = y[: len(y) // n * n].reshape(-1, n) if len(y) >= n else y[None]
    e = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    top = np.sort(e)[-max(1, len(e) // 4) :].mean()
    return (y * (10 ** (db / 20) / max(top, 1e-9))).astype(np.float32)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)) + 1e-12)


def _mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    if len(noise) < len(speech):
        noise = np.tile(noise, -(-len(speech) // len(noise)))
    a = int(rng.integers(0, len(noise) - len(speech) + 1))
    n = noise[a : a + len(speech)]
    gain = _rms(speech) / (_rms(n) * 10 ** (snr_db / 20))
    return (speech + gain * n).astype(np.float32)


def _voiced(y: np.ndarray) -> np.ndarray:
    """Per log-mel frame: the clean clip's frame is within 25 dB of its loudest."""
    f = S.frames(y)
    e = 10 * np.log10(np.mean(10 ** (f / 10), axis=1) + 1e-12)
    return e > e.max() - 25.0


def _speech_blocks(
    y_clean: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` positive and ``n // 2`` negative blocks of ``y`` (``y_clean`` gives the labels)."""
    voiced = _voiced(y_clean)
    f = S.frames(y)
    ends = np.arange(S.STEP, len(f) + 1, S.STEP)
    mid = np.array([voiced[max(0, e - 48) : max(0, e - 16)].mean() if e > 16 else 0.0 for e in ends])
    anyv = np.array([voiced[max(0, e - S.CONTEXT) : e].any() for e in ends])
    pos = ends[mid >= 0.5]
    neg = ends[~anyv]
    pos = rng.permutation(pos)[:n]
    neg = rng.permutation(neg)[: n // 2]
    x = S.blocks(f, np.concatenate([pos, neg]))
    return x, np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])


def _nonspeech_blocks(y: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    f = S.frames(y)
    ends = np.arange(S.STEP, len(f) + 1, S.STEP)
    return S.blocks(f, rng.permutation(ends)[:n])


def _load(path: Path) -> np.ndarray:
    from ser_edge.audio import load

    return load(path, sr=SR)[0]


def _reverb(y: np.ndarray, rir: np.ndarray) -> np.ndarray:
    n = len(y) + len(rir) - 1
    out = np.fft.irfft(np.fft.rfft(y, n) * np.fft.rfft(rir, n), n)[: len(y)]
    return (out * (_rms(y) / _rms(out))).astype(np.float32)


def _hiss(n: int, rng: np.random.Generator) -> np.ndarray:
    """A microphone's self-noise (white, -85 to -50 dBFS RMS) or, one time in four, digital silence."""
    if rng.random() < 0.25:
        return np.zeros(n, np.float32)
    return (rng.standard_normal(n) * 10 ** (rng.uniform(-85, -50) / 20)).astype(np.float32)


def _in_a_gap(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``z`` after 0.2-1.5 s and before 0-0.5 s of hiss, with the hiss underneath: a sound as the
    gate meets it, onset included."""
    a, b = int(rng.uniform(0.2, 1.5) * SR), int(rng.uniform(0.0, 0.5) * SR)
    out = _hiss(a + len(z) + b, rng)
    out[a : a + len(z)] += z
    return out


def speech_set(data: Path, seed: int = 0, log: Any = print) -> tuple[np.ndarray, np.ndarray]:
    """Blocks from the training speakers' speech (clean in hiss; with fold-1 noise at -5..20 dB
    SNR, a third through a training room): inputs float16 and labels (speech 1, pauses 0)."""
    rng = np.random.default_rng(seed)
    noises = [_load(p) for p in sorted((data / "noise" / "urbansound8k" / "fold1").glob("*.ogg"))]
    rirs = [_load(p) for d in ("warehouse", "concert-hall") for p in sorted((data / "rir" / d).glob("*.flac"))]
    files = speech_files(data, rng)
    log(f"speech: {len(files)} files; fold-1 noise: {len(noises)} clips; RIRs: {len(rirs)}")
    xs, ys = [], []
    for i, p in enumerate(files):
        clean = _level(_load(p), rng.uniform(-40, -12))
        pad = np.zeros(int(rng.uniform(0.0, 0.8) * SR), np.float32)
        clean = np.concatenate([pad, clean, pad[: len(pad) // 2]])
        hissy = (clean + _hiss(len(clean), rng)).astype(np.float32)
        for c, y, n in ((clean, hissy, 4), (clean, None, 5)):
            if y is None:
                src = _reverb(clean, rirs[int(rng.integers(len(rirs)))]) if rng.random() < 0.3 else clean
                y = _mix(src, noises[int(rng.integers(len(noises)))], rng.uniform(-5, 20), rng)
            x, lab = _speech_blocks(c, y, rng, n)
            xs.append(x.astype(np.float16))
            ys.append(lab.astype(np.float32))
        if i % 500 == 0:
            log(f"  speech {i}/{len(files)}")
    return np.concatenate(xs), np.concatenate(ys)


def fold1_files(data: Path, part: str = "all") -> list[Path]:
    """Fold-1 clips; ``part`` "train" or "val" splits them by recording (freesound id, 1 in 5
    recordings for validation) so that validation sounds come from recordings never trained on."""
    files = sorted((data / "noise" / "urbansound8k" / "fold1").glob("*.ogg"))
    if part == "all":
        return files
    return [p for p in files if validation_recording(p) == (part == "val")]


def _augment(z: np.ndarray, rng: np.random.Generator, rirs: list[np.ndarray]) -> np.ndarray:
    """Another sound of the same kind: faster/slower (pitch with it), a random smooth EQ, a
    random 0.5-8 Hz amplitude envelope (speech-like rhythm without speech), sometimes a room."""
    from ser_edge.audio import resample

    if rng.random() < 0.7:
        z = resample(z, orig_sr=int(SR * rng.uniform(0.7, 1.4)), target_sr=SR)
    spec = np.fft.rfft(z)
    knots = rng.normal(0.0, 6.0, 8)
    gain_db = np.interp(np.linspace(0, 7, len(spec)), np.arange(8), knots)
    z = np.fft.irfft(spec * 10 ** (gain_db / 20), len(z))
    if rng.random() < 0.5:
        t = np.arange(len(z)) / SR
        env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(0.5, 8.0) * t + rng.uniform(0, 6.3)))
        z = z * env ** rng.uniform(0.5, 3.0)
    if rng.random() < 0.3 and rirs:
        z = _reverb(z.astype(np.float32), rirs[int(rng.integers(len(rirs)))])
    return np.asarray(z, np.float32)


def nonspeech_set(data: Path, seed: int = 0, part: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Blocks of fold-1 sounds (each as it is and in four augmented versions, at -50..-10 dBFS,
    in a gap of hiss) and of the synthetic sounds: inputs float16 and source ids (1 fold-1
    noise, 2 synthetic)."""
    rng = np.random.default_rng(seed + 7)
    noises = [_load(p) for p in fold1_files(data, part)]
    rirs = [_load(p) for d in ("warehouse", "concert-hall") for p in sorted((data / "rir" / d).glob("*.flac"))]
    xs, src = [], []
    for y in noises:
        for k in range(5):
            z = y if k < 1 else _augment(y, rng, rirs)
            if k == 4:  # two sounds at once
                z = z + np.resize(_augment(noises[int(rng.integers(len(noises)))], rng, rirs), len(z)) * rng.uniform(
                    0.3, 1
                )
            xs.append(_nonspeech_blocks(_in_a_gap(_level(z, rng.uniform(-50, -10)), rng), rng, 12).astype(np.float16))
            src.append(np.full(len(xs[-1]), 1, np.int8))
    names = list(SOUNDS)
    for k in range(3000):
        name = names[k % len(names)]
        z = SOUNDS[name](rng.uniform(1.0, 3.0), SR, rng)
        if name not in ("silence", "dc"):
            z = _level(z, rng.uniform(-50, -6))
        if rng.random() < 0.4:  # with a little background
            z = z + _level(np.resize(noises[int(rng.integers(len(noises)))], len(z)), rng.uniform(-70, -45))
        xs.append(_nonspeech_blocks(_in_a_gap(np.asarray(z, np.float32), rng), rng, 10).astype(np.float16))
        src.append(np.full(len(xs[-1]), 2, np.int8))
    return np.concatenate(xs), np.concatenate(src)


def build(
    data: Path, seed: int = 0, cache: Path | None = None, part: str = "all", log: Any = print
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``(n, CONTEXT, n_mels)`` float16, labels (1 = speech) and source ids (0 speech,
    1 fold-1 noise, 2 synthetic). ``cache``: a folder that keeps the speech blocks between runs."""
    f = cache / f"speech-blocks-{seed}.npz" if cache is not None else None
    if f is not None and f.is_file():
        d = np.load(f)
        xs, ys = d["x"], d["y"]
    else:
        xs, ys = speech_set(data, seed, log)
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez(f, x=xs, y=ys)
    xn, sn = nonspeech_set(data, seed, part)
    return (
        np.concatenate([xs, xn]),
        np.concatenate([ys, np.zeros(len(xn), np.float32)]),
        np.concatenate([np.zeros(len(xs), np.int8), sn]),
    )


def make_model() -> Any:
    import tf_keras as K

    inp = K.Input((S.CONTEXT, S.FEATURES.n_mels))
    h = K.layers.Conv1D(32, 5, strides=2, activation="relu")(inp)
    h = K.layers.Conv1D(48, 5, strides=2, activation="relu")(h)
    h = K.layers.Conv1D(48, 3, activation="relu")(h)
    h = K.layers.Concatenate()([K.layers.GlobalAveragePooling1D()(h), K.layers.GlobalMaxPooling1D()(h)])
    h = K.layers.Dense(32, activation="relu")(h)
    out = K.layers.Dense(1, activation="sigmoid")(h)
    model = K.Model(inp, out)
    model.compile(optimizer=K.optimizers.Adam(2e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit_member(
    xt: np.ndarray, yt: np.ndarray, wt: np.ndarray, val: tuple[Any, ...], epochs: int, rng: np.random.Generator
) -> tuple[Any, int]:
    """One network: ``epochs`` on the blocks, then a shorter pass in which the non-speech blocks it
    still takes for speech (p >= 0.2: the hard negatives) weigh 4x. Returns it and their count."""
    model = make_model()
    steps = len(xt) // 256
    model.fit(batches(xt, yt, wt, 256, rng), steps_per_epoch=steps, epochs=epochs, verbose=2, validation_data=val)
    p = model.predict(xt.astype(np.float32), batch_size=1024, verbose=0)[:, 0]
    hard = (yt == 0) & (p >= 0.2)
    print(f"hard negatives: {int(hard.sum())} of {int((yt == 0).sum())}", flush=True)
    w2 = np.where(hard, wt * 4, wt).astype(np.float32)
    model.fit(
        batches(xt, yt, w2, 256, rng), steps_per_epoch=steps, epochs=max(1, epochs // 3), verbose=2, validation_data=val
    )
    return model, int(hard.sum())


def average(nets: list[Any]) -> Any:
    """One model whose output is the mean of ``nets``' probabilities (one LiteRT graph)."""
    import tf_keras as K

    if len(nets) == 1:
        return nets[0]
    inp = K.Input((S.CONTEXT, S.FEATURES.n_mels))
    return K.Model(inp, K.layers.Average()([n(inp) for n in nets]))


def batches(x: np.ndarray, y: np.ndarray, w: np.ndarray, size: int, rng: np.random.Generator) -> Iterator[Any]:
    while True:
        order = rng.permutation(len(x))
        for a in range(0, len(x) - size + 1, size):
            i = np.sort(order[a : a + size])
            yield x[i].astype(np.float32), y[i], w[i]


def validate(data: Path, model_dir: Path) -> dict[str, Any]:
    """False utterances per hour on the validation recordings of fold 1 (the gatebench stream),
    for a few decision rules."""
    from ser_edge.listen.gatebench import stream_of
    from ser_edge.pipeline.gate import GateConfig
    from ser_edge.pipeline.speech import SpeechModel, speech_spans

    y = stream_of(fold1_files(data, "val"))
    hours = len(y) / SR / 3600
    model = SpeechModel(model_dir)
    out: dict[str, Any] = {"validation_hours": round(hours, 3)}
    for thr, k, n, frac in ((0.7, 4, 5, 0.0), (0.8, 5, 6, 0.0), (0.8, 5, 6, 0.5), (0.9, 5, 6, 0.5)):
        c = GateConfig(speech_threshold=thr, speech_min=k, speech_window=n, speech_fraction=frac)
        name = f"val_false_per_hour_{thr}_{k}of{n}_fraction{frac}"
        out[name] = round(len(speech_spans(y, SR, c, model=model)) / hours, 1)
        print(name, out[name], flush=True)
    return out


def main(argv: Any = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ser_edge.training.speech_gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(S.MODEL_DIR))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--members", type=int, default=1, help="networks trained apart (seeds), their mean is the model")
    ap.add_argument("--cache", help="keep the speech blocks in this folder between runs")
    ap.add_argument(
        "--validate",
        action="store_true",
        help="train on 4 in 5 fold-1 recordings; report false events per hour on the others",
    )
    args = ap.parse_args(argv)
    import tensorflow as tf

    from ser_edge.training.export import tflite_probabilities, to_tflite

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    x, y, src = build(
        Path(args.data), args.seed, Path(args.cache) if args.cache else None, "train" if args.validate else "all"
    )
    rng = np.random.default_rng(args.seed + 1)
    val = rng.random(len(x)) < 0.1
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())).astype(np.float32)
    print(f"{len(x)} blocks ({int(y.sum())} speech), {time.time() - t0:.0f} s to build", flush=True)
    xt, yt, wt = x[~val], y[~val], w[~val]
    nets, hard_negatives = [], []
    for m in range(args.members):
        tf.keras.utils.set_random_seed(args.seed + 1000 * m)
        net, hard = fit_member(xt, yt, wt, (x[val].astype(np.float32), y[val], w[val]), args.epochs, rng)
        nets.append(net)
        hard_negatives.append(hard)
    model = average(nets)
    tflite = to_tflite(
        model,
        "int8",
        input_shape=(S.CONTEXT, S.FEATURES.n_mels),
        representative=xt[rng.permutation(len(xt))[:300]].astype(np.float32),
    )
    pv = tflite_probabilities(tflite, x[val].astype(np.float32))[:, 0]
    metrics: dict[str, Any] = {"val_blocks": int(val.sum())}
    for s, name in ((0, "speech"), (1, "fold1_noise"), (2, "synthetic")):
        m = src[val] == s
        metrics[f"val_{name}_accuracy_int8"] = round(float(((pv[m] >= 0.5) == (y[val][m] == 1)).mean()), 4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speech.tflite").write_bytes(tflite)
    meta: dict[str, Any] = {
        "format": S.FORMAT,
        "features": S.FEATURES.to_dict(),
        "context": S.CONTEXT,
        "step": S.STEP,
        "sha256": hashlib.sha256(tflite).hexdigest(),
        "bytes": len(tflite),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "training": {
            "command": "python -m ser_edge.training.speech_gate"
            + (f" --members {args.members}" if args.members > 1 else "")
            + (" --validate" if args.validate else ""),
            "seed": args.seed,
            "epochs": args.epochs,
            "members": args.members,
            "hard_negatives": hard_negatives,
            "blocks": int(len(x)),
            "speech_blocks": int(y.sum()),
            "speech": "EMO-DB (not 15/16), RAVDESS 01-16, TESS, TurEV-DB",
            "noise": "UrbanSound8K fold1 (fold2 held out)",
            "rirs": "warehouse, concert-hall",
            "seconds": round(time.time() - t0),
        },
        "metrics": metrics,
    }
    (out / "speech.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    if args.validate:
        metrics.update(validate(Path(args.data), out))
        meta["metrics"] = metrics
        meta["training"]["noise"] = "UrbanSound8K fold1, 4 in 5 recordings (the rest validates)"
        (out / "speech.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
