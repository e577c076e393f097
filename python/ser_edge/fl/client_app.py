"""The Flower ClientApp: a device trains the global model on its own labelled clips and replies
with nothing but arrays (model weights, or the normalisation statistics it contributes) and
scalar metrics. A device with fewer than ``min-clips`` clips declines (an error reply, which
FedAvg counts as a failure and leaves out)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.compat.common import recorddict_compat as compat

from ser_edge.fl import privacy, robust, secagg, task

#: ``Error.code`` of a reply from a client that does not take part (too few clips, no data).
DECLINED = 100
CLIPPING_KEY = "clipping_norm"  # what DifferentialPrivacyClientSideFixedClipping sends
log = logging.getLogger("ser_edge.fl")


def _decline(msg: Message, reason: str) -> Message:
    return Message(error=Error(code=DECLINED, reason=reason), reply_to=msg)


def _local(context: Context, overrides: Mapping[str, Any] | None) -> tuple[dict[str, Any], task.LocalData]:
    cfg = task.settings(context.run_config, overrides)
    clips = task.client_clips(context.node_config, cfg)
    data = task.local_data(
        clips,
        task.input_config(cfg),
        task.labels(cfg),
        cache_dir=str(cfg["cache-dir"]),
        min_clips=int(cfg["min-clips"]),
    )
    return cfg, data


def _with_data(handler: Any, overrides: Mapping[str, Any] | None) -> Any:
    """Loads the client's data, declining on too few clips or unreadable data. The reason sent
    carries no file names; the details stay in this device's log."""

    def wrapped(msg: Message, context: Context) -> Message:
        try:
            cfg, data = _local(context, overrides)
        except task.NotEnoughData as e:
            return _decline(msg, f"declined: {e}")
        except ValueError as e:
            log.error("ser-edge fl client: %s", e)
            return _decline(msg, "declined: the client's data could not be read (details in its log)")
        return handler(msg, cfg, data)

    return wrapped


def _optional_clipping(msg: Message, context: Context, call_next: Any) -> Message:
    """Flower's ``fixedclipping_mod`` when the server asks for client-side clipping (DP)."""
    config = msg.content.config_records.get("config")
    if config is not None and CLIPPING_KEY in config:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def _optional_secagg(msg: Message, context: Context, call_next: Any) -> Message:
    """Flower's ``secaggplus_mod`` when the round is a secure-aggregation round. Its stochastic
    rounding draws from numpy's global generator, seeded here per round and partition (the masks
    come from the protocol's own keys, not from it), so a simulation is repeatable."""
    if secagg.is_protocol_message(msg.content):
        node = int(context.node_config.get("partition-id", context.node_id))
        np.random.seed([int(msg.metadata.group_id or 0), node % 2**32])
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


def stats(msg: Message, cfg: dict[str, Any], data: task.LocalData) -> Message:
    """This client's share of the global normalisation: count, mean and M2 of its raw voiced
    frames and of its pooled inputs (aggregates; never a clip's features)."""
    x = data.x.astype(np.float64)
    mean = x.mean(0)
    fs = data.frame_stats
    count = min(len(data), int(cfg["max-examples"]))  # bounded example counts; the variance is kept
    values = {
        "frame-mean": fs.mean,
        "frame-m2": fs.m2,
        "input-mean": mean,
        "input-m2": ((x - mean) ** 2).sum(0) * (count / len(data)),
    }
    arrays = ArrayRecord({k: Array(np.asarray(v, np.float64)) for k, v in values.items()})
    return Message(
        RecordDict({"stats": arrays, "metrics": MetricRecord({"num-examples": count, "frames": float(fs.count)})}),
        reply_to=msg,
    )


def train(msg: Message, cfg: dict[str, Any], data: task.LocalData) -> Message:
    """Local epochs from the global weights; replies the new weights, their update clipped to
    ``max-update-norm``, and training metrics with ``num-examples`` at most ``max-examples``. In
    a secure-aggregation round (Flower's legacy ``fitins``/``fitres`` records, which its
    ``secaggplus_mod`` reads) it replies the clipped update itself, which the mod masks."""
    legacy = secagg.is_protocol_message(msg.content)
    arrays = msg.content.array_records["fitins.parameters" if legacy else "arrays"]
    config = msg.content.config_records["fitins.config" if legacy else "config"]
    start = arrays.to_numpy_ndarrays()
    x = task.standardize(data.x, config["input-mean"], config["input-std"])
    epochs = int(config.get("local-epochs", cfg["local-epochs"]))
    batch_size = int(config.get("batch-size", cfg["batch-size"]))
    dp, extra = None, {}
    if cfg["dp"] == "example":  # DP-SGD, accounted over every round of the run
        from ser_edge.fl.numpy_mlp import DPSGD

        acc = privacy.example_level(
            len(data),
            batch_size,
            epochs,
            int(cfg["num-server-rounds"]),
            float(cfg["dp-delta"]),
            float(cfg["dp-epsilon"]),
            float(cfg["dp-noise"]),
        )
        dp = DPSGD(acc["noise_multiplier"], float(cfg["dp-clip"]), acc["sample_rate"])
        extra = {"dp-epsilon": acc["epsilon"], "dp-noise": acc["noise_multiplier"]}
    new, m = task.local_fit(
        cfg,
        start,
        x,
        data.y,
        data.weights,
        epochs=epochs,
        batch_size=batch_size,
        seed=int(cfg["seed"]) + int(config.get("server-round", 0)),  # type: ignore[arg-type]
        dp=dp,
    )
    weights = robust.clip_update(new, start, float(config.get("max-update-norm", cfg["max-update-norm"])))
    count = min(len(data), int(config.get("max-examples", cfg["max-examples"])))
    if legacy:
        update = [(w - s).astype(s.dtype) for w, s in zip(weights, start)]
        res = FitRes(
            Status(Code.OK, ""),
            ndarrays_to_parameters(update),
            count,
            {"train-loss": m["loss"], "train-accuracy": m["accuracy"], **extra},
        )
        return Message(compat.fitres_to_recorddict(res, False), reply_to=msg)
    metrics = MetricRecord({"num-examples": count, "train-loss": m["loss"], "train-accuracy": m["accuracy"], **extra})
    return Message(RecordDict({"arrays": ArrayRecord(weights), "metrics": metrics}), reply_to=msg)


def evaluate(msg: Message, cfg: dict[str, Any], data: task.LocalData) -> Message:
    """The global model's loss and accuracy on this client's clips."""
    config = msg.content["config"]
    m = task.local_evaluate(
        cfg,
        msg.content.array_records["arrays"].to_numpy_ndarrays(),
        task.standardize(data.x, config["input-mean"], config["input-std"]),
        data.y,
    )
    metrics = MetricRecord({"num-examples": len(data), "loss": m["loss"], "accuracy": m["accuracy"]})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def make_app(overrides: Mapping[str, Any] | None = None, train_mods: Sequence[Any] = ()) -> ClientApp:
    """The ClientApp; ``overrides`` replace run config values (the simulation passes its own);
    ``train_mods`` wrap its train function (outermost first)."""
    client = ClientApp()
    client.query()(_with_data(stats, overrides))
    client.train(mods=[*train_mods, _optional_secagg, _optional_clipping])(_with_data(train, overrides))
    client.evaluate()(_with_data(evaluate, overrides))
    return client


app = make_app()
