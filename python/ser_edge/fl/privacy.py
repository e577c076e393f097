"""Privacy accounting of a federated run with differential privacy (``dp = "client"`` or
``"server"``: each client's update clipped to ``dp-clip``, Gaussian noise of standard deviation
``dp-noise x dp-clip`` added to the sum of the round's updates). The guarantee is client-level:
(epsilon, delta) bounds what the global model reveals about any one device's whole data set.
Accounting by Google's ``dp-accounting`` (its Rényi-DP accountant): ``num-server-rounds``
compositions of the Gaussian mechanism, Poisson-subsampled with the round's sampling rate.
"""

from __future__ import annotations

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
