"""The TensorFlow-free client (issue 16.1): the ClientApp's query, train and evaluate run with
TensorFlow and Keras made unimportable, and the numpy trainer is the tf_keras ``mlp``: the same
predictions, and the same weights after training when nothing random is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fl_support import speaker_csv

from ser_edge.fl import numpy_mlp

BLOCKER = """
import sys
BLOCKED = ("tensorflow", "tf_keras", "keras")

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} is blocked on the device")
        return None

sys.meta_path.insert(0, Blocker())
"""

CLIENT = """
import json, sys, time
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, Metadata, RecordDict
from ser_edge.fl import client_app, numpy_mlp, task

cfg = task.settings({"min-clips": 8})
p = task.input_config(cfg).input_shape[0]
weights = numpy_mlp.init(p, len(task.labels(cfg)), seed=0)
norm = {"input-mean": [0.0] * p, "input-std": [1.0] * p}
ctx = Context(run_id=1, node_id=7, node_config={"corpus": "csv", "data": sys.argv[1]}, state=RecordDict(),
              run_config={"local-epochs": 2, "max-update-norm": 5.0})
out = {}
for kind, content in (("query", RecordDict({"config": ConfigRecord({"kind": "stats"})})),
                      ("train", RecordDict({"arrays": ArrayRecord(weights),
                                            "config": ConfigRecord({"server-round": 1, **norm})})),
                      ("evaluate", RecordDict({"arrays": ArrayRecord(weights), "config": ConfigRecord(norm)}))):
    md = Metadata(run_id=1, message_id=kind, src_node_id=1, dst_node_id=7, reply_to_message_id="", group_id="1",
                  created_at=time.time(), ttl=3600.0, message_type=kind)
    reply = client_app.app(Message(content=content, metadata=md), ctx)
    assert not reply.has_error(), reply.error
    out[kind] = dict(reply.content["metrics"])
    if kind == "train":
        new = reply.content["arrays"].to_numpy_ndarrays()
        out["update_norm"] = float(np.sqrt(sum(((a - b).astype(np.float64) ** 2).sum() for a, b in zip(new, weights))))
out["modules"] = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "tf_keras", "keras"})
print(json.dumps(out))
"""


def test_client_app_runs_without_tensorflow(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    clips = speaker_csv(tmp_path / "clips.csv", ["03"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    blocked = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert blocked.returncode != 0 and "blocked on the device" in blocked.stderr  # the blocker works
    r = subprocess.run(
        [sys.executable, "-c", CLIENT, str(clips)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["modules"] == []
    assert out["query"]["num-examples"] == out["train"]["num-examples"] == out["evaluate"]["num-examples"] == 49
    assert np.isfinite(out["train"]["train-loss"]) and 0 <= out["train"]["train-accuracy"] <= 1
    assert 0 < out["update_norm"] <= 5.0 + 1e-4  # trained, and the update clipped to max-update-norm


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 40)).astype(np.float32)
    return x, rng.integers(0, 5, 24), rng.uniform(0.5, 2.0, 24).astype(np.float32)


def test_numpy_mlp_trains_as_tf_keras(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    from ser_edge.training.models import build

    x, y, sw = problem
    model = build("mlp", (40,), 5, seed=0, noise=0.0, input_dropout=0.0, dropout=0.0)
    w0 = model.get_weights()
    assert np.abs(model.predict(x, verbose=0) - numpy_mlp.predict(w0, x)).max() < 1e-5
    # one full batch per epoch: no shuffling or dropout draws, so both must agree step for step
    h = model.fit(
        x, np.eye(5, dtype=np.float32)[y], sample_weight=sw, epochs=3, batch_size=24, shuffle=False, verbose=0
    )
    quiet = numpy_mlp.MLPConfig(dropout=0.0, input_dropout=0.0, noise=0.0)
    w, metrics = numpy_mlp.fit(w0, x, y, sw, epochs=3, batch_size=24, seed=0, cfg=quiet)
    for a, b in zip(model.get_weights(), w):
        assert np.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert metrics["loss"] == pytest.approx(h.history["loss"][-1], rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(h.history["accuracy"][-1])
    loss, acc = model.evaluate(x, np.eye(5, dtype=np.float32)[y], verbose=0)
    assert numpy_mlp.evaluate(model.get_weights(), x, y) == pytest.approx({"loss": loss, "accuracy": acc}, rel=1e-4)
    assert [a.shape for a in numpy_mlp.init(40, 5)] == [a.shape for a in w0]


def test_numpy_mlp_with_dropout_and_noise_learns(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    x, y, sw = problem
    w0 = numpy_mlp.init(40, 5, seed=1)
    w, metrics = numpy_mlp.fit(w0, x, y, sw, epochs=40, batch_size=8, seed=3)
    assert numpy_mlp.evaluate(w, x, y)["accuracy"] > 0.9 > numpy_mlp.evaluate(w0, x, y)["accuracy"]
    again, _ = numpy_mlp.fit(w0, x, y, sw, epochs=40, batch_size=8, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(w, again))  # seeded: repeatable
    with pytest.raises(ValueError, match="single-member mlp"):
        numpy_mlp.fit(w0[:-1], x, y, sw, epochs=1, batch_size=8, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        numpy_mlp.fit(w0, x, y, sw, epochs=1, batch_size=0, seed=0)
