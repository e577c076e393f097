"""The Flower ServerApp: federated normalisation statistics, FedAvg rounds (weighted by each
client's number of clips, for the weights and the train/evaluate metrics), optional central DP,
evaluation on held-out speakers, and the final global model saved as an int8 bundle."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    Strategy,
)

from ser_edge.fl import privacy, robust, task
from ser_edge.fl.strategy import RejectInvalid, check_reply, in_fixed_order

log = logging.getLogger("flwr")
OnRound = Callable[[int, Mapping[str, Any]], None]


def default_out(name: str) -> Path:
    """Where the global bundle goes when the run config has no ``out``."""
    return Path.home() / ".local" / "share" / "ser-edge" / "fl" / name


def _wait_for_nodes(grid: Grid, n: int, timeout: float = 600.0) -> list[int]:
    t0 = time.monotonic()
    while len(nodes := list(grid.get_node_ids())) < n:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"only {len(nodes)} of the {n} SuperNodes needed connected within {timeout:.0f} s")
        time.sleep(1.0)
    return nodes


def federated_normalization(grid: Grid, cfg: Mapping[str, Any], config: Any) -> tuple[Any, int, int]:
    """Asks every connected client for its statistics and merges them (Chan's formula) into the
    bundle's :class:`~ser_edge.bundle.Normalization`. Returns it with the number of nodes asked
    and the number that contributed."""
    from ser_edge.bundle import Normalization
    from ser_edge.inputs import FrameStats

    nodes = _wait_for_nodes(grid, int(cfg["min-nodes"]))
    d, p = config.n_frame_features, int(np.prod(config.input_shape))
    reference = {
        "frame-mean": ((d,), "float64"),
        "frame-m2": ((d,), "float64"),
        "input-mean": ((p,), "float64"),
        "input-m2": ((p,), "float64"),
    }
    messages = [
        Message(RecordDict({"config": ConfigRecord({"kind": "stats"})}), dst_node_id=n, message_type=MessageType.QUERY)
        for n in nodes
    ]
    sound = []
    for reply in in_fixed_order(grid.send_and_receive(messages)):  # Chan's merge: a fixed order
        node = reply.metadata.src_node_id
        if reply.has_error():
            log.info("stats: node %d did not contribute: %s", node, reply.error.reason)
            continue
        reason = check_reply(reply.content, reference)
        if not reason:
            a, m = reply.content.array_records["stats"], reply.content["metrics"]
            stats = {k: a[k].numpy() for k in reference}
            count, n_frames = float(m["num-examples"]), float(m.get("frames", float("nan")))  # type: ignore[arg-type]
            reason = robust.check_stats(count, n_frames, stats, float(cfg["max-examples"]))
        if reason:
            log.warning("stats: rejected the reply of node %d: %s", node, reason)
            continue
        sound.append((count, n_frames, stats))
    # counts capped at twice the median (as the training round's weights): no client's statistics dominate
    max_count = robust.median_cap([c for c, _, _ in sound], 2.0, float(cfg["max-examples"]))
    max_frames = robust.median_cap([f for _, f, _ in sound], 2.0, float("inf"))
    frames, inputs, used = FrameStats.empty(d), FrameStats.empty(p), len(sound)
    for count, n_frames, stats in sound:
        fc, ic = min(n_frames, max_frames), min(count, max_count)  # a capped count keeps the variance: M2 scales
        frames.merge(FrameStats(fc, stats["frame-mean"], stats["frame-m2"] * (fc / n_frames)))
        inputs.merge(FrameStats(ic, stats["input-mean"], stats["input-m2"] * (ic / count)))
    if used == 0:
        raise RuntimeError("no client contributed normalisation statistics (all declined or failed)")
    stats_pooling = config.pooling == "stats"
    norm = Normalization(
        frame_mean=frames.mean,
        frame_std=frames.std,
        input_mean=inputs.mean if stats_pooling else None,
        input_std=inputs.std if stats_pooling else None,
    )
    return norm, len(nodes), used


def _dp(strategy: Strategy, cfg: Mapping[str, Any], sampled: int, noise: float) -> Strategy:
    if cfg["dp"] == "server":
        return DifferentialPrivacyServerSideFixedClipping(strategy, noise, float(cfg["dp-clip"]), sampled)
    if cfg["dp"] == "client":
        return DifferentialPrivacyClientSideFixedClipping(strategy, noise, float(cfg["dp-clip"]), sampled)
    return strategy


def held_out(cfg: Mapping[str, Any], config: Any, labels: tuple[str, ...]) -> task.LocalData | None:
    """The server's evaluation clips: ``eval-data`` (all of it, or its ``holdout`` speakers),
    else the ``holdout`` speakers of ``data`` (simulation). ``None`` when there are none."""
    held = task.holdout(cfg)
    if cfg["eval-data"]:
        clips = task.corpus_clips(str(cfg["eval-corpus"] or cfg["corpus"]), str(cfg["eval-data"]), cfg)
    elif cfg["data"] and held:
        clips = task.corpus_clips(str(cfg["corpus"]), str(cfg["data"]), cfg)
    else:
        return None
    if held:
        clips = [c for c in clips if c.speaker in held]
    if not clips:
        raise ValueError(f"no evaluation clips of speakers {sorted(held)}")
    return task.local_data(clips, config, labels, cache_dir=str(cfg["cache-dir"]))


def run(
    grid: Grid, cfg: Mapping[str, Any], on_round: OnRound | None = None, context: Context | None = None
) -> dict[str, Any]:
    """The whole federated run; returns its summary (the simulation prints it as JSON)."""
    from ser_edge.bundle import save_bundle
    from ser_edge.training.export import tflite_probabilities, to_tflite

    t0 = time.time()
    config, labels = task.input_config(cfg), task.labels(cfg)
    norm, n_nodes, n_stats = federated_normalization(grid, cfg, config)
    # empty lists: no input standardisation (sequence inputs are not standardised after pooling)
    mean, std = [] if norm.input_mean is None else norm.input_mean, [] if norm.input_std is None else norm.input_std
    norm_config: dict[str, Any] = {"input-mean": [float(v) for v in mean], "input-std": [float(v) for v in std]}
    model = task.build_model(cfg, config, len(labels))
    min_nodes = int(cfg["min-nodes"])
    fedavg = FedAvg(
        fraction_train=float(cfg["fraction-train"]),
        fraction_evaluate=float(cfg["fraction-evaluate"]),
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes,
        min_available_nodes=min_nodes,
    )
    sampled = max(int(n_nodes * float(cfg["fraction-train"])), min_nodes)
    dp = None if cfg["dp"] in ("off", "example") else privacy.report(dict(cfg), sampled, n_nodes)
    # with DP every client weighs the same (the noise is calibrated to one clipped update in the
    # mean), and the aggregate carries the noise: only its finiteness is checked
    strategy = RejectInvalid(
        _dp(fedavg, cfg, sampled, dp["noise_multiplier"] if dp else 0.0),
        max_update_norm=float(cfg["max-update-norm"]),
        max_examples=float(cfg["max-examples"]),
        uniform_weights=dp is not None,
        reverse_order=cfg["aggregation-order"] == "reversed",
        **(
            {}
            if cfg["median-bounds"] == "on"
            else dict(relative_norm=math.inf, relative_weight=math.inf, reject_factor=math.inf)
        ),
    )

    held = held_out(cfg, config, labels)
    x_held = None if held is None else task.standardize(held.x, mean, std)

    def central(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if x_held is None or held is None:
            return None
        model.set_weights(arrays.to_numpy_ndarrays())
        rep = task.scores(model.predict(x_held, batch_size=256, verbose=0), held.y, labels)
        out = {"uar": rep["uar"], "accuracy": rep["accuracy"]}
        if on_round is not None:
            on_round(server_round, out)
        return MetricRecord(out)

    train_config = ConfigRecord(
        {
            "local-epochs": int(cfg["local-epochs"]),
            "batch-size": int(cfg["batch-size"]),
            "max-update-norm": float(cfg["max-update-norm"]),
            "max-examples": int(cfg["max-examples"]),
            **norm_config,
        }
    )
    initial = ArrayRecord(model.get_weights())
    if cfg["secagg"] == "on":
        from ser_edge.fl import secagg

        held_history: dict[int, Any] = {}

        def central_kept(server_round: int, arrays: ArrayRecord) -> None:
            m = central(server_round, arrays)
            if m is not None:
                held_history[server_round] = m

        federated_history: dict[int, Any] = {}

        def federated(server_round: int, arrays: ArrayRecord) -> None:  # as FedAvg.start's evaluate round
            msgs = strategy.configure_evaluate(server_round, arrays, ConfigRecord(norm_config), grid)
            m = strategy.aggregate_evaluate(server_round, grid.send_and_receive(msgs))
            if m is not None:
                federated_history[server_round] = m

        ctx = (
            context
            if context is not None
            else Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={})
        )
        t_rounds = time.monotonic()
        sa = secagg.fedavg(grid, ctx, cfg, initial, train_config, central_kept, federated)
        result: Any = SimpleNamespace(
            arrays=sa["arrays"],
            train_metrics_clientapp=sa["train"],
            evaluate_metrics_clientapp=federated_history,
            evaluate_metrics_serverapp=held_history,
        )
        strategy.rejected.update(sa["rejected"])
        strategy.received.update(sa["received"])
    else:
        t_rounds = time.monotonic()
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=int(cfg["num-server-rounds"]),
            train_config=train_config,
            evaluate_config=ConfigRecord(norm_config),
            evaluate_fn=central,
        )
    seconds_per_round = round((time.monotonic() - t_rounds) / int(cfg["num-server-rounds"]), 2)
    if cfg["dp"] == "example":  # each device accounts its own DP-SGD; the run's is the largest
        dp = {
            "mode": "example",
            "level": "example",
            "clip": float(cfg["dp-clip"]),
            "target_epsilon": float(cfg["dp-epsilon"]) or None,
            "rounds": int(cfg["num-server-rounds"]),
            "delta": float(cfg["dp-delta"]),
            "epsilon": strategy.dp_epsilon,
            "accountant": "dp-accounting RDP, each device's Poisson-sampled Gaussian steps of every round",
        }
    if len(result.arrays) == 0:
        raise RuntimeError("no round produced a global model (every client declined, failed or was rejected)")
    model.set_weights(result.arrays.to_numpy_ndarrays())

    summary: dict[str, Any] = {
        "rounds": int(cfg["num-server-rounds"]),
        "clients": n_nodes,
        "stats_clients": n_stats,
        "uar": None,
        "accuracy": None,
        "weights_sha256": hashlib.sha256(b"".join(a.tobytes() for a in result.arrays.to_numpy_ndarrays())).hexdigest(),
    }
    rep_inputs = x_held
    if x_held is not None and held is not None:
        float_scores = task.scores(model.predict(x_held, batch_size=256, verbose=0), held.y, labels)
        summary.update(uar=float_scores["uar"], accuracy=float_scores["accuracy"], eval_clips=len(held))
    else:  # no server data: calibrate int8 on standard-normal inputs (the standardised scale)
        rep_inputs = (
            np.random.default_rng(int(cfg["seed"])).standard_normal((300, *config.input_shape)).astype(np.float32)
        )
    tflite = to_tflite(model, "int8", input_shape=config.input_shape, representative=rep_inputs, seed=int(cfg["seed"]))
    if x_held is not None and held is not None:
        q = task.scores(tflite_probabilities(tflite, x_held), held.y, labels)
        summary.update(uar_int8=q["uar"], accuracy_int8=q["accuracy"])
    history = {
        "train": {r: dict(m) for r, m in result.train_metrics_clientapp.items()},
        "evaluate": {r: dict(m) for r, m in result.evaluate_metrics_clientapp.items()},
        "held_out": {r: dict(m) for r, m in result.evaluate_metrics_serverapp.items()},
    }
    out = Path(str(cfg["out"])) if cfg["out"] else default_out(str(cfg["name"]))
    metrics = {k: summary[k] for k in ("uar", "accuracy", "uar_int8", "accuracy_int8") if summary.get(k) is not None}
    training = {
        "federated": True,
        "strategy": "FedAvg",
        "model": cfg["model"],
        "corpus": cfg["corpus"] or None,
        "holdout": sorted(task.holdout(cfg)),
        "clients": n_nodes,
        "dp": cfg["dp"],
        "privacy": dp,
        "secagg": cfg["secagg"],
        "run_config": {
            k: cfg[k]
            for k in (
                "num-server-rounds",
                "local-epochs",
                "fraction-train",
                "lr",
                "batch-size",
                "min-clips",
                "seed",
                "partition",
                "grouping",
                "max-update-norm",
                "max-examples",
                "median-bounds",
                "trainer",
            )
        },
    }
    bundle = save_bundle(
        out,
        tflite=tflite,
        name=str(cfg["name"]),
        labels=labels,
        input=config,
        normalization=norm,
        quantization="int8",
        training=training,
        metrics=metrics,
    )
    task.release_model()
    summary.update(
        bundle=os.fspath(bundle.path),
        model_id=bundle.model_id,
        rejected=strategy.rejected,
        bounded=strategy.bounded,
        clients_per_round=strategy.received,
        secagg=cfg["secagg"],
        seconds_per_round=seconds_per_round,
        privacy=dp,
        history=history,
        seconds=round(time.time() - t0, 1),
    )
    log.info("ser-edge fl: global model saved as %s (%s)", bundle.path, bundle.model_id)
    return summary


def make_app(
    overrides: Mapping[str, Any] | None = None,
    on_round: OnRound | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> ServerApp:
    """The ServerApp; ``overrides`` replace run config values, ``on_round``/``on_done`` receive
    the held-out scores of each round and the run's summary (used by the simulation)."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        summary = run(grid, task.settings(context.run_config, overrides), on_round, context)
        if on_done is not None:
            on_done(summary)

    return server


app = make_app()
