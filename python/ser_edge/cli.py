"""The ``ser-edge`` command line (also ``python -m ser_edge``)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

#: Modules that add their own sub-commands (``add_parsers(sub)``); each imports only argparse at
#: the top, so ``ser-edge --help`` stays fast and the edge commands never load training code.
AREAS = ("ser_edge.listen.cli", "ser_edge.training.cli", "ser_edge.fl.cli")

KINDS = {"zcr": "zero_crossing_rate", "mel": "melspectrogram", "logmel": "log_melspectrogram"}


def _features(args: argparse.Namespace) -> int:
    import numpy as np

    from ser_edge.audio import load
    from ser_edge.features import FEATURES, FeatureConfig, extract

    kind = KINDS.get(args.kind, args.kind)
    if kind not in FEATURES:
        print(f"ser-edge features: unknown --kind {args.kind!r}; choose from {', '.join(FEATURES)}", file=sys.stderr)
        return 2
    try:
        y, sr = load(args.file, sr=args.sr)
        config = FeatureConfig(
            sr=sr,
            n_fft=args.n_fft,
            hop_length=args.hop_length,
            n_mels=args.n_mels,
            n_mfcc=args.n_mfcc,
            features=(kind,),
        )
        x = extract(y, config)
    except ValueError as e:
        print(f"ser-edge features: {e}", file=sys.stderr)
        return 1
    if args.out:
        np.save(args.out, x)
    summary = {
        "file": str(args.file),
        "kind": kind,
        "sr": sr,
        "seconds": round(len(y) / sr, 3),
        "shape": list(x.shape),
        "config": config.to_dict(),
        "mean": [round(float(v), 4) for v in x.mean(axis=1)],
        "std": [round(float(v), 4) for v in x.std(axis=1)],
        "out": args.out,
    }
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser-edge", description="Speech emotion recognition on the device.")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="compute audio features of a file (one JSON line; --out saves .npy)")
    f.add_argument("file")
    f.add_argument(
        "--kind",
        default="mfcc",
        help="feature name (mfcc, melspectrogram, log_melspectrogram, rms, zcr, spectral_centroid, ...)",
    )
    f.add_argument("--sr", type=int, default=16000, help="resample to this rate first (default 16000)")
    f.add_argument("--n-fft", type=int, default=512)
    f.add_argument("--hop-length", type=int, default=160)
    f.add_argument("--n-mels", type=int, default=40)
    f.add_argument("--n-mfcc", type=int, default=40)
    f.add_argument("--out", help="save the (features, frames) float32 array to this .npy file")
    f.set_defaults(run=_features)
    for area in AREAS:
        importlib.import_module(area).add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
