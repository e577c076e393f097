#!/usr/bin/env python
"""Why speaker adaptation does not remove noise and reverberation: what the voice gate keeps and
how far the pooled model input moves, per condition, on the RAVDESS actors 17-20 (no training:
the default bundle's InputConfig and statistics). Prints one JSON object; docs/results.md.

- gate: share of frames kept; ``noise_frames``: share of the kept frames that the gate drops
  on the clean clip (pauses and silence let in as speech); ``speech_kept``: share of the clean
  clip's voiced frames still kept.
- shift: the mean absolute difference between the degraded and the clean clip's pooled input,
  in units of the model's input standardisation (the spread of the training inputs), after
  speaker normalisation with the speaker's degraded clips (``speaker``) or the population's
  (``cold``), per statistic (mean, std, p10, p50, p90) and per feature family.

Usage: python training/gate-diagnosis.py [--vad-db 35] [--vad-floor-db 10] [--speakers 17,18,19,20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from ser_edge.bundle import load_bundle
from ser_edge.inputs import STATS, FrameStats, normalize
from ser_edge.training.conditions import Degrader
from ser_edge.training.corpora import load_corpus

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONDITIONS = ("clean", "white@10", f"noise:{DATA}/noise/urbansound8k/fold2@10", f"reverb:{DATA}/rir/house")


def _mask(cfg, frames: np.ndarray) -> np.ndarray:
    """Which of ``frames`` the bundle's voice gate keeps (boolean ``(t,)``)."""
    keep = cfg.voiced_mask(frames[:, cfg.row("rms")])
    return np.ones(len(frames), bool) if keep is None else keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vad-db", type=float, default=None, help="gate width (default: the bundle's)")
    ap.add_argument("--vad-floor-db", type=float, default=None, help="noise-floor gate (InputConfig.vad_floor_db)")
    ap.add_argument("--speakers", default="17,18,19,20")
    args = ap.parse_args()
    bundle = load_bundle(None)
    cfg = dataclasses.replace(
        bundle.input, vad_db=bundle.input.vad_db if args.vad_db is None else args.vad_db, vad_floor_db=args.vad_floor_db
    )
    norm = bundle.normalization
    speakers = args.speakers.split(",")
    clips = [c for c in load_corpus("ravdess", DATA / "ravdess") if c.speaker in speakers]
    deg = Degrader(cfg.sr, babble_pool=clips)
    families = {}
    for name in cfg.features.features:
        a, b = cfg._rows[name]
        families[name] = list(range(a, b))
    if cfg.deltas:
        a, b = cfg._rows["mfcc"]
        base, n = cfg.features.n_features, b - a
        families["mfcc_delta"] = list(range(base, base + n))
        if cfg.deltas > 1:
            families["mfcc_delta2"] = list(range(base + n, base + 2 * n))
    d = cfg.n_frame_features
    out = {"vad_db": cfg.vad_db, "vad_floor_db": cfg.vad_floor_db, "n_clips": len(clips)}
    frames = {cond: [cfg.frames(deg.clip(c, cond)) for c in clips] for cond in CONDITIONS}
    gates = {cond: [_mask(cfg, f) for f in frames[cond]] for cond in CONDITIONS}
    pooled = {}
    for cond in CONDITIONS:
        kept = np.concatenate(gates[cond])
        clean = np.concatenate(gates["clean"])
        g = {
            "kept": float(kept.mean()),
            "noise_frames": float((kept & ~clean).sum() / max(kept.sum(), 1)),
            "speech_kept": float((kept & clean).sum() / max(clean.sum(), 1)),
        }
        stats: dict[str, FrameStats] = {}
        for c, f, m in zip(clips, frames[cond], gates[cond]):
            stats.setdefault(c.speaker, FrameStats.empty(d)).add(f[m])
        for mode in ("speaker", "cold"):
            rows = []
            for c, f, m in zip(clips, frames[cond], gates[cond]):
                s = stats[c.speaker] if mode == "speaker" else FrameStats(1.0, norm.frame_mean, norm.frame_std**2)
                v = cfg.pool(normalize(f[m], s.mean, s.std))
                rows.append((v - norm.input_mean) / (norm.input_std + 1e-5))
            pooled[(cond, mode)] = np.stack(rows)
        out[cond] = {"gate": {k: round(v, 3) for k, v in g.items()}}
    for cond in CONDITIONS[1:]:
        for mode in ("speaker", "cold"):
            diff = np.abs(pooled[(cond, mode)] - pooled[("clean", mode)]).reshape(len(clips), len(STATS), d)
            out[cond][f"shift_{mode}"] = {
                "all": round(float(diff.mean()), 3),
                "by_stat": {s: round(float(diff[:, i].mean()), 3) for i, s in enumerate(STATS)},
                "by_family": {k: round(float(diff[:, :, v].mean()), 3) for k, v in families.items()},
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
