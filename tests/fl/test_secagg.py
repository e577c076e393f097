"""Secure aggregation (issue 16.2) in Flower's Simulation Runtime with its own SecAgg+
(``secaggplus_mod`` on the ClientApp, ``SecAggPlusWorkflow`` on the ServerApp): the new global
model equals plain FedAvg's within float tolerance, and no reply the ServerApp receives holds a
client's weights or update: train replies carry empty arrays and masked vectors that look
uniformly random over the 2**32 modulus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import EMODB
from ser_edge.fl import robust

ROUNDS = 2


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> dict[str, Any]:
    from flwr.common import bytes_to_ndarray
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    from ser_edge.fl import secagg, strategy
    from ser_edge.fl.simulate import simulate

    seen: dict[str, Any] = {"train_arrays": [], "masked": [], "globals": []}
    pull = InMemoryGrid.pull_messages

    def spy_pull(self: Any, message_ids: Any) -> Any:
        replies = list(pull(self, message_ids))
        for msg in replies:
            if msg.has_error() or msg.metadata.message_type != "train":
                continue
            for record in msg.content.array_records.values():
                seen["train_arrays"].extend(a.numpy() for a in record.values())
            configs = msg.content.config_records.get("secaggplus_configs")
            if configs is not None and "masked_parameters" in configs:
                seen["masked"].append([bytes_to_ndarray(b) for b in configs["masked_parameters"]])  # type: ignore[union-attr]
        return replies

    check = strategy.check_aggregate

    def spy_check(arrays: Any, current: Any, max_norm: float) -> Any:
        seen["globals"].append((current.to_numpy_ndarrays(), arrays.to_numpy_ndarrays()))
        return check(arrays, current, max_norm)

    monkeypatch.setattr(InMemoryGrid, "pull_messages", spy_pull)
    monkeypatch.setattr(strategy, "check_aggregate", spy_check)
    monkeypatch.setattr(secagg, "check_aggregate", spy_check)
    overrides = {"corpus": "emodb", "data": str(EMODB), "holdout": "15,16", "num-server-rounds": ROUNDS,
                 "local-epochs": 1, "out": str(tmp_path / mode), "min-nodes": 2, "secagg": mode}
    seen["summary"] = simulate(overrides, 2)
    return seen


def test_secagg_equals_fedavg_and_the_server_sees_no_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _run(tmp_path, monkeypatch, "off")
    secure = _run(tmp_path, monkeypatch, "on")
    assert plain["summary"]["secagg"] == "off" and secure["summary"]["secagg"] == "on"
    assert len(plain["globals"]) == len(secure["globals"]) == ROUNDS  # every round applied
    for (p_old, p_new), (s_old, s_new) in zip(plain["globals"], secure["globals"]):
        # same starting model each round (the rounds before agreed), same aggregate
        assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(p_old, s_old))
        step = robust.update_norm(p_new, p_old)
        assert step > 0.1  # the round did move the model
        assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(p_new, s_new))
        assert robust.update_norm(s_new, p_new) < 1e-4 * step * 100
    # plain FedAvg: the server holds each client's weights; SecAgg+: no arrays at all in train replies
    assert len(plain["train_arrays"]) == ROUNDS * 2 * len(plain["globals"][0][0])
    assert secure["train_arrays"] == []
    assert len(secure["masked"]) == ROUNDS * 2  # one masked vector per client per round
    for vector in secure["masked"]:
        values = np.concatenate([v.ravel() for v in vector]).astype(np.float64)
        # quantized updates lie in [0, 2**26] (QUANTIZATION_RANGE) times a weight factor;
        # masked ones are uniform over [0, 2**32)
        assert np.mean(values > 2**28) > 0.9 and abs(values.mean() / 2**32 - 0.5) < 0.01
    assert abs(plain["summary"]["uar"] - secure["summary"]["uar"]) < 0.02
