"""Secure aggregation (issue 16.2) in Flower's Simulation Runtime with its own SecAgg+
(``secaggplus_mod`` on the ClientApp, ``SecAggPlusWorkflow`` on the ServerApp): the new global
model equals plain FedAvg's within float tolerance, and no reply the ServerApp receives holds a
client's weights or update: train replies carry empty arrays and masked vectors that look
uniformly random over the 2**32 modulus. Each run is a subprocess that spies on what the
ServerApp's grid receives and on the global model before and after each round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from fl_support import EMODB

from ser_edge.fl import robust

# One round: from the second on, the two runs start from models that differ by float rounding,
# which local training amplifies (e.g. the biases before batch normalisation have no gradient
# but noise, which Adam turns into steps of about lr)
ROUNDS = 1

SPY = """
import json, sys
import numpy as np
from flwr.common import bytes_to_ndarray
from flwr.superlink.grid.inmemory_grid import InMemoryGrid
from ser_edge.fl import secagg, strategy
from ser_edge.fl.simulate import simulate

mode, out, data = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"train_arrays": 0, "masked": []}
globals_ = []
pull = InMemoryGrid.pull_messages

def spy_pull(self, message_ids):
    replies = list(pull(self, message_ids))
    for msg in replies:
        if msg.has_error() or msg.metadata.message_type != "train":
            continue
        seen["train_arrays"] += sum(len(r) for r in msg.content.array_records.values())
        configs = msg.content.config_records.get("secaggplus_configs")
        if configs is not None and "masked_params" in configs:
            values = np.concatenate([bytes_to_ndarray(b).ravel() for b in configs["masked_params"]])
            values = values.astype(np.float64)
            seen["masked"].append([float(np.mean(values > 2**28)), float(values.mean() / 2**32)])
    return replies

check = strategy.check_aggregate

def spy_check(arrays, current, max_norm):
    globals_.append((current.to_numpy_ndarrays(), arrays.to_numpy_ndarrays()))
    return check(arrays, current, max_norm)

InMemoryGrid.pull_messages = spy_pull
strategy.check_aggregate = secagg.check_aggregate = spy_check
summary = simulate({"corpus": "emodb", "data": data, "holdout": "15,16", "num-server-rounds": int(sys.argv[4]),
                    "local-epochs": 1, "out": out + "/bundle", "min-nodes": 2, "secagg": mode}, 2)
np.savez(out + "/globals.npz", **{f"{r}_{w}_{i}": a for r, pair in enumerate(globals_) for w, arrays in zip("on", pair)
                                   for i, a in enumerate(arrays)})
print(json.dumps({**seen, "rounds": len(globals_), "uar": summary["uar"], "secagg": summary["secagg"],
                  "seconds_per_round": summary["seconds_per_round"]}))
"""


def _run(tmp_path: Path, env: dict[str, str], mode: str) -> tuple[dict, list[tuple[list, list]]]:
    out = tmp_path / mode
    out.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", SPY, mode, str(out), str(EMODB), str(ROUNDS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    z = np.load(out / "globals.npz")
    n = len({k.rsplit("_", 1)[1] for k in z.files})
    rounds = [([z[f"{r}_o_{i}"] for i in range(n)], [z[f"{r}_n_{i}"] for i in range(n)]) for r in range(seen["rounds"])]
    return seen, rounds


def test_secagg_equals_fedavg_and_the_server_sees_no_update(tmp_path: Path, quiet_env: dict[str, str]) -> None:
    plain, plain_rounds = _run(tmp_path, quiet_env, "off")
    secure, secure_rounds = _run(tmp_path, quiet_env, "on")
    assert plain["secagg"] == "off" and secure["secagg"] == "on"
    assert len(plain_rounds) == len(secure_rounds) == ROUNDS  # every round applied
    for (p_old, p_new), (s_old, s_new) in zip(plain_rounds, secure_rounds):
        # the same model before the round, the same aggregate (SecAgg+ quantizes: ~2e-6 here)
        assert all(np.array_equal(a, b) for a, b in zip(p_old, s_old))
        step = robust.update_norm(p_new, p_old)
        assert step > 0.1  # the round did move the model
        assert all(np.allclose(a, b, rtol=0, atol=2e-5) for a, b in zip(p_new, s_new))
        assert robust.update_norm(s_new, p_new) < 1e-3 * step
    # plain FedAvg: the server holds each client's weights; SecAgg+: no arrays in any train reply
    assert plain["train_arrays"] == ROUNDS * 2 * len(plain_rounds[0][0])
    assert secure["train_arrays"] == 0
    assert len(secure["masked"]) == ROUNDS * 2  # one masked vector per client per round
    for above, mean in secure["masked"]:
        # quantized updates lie in [0, 2**26) (QUANTIZATION_RANGE) times a weight factor; masked
        # ones are uniform over [0, 2**32)
        assert above > 0.9 and abs(mean - 0.5) < 0.01
