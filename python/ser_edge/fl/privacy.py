"""Privacy accounting of a federated run with differential privacy, by Google's
``dp-accounting`` (its Rényi-DP accountant).

* ``dp = "client"`` or ``"server"`` (client-level): each client's update clipped to ``dp-clip``,
  Gaussian noise of standard deviation ``dp-noise x dp-clip`` added to the sum of the round's
  updates; (epsilon, delta) bounds what the global model reveals about one device's whole data
  set: ``num-server-rounds`` compositions of the Gaussian mechanism, Poisson-subsampled with the
  round's sampling rate (:func:`epsilon`, :func:`noise_for`, :func:`report`).
* ``dp = "example"`` (example-level, DP-SGD on the device, :mod:`ser_edge.fl.numpy_mlp`): each
  clip's gradient clipped to ``dp-clip``, noise on the sum of a Poisson-sampled batch; (epsilon,
  delta) bounds what everything the device sends (all its updates, hence the global model)
  reveals about any one of its clips: every local step of every round composed
  (:func:`example_level`).
"""

from __future__ import annotations

import functools
from typing import Any


def _event(noise_multiplier: float, sample_rate: float, rounds: int) -> Any:
    import dp_accounting

    gaussian = dp_accounting.GaussianDpEvent(float(noise_multiplier))
    step = gaussian if sample_rate >= 1.0 else dp_accounting.PoissonSampledDpEvent(float(sample_rate), gaussian)
    return dp_accounting.SelfComposedDpEvent(step, int(rounds))


def _check(sample_rate: float, rounds: int, delta: float) -> None:
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"sample_rate={sample_rate} must be in (0, 1]")
    if int(rounds) < 1:
        raise ValueError(f"rounds={rounds} must be >= 1")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta={delta} must be in (0, 1)")


def epsilon(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The run's epsilon at ``delta`` (``inf`` without noise)."""
    import dp_accounting

    _check(sample_rate, rounds, delta)
    if not noise_multiplier > 0:
        return float("inf")
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(_event(noise_multiplier, sample_rate, rounds))
    return float(accountant.get_epsilon(float(delta)))


def noise_for(target_epsilon: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier whose run stays within ``target_epsilon`` at ``delta``."""
    import dp_accounting

    _check(sample_rate, rounds, delta)
    if not target_epsilon > 0:
        raise ValueError(f"dp-epsilon={target_epsilon} must be > 0")
    sigma = dp_accounting.calibrate_dp_mechanism(
        dp_accounting.rdp.RdpAccountant,
        lambda s: _event(s, sample_rate, rounds),
        float(target_epsilon),
        float(delta),
        dp_accounting.LowerEndpointAndGuess(1e-3, 1.0),
        tol=1e-4,
    )
    return float(sigma) + 1e-4  # within tol above the optimum: the budget holds


def report(cfg: dict[str, Any], sampled: int, nodes: int) -> dict[str, Any]:
    """The run's differential privacy: mode, noise multiplier (``dp-noise``, or calibrated to
    ``dp-epsilon`` when that is > 0), clipping norm, sampling rate, rounds, epsilon and delta."""
    rate = min(1.0, sampled / max(nodes, 1))
    rounds, delta = int(cfg["num-server-rounds"]), float(cfg["dp-delta"])
    sigma = (
        noise_for(float(cfg["dp-epsilon"]), rate, rounds, delta)
        if float(cfg["dp-epsilon"]) > 0
        else float(cfg["dp-noise"])
    )
    return {
        "mode": cfg["dp"],
        "noise_multiplier": sigma,
        "clip": float(cfg["dp-clip"]),
        "sample_rate": rate,
        "rounds": rounds,
        "delta": delta,
        "epsilon": epsilon(sigma, rate, rounds, delta),
        "level": "client",
        "accountant": "dp-accounting RDP",
    }


@functools.lru_cache(maxsize=64)  # a simulation's client process calibrates once per data size
def example_level(
    clips: int, batch_size: int, epochs: int, rounds: int, delta: float, target_epsilon: float, noise: float
) -> dict[str, Any]:
    """A device's DP-SGD for a whole run: sampling rate ``batch_size / clips``, ``epochs x
    round(1 / rate)`` steps a round for ``rounds`` rounds; the noise multiplier calibrated to
    ``target_epsilon`` (or ``noise`` when that is 0) and the epsilon it gives at ``delta``
    (cached: do not modify the dict)."""
    if clips < 1 or batch_size < 1 or epochs < 1:
        raise ValueError(f"clips={clips}, batch_size={batch_size}, epochs={epochs} must be >= 1")
    rate = min(1.0, batch_size / clips)
    steps = int(epochs) * max(1, round(1 / rate)) * int(rounds)
    sigma = noise_for(target_epsilon, rate, steps, delta) if target_epsilon > 0 else float(noise)
    return {
        "noise_multiplier": sigma,
        "sample_rate": rate,
        "steps": steps,
        "epsilon": epsilon(sigma, rate, steps, delta),
        "delta": delta,
    }
