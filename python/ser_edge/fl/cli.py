"""``ser-edge fl``: federated learning commands (``simulate``, ``label``). Light to import:
Flower and TensorFlow are imported inside the commands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "CUDA_VISIBLE_DEVICES": "",
}


def _quiet_env() -> None:
    """No telemetry, update checks or usage statistics (nothing leaves the machine)."""
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)


def default_holdout(speakers: list[str], share: float = 0.2) -> list[str]:
    """The last ``share`` of the sorted speakers (at least one): never seen by any client."""
    ordered = sorted(speakers)
    return ordered[len(ordered) - max(1, math.ceil(len(ordered) * share)) :]


def _simulate(args: argparse.Namespace) -> int:
    _quiet_env()
    from ser_edge.fl import task

    try:
        probe = task.settings({}, {"corpus": args.corpus, "data": args.data, "grouping": args.grouping})
        speakers = sorted({c.speaker for c in task.corpus_clips(args.corpus, args.data, probe)})
        holdout = (
            [s.strip() for s in args.holdout.split(",") if s.strip()]
            if args.holdout is not None
            else default_holdout(speakers)
        )
        unknown = sorted(set(holdout) - set(speakers))
        if unknown:
            raise ValueError(
                f"--holdout speakers {unknown} are not in the corpus (its speakers: {', '.join(speakers)})"
            )
        if len(set(speakers) - set(holdout)) < 1:
            raise ValueError("--holdout leaves no speaker to train on")
        if args.clients < 1:
            raise ValueError(f"--clients {args.clients} must be >= 1")
        overrides: dict[str, Any] = {
            "corpus": args.corpus,
            "data": os.path.abspath(args.data),
            "num-server-rounds": args.rounds,
            "local-epochs": args.local_epochs,
            "fraction-train": args.fraction,
            "fraction-evaluate": args.fraction,
            "min-nodes": max(1, min(args.min_nodes, args.clients)),
            "lr": args.lr,
            "batch-size": args.batch_size,
            "model": args.model,
            "grouping": args.grouping,
            "min-clips": args.min_clips,
            "seed": args.seed,
            "partition": args.partition,
            "holdout": ",".join(holdout),
            "out": os.path.abspath(args.out) if args.out else "",
            "cache-dir": args.cache_dir or "",
            "dp": args.dp,
            "dp-noise": args.dp_noise,
            "dp-clip": args.dp_clip,
            "dp-epsilon": args.dp_epsilon,
            "dp-delta": args.dp_delta,
            "name": args.name,
            "secagg": args.secagg,
            "secagg-clip": args.secagg_clip,
            "trainer": args.trainer,
            "max-update-norm": args.max_update_norm,
            "max-examples": args.max_examples,
            "median-bounds": args.median_bounds,
            "aggregation-order": args.aggregation_order,
        }
        task.settings({}, overrides)
    except ValueError as e:
        print(f"ser-edge fl simulate: {e}", file=sys.stderr)
        return 2
    from ser_edge.fl.simulate import simulate

    summary = simulate(overrides, args.clients, cpus_per_client=args.cpus_per_client, verbose=args.verbose)
    summary["holdout"] = holdout
    summary["partition"] = args.partition
    if args.json:
        print(json.dumps(summary, default=str), flush=True)
    else:
        uar = "-" if summary["uar"] is None else f"{summary['uar']:.3f}"
        acc = "-" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
        print(
            f"{summary['rounds']} rounds, {summary['clients']} clients: held-out speakers {','.join(holdout)} "
            f"UAR {uar}, accuracy {acc}; bundle {summary['bundle']} ({summary['model_id']}); "
            f"{summary['seconds']} s, peak {summary['peak_rss_mb']} MB",
            flush=True,
        )
    return 0


def _label(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ser_edge.fl.label import label_dir

    def ask(prompt: str) -> str:
        print(prompt, end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        return line if line else "q"  # end of input: stop, keeping what was labelled

    try:
        counts = label_dir(
            Path(args.dir),
            csv_path=Path(args.csv) if args.csv else None,
            speaker=args.speaker,
            label=args.label,
            ask=None if args.label else ask,
            out=sys.stderr,
        )
    except ValueError as e:
        print(f"ser-edge fl label: {e}", file=sys.stderr)
        return 2
    csv_path = args.csv or os.path.join(args.dir, "labels.csv")
    print(
        json.dumps({**counts, "csv": csv_path, "node_config": f'corpus="csv" data="{os.path.abspath(csv_path)}"'}),
        flush=True,
    )
    return 0


def add_parsers(sub: Any) -> None:
    """Adds the ``fl`` command group to the ``ser-edge`` sub-parsers."""
    fl = sub.add_parser("fl", help="federated learning (Flower): simulate, label clips")
    cmds = fl.add_subparsers(dest="fl_command", required=True)

    s = cmds.add_parser(
        "simulate",
        help="FedAvg with virtual clients on this machine (Flower Simulation Runtime)",
        description="Speakers as non-IID clients, held-out speakers for evaluation; the global "
        "model is saved as an int8 bundle. With --json the last line is a JSON "
        "object with rounds, clients, uar, accuracy, bundle, ...",
    )
    s.add_argument("--corpus", required=True, help="corpus name (emodb, ravdess, csv, folder, ...)")
    s.add_argument("--data", required=True, help="the corpus directory (or CSV file)")
    s.add_argument("--clients", type=int, required=True, help="number of virtual clients (SuperNodes)")
    s.add_argument("--rounds", type=int, default=3, help="FedAvg rounds (default 3)")
    s.add_argument(
        "--partition",
        choices=("speaker", "iid"),
        default="speaker",
        help="speaker: each client holds whole speakers (non-IID, default); iid: shuffled clips",
    )
    s.add_argument("--holdout", help="comma-separated speakers for evaluation only (default: the last 20%%)")
    s.add_argument("--out", help="bundle directory for the global model (default ~/.local/share/ser-edge/fl/NAME)")
    s.add_argument("--name", default="fl-global", help="bundle name (default fl-global)")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    s.add_argument("--local-epochs", type=int, default=5, help="local epochs per round (default 5)")
    s.add_argument("--fraction", type=float, default=1.0, help="fraction of clients per round (default 1)")
    s.add_argument("--min-nodes", type=int, default=2, help="minimum clients per round (default 2)")
    s.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    s.add_argument("--batch-size", type=int, default=8, help="clients' batch size (default 8)")
    s.add_argument("--model", default="mlp", help="model from ser_edge.training.models (default mlp)")
    s.add_argument("--grouping", default="full", help="label grouping (full, 4class, ...; default full)")
    s.add_argument("--min-clips", type=int, default=8, help="a client with fewer clips declines (default 8)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--dp",
        choices=("off", "server", "client", "example"),
        default="off",
        help="client-level DP with fixed clipping (clipped on the server or by the clients' mod), "
        "or example-level DP-SGD on the devices (example)",
    )
    s.add_argument("--dp-noise", type=float, default=0.1, help="DP noise multiplier (default 0.1)")
    s.add_argument(
        "--dp-clip",
        type=float,
        default=10.0,
        help="DP clipping norm: of an update, or of a clip's gradient (default 10)",
    )
    s.add_argument(
        "--dp-epsilon",
        type=float,
        default=0.0,
        help="target epsilon: the noise multiplier is calibrated to it (default 0: use --dp-noise); "
        "with --dp example, each device's epsilon over all its local steps",
    )
    s.add_argument("--dp-delta", type=float, default=1e-5, help="DP delta (default 1e-5)")
    s.add_argument(
        "--secagg",
        choices=("off", "on"),
        default="off",
        help="secure aggregation (Flower's SecAgg+): the server sees only the sum of the updates",
    )
    s.add_argument(
        "--secagg-clip", type=float, default=8.0, help="SecAgg+ clipping range of weight x update (default 8)"
    )
    s.add_argument(
        "--trainer",
        choices=("numpy", "keras"),
        default="numpy",
        help="clients' trainer: numpy (mlp, no TensorFlow; default) or keras",
    )
    s.add_argument(
        "--median-bounds",
        choices=("on", "off"),
        default="on",
        help="server: leave out updates above 4x the round's median norm, clip to the median, "
        "cap weights at 2x the median (default on)",
    )
    s.add_argument(
        "--aggregation-order",
        choices=("digest", "reversed"),
        default="digest",
        help="server: sum the updates in the fixed order (default) or its reverse, which changes the "
        "average by float rounding only (a control for benchmarks)",
    )
    s.add_argument(
        "--max-update-norm",
        type=float,
        default=100.0,
        help="an honest client clips its update to this L2 norm (default 100)",
    )
    s.add_argument(
        "--max-examples",
        type=int,
        default=1000,
        help="an honest client's weight (num-examples) is at most this (default 1000)",
    )
    s.add_argument("--cache-dir", help="frame cache (default: the training cache, $SER_EDGE_CACHE)")
    s.add_argument("--cpus-per-client", type=float, default=1.0, help="CPUs Ray reserves per client (default 1)")
    s.add_argument("--verbose", action="store_true", help="Flower's INFO log")
    s.set_defaults(run=_simulate)

    lb = cmds.add_parser(
        "label",
        help="label clips recorded with `ser-edge listen --record-dir` (CSV corpus)",
        description="Asks a label for each unlabelled recording (Enter accepts the predicted "
        "one) and writes DIR/labels.csv (path,label,speaker) for --node-config.",
    )
    lb.add_argument("dir", help="the recordings directory")
    lb.add_argument("--csv", help="CSV to write (default DIR/labels.csv)")
    lb.add_argument("--speaker", default="device", help="speaker column (default 'device')")
    lb.add_argument("--label", help="give every unlabelled recording this label (no questions)")
    lb.set_defaults(run=_label)
