"""Example-level differential privacy on the device (DP-SGD in the numpy trainer): each
example's gradient is its own (frozen batch normalisation), clipped to the bound, and the
accountant's epsilon covers every local step of every round."""

from __future__ import annotations

import numpy as np
import pytest

from ser_edge.fl import numpy_mlp, privacy

PLAIN = numpy_mlp.MLPConfig(dropout=0.0, input_dropout=0.0, noise=0.0, l2=0.0)


def _problem(n: int = 12, d: int = 5, labels: int = 3) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    w = numpy_mlp.init(d, labels, units=(16, 8), seed=2)
    for i in (0, 1):  # moving statistics that are not the identity
        w[6 * i + 4][:] = rng.normal(0, 0.3, w[6 * i + 4].shape)
        w[6 * i + 5][:] = rng.uniform(0.5, 2.0, w[6 * i + 5].shape)
    x = rng.normal(0, 1, (n, d)).astype(np.float32)
    y = rng.integers(0, labels, n)
    t = numpy_mlp._targets(y, labels, 0.0)
    return w, x, t, rng.uniform(0.5, 2.0, n).astype(np.float32)


def _grads(w: list[np.ndarray], x: np.ndarray, t: np.ndarray, sw: np.ndarray, clip: float) -> list[np.ndarray]:
    dp = numpy_mlp.DPSGD(noise_multiplier=0.0, clip=clip, sample_rate=1.0)
    g, _, _ = numpy_mlp._dp_step(w, x, t, sw, PLAIN, np.random.default_rng(0), dp, expected=1.0)
    return [a for a in g if a is not None]


def _loss(w: list[np.ndarray], x: np.ndarray, t: np.ndarray, sw: np.ndarray) -> float:
    p = numpy_mlp.predict([a.astype(np.float64) for a in w], x.astype(np.float64))
    return float(np.sum(sw * -np.sum(t * np.log(p), 1)))


def test_per_example_gradients_are_exact_and_clipped() -> None:
    w, x, t, sw = _problem()
    single = [_grads(w, x[i : i + 1], t[i : i + 1], sw[i : i + 1], 1e9) for i in range(len(x))]
    # unclipped, the batch's gradient is the sum of the examples' (no interaction between them)
    for a, b in zip(_grads(w, x, t, sw, 1e9), map(sum, zip(*single))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and the gradient is the loss's (central differences on a few coordinates of each array)
    eps = 1e-3
    flat = [i for i in range(len(w)) if not (i < 12 and i % 6 in (4, 5))]
    for j, g in zip(flat, single[0]):
        for k in range(min(3, g.size)):
            idx = np.unravel_index(k, g.shape)
            up, down = [a.astype(np.float64) for a in w], [a.astype(np.float64) for a in w]
            up[j][idx] += eps
            down[j][idx] -= eps
            numeric = (_loss(up, x[:1], t[:1], sw[:1]) - _loss(down, x[:1], t[:1], sw[:1])) / (2 * eps)
            assert g[idx] == pytest.approx(numeric, rel=1e-2, abs=1e-4)
    # clipped: each example contributes at most `clip`, and the batch gradient is their sum
    clip = 0.05
    norms = [np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in g)) for g in single]
    assert min(norms) > clip  # the bound binds for every example here
    clipped = [_grads(w, x[i : i + 1], t[i : i + 1], sw[i : i + 1], clip) for i in range(len(x))]
    for g in clipped:
        assert np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in g)) == pytest.approx(clip, rel=1e-3)
    for a, b in zip(_grads(w, x, t, sw, clip), map(sum, zip(*clipped))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_dp_sgd_keeps_batch_normalisation_valid_and_learns() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)
    w0 = numpy_mlp.init(20, 4, units=(32, 16), seed=0)
    acc = privacy.example_level(400, 20, 5, 1, 1e-5, 8.0, 0.0)
    dp = numpy_mlp.DPSGD(acc["noise_multiplier"], 1.0, acc["sample_rate"])
    cfg = numpy_mlp.MLPConfig(dropout=0.0, input_dropout=0.0, noise=0.0, l2=0.0, lr=1e-2)
    w, _ = numpy_mlp.fit(w0, x, y, np.ones(400, np.float32), epochs=5, batch_size=20, seed=0, dp=dp, cfg=cfg)
    for i in (0, 1):  # moving statistics untouched by the data: still valid
        np.testing.assert_array_equal(w[6 * i + 4], w0[6 * i + 4])
        np.testing.assert_array_equal(w[6 * i + 5], w0[6 * i + 5])
    assert all(np.all(np.isfinite(a)) for a in w)
    accuracy = float(np.mean(numpy_mlp.predict(w, x).argmax(1) == y))
    assert accuracy > 0.5  # chance is 0.25


def test_example_level_accounting_covers_every_step() -> None:
    acc = privacy.example_level(clips=60, batch_size=8, epochs=6, rounds=10, delta=1e-5, target_epsilon=1.0, noise=0)
    assert acc["sample_rate"] == pytest.approx(8 / 60) and acc["steps"] == 6 * 8 * 10
    assert acc["epsilon"] <= 1.0
    assert privacy.epsilon(acc["noise_multiplier"], acc["sample_rate"], acc["steps"], 1e-5) == acc["epsilon"]
    assert privacy.epsilon(acc["noise_multiplier"], acc["sample_rate"], acc["steps"] * 2, 1e-5) > 1.0
    fixed = privacy.example_level(60, 8, 6, 10, 1e-5, 0.0, noise=2.0)
    assert fixed["noise_multiplier"] == 2.0 and fixed["epsilon"] > 0
