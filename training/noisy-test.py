#!/usr/bin/env python
"""The default recipe's MLP on the RAVDESS held-out actors 17-20 with white noise added to the
*test* clips only (SNR relative to each clip's RMS, seeded), with and without spectral-gating noise
reduction (``--denoise``, applied to training and test clips alike). Prints one JSON line per
condition. One core, one TensorFlow thread; see docs/results.md.

Usage: taskset -c 1 .venv/bin/python training/noisy-test.py [--snr 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ser_edge.labels import group_labels  # noqa: E402
from ser_edge.training import dataset as ds  # noqa: E402
from ser_edge.training import trainer as T  # noqa: E402
from ser_edge.training.augment import add_noise  # noqa: E402
from ser_edge.training.corpora import grouped, load_corpus  # noqa: E402
from ser_edge.training.denoise import SpectralGate  # noqa: E402
from ser_edge.training.metrics import report, restricted_argmax  # noqa: E402
from ser_edge.training.recipe import input_config, load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parent
TEST = ("17", "18", "19", "20")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snr", type=float, default=10.0, help="SNR of the added white noise in dB")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    recipe = load_recipe(ROOT / "spectral.toml")  # the default of the documented run
    T.set_threads(1)
    labels = group_labels(recipe.grouping)
    clips = grouped([c for k in recipe.corpus for c in load_corpus(k["name"], k["data"])], recipe.grouping)
    config = input_config(recipe)
    tc = T.TrainConfig(model=recipe.model, **recipe.train)
    is_test = np.array([c.corpus == "ravdess" and c.speaker in TEST for c in clips])
    test_clips = [c for c, t in zip(clips, is_test) if t]
    ravdess = [k for k in labels if k in {c.label for c in test_clips}]

    def noise(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        return add_noise(y, args.snr, rng)

    for gate in (None, SpectralGate()):
        frames = ds.load_frames(clips, config, denoise=gate)
        trained = T.fit(frames.subset(~is_test), config, labels, tc)
        for snr, aug in ((None, None), (args.snr, noise)):
            test = (
                ds.load_frames(test_clips, config, augment=aug, seed=args.seed, denoise=gate)
                if aug
                else frames.subset(is_test)
            )
            out = {"denoise": gate is not None, "test_snr_db": snr}
            for mode in ("speaker", "cold"):
                p = restricted_argmax(trained.probabilities(test, mode), labels, ravdess)
                r = report(test.labels, [labels[i] for i in p], ravdess)
                out[mode] = {"uar": round(r["uar"], 4), "accuracy": round(r["accuracy"], 4)}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
