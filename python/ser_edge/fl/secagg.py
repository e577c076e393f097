"""FedAvg under Flower's secure aggregation (SecAgg+): the server learns only the weighted sum
of the clients' updates, never one client's.

Each round runs Flower's ``SecAggPlusWorkflow`` (the clients' ``secaggplus_mod``): clients
train, clip their update (new - global weights) to ``max-update-norm``, weight it by their
bounded ``num-examples`` (at most ``max-examples``, Flower's ``max_weight``), quantize and mask
it; the masks cancel only in the sum. The ServerApp receives replies whose arrays are empty
(the mod clears them) and the unmasked *aggregate* update, which it checks
(:func:`ser_edge.fl.strategy.check_aggregate`: finite, norm within ``max-update-norm``) before
adding it to the global model. SecAgg+ also clips every coordinate of ``weight x update`` to
``secagg-clip`` before quantizing. Per-client screening (median bounds) cannot run here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid

from ser_edge.fl.strategy import check_aggregate

#: Quantization levels: 2**26 keeps the masked sum of up to 64 clients below the 2**32 modulus.
QUANTIZATION_RANGE = 2**26


def _weighted_mean(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    total = sum(n for n, _ in results) or 1
    keys = set.intersection(*(set(m) for _, m in results)) if results else set()
    return {
        k: sum(n * float(m[k]) for n, m in results) / total
        for k in sorted(keys)
        if all(isinstance(m[k], (int, float)) for _, m in results)
    }


def fedavg(
    grid: Grid,
    context: Context,
    cfg: Mapping[str, Any],
    initial: ArrayRecord,
    train_config: ConfigRecord,
    central: Callable[[int, ArrayRecord], Any],
    federated: Callable[[int, ArrayRecord], Any],
) -> dict[str, Any]:
    """``num-server-rounds`` of FedAvg through SecAgg+; ``central(round, arrays)`` scores the
    global model after each round (and round 0), ``federated(round, arrays)`` runs the clients'
    evaluation after each round. Returns ``arrays`` (the final global model), ``train`` (round ->
    weighted train metrics), ``rejected`` and ``received`` (round -> clients whose masked update
    was summed)."""
    from flwr.server import ServerConfig
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.app_utils import start_update_client_manager_thread
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg as LegacyFedAvg
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    min_nodes, rounds = int(cfg["min-nodes"]), int(cfg["num-server-rounds"])
    train: dict[int, dict[str, Any]] = {}
    received: dict[int, int] = {}
    current_round = [0]

    def fit_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        received[current_round[0]] = len(results)
        train[current_round[0]] = _weighted_mean(results)
        return train[current_round[0]]

    base = dict(train_config)
    strategy = LegacyFedAvg(
        fraction_fit=float(cfg["fraction-train"]),
        fraction_evaluate=0.0,
        min_fit_clients=min_nodes,
        min_available_clients=min_nodes,
        on_fit_config_fn=lambda r: {**base, "server-round": r},  # type: ignore[dict-item]
        fit_metrics_aggregation_fn=fit_metrics,
    )
    manager = SimpleClientManager()
    legacy = LegacyContext(context, config=ServerConfig(num_rounds=rounds), strategy=strategy, client_manager=manager)
    workflow = SecAggPlusWorkflow(
        num_shares=1.0,
        reconstruction_threshold=0.5,
        max_weight=float(cfg["max-examples"]),
        clipping_range=float(cfg["secagg-clip"]),
        quantization_range=QUANTIZATION_RANGE,
    )
    thread, stop, registered = start_update_client_manager_thread(grid, manager)
    registered.wait()
    current, rejected = initial, {}
    dtypes = [a.dtype for a in initial.to_numpy_ndarrays()]
    try:
        central(0, current)
        for r in range(1, rounds + 1):
            current_round[0] = r
            legacy.state.array_records[MAIN_PARAMS_RECORD] = current
            legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: r})
            workflow(grid, legacy)
            aggregate = legacy.state.array_records[MAIN_PARAMS_RECORD]
            if aggregate is current:  # the protocol halted (too few clients): the model stays
                rejected[r] = ["secure aggregation halted"]
            else:
                old = current.to_numpy_ndarrays()
                new = [
                    (g.astype(np.float64) + u).astype(t) for g, u, t in zip(old, aggregate.to_numpy_ndarrays(), dtypes)
                ]
                candidate = ArrayRecord({k: Array(np.ascontiguousarray(a)) for k, a in zip(current.keys(), new)})
                reason = check_aggregate(candidate, current, float(cfg["max-update-norm"]))
                if reason:
                    rejected[r] = [f"the aggregate: {reason}; the global model stays"]
                else:
                    current = candidate
            central(r, current)
            federated(r, current)
    finally:
        stop.set()
        thread.join()
    return {
        "arrays": current,
        "train": {r: MetricRecord(m) for r, m in train.items()},
        "rejected": rejected,
        "received": received,
    }


def is_protocol_message(content: Any) -> bool:
    """Whether a train message belongs to a SecAgg+ round (the client then replies its update)."""
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    return RECORD_KEY_CONFIGS in content.config_records
