#!/usr/bin/env python
"""Does per-speaker z-scoring of the utterance functionals survive noise where frame z-scoring does not?

Scratch comparison for issue 11 (docs/results.md, "In the room"), no TensorFlow: scikit-learn on the
recipe's own frames (the trainer's cache, ``[room]`` copies included unless ``--clean-only``), one fold:
train = the recipe's clips without RAVDESS actors 17-20, test = actors 17-20 under the room benchmark's
conditions (``conditions.Degrader``, seeded as there). Two inputs, each trained on both normalisations:

* ``frame_z``: frames z-scored with the speaker's frame statistics (cold: the population's), then pooled:
  the shipped input (``InputConfig.pool``).
* ``func_z``: frames z-scored with the population's statistics, pooled, then each utterance vector
  z-scored with its speaker's utterance-vector statistics (cold: the population's): eGeMAPS + SVM's
  adaptation. In ``speaker`` mode the statistics come from the speaker's clips *in the tested
  condition*, as a device would gather them.

    PYTHONPATH=python python training/noise-diagnosis.py --recipe training/room-default.toml --out X.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from ser_edge.training import dataset as ds
from ser_edge.training.conditions import Degrader
from ser_edge.training.metrics import report, restricted_argmax
from ser_edge.training.recipe import load_recipe, prepare
from ser_edge.training.trainer import sample_weights

N = "../shared/data/noise/urbansound8k/fold2"
CONDITIONS = ("clean", f"noise:{N}@10", "white@10", "reverb:../shared/data/rir/house")
TEST_ACTORS = ("17", "18", "19", "20")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def speaker_z(v: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each row z-scored with its speaker's mean and std (over that speaker's rows)."""
    out = np.empty_like(v)
    for s in np.unique(speakers):
        m = speakers == s
        out[m] = (v[m] - v[m].mean(0)) / (v[m].std(0) + 1e-5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="training/room-default.toml")
    ap.add_argument("--clean-only", action="store_true", help="leave the [room] copies out of training")
    ap.add_argument("--models", default="mlp,svm")
    ap.add_argument("--rows", default="", help="feature names whose pooled rows to keep ('deltas': the MFCC deltas)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()

    t0 = time.time()
    labels, _tc, config, frames, extra, _gate, _modes = prepare(load_recipe(args.recipe), progress=False, log=log)
    corpus = np.array([c.corpus for c in frames.clips])
    actor = np.array([c.speaker for c in frames.clips])
    test = (corpus == "ravdess") & np.isin(actor, TEST_ACTORS)
    train = frames.subset(np.flatnonzero(~test))
    if extra is not None and not args.clean_only:
        train = ds.concat(train, extra.subset(np.isin(extra.source, np.flatnonzero(~test))))
    log(f"{len(train)} training clips, {time.time() - t0:.0f} s")

    # test frames cached per (clip, condition), under names that are the same in every run
    cache = Path("/tmp/noise-diagnosis") / ds.config_key(config)
    cache.mkdir(parents=True, exist_ok=True)
    degrade = Degrader(config.sr)
    test_clips = [frames.clips[i] for i in np.flatnonzero(test)]
    tests: dict[str, ds.FrameSet] = {}
    for cond in CONDITIONS:
        xs = []
        for c in test_clips:
            path = cache / f"{zlib.crc32(c.path.encode()):08x}-{zlib.crc32(cond.encode()):08x}.npy"
            if path.exists():
                xs.append(np.load(path))
                continue
            x = config.voiced(config.frames(degrade.clip(c, cond)))
            np.save(path, x)
            xs.append(x)
        tests[cond] = ds.FrameSet(test_clips, xs)
    log(f"test frames, {time.time() - t0:.0f} s")

    pop = ds.population_stats(train)
    y_tr = np.array([labels.index(c.label) for c in train.clips])
    w_tr = sample_weights(train.clips)
    true = [c.label for c in test_clips]
    allowed = sorted({c.label for c in test_clips})

    d = config.n_frame_features
    keep = np.ones(d, bool)
    if args.rows:
        keep[:] = False
        for name in args.rows.split(","):
            a, b = (config.features.n_features, d) if name == "deltas" else config.features.rows[name]
            keep[a:b] = True
    cols = np.tile(keep, 5)  # mean, std, p10, p50, p90 of every row

    def inputs(kind: str, fs: ds.FrameSet, mode: str) -> np.ndarray:
        if kind == "frame_z":
            return ds.model_inputs(fs, config, ds.speaker_stats(fs) if mode == "speaker" else pop)[:, cols]
        v = ds.model_inputs(fs, config, pop).astype(np.float64)[:, cols]
        if mode == "speaker":
            return speaker_z(v, fs.speakers)
        return (v - mu_pop) / sd_pop

    v_pop = ds.model_inputs(train, config, pop).astype(np.float64)[:, cols]
    mu_pop, sd_pop = v_pop.mean(0), v_pop.std(0) + 1e-5

    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    builders = {
        "mlp": lambda: MLPClassifier((64, 32), alpha=1e-3, batch_size=64, max_iter=40, random_state=args.seed),
        "svm": lambda: SVC(C=1.0, gamma="scale"),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("frame_z", "func_z"):
        xtr = np.concatenate([inputs(kind, train, "speaker"), inputs(kind, train, "cold")])
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-5
        for mname in args.models.split(","):
            t1 = time.time()
            model = builders[mname]()
            model.fit((xtr - mu) / sd, np.tile(y_tr, 2), sample_weight=np.tile(w_tr, 2))
            row: dict[str, dict[str, float]] = {}
            for cond, fs in tests.items():
                for mode in ("cold", "speaker"):
                    xs = (inputs(kind, fs, mode) - mu) / sd
                    s = model.predict_proba(xs) if mname == "mlp" else model.decision_function(xs)
                    full = np.full((len(xs), len(labels)), -np.inf)
                    full[:, model.classes_] = s
                    pred = [labels[i] for i in restricted_argmax(full, labels, allowed)]
                    row.setdefault(cond.split(":")[0] + ("@10" if cond.startswith("noise") else ""), {})[mode] = round(
                        report(true, pred, allowed)["uar"], 3
                    )
            results[f"{kind}/{mname}"] = row
            log(f"{kind}/{mname} ({time.time() - t1:.0f} s): {json.dumps(row)}")
    text = json.dumps(
        {"recipe": args.recipe, "clean_only": args.clean_only, "rows": args.rows, "results": results}, indent=1
    )
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
