#!/usr/bin/env python
"""Why is the cold start low? Scratch comparison on cached frame features (issue 11, docs/results.md).

No TensorFlow: sklearn models on utterance functionals, EMO-DB LOSO (train = the other EMO-DB
speakers, with or without RAVDESS) and a validation split (RAVDESS actors 01-16, 4 inner folds of 4
actors, train = the other actors + EMO-DB) that is the one used to choose. Every input variant is
computed from per-clip *raw* functionals (mean/std/p10/p50/p90 of each frame row) and per-speaker
frame statistics: z-scoring frames with any fixed mean/std is an affine map of those functionals.

    PYTHONPATH=python python training/cold-diagnosis.py --out docs/results/room/cold-diagnosis.json

(every split, variant and model: long on a busy machine; ``--splits``, ``--only`` and ``--models`` pick a part,
and ``--out`` adds to the file: the runs behind docs/results.md are listed there). Frames (all 221 rows: the
211 spectral + 10 eGeMAPS-like descriptors, no gate) are cached in
``$SER_EDGE_CACHE``/``~/.cache/ser-edge/frames`` by the trainer's own ``load_frames``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from ser_edge.features.voice import VOICE_FEATURES
from ser_edge.inputs import DEFAULT_FEATURES, InputConfig
from ser_edge.training import dataset as ds
from ser_edge.training.corpora import load_corpus
from ser_edge.training.metrics import report, restricted_argmax
from ser_edge.training.trainer import sample_weights

DATA = "../shared/data"
PERIODIC = ("f0_semitones", "hnr", "jitter", "shimmer")


def functionals(x: np.ndarray) -> np.ndarray:
    """``(5, d)``: mean, std, p10, p50, p90 of frames ``(t, d)`` (zeros for no frames)."""
    if len(x) == 0:
        return np.zeros((5, x.shape[1]), np.float64)
    q = np.percentile(x, (10, 50, 90), axis=0)
    return np.stack([x.mean(0), x.std(0), q[0], q[1], q[2]]).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    ap.add_argument("--splits", default="ravdess-dev,emodb-loso,emodb-loso-emodb-only")
    ap.add_argument("--models", default="mlp,svm")
    ap.add_argument("--out", help="JSON file to add the results to (default: stdout)")
    args = ap.parse_args()

    fc = dataclasses.replace(DEFAULT_FEATURES, features=DEFAULT_FEATURES.features + VOICE_FEATURES)
    cfg = InputConfig(features=fc, vad_db=None)  # every frame; the gates are applied below
    gate = dataclasses.replace(cfg, vad_db=35.0)
    clips = load_corpus("emodb", f"{args.data}/emodb") + load_corpus("ravdess", f"{args.data}/ravdess")
    t0 = time.time()
    frames = ds.load_frames(clips, cfg)
    log(f"frames of {len(clips)} clips in {time.time() - t0:.0f} s")

    n_base = DEFAULT_FEATURES.n_features  # 131 rows, then 10 voice rows, then 80 MFCC deltas
    voice = {name: cfg.row(name) for name in VOICE_FEATURES}
    base_cols = np.r_[0:n_base, n_base + len(VOICE_FEATURES) : cfg.n_frame_features]
    periodic_cols = np.array([voice[n] for n in PERIODIC])
    other_voice_cols = np.array([voice[n] for n in VOICE_FEATURES if n not in PERIODIC])
    cmn_cols = np.r_[
        cfg.row("log_melspectrogram") : cfg.row("log_melspectrogram") + 64, cfg.row("mfcc") : cfg.row("mfcc") + 40
    ]

    # per clip: raw functionals of the gated frames (base rows), of the F0>0 frames (base rows),
    # and the prosody functionals; per speaker: frame statistics of the gated base frames
    raw_gate, raw_voiced, prosody = [], [], []
    all_stats: dict[str, ds.FrameStats] = {}
    for key, x in zip(frames.speakers, frames.frames):
        g = gate.voiced(x)
        f0 = g[:, voice["f0_semitones"]] > 0
        v = g[f0] if f0.sum() >= 5 else g
        raw_gate.append(functionals(g))
        raw_voiced.append(functionals(v[:, base_cols]))
        pros = np.concatenate(
            [functionals(v[:, periodic_cols]).ravel(), functionals(g[:, other_voice_cols]).ravel(), [f0.mean()]]
        )
        if f0.sum() >= 3:  # F0 slope (semitones per second) over the voiced frames
            t = np.flatnonzero(f0) * fc.hop_length / fc.sr
            pros = np.append(pros, np.polyfit(t, g[f0, voice["f0_semitones"]], 1)[0])
        else:
            pros = np.append(pros, 0.0)
        prosody.append(pros)
        all_stats.setdefault(str(key), ds.FrameStats.empty(g.shape[1])).add(g)
    RA = np.stack(raw_gate)  # (n, 5, 221): every row, voice rows pooled like the others
    R = RA[:, :, base_cols]  # the default's 211 rows
    RV = np.stack(raw_voiced)
    P = np.stack(prosody)
    spk = frames.speakers
    corpus = np.array([c.corpus for c in clips])
    actor = np.array([c.speaker for c in clips])
    labels = sorted({c.label for c in clips})
    y = np.array([labels.index(c.label) for c in clips])
    w = sample_weights(clips)
    log(f"functionals in {time.time() - t0:.0f} s")

    def znorm(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Functionals of frames z-scored with (mean, std): affine in the raw functionals."""
        s = std + 1e-5
        out = (raw - mean) / s
        out[:, 1] = raw[:, 1] / s
        return out.reshape(len(raw), -1)

    def frame_norm(raw: np.ndarray, idx: np.ndarray, stats: dict[str, ds.FrameStats] | ds.FrameStats) -> np.ndarray:
        cols = slice(None) if raw.shape[2] == cfg.n_frame_features else base_cols
        if isinstance(stats, ds.FrameStats):
            return znorm(raw[idx], stats.mean[cols], stats.std[cols])
        out = np.empty((len(idx), raw[0].size))
        for s in np.unique(spk[idx]):
            m = spk[idx] == s
            out[m] = znorm(raw[idx][m], stats[s].mean[cols], stats[s].std[cols])
        return out

    spk_stats = all_stats

    def population(idx: np.ndarray) -> ds.FrameStats:
        total = ds.FrameStats.empty(cfg.n_frame_features)
        for s in np.unique(spk[idx]):
            total.merge(all_stats[s])
        return total

    def cmn(raw: np.ndarray) -> np.ndarray:
        """Per-utterance mean removed from the log-mel and MFCC rows (level kept in rms)."""
        out = raw.copy()
        cols = np.searchsorted(base_cols, cmn_cols)
        out[:, 2:, cols] -= raw[:, :1, cols]
        out[:, 0, cols] = 0.0
        return out

    def func_speaker_z(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Utterance functionals z-scored per speaker (eGeMAPS + SVM's adaptation)."""
        out = np.empty((len(idx), v.shape[1]))
        for s in np.unique(spk[idx]):
            m = spk[idx] == s
            out[m] = (v[idx][m] - v[idx][m].mean(0)) / (v[idx][m].std(0) + 1e-5)
        return out

    # A variant: (train inputs, {mode: test inputs}) from (train index, test index).
    Variant = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]

    def frame_variant(raw: np.ndarray, train_mode: str, extra: np.ndarray | None = None) -> Variant:
        def make(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            pop = population(tr)
            xs = {
                m: frame_norm(raw, idx, spk_stats if m == "speaker" else pop)
                for m, idx in (("speaker", tr), ("cold", tr))
            }
            if train_mode == "both":
                xtr = np.concatenate([xs["speaker"], xs["cold"]])
            else:
                xtr = xs[train_mode]
            test = {m: frame_norm(raw, te, spk_stats if m == "speaker" else pop) for m in ("speaker", "cold")}
            if extra is not None:
                e_tr = extra[tr] if train_mode != "both" else np.concatenate([extra[tr], extra[tr]])
                xtr = np.hstack([xtr, e_tr])
                test = {m: np.hstack([v, extra[te]]) for m, v in test.items()}
            return xtr, test

        return make

    def functional_z_variant(raw: np.ndarray, extra: np.ndarray | None = None) -> Variant:
        """Raw functionals; speaker mode = per-speaker z-scored functionals, cold = population."""
        v = raw.reshape(len(raw), -1)
        if extra is not None:
            v = np.hstack([v, extra])

        def make(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            zs = func_speaker_z(v, tr)
            mu, sd = v[tr].mean(0), v[tr].std(0) + 1e-5
            test = {"speaker": func_speaker_z(v, te), "cold": (v[te] - mu) / sd}
            return np.concatenate([zs, (v[tr] - mu) / sd]), test

        return make

    variants: dict[str, Variant] = {
        "a_speaker_trained": frame_variant(R, "speaker"),
        "b_cold_trained": frame_variant(R, "cold"),
        "b2_both_trained": frame_variant(R, "both"),
        "d_voiced_frames_cold": frame_variant(RV, "cold"),
        "e_prosody_cold": frame_variant(R, "cold", P),
        "e2_prosody_both": frame_variant(R, "both", P),
        "e3_prosody_rows_both": frame_variant(RA, "both"),
        "f_cmn_cold": frame_variant(cmn(R), "cold"),
        "g_functional_z": functional_z_variant(R),
        "g2_functional_z_prosody": functional_z_variant(R, P),
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}

    def folds(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        emodb = corpus == "emodb"
        if name == "emodb-loso":
            return [
                (np.flatnonzero(actor != s), np.flatnonzero(emodb & (actor == s))) for s in sorted(set(actor[emodb]))
            ]
        if name == "emodb-loso-emodb-only":
            return [
                (np.flatnonzero(emodb & (actor != s)), np.flatnonzero(emodb & (actor == s)))
                for s in sorted(set(actor[emodb]))
            ]
        # validation: RAVDESS actors 01-16 in 4 folds of 4; 17-20 never used
        dev = (corpus == "ravdess") & np.isin(actor, [f"{i:02d}" for i in range(1, 17)])
        out = []
        for k in range(4):
            test_actors = [f"{i:02d}" for i in range(1 + k, 17, 4)]
            te = dev & np.isin(actor, test_actors)
            out.append((np.flatnonzero((dev | emodb) & ~te), np.flatnonzero(te)))
        return out

    def models() -> dict[str, Callable[[], object]]:
        from sklearn.neural_network import MLPClassifier
        from sklearn.svm import SVC

        return {
            "mlp": lambda: MLPClassifier((64, 32), alpha=1e-3, batch_size=32, max_iter=60, random_state=args.seed),
            "svm": lambda: SVC(C=1.0, gamma="scale", decision_function_shape="ovr"),
        }

    results: dict[str, dict[str, dict[str, float]]] = {}
    if args.out and os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    for split in args.splits.split(","):
        for vname, make in variants.items():
            if split == "emodb-loso-emodb-only" and vname not in (
                "a_speaker_trained",
                "b_cold_trained",
                "g_functional_z",
            ):
                continue
            for mname, build in models().items():
                if mname not in args.models.split(","):
                    continue
                true, pred = [], {"speaker": [], "cold": []}
                t1 = time.time()
                for tr, te in folds(split):
                    xtr, test = make(tr, te)
                    mu, sd = xtr.mean(0), xtr.std(0) + 1e-5
                    reps = len(xtr) // len(tr)
                    ytr, wtr = np.tile(y[tr], reps), np.tile(w[tr], reps)
                    model = build()
                    model.fit((xtr - mu) / sd, ytr, sample_weight=wtr)
                    allowed = sorted({labels[i] for i in y[corpus == corpus[te[0]]]})
                    true += [labels[i] for i in y[te]]
                    for m, xte in test.items():
                        xs = (xte - mu) / sd
                        s = (
                            model.predict_proba(xs)
                            if hasattr(model, "predict_proba") and mname == "mlp"
                            else model.decision_function(xs)
                        )
                        full = np.full((len(xs), len(labels)), -np.inf)
                        full[:, model.classes_] = s
                        pred[m] += [labels[i] for i in restricted_argmax(full, labels, allowed)]
                cls = sorted(set(true))
                r = {m: round(report(true, p, cls)["uar"], 3) for m, p in pred.items()}
                results.setdefault(split, {})[f"{vname}/{mname}"] = r
                if args.out:
                    with open(args.out, "w") as f:
                        json.dump(results, f, indent=1, sort_keys=True)
                log(
                    f"{split:22s} {vname:26s} {mname}: cold {r['cold']:.3f} speaker {r['speaker']:.3f} "
                    f"({time.time() - t1:.0f} s)"
                )
    if not args.out:
        json.dump(results, sys.stdout, indent=1)
        print()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
