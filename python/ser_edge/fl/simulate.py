"""Many virtual clients on one machine: Flower's Simulation Runtime (Ray backend) running the
same ServerApp and ClientApp as a deployment, with the resident memory of the whole process tree
(this process, Ray's daemons and workers) sampled while it runs."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _tree(root: int) -> dict[int, int]:
    """Resident bytes of process ``root`` and each of its descendants, by pid (Linux)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        p = int(entry)
        children.setdefault(int(fields[1]), []).append(p)
        rss[p] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    tree, todo = {}, [root]
    while todo:
        p = todo.pop()
        tree[p] = rss.get(p, 0)
        todo.extend(children.get(p, []))
    return tree


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes of process ``pid`` (default: this one) and all its descendants (Linux)."""
    return sum(_tree(os.getpid() if pid is None else pid).values())


def rss_by_role() -> dict[str, int]:
    """:func:`tree_rss` of this process split into ``driver`` (this process: the ServerApp and
    the simulation engine), ``workers`` (Ray worker processes, ``ray::...``: the ClientApp
    actors) and ``ray`` (Ray's daemons: GCS, raylet, agents)."""
    roles = {"driver": 0, "workers": 0, "ray": 0}
    for p, rss in _tree(os.getpid()).items():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        role = "driver" if p == os.getpid() else "workers" if cmd.startswith(b"ray::") else "ray"
        roles[role] += rss
    return roles


class MemorySampler:
    """Samples :func:`tree_rss` every ``interval`` seconds in a thread; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


_NO_TENSORFLOW = """import sys


class _NoTensorFlow:  # written by ser_edge.fl.simulate for the numpy client actors
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (not imported by numpy client actors)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
"""


def _actor_site(cfg: Mapping[str, Any]) -> str | None:
    """A folder with a ``sitecustomize`` that makes TensorFlow unimportable, for the client
    actors' ``PYTHONPATH`` when they train with numpy (Flower's Ray transport imports TensorFlow
    whenever it is installed: about 0.4 GB per actor). ``None`` when they need TensorFlow."""
    from ser_edge.fl import task

    if cfg["trainer"] != "numpy" or cfg["model"] not in task.NUMPY_MODELS:
        return None
    import tempfile

    site = Path(tempfile.mkdtemp(prefix="ser-edge-fl-actors-"))
    (site / "sitecustomize.py").write_text(_NO_TENSORFLOW)
    return str(site)


def simulate(
    overrides: Mapping[str, Any],
    clients: int,
    *,
    cpus_per_client: float = 1.0,
    verbose: bool = False,
    train_mods: Sequence[Any] = (),
) -> dict[str, Any]:
    """Runs the federated app with ``clients`` virtual SuperNodes (``partition-id`` i of
    ``clients``) and returns the server's summary plus ``seconds``, ``peak_rss_mb`` and the tree's
    resident memory after each round (``rss_mb_by_round``, and split by :func:`rss_by_role` in
    ``rss_mb_by_role``). ``train_mods``: ClientApp mods around every client's train function."""
    from flwr.simulation import run_simulation

    from ser_edge.fl import client_app, server_app, task

    cfg = task.settings({}, overrides)  # fail early on a bad configuration
    if clients < int(cfg["min-nodes"]):
        raise ValueError(f"--clients {clients} is fewer than min-nodes={cfg['min-nodes']}")
    if not cfg["data"] or not cfg["corpus"]:
        raise ValueError("the simulation needs corpus and data")
    Path(str(cfg["out"])).parent.mkdir(parents=True, exist_ok=True) if cfg["out"] else None

    summaries: list[dict[str, Any]] = []
    rss_by_round: dict[int, float] = {}
    roles_by_round: dict[int, dict[str, float]] = {}

    def on_round(server_round: int, _: Mapping[str, Any]) -> None:
        roles = rss_by_role()
        rss_by_round[server_round] = round(sum(roles.values()) / 2**20, 1)
        roles_by_round[server_round] = {k: round(v / 2**20, 1) for k, v in roles.items()}

    if not verbose:
        logging.getLogger("flwr").setLevel(logging.WARNING)
    t0 = time.time()
    site, pythonpath = _actor_site(cfg), os.environ.get("PYTHONPATH")
    if site:  # Flower passes the driver's PYTHONPATH (after its sys.path) to the Ray workers
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, site) if p)
    try:
        with MemorySampler() as mem:
            run_simulation(
                server_app=server_app.make_app(overrides, on_round=on_round, on_done=summaries.append),
                client_app=client_app.make_app(overrides, train_mods),
                num_supernodes=int(clients),
                backend_config={
                    "client_resources": {"num_cpus": float(cpus_per_client), "num_gpus": 0.0},
                    "init_args": {"include_dashboard": False},
                },
                verbose_logging=verbose,
            )
    finally:
        if site:
            if pythonpath is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = pythonpath
            import shutil

            shutil.rmtree(site, ignore_errors=True)
    if not summaries:
        raise RuntimeError("the simulation ended without a result (see the log above)")
    summary = summaries[0]
    summary.update(
        seconds=round(time.time() - t0, 1),
        peak_rss_mb=round(mem.peak / 2**20, 1),
        rss_mb_by_round=rss_by_round,
        rss_mb_by_role=roles_by_round,
    )
    return summary
