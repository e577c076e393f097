"""The ``mlp`` model of :mod:`ser_edge.training.models` trained in numpy: what a device runs
in federated training instead of TensorFlow (about a tenth of the memory).

The same network, loss and optimizer as ``models.build("mlp", ...)`` (tf_keras): input dropout
and Gaussian noise, ``Dense -> BatchNormalization -> ReLU -> Dropout`` per hidden layer, softmax
output; categorical cross-entropy with label smoothing and the trainer's sample weights
(averaged over the batch, as Keras' ``SUM_OVER_BATCH_SIZE``), L2 on the hidden kernels; Adam
as tf_keras' (epsilon 1e-7). Batch normalisation uses the batch's statistics in training and
updates its moving ones (momentum 0.99, epsilon 1e-3). Weights are the Keras model's
``get_weights()`` list, in its order, so the server keeps the Keras model for export.

**DP-SGD** (``fit(..., dp=DPSGD(...))``, example-level differential privacy on the device):
batches Poisson-sampled at rate ``sample_rate``, each example's gradient clipped to L2 norm
``clip``, Gaussian noise of standard deviation ``noise_multiplier x clip`` added to their sum,
divided by the expected batch size. Per-example gradients need examples that do not interact,
so batch normalisation is frozen: it normalises with its moving statistics (as in inference)
and these are not updated from the data (only gamma and beta train). The per-example norms come
from the layers' inputs and output gradients (a dense kernel's gradient of one example is an
outer product: its norm is the product of the two norms), so clipping costs one extra sum per
layer, not one backward pass per example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_edge.training.models import MLP_DEFAULTS

BN_MOMENTUM, BN_EPSILON, ADAM = 0.99, 1e-3, (0.9, 0.999, 1e-7)


@dataclass(frozen=True)
class DPSGD:
    """DP-SGD's parameters: Gaussian noise multiplier, per-example clipping norm, Poisson
    sampling rate of a batch (steps per epoch: ``round(1 / sample_rate)``)."""

    noise_multiplier: float
    clip: float
    sample_rate: float


@dataclass(frozen=True)
class MLPConfig:
    """The hyperparameters of ``models.build("mlp")`` (its defaults)."""

    dropout: float = float(MLP_DEFAULTS["dropout"])
    input_dropout: float = float(MLP_DEFAULTS["input_dropout"])
    noise: float = float(MLP_DEFAULTS["noise"])
    l2: float = float(MLP_DEFAULTS["l2"])
    label_smoothing: float = 0.1
    lr: float = 1e-3


def init(
    n_inputs: int, n_labels: int, units: tuple[int, ...] = tuple(MLP_DEFAULTS["units"]), seed: int = 0
) -> list[np.ndarray]:
    """New weights in the Keras model's order and initialisation (Glorot-uniform kernels, zero
    biases, batch normalisation's identity), drawn by numpy (not the Keras model's draws)."""
    rng = np.random.default_rng(int(seed))
    out, fan_in = [], int(n_inputs)
    sizes = (*units, int(n_labels))
    for i, u in enumerate(sizes):
        limit = np.sqrt(6.0 / (fan_in + u))
        out += [rng.uniform(-limit, limit, (fan_in, u)).astype(np.float32), np.zeros(u, np.float32)]
        if i < len(units):  # batch normalisation: gamma, beta, moving mean, moving variance
            out += [np.ones(u, np.float32), np.zeros(u, np.float32), np.zeros(u, np.float32), np.ones(u, np.float32)]
        fan_in = u
    return out


def _layers(weights: list[np.ndarray]) -> int:
    """Hidden layers in a Keras ``mlp`` weight list (6 arrays each, then kernel and bias)."""
    if len(weights) < 2 or (len(weights) - 2) % 6:
        raise ValueError(f"{len(weights)} arrays are not the weights of a single-member mlp")
    return (len(weights) - 2) // 6


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def predict(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities (inference: no dropout or noise, batch normalisation's moving
    statistics), as the Keras model's ``predict``."""
    h = np.asarray(x, np.float32)
    for i in range(_layers(weights)):
        k, b, g, be, mm, mv = weights[6 * i : 6 * i + 6]
        h = np.maximum(g * ((h @ k + b) - mm) / np.sqrt(mv + BN_EPSILON) + be, 0.0)
    return _softmax(h @ weights[-2] + weights[-1])


def _targets(y: np.ndarray, n: int, smoothing: float) -> np.ndarray:
    return (np.eye(n, dtype=np.float32)[y] * (1.0 - smoothing) + smoothing / n).astype(np.float32)


def _l2(weights: list[np.ndarray], cfg: MLPConfig) -> float:
    return cfg.l2 * sum(float(np.sum(weights[6 * i].astype(np.float64) ** 2)) for i in range(_layers(weights)))


def evaluate(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, cfg: MLPConfig = MLPConfig()) -> dict[str, float]:
    """Loss (cross-entropy with label smoothing, plus L2, as Keras' ``evaluate``) and accuracy."""
    p = predict(weights, x)
    t = _targets(y, p.shape[1], cfg.label_smoothing)
    ce = float(-np.mean(np.sum(t * np.log(np.clip(p, 1e-7, 1.0)), 1)))
    return {"loss": ce + _l2(weights, cfg), "accuracy": float(np.mean(p.argmax(1) == y))}


class _Adam:
    def __init__(self, shapes: list[tuple[int, ...]], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = [np.zeros(s, np.float32) for s in shapes]
        self.v = [np.zeros(s, np.float32) for s in shapes]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        b1, b2, eps = ADAM
        self.t += 1
        alpha = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g * g - v)
            p -= (alpha * m / (np.sqrt(v) + eps)).astype(p.dtype)


def _step(
    w: list[np.ndarray], x: np.ndarray, t: np.ndarray, sw: np.ndarray, cfg: MLPConfig, rng: np.random.Generator
) -> tuple[list[np.ndarray], float, np.ndarray]:
    """Forward and backward pass of one training batch: gradients of the trainable arrays (in
    weight order, ``None`` for the moving statistics, which are updated in place), the batch
    loss and the probabilities."""
    n_hidden = _layers(w)
    h = x
    if cfg.input_dropout > 0:
        h = h * (rng.random(h.shape) >= cfg.input_dropout) / (1 - cfg.input_dropout)
    if cfg.noise > 0:
        h = h + rng.normal(0.0, cfg.noise, h.shape)
    h = h.astype(np.float32)
    cache = []
    for i in range(n_hidden):
        k, b, g, be, mm, mv = w[6 * i : 6 * i + 6]
        z = h @ k + b
        mu, var = z.mean(0), z.var(0)
        inv = 1.0 / np.sqrt(var + BN_EPSILON)
        zh = (z - mu) * inv
        a = np.maximum(g * zh + be, 0.0)
        keep = (rng.random(a.shape) >= cfg.dropout) / (1 - cfg.dropout) if cfg.dropout > 0 else np.ones_like(a)
        cache.append((h, zh, inv, a, keep))
        mm *= BN_MOMENTUM
        mm += (1 - BN_MOMENTUM) * mu
        mv *= BN_MOMENTUM
        mv += (1 - BN_MOMENTUM) * var
        h = (a * keep).astype(np.float32)
    p = _softmax(h @ w[-2] + w[-1])
    bsz = len(x)
    loss = float(np.sum(sw * -np.sum(t * np.log(np.clip(p, 1e-7, 1.0)), 1)) / bsz) + _l2(w, cfg)
    grads: list[np.ndarray] = [None] * len(w)  # type: ignore[list-item]
    dz = (p - t) * (sw[:, None] / bsz)  # softmax cross-entropy on the logits, batch mean
    grads[-2], grads[-1] = h.T @ dz, dz.sum(0)
    dh = dz @ w[-2].T
    for i in reversed(range(n_hidden)):
        k, g = w[6 * i], w[6 * i + 2]
        h_in, zh, inv, a, keep = cache[i]
        da = dh * keep * (a > 0)
        grads[6 * i + 2], grads[6 * i + 3] = (da * zh).sum(0), da.sum(0)
        dzh = da * g
        dz_ = inv * (dzh - dzh.mean(0) - zh * (dzh * zh).mean(0))  # batch normalisation's backward pass
        grads[6 * i] = h_in.T @ dz_ + 2 * cfg.l2 * k
        grads[6 * i + 1] = dz_.sum(0)
        dh = dz_ @ k.T
    return grads, loss, p


def _dp_step(
    w: list[np.ndarray],
    x: np.ndarray,
    t: np.ndarray,
    sw: np.ndarray,
    cfg: MLPConfig,
    rng: np.random.Generator,
    dp: DPSGD,
    expected: float,
) -> tuple[list[np.ndarray], float, np.ndarray]:
    """One DP-SGD step on a Poisson-sampled batch (possibly empty): each example's gradient of
    its weighted loss clipped to ``dp.clip``, summed, noised, divided by the ``expected`` batch
    size; batch normalisation frozen (moving statistics, not updated). As :func:`_step`."""
    n_hidden = _layers(w)
    h = x
    if cfg.input_dropout > 0:
        h = h * (rng.random(h.shape) >= cfg.input_dropout) / (1 - cfg.input_dropout)
    if cfg.noise > 0:
        h = h + rng.normal(0.0, cfg.noise, h.shape)
    h = h.astype(np.float32)
    cache = []
    for i in range(n_hidden):
        k, b, g, be, mm, mv = w[6 * i : 6 * i + 6]
        inv = 1.0 / np.sqrt(mv + BN_EPSILON)
        zh = (h @ k + b - mm) * inv
        a = np.maximum(g * zh + be, 0.0)
        keep = (rng.random(a.shape) >= cfg.dropout) / (1 - cfg.dropout) if cfg.dropout > 0 else np.ones_like(a)
        cache.append((h, zh, inv, a, keep))
        h = (a * keep).astype(np.float32)
    p = _softmax(h @ w[-2] + w[-1])
    ce = -np.sum(t * np.log(np.clip(p, 1e-7, 1.0)), 1)
    loss = float(np.mean(sw * ce)) if len(x) else 0.0
    # per-example gradients as (layer input, output gradient) pairs and BN (gamma, beta) rows
    dz = (p - t) * sw[:, None]
    dense = {len(w) - 2: (h, dz)}
    bn = {}
    dh = dz @ w[-2].T
    for i in reversed(range(n_hidden)):
        k, g = w[6 * i], w[6 * i + 2]
        h_in, zh, inv, a, keep = cache[i]
        da = dh * keep * (a > 0)
        bn[6 * i + 2] = (da * zh, da)
        dz_ = da * g * inv
        dense[6 * i] = (h_in, dz_)
        dh = dz_ @ k.T
    norm2 = np.zeros(len(x), np.float64)
    for h_in, d in dense.values():
        norm2 += (np.sum(h_in.astype(np.float64) ** 2, 1) + 1.0) * np.sum(d.astype(np.float64) ** 2, 1)
    for dg, db in bn.values():
        norm2 += np.sum(dg.astype(np.float64) ** 2, 1) + np.sum(db.astype(np.float64) ** 2, 1)
    c = np.minimum(1.0, dp.clip / np.maximum(np.sqrt(norm2), 1e-12)).astype(np.float32)[:, None]
    grads: list[np.ndarray] = [None] * len(w)  # type: ignore[list-item]
    for j, (h_in, d) in dense.items():
        grads[j], grads[j + 1] = h_in.T @ (c * d), (c * d).sum(0)
    for j, (dg, db) in bn.items():
        grads[j], grads[j + 1] = (c * dg).sum(0), (c * db).sum(0)
    sigma = dp.noise_multiplier * dp.clip
    for j, gr in enumerate(grads):
        if gr is not None:
            grads[j] = ((gr + rng.normal(0.0, sigma, gr.shape)) / expected).astype(np.float32)
    for i in range(n_hidden):  # L2 on the kernels: data-independent, added after the noise
        grads[6 * i] += 2 * cfg.l2 * w[6 * i]
    return grads, loss, p


def fit(
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    cfg: MLPConfig = MLPConfig(),
    dp: DPSGD | None = None,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """``epochs`` of Adam (its state new) from ``weights`` on shuffled batches; returns the new
    weights and the last epoch's mean batch loss and accuracy (as Keras' fit: the accuracy is not
    sample-weighted). With ``dp``: DP-SGD (module docstring; ``batch_size`` unused, the batches
    are Poisson-sampled at ``dp.sample_rate``)."""
    w = [np.array(a, np.float32, copy=True) for a in weights]
    n_hidden = _layers(w)
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs={epochs} and batch_size={batch_size} must be >= 1")
    trainable = [i for i in range(len(w)) if not (i < 6 * n_hidden and i % 6 in (4, 5))]
    adam = _Adam([w[i].shape for i in trainable], cfg.lr)
    x = np.asarray(x, np.float32)
    t = _targets(np.asarray(y), w[-1].shape[0], cfg.label_smoothing)
    sw = np.asarray(sample_weight, np.float32)
    rng = np.random.default_rng(int(seed))
    losses: list[float] = []
    correct = total = 0.0
    if dp is not None:
        if not (0 < dp.sample_rate <= 1 and dp.clip > 0 and dp.noise_multiplier >= 0):
            raise ValueError(f"invalid DP-SGD parameters {dp}")
        steps, expected = int(epochs) * max(1, round(1 / dp.sample_rate)), dp.sample_rate * len(x)
        for _ in range(steps):
            idx = np.flatnonzero(rng.random(len(x)) < dp.sample_rate)
            grads, loss, p = _dp_step(w, x[idx], t[idx], sw[idx], cfg, rng, dp, expected)
            adam.step([w[i] for i in trainable], [grads[i] for i in trainable])
            losses.append(loss)
            correct += float(np.sum(p.argmax(1) == y[idx]))
            total += len(idx)
        return w, {"loss": float(np.mean(losses)), "accuracy": correct / max(total, 1.0)}
    for _ in range(int(epochs)):
        order = rng.permutation(len(x))
        losses, correct, total = [], 0.0, 0.0
        for start in range(0, len(x), int(batch_size)):
            idx = order[start : start + int(batch_size)]
            grads, loss, p = _step(w, x[idx], t[idx], sw[idx], cfg, rng)
            adam.step([w[i] for i in trainable], [grads[i] for i in trainable])
            losses.append(loss)
            correct += float(np.sum(p.argmax(1) == y[idx]))
            total += len(idx)
    return w, {"loss": float(np.mean(losses)), "accuracy": correct / total}
