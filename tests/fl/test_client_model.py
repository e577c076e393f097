"""A client process keeps one compiled model and reuses it for every message (building one per
message grows the process); reuse must train exactly as a new model would."""

from __future__ import annotations

import numpy as np
from fl_support import EMODB

from ser_edge.fl import task


def _data(cfg: dict) -> tuple:
    clips = [c for c in task.corpus_clips("emodb", str(EMODB), cfg) if c.speaker == "03"]
    data = task.local_data(clips, task.input_config(cfg), task.labels(cfg))
    return task.standardize(data.x, data.x.mean(0), data.x.std(0)), data


def test_a_reused_model_trains_bit_for_bit_like_a_new_one() -> None:
    cfg = task.settings({}, {"corpus": "emodb", "data": str(EMODB)})
    config, n = task.input_config(cfg), len(task.labels(cfg))
    x, data = _data(cfg)
    start = task.build_model(cfg, config, n).get_weights()

    kept = task.model_with(cfg, config, n, start)
    task.fit(kept, x, data.y, data.weights, epochs=2, batch_size=8, seed=1)  # leaves Adam state behind
    again = task.model_with(cfg, config, n, start)
    assert again is kept and int(again.optimizer.iterations.numpy()) == 0
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), start))
    task.fit(again, x, data.y, data.weights, epochs=2, batch_size=8, seed=3)
    reused = again.get_weights()

    task.release_model()
    fresh = task.build_model(cfg, config, n)
    fresh.set_weights(start)
    task.fit(fresh, x, data.y, data.weights, epochs=2, batch_size=8, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(reused, fresh.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(reused, start))  # it did train


def test_another_run_configuration_gets_its_own_model() -> None:
    cfg = task.settings({}, {"corpus": "emodb", "data": str(EMODB)})
    config, n = task.input_config(cfg), len(task.labels(cfg))
    weights = task.build_model(cfg, config, n).get_weights()
    a = task.model_with(cfg, config, n, weights)
    b = task.model_with({**cfg, "lr": 0.01}, config, n, weights)
    assert b is not a and abs(float(b.optimizer.learning_rate.numpy()) - 0.01) < 1e-9
    task.release_model()


def test_clients_standardise_inputs_as_the_runtime_does() -> None:
    """The run config's ``input-mean``/``input-std`` lists go through the runtime's one formula;
    empty lists (sequence inputs) leave the input as it is."""
    from ser_edge.bundle import Normalization

    x = np.random.default_rng(0).normal(3.0, 2.0, (5, 4)).astype(np.float32)
    mean, std = x.mean(0).astype(np.float64), x.std(0).astype(np.float64)
    norm = Normalization(np.zeros(4), np.ones(4), input_mean=mean, input_std=std)
    np.testing.assert_array_equal(task.standardize(x, list(mean), list(std)), norm.standardize_input(x))
    np.testing.assert_array_equal(task.standardize(x, [], []), x)
