"""The edge path (``predict``, ``listen``, ``devices``) runs with TensorFlow, Keras, librosa and the
training code made unimportable: a ``sitecustomize`` on ``PYTHONPATH`` installs a meta-path
blocker that records and refuses every such import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKER = """
import os, sys
BLOCKED = ("tensorflow", "keras", "tf_keras", "librosa", "torch", "sklearn", "ser_edge.training")
# the CLI collects each area's sub-command parsers; those two modules only import argparse
ALLOWED = ("ser_edge.training", "ser_edge.training.cli")

class EdgeImportBlocker:
    def find_spec(self, name, path=None, target=None):
        if name not in ALLOWED and any(name == b or name.startswith(b + ".") for b in BLOCKED):
            with open(os.environ["EDGE_IMPORT_LOG"], "a") as f:
                f.write(name + "\\n")
            raise ImportError(f"{name} is blocked on the edge path")
        return None

sys.meta_path.insert(0, EdgeImportBlocker())
"""


@pytest.fixture
def blocked_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    log = tmp_path / "imports.log"
    return {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "EDGE_IMPORT_LOG": str(log)}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_blocker_works(blocked_env: dict[str, str]) -> None:
    for module in ("librosa", "tensorflow", "ser_edge.training.trainer"):
        r = _run(["-c", f"import {module}"], blocked_env)
        assert r.returncode != 0 and "blocked on the edge path" in r.stderr
    assert Path(blocked_env["EDGE_IMPORT_LOG"]).read_text().split() == [
        "librosa",
        "tensorflow",
        "ser_edge.training.trainer",
    ]


def test_predict_listen_and_devices_import_no_training_stack(
    blocked_env: dict[str, str], corpus: list[Path], spoken: Path, bundle_dir: Path, tmp_path: Path
) -> None:
    r = _run(
        ["-m", "ser_edge", "predict", *map(str, corpus), "--model", str(bundle_dir), "--json", "--segments"],
        blocked_env,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(corpus)
    r = _run(
        [
            "-m",
            "ser_edge",
            "listen",
            "--source",
            str(spoken),
            "--model",
            str(bundle_dir),
            "--window-events",
            "--out-file",
            str(tmp_path / "ev.jsonl"),
            "--record-dir",
            str(tmp_path / "rec"),
        ],
        blocked_env,
    )
    assert r.returncode == 0, r.stderr
    assert '"type": "utterance"' in r.stdout
    r = _run(["-m", "ser_edge", "devices"], blocked_env)
    assert "blocked" not in r.stderr
    log = Path(blocked_env["EDGE_IMPORT_LOG"])
    assert not log.exists(), log.read_text()
