"""Screening of client replies before FedAvg averages them.

:class:`RejectInvalid` wraps any Flower strategy (FedAvg, or FedAvg inside a DP wrapper): a
training reply whose arrays are not finite, or do not have exactly the global model's keys,
shapes and dtypes, or whose weight (``num-examples``) is not a positive finite number, is left
out of the average and logged; so is an evaluation reply with non-finite metrics.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, Mapping, Optional

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

log = logging.getLogger("flwr")
WEIGHT_KEY = "num-examples"

Reference = Mapping[str, tuple[tuple[int, ...], str]]


def reference_of(arrays: ArrayRecord) -> dict[str, tuple[tuple[int, ...], str]]:
    """Keys, shapes and dtypes of an ArrayRecord (what every reply must match)."""
    return {k: (tuple(a.shape), str(a.dtype)) for k, a in arrays.items()}


def _check_metrics(content: RecordDict) -> Optional[str]:
    if len(content.metric_records) != 1:
        return f"{len(content.metric_records)} MetricRecords (expected 1)"
    metrics = next(iter(content.metric_records.values()))
    w = metrics.get(WEIGHT_KEY)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
        return f"{WEIGHT_KEY}={w!r} is not a positive finite number"
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        if not all(math.isfinite(float(v)) for v in values):
            return f"metric {key!r} is not finite"
    return None


def check_reply(content: RecordDict, reference: Optional[Reference]) -> Optional[str]:
    """Why a reply must not be aggregated, or ``None`` if it is sound. ``reference``: the keys,
    shapes and dtypes its one ArrayRecord must have (``None``: a reply without arrays)."""
    bad = _check_metrics(content)
    if bad or reference is None:
        return bad
    if len(content.array_records) != 1:
        return f"{len(content.array_records)} ArrayRecords (expected 1)"
    arrays = next(iter(content.array_records.values()))
    if list(arrays.keys()) != list(reference.keys()):
        return f"array keys {list(arrays.keys())[:5]}... do not match the global model's"
    for key, a in arrays.items():
        shape, dtype = reference[key]
        if tuple(a.shape) != shape or str(a.dtype) != dtype:
            return f"array {key!r} is {a.dtype}{list(a.shape)}; the global model's is {dtype}{list(shape)}"
        if not np.all(np.isfinite(a.numpy())):
            return f"array {key!r} has NaN or Inf values"
    return None


class RejectInvalid(Strategy):
    """Wraps ``strategy``; unsound replies never reach its aggregation (see module docstring).
    ``rejected`` maps each round to the reasons of the replies it left out."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.reference: Optional[Reference] = None
        self.rejected: dict[int, list[str]] = {}

    def _screen(self, server_round: int, replies: Iterable[Message], reference: Optional[Reference]) -> list[Message]:
        kept = []
        for msg in replies:
            reason = None if msg.has_error() else check_reply(msg.content, reference)
            if reason is None:
                kept.append(msg)  # sound, or an error reply the strategy counts as a failure
                continue
            self.rejected.setdefault(server_round, []).append(reason)
            log.warning("round %d: rejected the reply of node %d: %s", server_round, msg.metadata.src_node_id, reason)
        return kept

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self.reference = reference_of(arrays)
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        return self.strategy.aggregate_train(server_round, self._screen(server_round, replies, self.reference))

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Optional[MetricRecord]:
        return self.strategy.aggregate_evaluate(server_round, self._screen(server_round, replies, None))

    def summary(self) -> None:
        log.info("\t├──> Replies with NaN/Inf or mismatched arrays are rejected")
        self.strategy.summary()

    def __getattr__(self, name: str) -> Any:  # e.g. the DP wrapper's privacy_spent()
        return getattr(self.__dict__["strategy"], name)
