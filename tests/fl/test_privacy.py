"""Privacy and safety of the federated apps, through the ClientApp and the strategy themselves:
client replies carry only arrays and scalar metrics; unsound updates (NaN/Inf, wrong shapes or
keys, bad weights) never reach the average; a client with too few clips declines. The faulty
replies are built by hand: a real client cannot be made to send them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fl_support import speaker_csv
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, Metadata, MetricRecord, RecordDict
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

from ser_edge.fl import client_app, task
from ser_edge.fl.strategy import RejectInvalid

RUN = {"min-clips": 8, "local-epochs": 1}


def instruction(content: RecordDict, message_type: str, node: int = 7) -> Message:
    md = Metadata(
        run_id=1,
        message_id=f"m{node}{message_type}",
        src_node_id=1,
        dst_node_id=node,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type=message_type,
    )
    return Message(content=content, metadata=md)


def context(node_config: dict[str, Any]) -> Context:
    return Context(run_id=1, node_id=7, node_config=node_config, state=RecordDict(), run_config=dict(RUN))


@pytest.fixture(scope="module")
def device_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speaker_csv(tmp_path_factory.mktemp("device") / "clips.csv", ["03"])


@pytest.fixture(scope="module")
def global_model() -> tuple[list[np.ndarray], dict[str, Any]]:
    cfg = task.settings(RUN)
    model = task.build_model(cfg, task.input_config(cfg), len(task.labels(cfg)))
    weights = model.get_weights()
    task.release_model()
    return weights, cfg


def _norm_config(cfg: dict[str, Any]) -> dict[str, Any]:
    p = task.input_config(cfg).input_shape[0]
    return {"input-mean": [0.0] * p, "input-std": [1.0] * p}


def _assert_only_arrays_and_scalars(reply: Message, clips: int) -> None:
    assert not reply.has_error(), reply.error
    content = reply.content
    assert len(content.config_records) == 0  # no strings of any kind
    for arrays in content.array_records.values():
        for a in arrays.values():
            assert a.dtype in ("float32", "float64") and clips not in a.shape  # nothing per clip
            assert np.all(np.isfinite(a.numpy()))
    for metrics in content.metric_records.values():
        assert all(isinstance(v, (int, float)) for v in metrics.values())


def test_train_reply_is_the_weights_and_scalar_metrics(device_csv: Path, global_model: Any) -> None:
    weights, cfg = global_model
    clips = task.client_clips({"corpus": "csv", "data": str(device_csv)}, cfg)
    msg = instruction(
        RecordDict(
            {
                "arrays": ArrayRecord(weights),
                "config": ConfigRecord({"local-epochs": 1, "server-round": 1, **_norm_config(cfg)}),
            }
        ),
        "train",
    )
    reply = client_app.app(msg, context({"corpus": "csv", "data": str(device_csv)}))
    _assert_only_arrays_and_scalars(reply, len(clips))
    (arrays,) = reply.content.array_records.values()
    assert [a.shape for a in arrays.values()] == [w.shape for w in weights]
    assert any(not np.array_equal(a.numpy(), w) for a, w in zip(arrays.values(), weights))  # it trained
    (metrics,) = reply.content.metric_records.values()
    assert set(metrics) == {"num-examples", "train-loss", "train-accuracy"} and metrics["num-examples"] == len(clips)


def test_evaluate_and_stats_replies_hold_no_clip(device_csv: Path, global_model: Any) -> None:
    weights, cfg = global_model
    node = {"corpus": "csv", "data": str(device_csv)}
    n = len(task.client_clips(node, cfg))
    ev = client_app.app(
        instruction(
            RecordDict({"arrays": ArrayRecord(weights), "config": ConfigRecord(_norm_config(cfg))}), "evaluate"
        ),
        context(node),
    )
    _assert_only_arrays_and_scalars(ev, n)
    assert len(ev.content.array_records) == 0
    st = client_app.app(instruction(RecordDict({"config": ConfigRecord({"kind": "stats"})}), "query"), context(node))
    _assert_only_arrays_and_scalars(st, n)
    (arrays,) = st.content.array_records.values()
    d, p = task.input_config(cfg).n_frame_features, task.input_config(cfg).input_shape[0]
    assert {k: a.shape for k, a in arrays.items()} == {
        "frame-mean": (d,),
        "frame-m2": (d,),
        "input-mean": (p,),
        "input-m2": (p,),
    }


def test_a_client_with_too_few_clips_declines(tmp_path: Path, global_model: Any) -> None:
    weights, cfg = global_model
    few = speaker_csv(tmp_path / "few.csv", ["08"], limit=5)
    msg = instruction(RecordDict({"arrays": ArrayRecord(weights), "config": ConfigRecord(_norm_config(cfg))}), "train")
    reply = client_app.app(msg, context({"corpus": "csv", "data": str(few)}))
    assert reply.has_error() and reply.error.code == client_app.DECLINED
    assert "5 labelled clips; at least 8" in reply.error.reason


def test_unreadable_client_data_declines_without_revealing_paths(tmp_path: Path, global_model: Any) -> None:
    weights, cfg = global_model
    missing = tmp_path / "secret-folder" / "clips.csv"
    msg = instruction(RecordDict({"arrays": ArrayRecord(weights), "config": ConfigRecord(_norm_config(cfg))}), "train")
    reply = client_app.app(msg, context({"corpus": "csv", "data": str(missing)}))
    assert reply.has_error() and reply.error.code == client_app.DECLINED
    assert "secret-folder" not in reply.error.reason and "could not be read" in reply.error.reason


# -- the server -----------------------------------------------------------------------------------
def _reply(to: Message, arrays: list[np.ndarray] | dict[str, np.ndarray], n: Any = 10) -> Message:
    record = ArrayRecord({k: Array(v) for k, v in arrays.items()}) if isinstance(arrays, dict) else ArrayRecord(arrays)
    return Message(
        RecordDict({"arrays": record, "metrics": MetricRecord({"num-examples": n, "train-loss": 1.0})}), reply_to=to
    )


@pytest.fixture(autouse=False)
def server_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity Flower gives a ServerApp process (messages are stamped with it)."""
    from flwr.supercore.task_identity import TaskIdentity

    for key, value in (("_run_id", 1), ("_node_id", 1), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, key, value)


def _train_round(strategy: Any, replies: Any) -> tuple[Any, Any]:
    class OneNodeGrid:  # configure_train only asks the grid for its node ids
        def get_node_ids(self) -> list[int]:
            return [7, 8]

    current = ArrayRecord([np.zeros((2, 3), np.float32), np.zeros(3, np.float32)])
    (msg, *_) = list(strategy.configure_train(1, current, ConfigRecord(), OneNodeGrid()))
    return msg, strategy.aggregate_train(1, replies(msg))


def test_server_rejects_nan_inf_and_mismatched_updates(server_identity: None) -> None:
    strategy = RejectInvalid(FedAvg(min_available_nodes=1, min_train_nodes=1))
    good = [np.ones((2, 3), np.float32), np.ones(3, np.float32)]
    good3 = [np.full((2, 3), 3.0, np.float32), np.full(3, 3.0, np.float32)]
    nan = [np.full((2, 3), np.nan, np.float32), np.ones(3, np.float32)]
    inf = [np.ones((2, 3), np.float32), np.array([1, np.inf, 1], np.float32)]
    shape = [np.ones((3, 2), np.float32), np.ones(3, np.float32)]
    dtype = [np.ones((2, 3), np.float64), np.ones(3, np.float32)]
    keys = {"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}
    _, (arrays, metrics) = _train_round(
        strategy,
        lambda m: [
            _reply(m, good, 10),
            _reply(m, good3, 30),
            _reply(m, nan),
            _reply(m, inf),
            _reply(m, shape),
            _reply(m, dtype),
            _reply(m, keys),
            _reply(m, good, -1),
            _reply(m, good, float("nan")),
        ],
    )
    w, b = arrays.to_numpy_ndarrays()
    assert np.allclose(w, 2.5) and np.allclose(b, 2.5)  # (10 * 1 + 30 * 3) / 40: only the sound replies
    assert metrics["train-loss"] == pytest.approx(1.0)
    reasons = strategy.rejected[1]
    assert len(reasons) == 7
    assert sum("NaN or Inf" in r for r in reasons) == 2 and sum("global model's is" in r for r in reasons) == 2
    assert sum("keys" in r for r in reasons) == 1 and sum("num-examples" in r for r in reasons) == 2


def test_rejection_comes_before_dp_clipping(server_identity: None) -> None:
    dp = DifferentialPrivacyServerSideFixedClipping(
        FedAvg(min_available_nodes=1, min_train_nodes=1), noise_multiplier=0.0, clipping_norm=1.0, num_sampled_clients=2
    )
    strategy = RejectInvalid(dp)
    big = [np.full((2, 3), 10.0, np.float32), np.full(3, 10.0, np.float32)]
    shape = [np.ones((5,), np.float32), np.ones(3, np.float32)]  # would break the clipping
    _, (arrays, _) = _train_round(strategy, lambda m: [_reply(m, big), _reply(m, shape)])
    w, b = arrays.to_numpy_ndarrays()
    norm = float(np.sqrt((w**2).sum() + (b**2).sum()))
    assert norm == pytest.approx(1.0, rel=1e-5)  # the sound update, clipped to the DP norm
    assert len(strategy.rejected[1]) == 1


def test_all_rejected_keeps_the_global_model(server_identity: None) -> None:
    strategy = RejectInvalid(FedAvg(min_available_nodes=1, min_train_nodes=1))
    nan = [np.full((2, 3), np.nan, np.float32), np.ones(3, np.float32)]
    _, (arrays, metrics) = _train_round(strategy, lambda m: [_reply(m, nan), _reply(m, nan)])
    assert arrays is None and metrics is None  # FedAvg.start keeps the previous global arrays
