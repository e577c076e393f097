"""Differential privacy with an accountant (issue 16.3): epsilon from Google's dp-accounting for
the run's noise, sampling rate and rounds; a noise multiplier calibrated to a target epsilon
stays within it; a simulated run reports (epsilon, delta) in its JSON summary and in the
global bundle's metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fl_support import EMODB

from ser_edge.fl import privacy


def test_epsilon_follows_noise_rounds_and_sampling() -> None:
    e = privacy.epsilon(2.0, 1.0, 10, 1e-5)
    assert 5 < e < 10
    assert privacy.epsilon(4.0, 1.0, 10, 1e-5) < e < privacy.epsilon(2.0, 1.0, 40, 1e-5)
    assert privacy.epsilon(2.0, 0.1, 10, 1e-5) < e  # sampling amplifies privacy
    assert privacy.epsilon(0.0, 1.0, 10, 1e-5) == float("inf")
    for target in (8.0, 1.0):
        sigma = privacy.noise_for(target, 1.0, 10, 1e-5)
        assert privacy.epsilon(sigma, 1.0, 10, 1e-5) <= target
        assert privacy.epsilon(sigma * 0.98, 1.0, 10, 1e-5) > target  # and not much more noise than needed
    for bad in ({"sample_rate": 0.0}, {"rounds": 0}, {"delta": 1.0}):
        args = {"noise_multiplier": 1.0, "sample_rate": 1.0, "rounds": 3, "delta": 1e-5, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            privacy.epsilon(**args)


@pytest.mark.parametrize("mode", ["client", "example"])
def test_a_dp_run_reports_epsilon_in_its_summary_and_bundle(
    mode: str, tmp_path: Path, quiet_env: dict[str, str]
) -> None:
    from ser_edge.bundle import load_bundle

    out = tmp_path / "global"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ser_edge",
            "fl",
            "simulate",
            "--corpus",
            "emodb",
            "--data",
            str(EMODB),
            "--clients",
            "2",
            "--rounds",
            "2",
            "--local-epochs",
            "1",
            "--holdout",
            "15,16",
            "--out",
            str(out),
            "--json",
            "--dp",
            mode,
            "--dp-epsilon",
            "8",
            "--dp-clip",
            "1",
        ],
        env=quiet_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    dp = summary["privacy"]
    assert load_bundle(out).training["privacy"] == dp
    if mode == "example":  # each device's DP-SGD over its 2 rounds, calibrated to epsilon 8
        assert dp["level"] == "example" and dp["delta"] == 1e-5 and dp["rounds"] == 2 and dp["clip"] == 1.0
        assert 7.9 < dp["epsilon"] <= 8.0 and dp["target_epsilon"] == 8.0
        assert all(0 <= m["train-loss"] < 1e3 for m in summary["history"]["train"].values())
        return
    assert dp["mode"] == "client" and dp["delta"] == 1e-5 and dp["rounds"] == 2 and dp["sample_rate"] == 1.0
    assert 7.9 < dp["epsilon"] <= 8.0 and dp["noise_multiplier"] == pytest.approx(privacy.noise_for(8, 1.0, 2, 1e-5))
    assert dp["accountant"] == "dp-accounting RDP"
