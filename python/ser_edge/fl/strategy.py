"""Screening of client replies before FedAvg averages them.

:class:`RejectInvalid` wraps any Flower strategy (FedAvg, or FedAvg inside a DP wrapper): a
training reply whose arrays are not finite, or do not have exactly the global model's keys,
shapes and dtypes, or whose weight (``num-examples``) is not a positive finite number, is left
out of the average and logged; so is an evaluation reply with non-finite metrics. The sound
updates are then bounded (:mod:`ser_edge.fl.robust`): an update whose norm is above 4x the
round's median is left out, each weight capped and each update clipped (fixed bounds, and
relative to the round's median), and an aggregate whose update is larger than an honest one can
be is not applied.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from ser_edge.fl import robust

log = logging.getLogger("flwr")
WEIGHT_KEY = "num-examples"

Reference = Mapping[str, tuple[tuple[int, ...], str]]


def reference_of(arrays: ArrayRecord) -> dict[str, tuple[tuple[int, ...], str]]:
    """Keys, shapes and dtypes of an ArrayRecord (what every reply must match)."""
    return {k: (tuple(a.shape), str(a.dtype)) for k, a in arrays.items()}


def _check_metrics(content: RecordDict) -> str | None:
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


def check_reply(content: RecordDict, reference: Reference | None) -> str | None:
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


def _digest(msg: Message) -> tuple[bool, bytes]:
    h = hashlib.sha256()
    if msg.has_error():
        h.update(f"{msg.error.code} {msg.error.reason}".encode())
        return True, h.digest()
    for metrics in msg.content.metric_records.values():
        for key, value in metrics.items():
            h.update(key.encode() + repr(value).encode())
    for arrays in msg.content.array_records.values():
        for key, a in arrays.items():
            h.update(key.encode() + a.numpy().tobytes())
    return False, h.digest()


def in_fixed_order(replies: Iterable[Message], reverse: bool = False) -> list[Message]:
    """The replies sorted by a digest of their content (error replies last). Floating-point sums
    depend on the order of their terms and replies arrive in any order: sorted, the same replies
    always give the same average (node ids would not do: the simulation draws them at random).
    ``reverse``: the sound replies in the opposite order, an average that differs only by float
    rounding (a control for how far training carries a rounding-sized change)."""
    ordered = sorted(replies, key=_digest)
    if reverse:
        sound = [m for m in ordered if not m.has_error()]
        ordered = sound[::-1] + ordered[len(sound) :]
    return ordered


def check_aggregate(arrays: ArrayRecord, current: ArrayRecord, max_update_norm: float) -> str | None:
    """Why an aggregate must not become the global model, or ``None``: it must be finite and
    move the global model by no more than ``max_update_norm`` (a weighted mean of clipped
    updates cannot). This check works under secure aggregation, where only the sum is seen."""
    new = arrays.to_numpy_ndarrays()
    if not all(np.all(np.isfinite(a)) for a in new):
        return "NaN or Inf values"
    norm = robust.update_norm(new, current.to_numpy_ndarrays())
    if norm > max_update_norm * (1 + 1e-4) + 1e-6:
        return f"update norm {norm:.3g} is above max-update-norm={max_update_norm:g}"
    return None


class RejectInvalid(Strategy):
    """Wraps ``strategy``; unsound replies never reach its aggregation (see module docstring).
    ``rejected`` maps each round to the reasons of the replies it left out; ``bounded`` to the
    number of updates clipped or weights capped. ``max_update_norm``/``max_examples``: the fixed
    bounds (those honest clients apply to themselves); ``relative_norm``/``relative_weight``: the
    factors on the round's median update norm and weight; ``reject_factor``: an update whose
    norm is above this many times the median is left out. ``uniform_weights`` (differential
    privacy): every sound reply weighs 1, and the aggregate (noisy) is checked for finiteness only.
    ``reverse_order``: aggregate in the reverse of the fixed order (see ``in_fixed_order``)."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        max_update_norm: float = math.inf,
        max_examples: float = math.inf,
        relative_norm: float = 1.0,
        relative_weight: float = 2.0,
        reject_factor: float = 4.0,
        uniform_weights: bool = False,
        reverse_order: bool = False,
    ) -> None:
        self.strategy = strategy
        self.reference: Reference | None = None
        self.current: ArrayRecord | None = None
        self.max_update_norm, self.max_examples = float(max_update_norm), float(max_examples)
        self.relative_norm, self.relative_weight = relative_norm, relative_weight
        self.reject_factor, self.uniform_weights = reject_factor, uniform_weights
        self.reverse_order = reverse_order
        self.rejected: dict[int, list[str]] = {}
        self.bounded: dict[int, int] = {}
        self.received: dict[int, int] = {}  # train replies without error, by round
        self.dp_epsilon: float | None = None  # the largest epsilon a client reported (dp=example)

    def _reject(self, server_round: int, node: int, reason: str) -> None:
        self.rejected.setdefault(server_round, []).append(reason)
        log.warning("round %d: rejected the reply of node %d: %s", server_round, node, reason)

    def _screen(self, server_round: int, replies: Iterable[Message], reference: Reference | None) -> list[Message]:
        kept = []
        for msg in replies:
            reason = None if msg.has_error() else check_reply(msg.content, reference)
            if reason is None:
                kept.append(msg)  # sound, or an error reply the strategy counts as a failure
                continue
            self._reject(server_round, msg.metadata.src_node_id, reason)
        return kept

    def _bound(self, server_round: int, replies: list[Message]) -> list[Message]:
        """Leaves out the sound replies whose update is an outlier (norm above ``reject_factor``
        x the round's median), then caps each weight and clips each update, in place."""
        if self.current is None:
            return replies
        old = self.current.to_numpy_ndarrays()
        sound = [m for m in replies if not m.has_error()]
        norms = [
            robust.update_norm(next(iter(m.content.array_records.values())).to_numpy_ndarrays(), old) for m in sound
        ]
        limit = robust.median_cap(norms, self.reject_factor, math.inf)
        outliers = set()
        for msg, norm in zip(sound, norms):
            if norm > limit:
                outliers.add(id(msg))
                self._reject(
                    server_round,
                    msg.metadata.src_node_id,
                    f"update norm {norm:.3g} is above {self.reject_factor:g} x the round's median",
                )
        kept = [m for m in replies if id(m) not in outliers]
        sound_norms = [(m, n) for m, n in zip(sound, norms) if n <= limit]
        arrays = [next(iter(m.content.array_records.values())) for m, _ in sound_norms]
        metrics = [next(iter(m.content.metric_records.values())) for m, _ in sound_norms]
        weights = [float(m[WEIGHT_KEY]) for m in metrics]  # type: ignore[arg-type]
        max_norm = robust.median_cap([n for _, n in sound_norms], self.relative_norm, self.max_update_norm)
        max_weight = (
            1.0 if self.uniform_weights else robust.median_cap(weights, self.relative_weight, self.max_examples)
        )
        for (msg, norm), a, m, w in zip(sound_norms, arrays, metrics, weights):
            if norm > max_norm:
                name = next(iter(msg.content.array_records))
                clipped = robust.clip_update(a.to_numpy_ndarrays(), old, max_norm)
                msg.content.array_records[name] = ArrayRecord({k: Array(v) for k, v in zip(a.keys(), clipped)})
            if w > max_weight:
                m[WEIGHT_KEY] = max_weight
            if norm > max_norm or (w > max_weight and not self.uniform_weights):
                self.bounded[server_round] = self.bounded.get(server_round, 0) + 1
                log.info(
                    "round %d: node %d's update bounded (norm %.3g -> %.3g, weight %.3g -> %.3g)",
                    server_round,
                    msg.metadata.src_node_id,
                    norm,
                    min(norm, max_norm),
                    w,
                    min(w, max_weight),
                )
        return kept

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.reference, self.current = reference_of(arrays), arrays
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = in_fixed_order(replies, self.reverse_order)
        self.received[server_round] = sum(not m.has_error() for m in replies)
        kept = self._bound(server_round, self._screen(server_round, replies, self.reference))
        for msg in kept:
            eps = None if msg.has_error() else next(iter(msg.content.metric_records.values())).get("dp-epsilon")
            if isinstance(eps, (int, float)):
                self.dp_epsilon = max(self.dp_epsilon or 0.0, float(eps))
        arrays, metrics = self.strategy.aggregate_train(server_round, kept)
        if arrays is not None and self.current is not None:
            reason = check_aggregate(arrays, self.current, math.inf if self.uniform_weights else self.max_update_norm)
            if reason:
                self._reject(server_round, 0, f"the aggregate: {reason}; the global model stays")
                return None, None
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, self._screen(server_round, in_fixed_order(replies), None))

    def summary(self) -> None:
        log.info("\t├──> Replies with NaN/Inf or mismatched arrays are rejected")
        self.strategy.summary()

    def __getattr__(self, name: str) -> Any:  # e.g. the DP wrapper's privacy_spent()
        return getattr(self.__dict__["strategy"], name)
