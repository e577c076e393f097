"""``ser-edge fl simulate``: Flower's Simulation Runtime with speakers as non-IID clients and
held-out speakers for evaluation, run as a user runs it (a subprocess, real EMO-DB clips)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fl_support import EMODB


def simulate(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ser_edge", "fl", "simulate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_speakers_as_clients_with_held_out_speakers(tmp_path: Path, quiet_env: dict[str, str]) -> None:
    from ser_edge.bundle import load_bundle
    from ser_edge.fl.task import partition
    from ser_edge.training.corpora import load_corpus

    out = tmp_path / "global"
    r = simulate(
        quiet_env,
        "--corpus",
        "emodb",
        "--data",
        str(EMODB),
        "--clients",
        "3",
        "--rounds",
        "2",
        "--local-epochs",
        "1",
        "--holdout",
        "15,16",
        "--out",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr[-4000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["rounds"] == 2 and summary["clients"] == 3 and summary["stats_clients"] == 3
    assert 0.0 <= summary["uar"] <= 1.0 and 0.0 <= summary["accuracy"] <= 1.0
    clips = load_corpus("emodb", EMODB)
    assert summary["eval_clips"] == sum(c.speaker in ("15", "16") for c in clips)
    assert summary["holdout"] == ["15", "16"] and summary["rejected"] == {}
    assert sorted(summary["history"]["held_out"]) == ["0", "1", "2"] and sorted(summary["rss_mb_by_round"]) == [
        "0",
        "1",
        "2",
    ]
    roles = summary["rss_mb_by_role"]["2"]  # the client actors are Ray workers, apart from the driver
    assert set(roles) == {"driver", "workers", "ray"} and min(roles.values()) > 0
    assert abs(sum(roles.values()) - summary["rss_mb_by_round"]["2"]) < 1.0
    assert set(summary["history"]["train"]["1"]) == {"train-loss", "train-accuracy"}
    assert set(summary["history"]["evaluate"]["2"]) == {"loss", "accuracy"}
    b = load_bundle(summary["bundle"])
    assert b.path == out and b.quantization == "int8" and b.model_id == summary["model_id"]
    assert b.training["holdout"] == ["15", "16"] and b.metrics["uar"] == summary["uar"]
    # speakers as clients: the 8 training speakers dealt to 3 clients, none shared, none held out
    train = [c for c in clips if c.speaker not in ("15", "16")]
    parts = [{c.speaker for c in partition(train, i, 3)} for i in range(3)]
    assert [len(p) for p in parts] == [3, 3, 2] and set().union(*parts) == {c.speaker for c in train}
    assert sum(len(p) for p in parts) == 8


def test_bad_arguments_are_clear_errors(tmp_path: Path, quiet_env: dict[str, str]) -> None:
    cases = [
        (["--corpus", "emodb", "--data", str(tmp_path / "nope"), "--clients", "2"], "no such directory"),
        (["--corpus", "emodb", "--data", str(EMODB), "--clients", "2", "--holdout", "99"], "not in the corpus"),
        (["--corpus", "emodb", "--data", str(EMODB), "--clients", "0"], "must be >= 1"),
        (["--corpus", "nope", "--data", str(EMODB), "--clients", "2"], "unknown corpus"),
        (
            ["--corpus", "emodb", "--data", str(EMODB), "--clients", "2", "--model", "knn"],
            "cannot be trained by FedAvg",
        ),
    ]
    for args, message in cases:
        r = simulate(quiet_env, *args, timeout=60)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr
