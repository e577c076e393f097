"""The measurements in docs/federated.md (long runs: not part of the test suite).

    python -m ser_edge.fl.bench compare --corpus emodb --data ../shared/data/emodb --holdout 15,16
    python -m ser_edge.fl.bench cross-validate --corpus emodb --data ../shared/data/emodb --folds 5 --seeds 0,1,2
    python -m ser_edge.fl.bench scale --corpus ravdess --data ../shared/data/ravdess --clients 100
    python -m ser_edge.fl.bench client-memory --corpus ravdess --data ../shared/data/ravdess --speaker 01
    python -m ser_edge.fl.bench attacks --corpus emodb --data ../shared/data/emodb --holdout 15,16 --clients 8
    python -m ser_edge.fl.bench secagg --corpus emodb --data ../shared/data/emodb --holdout 15,16 --seeds 0,1,2,3,4
    python -m ser_edge.fl.bench dp --corpus emodb --data ../shared/data/emodb --holdout 15,16 --epsilons 8,1

Each prints one JSON line. ``compare``: FedAvg (speakers as clients, ``rounds`` x
``local-epochs`` = the central run's epochs) against central training by
:func:`ser_edge.training.trainer.fit` on the same training speakers, both scored on the same
held-out speakers. ``scale``: many virtual clients (time, peak memory of the process tree,
memory after each round). ``client-memory``: peak resident memory of one client's training
round in a fresh process (the ClientApp's train function on one speaker's clips). ``attacks``:
the held-out UAR without a malicious client and with one (partition 0 of ``clients``) under each
attack of :mod:`ser_edge.fl.attacks` (``--attacks``, default all; ``--seeds``), each run in a
fresh process. ``secagg``: SecAgg+ against the same plain FedAvg (median bounds off) on each
seed: UAR difference (mean and standard error), seconds per round. ``dp``: example-level DP-SGD
on the devices at each target epsilon: held-out UAR and the epsilon reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

from ser_edge.fl.cli import QUIET_ENV, default_holdout


def _overrides(args: argparse.Namespace, holdout: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "corpus": args.corpus,
        "data": os.path.abspath(args.data),
        "holdout": ",".join(holdout),
        "num-server-rounds": args.rounds,
        "local-epochs": args.local_epochs,
        "seed": args.seed,
        "out": os.path.abspath(args.out),
        "min-nodes": 2,
        "lr": args.lr,
        "batch-size": args.batch_size,
        "trainer": args.trainer,
        **extra,
    }


def _holdout(args: argparse.Namespace) -> list[str]:
    from ser_edge.fl import task

    if args.holdout:
        return [s.strip() for s in args.holdout.split(",") if s.strip()]
    cfg = task.settings({}, {"corpus": args.corpus, "data": args.data})
    return default_holdout(sorted({c.speaker for c in task.corpus_clips(args.corpus, args.data, cfg)}))


def compare(args: argparse.Namespace) -> dict[str, Any]:
    from ser_edge.fl import task
    from ser_edge.fl.simulate import simulate
    from ser_edge.training import dataset as ds
    from ser_edge.training.trainer import TrainConfig, fit, set_threads

    holdout = _holdout(args)
    fed = simulate(_overrides(args, holdout), args.clients)
    cfg = task.settings({}, _overrides(args, holdout))
    config, labels = task.input_config(cfg), task.labels(cfg)
    clips = task.corpus_clips(args.corpus, args.data, cfg)
    train = ds.load_frames([c for c in clips if c.speaker not in holdout], config)
    test = ds.load_frames([c for c in clips if c.speaker in holdout], config)
    set_threads(1)
    t0 = time.time()
    trained = fit(train, config, labels, TrainConfig(epochs=args.rounds * args.local_epochs, seed=args.seed))
    y = [labels.index(c.label) for c in test.clips]
    import numpy as np

    central = task.scores(trained.probabilities(test), np.array(y), labels)
    return {
        "what": "fedavg-vs-central",
        "trainer": args.trainer,
        "corpus": args.corpus,
        "holdout": holdout,
        "seed": args.seed,
        "clients": args.clients,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "central_epochs": args.rounds * args.local_epochs,
        "fedavg_uar": fed["uar"],
        "fedavg_accuracy": fed["accuracy"],
        "fedavg_uar_int8": fed.get("uar_int8"),
        "central_uar": central["uar"],
        "central_accuracy": central["accuracy"],
        "gap_uar_points": round(100 * (central["uar"] - fed["uar"]), 2),
        "fedavg_seconds": fed["seconds"],
        "central_seconds": round(time.time() - t0, 1),
        "held_out_by_round": fed["history"]["held_out"],
        "eval_clips": fed.get("eval_clips"),
        "stats_clients": fed["stats_clients"],
        "clients_per_round": fed["clients_per_round"],
    }


def speaker_folds(speakers: list[str], folds: int) -> list[list[str]]:
    """The sorted speakers split into ``folds`` consecutive groups (sizes differ by at most one)."""
    ordered = sorted(speakers)
    if not 2 <= folds <= len(ordered):
        raise ValueError(f"--folds {folds} must be in [2, {len(ordered)}] (the corpus has {len(ordered)} speakers)")
    import numpy as np

    return [list(group) for group in np.array_split(np.array(ordered, dtype=object), folds)]


def cross_validate(args: argparse.Namespace) -> dict[str, Any]:
    import subprocess

    import numpy as np

    from ser_edge.fl import task

    cfg = task.settings({}, {"corpus": args.corpus, "data": args.data})
    folds = speaker_folds(sorted({c.speaker for c in task.corpus_clips(args.corpus, args.data, cfg)}), args.folds)
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    runs = []
    for seed in seeds:
        for fold in folds:
            cmd = [
                sys.executable,
                "-m",
                "ser_edge.fl.bench",
                "compare",
                "--corpus",
                args.corpus,
                "--data",
                args.data,
                "--holdout",
                ",".join(fold),
                "--clients",
                str(args.clients),
                "--rounds",
                str(args.rounds),
                "--local-epochs",
                str(args.local_epochs),
                "--lr",
                str(args.lr),
                "--batch-size",
                str(args.batch_size),
                "--seed",
                str(seed),
                "--out",
                args.out,
                "--trainer",
                args.trainer,
            ]
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(run), file=sys.stderr, flush=True)
            runs.append(run)

    def mean(key: str) -> float:
        return round(float(np.mean([r[key] for r in runs])), 4)

    return {
        "what": "fedavg-vs-central-cv",
        "trainer": args.trainer,
        "corpus": args.corpus,
        "folds": folds,
        "seeds": seeds,
        "clients": args.clients,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "runs": runs,
        "central_uar": mean("central_uar"),
        "fedavg_uar": mean("fedavg_uar"),
        "fedavg_uar_int8": mean("fedavg_uar_int8"),
        "gap_uar_points": round(100 * (mean("central_uar") - mean("fedavg_uar")), 2),
    }


def scale(args: argparse.Namespace) -> dict[str, Any]:
    from ser_edge.fl.simulate import simulate

    holdout = _holdout(args)
    s = simulate(
        _overrides(args, holdout, **{"fraction-train": args.fraction, "fraction-evaluate": args.fraction}), args.clients
    )
    return {
        "what": "scale",
        "corpus": args.corpus,
        "clients": args.clients,
        "rounds": args.rounds,
        "fraction": args.fraction,
        "seconds": s["seconds"],
        "peak_rss_mb": s["peak_rss_mb"],
        "rss_mb_by_round": s["rss_mb_by_round"],
        "rss_mb_by_role": s["rss_mb_by_role"],
        "uar": s["uar"],
        "accuracy": s["accuracy"],
        "stats_clients": s["stats_clients"],
        "rejected": s["rejected"],
    }


def attack(args: argparse.Namespace) -> dict[str, Any]:
    """One simulation with one malicious client (``--attack none``: all honest)."""
    from ser_edge.fl.attacks import attack_mod
    from ser_edge.fl.simulate import simulate

    mods = [] if args.attack == "none" else [attack_mod(args.attack)]
    s = simulate(_overrides(args, _holdout(args)), args.clients, train_mods=mods)
    return {
        "what": "attack",
        "attack": args.attack,
        "seed": args.seed,
        "uar": s["uar"],
        "accuracy": s["accuracy"],
        "weights_sha256": s["weights_sha256"],
        "rejected": {r: len(v) for r, v in s["rejected"].items()},
        "bounded": s["bounded"],
        "stats_clients": s["stats_clients"],
        "clients_per_round": s["clients_per_round"],
        "seconds": s["seconds"],
    }


def _fresh(args: argparse.Namespace, command: list[str], seed: int) -> dict[str, Any]:
    """The last JSON line of ``command`` (a ``ser-edge fl simulate`` or bench sub-command, with
    this run's data, split and schedule) run in a fresh process."""
    import subprocess

    common = ["--corpus", args.corpus, "--data", args.data, "--holdout", ",".join(_holdout(args))]
    common += ["--clients", str(args.clients), "--rounds", str(args.rounds), "--local-epochs", str(args.local_epochs)]
    common += ["--batch-size", str(args.batch_size), "--seed", str(seed), "--out", args.out]
    done = subprocess.run([sys.executable, "-m", *command, *common], stdout=subprocess.PIPE, text=True, check=True)
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in out.items() if k != "history"}), file=sys.stderr, flush=True)
    return out


def _mean_se(values: list[float]) -> tuple[float, float | None]:
    import numpy as np

    v = np.asarray(values, np.float64)
    return round(float(v.mean()), 2), (round(float(v.std(ddof=1) / np.sqrt(len(v))), 2) if len(v) > 1 else None)


def _seeds(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def attacks(args: argparse.Namespace) -> dict[str, Any]:
    from ser_edge.fl.attacks import ATTACKS

    kinds = ["none", *(args.attacks.split(",") if args.attacks else ATTACKS)]
    runs: dict[int, dict[str, Any]] = {}
    for seed in _seeds(args):
        for kind in dict.fromkeys(kinds):
            cmd = ["ser_edge.fl.bench", "attack", "--attack", kind, "--lr", str(args.lr), "--trainer", args.trainer]
            runs.setdefault(seed, {})[kind] = _fresh(args, cmd, seed)
    change = {
        k: [100 * (runs[s][k]["uar"] - runs[s]["none"]["uar"]) for s in runs]
        for k in dict.fromkeys(kinds)
        if k != "none"
    }
    return {
        "what": "attacks",
        "corpus": args.corpus,
        "holdout": _holdout(args),
        "clients": args.clients,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "seeds": list(runs),
        "uar_honest": {s: r["none"]["uar"] for s, r in runs.items()},
        "uar_change_points": {k: [round(c, 2) for c in v] for k, v in change.items()},
        "uar_change_mean_se": {k: _mean_se(v) for k, v in change.items()},
        "runs": runs,
    }


def secagg(args: argparse.Namespace) -> dict[str, Any]:
    """SecAgg+ against plain FedAvg with the same aggregation (median bounds off), per seed; with
    ``--modes off,on,reversed`` also plain FedAvg summing the updates in reverse order, which differs
    from ``off`` by float rounding only: how far training alone carries a rounding-sized change."""
    modes = ["off", *[m for m in args.modes.split(",") if m and m != "off"]]
    flags = {"off": ["--secagg", "off"], "on": ["--secagg", "on"], "reversed": ["--aggregation-order", "reversed"]}
    runs: dict[int, dict[str, Any]] = {}
    for seed in _seeds(args):
        for mode in modes:
            cmd = ["ser_edge", "fl", "simulate", "--json", "--median-bounds", "off", *flags[mode]]
            runs.setdefault(seed, {})[mode] = _fresh(args, cmd, seed)
    diff = {m: [100 * (r[m]["uar"] - r["off"]["uar"]) for r in runs.values()] for m in modes[1:]}
    added = [r["on"]["seconds_per_round"] - r["off"]["seconds_per_round"] for r in runs.values() if "on" in r]
    return {
        "what": "secagg-vs-fedavg",
        "holdout": _holdout(args),
        "clients": args.clients,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "uar": {s: {m: r[m]["uar"] for m in r} for s, r in runs.items()},
        "uar_int8": {s: {m: r[m]["uar_int8"] for m in r} for s, r in runs.items()},
        "seconds_per_round": {s: {m: r[m]["seconds_per_round"] for m in r} for s, r in runs.items()},
        "uar_difference_points": {m: [round(d, 2) for d in v] for m, v in diff.items()},
        "uar_difference_mean_se": {m: _mean_se(v) for m, v in diff.items()},
        "added_seconds_per_round_mean_se": _mean_se(added) if added else None,
    }


def dp(args: argparse.Namespace) -> dict[str, Any]:
    """Example-level DP-SGD on the devices at each target epsilon (and without DP), per seed."""
    runs: dict[int, dict[str, Any]] = {}
    targets = [float(e) for e in args.epsilons.split(",") if e.strip()]
    for seed in _seeds(args):
        for eps in (0.0, *targets):
            cmd = ["ser_edge", "fl", "simulate", "--json", "--lr", str(args.lr)]
            if eps > 0:
                cmd += ["--dp", "example", "--dp-epsilon", str(eps), "--dp-clip", str(args.dp_clip)]
            runs.setdefault(seed, {})[str(eps or "none")] = _fresh(args, cmd, seed)
    return {
        "what": "dp-example-level",
        "holdout": _holdout(args),
        "clients": args.clients,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "dp_clip": args.dp_clip,
        "uar": {s: {e: r[e]["uar"] for e in r} for s, r in runs.items()},
        "uar_int8": {s: {e: r[e]["uar_int8"] for e in r} for s, r in runs.items()},
        "privacy": {s: {e: r[e]["privacy"] for e in r} for s, r in runs.items()},
    }


def client_memory(args: argparse.Namespace) -> dict[str, Any]:
    """One training round of one client through the ClientApp's train function, measured in this
    (fresh) process: the data, the trainer (``--trainer``), the weights in and out."""
    import numpy as np
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, Metadata, RecordDict

    from ser_edge.fl import client_app, numpy_mlp, task

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = {
        "corpus": args.corpus,
        "data": os.path.abspath(args.data),
        "local-epochs": args.local_epochs,
        "trainer": args.trainer,
        "batch-size": args.batch_size,
    }
    cfg = task.settings({}, run)
    config = task.input_config(cfg)
    speakers = sorted({c.speaker for c in task.corpus_clips(args.corpus, args.data, cfg)})
    node: dict[str, Any] = {"partition-id": speakers.index(args.speaker), "num-partitions": len(speakers)}
    weights = numpy_mlp.init(config.input_shape[0], len(task.labels(cfg)), seed=args.seed)
    p = config.input_shape[0]
    content = RecordDict(
        {
            "arrays": ArrayRecord(weights),
            "config": ConfigRecord({"server-round": 1, "input-mean": [0.0] * p, "input-std": [1.0] * p}),
        }
    )
    md = Metadata(
        run_id=1,
        message_id="m",
        src_node_id=1,
        dst_node_id=2,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    t0 = time.time()
    reply = client_app.make_app(run)(
        Message(content=content, metadata=md),  # type: ignore[call-overload]  # as the SuperNode builds it
        Context(run_id=1, node_id=2, node_config=node, state=RecordDict(), run_config={}),
    )
    if reply.has_error():
        raise RuntimeError(reply.error.reason)
    metrics = reply.content.metric_records["metrics"]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "what": "client-memory",
        "trainer": args.trainer,
        "corpus": args.corpus,
        "speaker": args.speaker,
        "clips": int(metrics["num-examples"]),  # type: ignore[arg-type]  # a scalar here
        "local_epochs": int(cfg["local-epochs"]),
        "batch_size": int(cfg["batch-size"]),
        "seconds": round(time.time() - t0, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_before_mb": round(before / 1024, 1),
        "train_accuracy": metrics["train-accuracy"],
        "finite": bool(np.isfinite(metrics["train-loss"])),
        "tensorflow_imported": any(m.split(".")[0] in ("tensorflow", "tf_keras", "keras") for m in sys.modules),
    }


def main(argv: Any = None) -> int:
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    p = argparse.ArgumentParser(prog="python -m ser_edge.fl.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for name, fn in (
        ("compare", compare),
        ("cross-validate", cross_validate),
        ("scale", scale),
        ("client-memory", client_memory),
        ("attack", attack),
        ("attacks", attacks),
        ("secagg", secagg),
        ("dp", dp),
    ):
        s = sub.add_parser(name)
        s.add_argument("--corpus", required=True)
        s.add_argument("--data", required=True)
        s.add_argument("--holdout")
        s.add_argument("--clients", type=int, default=8)
        s.add_argument("--rounds", type=int, default=10)
        s.add_argument("--local-epochs", type=int, default=6)
        s.add_argument("--fraction", type=float, default=1.0)
        s.add_argument("--speaker", default="01")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--folds", type=int, default=5, help="cross-validate: speaker folds")
        s.add_argument("--seeds", default="0,1,2", help="cross-validate: seeds")
        s.add_argument("--modes", default="off,on", help="secagg: off, on (SecAgg+), reversed (the control)")
        s.add_argument("--trainer", default="numpy", help="clients' trainer: numpy (mlp) or keras")
        s.add_argument("--attack", default="none", help="attack: the malicious client's attack (or none)")
        s.add_argument("--attacks", default="", help="attacks: the attacks to run (default all)")
        s.add_argument("--epsilons", default="8,1", help="dp: target epsilons (delta 1e-5)")
        s.add_argument("--dp-clip", type=float, default=1.0, help="dp: per-example gradient clipping norm")
        s.add_argument("--lr", type=float, default=1e-3, help="clients' learning rate (Adam)")
        s.add_argument("--batch-size", type=int, default=8, help="clients' batch size")
        s.add_argument("--out", default=os.path.join(os.path.expanduser("~"), ".cache", "ser-edge", "fl-bench"))
        s.set_defaults(fn=fn)
    args = p.parse_args(argv)
    print(json.dumps(args.fn(args), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
