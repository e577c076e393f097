"""Shared helpers of the federated-learning tests (a plain module; the fixtures are in
conftest.py): real EMO-DB clips as per-device CSVs,
processes started in their own sessions and stopped with every descendant."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():  # typer (imported by flwr) calls a click API deprecated in click 8.2
    warnings.simplefilter("ignore", DeprecationWarning)
    import flwr.app  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
EMODB = DATA / "emodb"
BIN = Path(sys.executable).parent
QUIET = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "CUDA_VISIBLE_DEVICES": "",
}


def speaker_csv(path: Path, speakers: list[str], *, limit: int | None = None) -> Path:
    """A CSV corpus (path,label,speaker) of the EMO-DB clips of ``speakers``."""
    from ser_edge.training.corpora import load_corpus

    clips = [c for c in load_corpus("emodb", EMODB) if c.speaker in speakers]
    if limit is not None:
        clips = clips[:limit]
    path.write_text("path,label,speaker\n" + "".join(f"{c.path},{c.label},{c.speaker}\n" for c in clips))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


class Processes:
    """Processes started in their own sessions; :meth:`stop` ends each one's group and every
    descendant seen while it ran (Flower's SuperExec and app processes included)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.procs: list[tuple[str, subprocess.Popen[bytes], Any]] = []
        self.seen: set[int] = set()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.cwd / f"{name}.log", "wb")
        p = subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
        )
        self.procs.append((name, p, log))
        return p

    def log(self, name: str) -> str:
        return (self.cwd / f"{name}.log").read_text(errors="replace")

    def track(self) -> None:
        for _, p, _ in self.procs:
            if p.poll() is None:
                self.seen |= descendants(p.pid) | {p.pid}

    def stop(self) -> set[int]:
        """Stops everything; returns the pids still alive afterwards (should be none)."""
        self.track()
        for _, p, _ in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 15
        for _, p, _ in self.procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        while time.monotonic() < end and any(alive(pid) for pid in self.seen):
            time.sleep(0.2)
        for pid in self.seen:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for _, _, log in self.procs:
            log.close()
        time.sleep(0.5)
        return {pid for pid in self.seen if alive(pid)}
