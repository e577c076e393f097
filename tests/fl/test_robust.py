"""Robust aggregation (issue 14): one malicious reply of 8 under each attack moves the aggregate
no further than an honest client could; the statistics round refuses impossible counts and M2;
an honest client clips its own update and bounds its weight (what secure aggregation relies on).
The malicious replies are made by the attack mod (`ser_edge.fl.attacks`) from honest ones."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, Metadata, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from ser_edge.fl import robust
from ser_edge.fl.attacks import ATTACKS, attack_mod
from ser_edge.fl.strategy import RejectInvalid, check_aggregate

SHAPES = [(20, 8), (8,), (8, 3), (3,)]


@pytest.fixture
def server_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from flwr.supercore.task_identity import TaskIdentity

    for key, value in (("_run_id", 1), ("_node_id", 1), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, key, value)


class Grid8:
    def get_node_ids(self) -> list[int]:
        return list(range(10, 18))


def _honest(rng: np.random.Generator, current: list[np.ndarray]) -> list[np.ndarray]:
    return [(c + rng.normal(0.05, 0.02, c.shape)).astype(np.float32) for c in current]


def _round(kind: str, strategy: RejectInvalid) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """One round of 8 replies (partition 0 malicious under ``kind``): the current global model, the
    plain mean of the honest updates, and the strategy's aggregate (it also keeps the replies)."""
    rng = np.random.default_rng(0)
    current = [rng.normal(0, 1, s).astype(np.float32) for s in SHAPES]
    msgs = list(strategy.configure_train(1, ArrayRecord(current), ConfigRecord(), Grid8()))
    mod = None if kind == "none" else attack_mod(kind, attacker=0)
    replies, honest = [], []
    for i, msg in enumerate(msgs):
        new = _honest(rng, current)
        n = int(rng.integers(30, 60))
        if i > 0 or kind == "none":
            honest.append((new, n))

        def train(m: Message, ctx: Context, new: Any = new, n: int = n) -> Message:
            return Message(
                RecordDict({"arrays": ArrayRecord(new), "metrics": MetricRecord({"num-examples": n})}), reply_to=m
            )

        ctx = Context(
            run_id=1,
            node_id=msg.metadata.dst_node_id,
            node_config={"partition-id": i},
            state=RecordDict(),
            run_config={},
        )
        md = Metadata(
            run_id=1,
            message_id=f"m{i}",
            src_node_id=1,
            dst_node_id=msg.metadata.dst_node_id,
            reply_to_message_id="",
            group_id="1",
            created_at=time.time(),
            ttl=3600.0,
            message_type="train",
        )
        incoming = Message(content=msg.content, metadata=md)
        replies.append(mod(incoming, ctx, train) if mod else train(incoming, ctx))
    strategy.sent = [r.content["arrays"].to_numpy_ndarrays() for r in replies]  # type: ignore[attr-defined]
    arrays, _ = strategy.aggregate_train(1, replies)
    total = sum(n for _, n in honest)
    mean = [sum(w[j].astype(np.float64) * n for w, n in honest) / total for j in range(len(SHAPES))]
    assert arrays is not None
    return current, mean, arrays.to_numpy_ndarrays()


@pytest.mark.parametrize("kind", ["none", *ATTACKS])
def test_one_malicious_client_of_8_cannot_take_over(kind: str, server_identity: None) -> None:
    strategy = RejectInvalid(FedAvg(min_available_nodes=8, min_train_nodes=8), max_update_norm=100.0, max_examples=1000)
    current, honest_mean, agg = _round(kind, strategy)
    honest_norm = robust.update_norm(honest_mean, current)
    # the aggregate stays within a third of the honest clients' mean update of it: one reply of 8,
    # its norm at most the median's and its weight at most twice the median's, can at worst pull
    # against the honest direction with ~1/6 of the weight (2 x 1/6 of an honest update)
    assert robust.update_norm(agg, honest_mean) <= 0.35 * honest_norm, kind
    assert all(np.all(np.isfinite(a)) for a in agg)
    if kind in ("nan", "scale", "flip", "max-values"):  # NaN, or an outlier (norm above 4 x the median)
        assert len(strategy.rejected[1]) == 1
        assert kind == "nan" or "x the round's median" in strategy.rejected[1][0]
    elif kind != "none":
        assert strategy.bounded[1] >= 1  # clipped or capped, not averaged as sent
    else:
        assert (
            strategy.rejected == {} and robust.update_norm(agg, honest_mean) < 0.02 * honest_norm
        )  # only the largest honest updates clipped to the median


def test_without_the_bounds_each_attack_takes_over(server_identity: None) -> None:
    """What the bounds prevent: the same replies through plain FedAvg (today's screening only)."""
    for kind in ("scale", "flip", "examples", "examples-1e308"):
        strategy = RejectInvalid(
            FedAvg(min_available_nodes=8, min_train_nodes=8),
            relative_norm=np.inf,
            relative_weight=np.inf,
            reject_factor=np.inf,
        )
        current, honest_mean, agg = _round(kind, strategy)
        honest = robust.update_norm(honest_mean, current)
        attacker = strategy.sent[0]  # type: ignore[attr-defined]
        if kind == "scale":
            assert robust.update_norm(agg, current) > 1e25
        elif kind == "flip":
            assert robust.update_norm(agg, honest_mean) > 5 * honest
        else:  # the global model becomes the attacker's
            assert robust.update_norm(agg, attacker) < 1e-3 * robust.update_norm(honest_mean, attacker)


def test_an_aggregate_beyond_the_bound_is_not_applied(server_identity: None) -> None:
    """Under secure aggregation only the sum is seen: a client that did not clip shows in it."""
    current = ArrayRecord([np.zeros(4, np.float32)])
    assert check_aggregate(ArrayRecord([np.full(4, 0.5, np.float32)]), current, 1.0) is None
    assert "above max-update-norm" in str(check_aggregate(ArrayRecord([np.full(4, 5.0, np.float32)]), current, 1.0))
    assert "NaN" in str(check_aggregate(ArrayRecord([np.full(4, np.nan, np.float32)]), current, 1.0))


def test_updates_within_the_outlier_bound_are_clipped_to_the_median(server_identity: None) -> None:
    """Below the outlier bound (here switched off) an attacking update is clipped to the median."""
    strategy = RejectInvalid(FedAvg(min_available_nodes=8, min_train_nodes=8), reject_factor=np.inf)
    current, honest_mean, agg = _round("flip", strategy)
    assert strategy.rejected == {} and strategy.bounded[1] >= 1
    assert robust.update_norm(agg, honest_mean) <= 0.35 * robust.update_norm(honest_mean, current)


def test_clip_update_bounds_any_update() -> None:
    old = [np.ones((3, 2), np.float32), np.zeros(2, np.float32)]
    for scale in (1.0, 1e30, -1e38):
        new = [(o + scale).astype(np.float32) for o in old]
        clipped = robust.clip_update(new, old, 2.0)
        assert [c.dtype for c in clipped] == [np.float32, np.float32]
        assert robust.update_norm(clipped, old) == pytest.approx(2.0, rel=1e-5)
    small = [o + 0.1 for o in old]
    assert all(np.array_equal(a, b) for a, b in zip(robust.clip_update(small, old, 2.0), small))


def test_statistics_with_impossible_counts_or_m2_are_refused() -> None:
    good = {"frame-mean": np.zeros(3), "frame-m2": np.ones(3), "input-mean": np.zeros(5), "input-m2": np.ones(5)}
    assert robust.check_stats(40, 9000, good, 1000) is None
    for count, frames, why in (
        (-5, 9000, "num-examples"),
        (0, 9000, "num-examples"),
        (1e12, 9000, "num-examples"),
        (float("nan"), 9000, "num-examples"),
        (40, -1, "frames"),
        (40, 1e15, "frames"),
        (40, float("inf"), "frames"),
    ):
        assert why in str(robust.check_stats(count, frames, good, 1000)), (count, frames)
    assert "negative" in str(robust.check_stats(40, 9000, {**good, "input-m2": -np.ones(5)}, 1000))
    assert "negative" in str(robust.check_stats(40, 9000, {**good, "frame-m2": np.array([1.0, -1e-3, 1.0])}, 1000))
    assert "NaN or Inf" in str(robust.check_stats(40, 9000, {**good, "input-mean": np.full(5, np.inf)}, 1000))


def test_robust_settings_are_checked() -> None:
    from ser_edge.fl import task

    assert task.settings({})["median-bounds"] == "on" and task.settings({})["max-update-norm"] == 100.0
    for key, value in (
        ("median-bounds", "maybe"),
        ("max-update-norm", 0.0),
        ("max-examples", 0),
        ("max-update-norm", float("inf")),
        ("secagg", "yes"),
    ):
        with pytest.raises(ValueError, match=key):
            task.settings({key: value})
    with pytest.raises(ValueError, match="secagg=on works with dp=off or example only"):
        task.settings({"secagg": "on", "dp": "client"})
    assert task.settings({"secagg": "on", "dp": "example"})["dp"] == "example"  # DP-SGD is on the device
    with pytest.raises(ValueError, match="trainer=numpy"):
        task.settings({"dp": "example", "trainer": "keras"})


def _replies(n: int = 8) -> tuple[ArrayRecord, list[Message]]:
    rng = np.random.default_rng(3)
    current = [rng.normal(0, 1, s).astype(np.float32) for s in SHAPES]
    strategy = RejectInvalid(FedAvg(min_available_nodes=n, min_train_nodes=n))
    replies = []
    for i, msg in enumerate(strategy.configure_train(1, ArrayRecord(current), ConfigRecord(), Grid8())):
        md = Metadata(
            run_id=1,
            message_id=f"m{i}",
            src_node_id=1,
            dst_node_id=msg.metadata.dst_node_id,
            reply_to_message_id="",
            group_id="1",
            created_at=time.time(),
            ttl=3600.0,
            message_type="train",
        )
        content = RecordDict(
            {
                "arrays": ArrayRecord(_honest(rng, current)),
                "metrics": MetricRecord({"num-examples": int(rng.integers(30, 60))}),
            }
        )
        replies.append(Message(content, reply_to=Message(content=msg.content, metadata=md)))
    return ArrayRecord(current), replies


def test_the_average_does_not_depend_on_the_order_replies_arrive_in(server_identity: None) -> None:
    """Replies arrive in any order and float sums depend on it: sorted by content, the same
    replies give the same global model bit for bit (plain FedAvg does not)."""
    results, plain = set(), set()
    for seed in range(6):
        current, replies = _replies()  # new messages: the bounds clip replies in place
        order = [replies[i] for i in np.random.default_rng(seed).permutation(len(replies))]
        strategy = RejectInvalid(FedAvg(min_available_nodes=8, min_train_nodes=8))
        strategy.configure_train(1, current, ConfigRecord(), Grid8())
        arrays, _ = strategy.aggregate_train(1, order)
        assert arrays is not None
        results.add(b"".join(a.tobytes() for a in arrays.to_numpy_ndarrays()))
        unsorted, _ = FedAvg(min_available_nodes=8, min_train_nodes=8).aggregate_train(1, order)
        assert unsorted is not None
        plain.add(b"".join(a.tobytes() for a in unsorted.to_numpy_ndarrays()))
    assert len(results) == 1
    assert len(plain) > 1  # what the fixed order removes


def test_the_reversed_order_changes_the_average_by_rounding_only(server_identity: None) -> None:
    """The benchmarks' control (``aggregation-order = "reversed"``): the same replies summed in
    the reverse order give another average, as repeatable, within float rounding of the first."""
    averages = {}
    for reverse in (False, True, True):
        current, replies = _replies()
        strategy = RejectInvalid(FedAvg(min_available_nodes=8, min_train_nodes=8), reverse_order=reverse)
        strategy.configure_train(1, current, ConfigRecord(), Grid8())
        arrays, _ = strategy.aggregate_train(1, replies)
        assert arrays is not None
        averages.setdefault(reverse, set()).add(b"".join(a.tobytes() for a in arrays.to_numpy_ndarrays()))
    assert len(averages[True]) == 1 and averages[True] != averages[False]
    a, b = (np.frombuffer(next(iter(averages[k])), np.float32) for k in (False, True))
    assert np.max(np.abs(a - b)) <= 4 * np.finfo(np.float32).eps * np.max(np.abs(a))


def test_the_absent_baseline_declines_without_training(server_identity: None) -> None:
    """The attacks bench's 7-honest-client baseline: partition 0 declines every training round."""
    calls = []

    def train(m: Message, ctx: Context) -> Message:
        calls.append(ctx.node_config["partition-id"])
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=m)

    mod = attack_mod("absent")
    _, replies = _replies()
    for i, reply in enumerate(replies):
        ctx = Context(run_id=1, node_id=1, node_config={"partition-id": i}, state=RecordDict(), run_config={})
        out = mod(reply, ctx, train)
        assert out.has_error() == (i == 0)
    assert calls == list(range(1, len(replies)))  # the others trained
