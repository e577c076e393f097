"""Checking a model bundle before a running ``ser-edge listen`` swaps to it.

A bundle that appears in the watched folder (or is named by a reloaded configuration) may be
anything: bad JSON, missing fields, a size that the core cannot allocate, a truncated or huge
model. The daemon must keep running with its model whatever it is, so a candidate is

1. copied into a private snapshot (a 0700 temporary folder), each file's size checked before it
   is read (``bundle.json`` and ``model.tflite`` within the bundle format's limits,
   ``ser_edge.bundle.MAX_META_BYTES`` / ``MAX_MODEL_BYTES``), so a 1 GB file is refused without being read;
2. loaded and test-run in a child process (``python -m ser_edge.listen.swap SNAPSHOT``) with an
   address-space limit of :data:`PROBE_MEMORY` bytes and a :data:`PROBE_TIMEOUT` s deadline: an
   abort, a hang or a huge allocation kills the child, not the daemon;
3. only then loaded in the daemon, from the same snapshot (the bytes that passed), never from the
   folder, which may have changed in the meantime.

The child runs while the daemon keeps listening (:meth:`Probe.poll` never blocks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ser_edge.runtime import Recognizer

PROBE_TIMEOUT = 60.0
PROBE_MEMORY = 1 << 30  # bytes of address space for the check (far more than a bundle within the size limits needs)


def bundle_dir(model: str | None) -> Path:
    """The bundle directory a ``model`` setting names (a path or a packaged model's name; default:
    the bundled model)."""
    from ser_edge.bundle import bundle_path

    p = bundle_path(model or None)
    return p if p.is_dir() or p.suffix not in (".json", ".tflite") else p.parent


def snapshot(directory: Path) -> tuple[Path, str]:
    """Copies the bundle's two files into a new private temporary folder; returns it and the
    bundle's fingerprint (sha256 over both files). Raises ``BundleError``."""
    from ser_edge.bundle import META_FILE, MODEL_FILE

    meta, model = _read_files(directory)
    tmp = Path(tempfile.mkdtemp(prefix="ser-edge-bundle-"))  # 0700
    for name, data in ((META_FILE, meta), (MODEL_FILE, model)):
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return tmp, fingerprint(meta, model)


def _read_files(directory: Path) -> tuple[bytes, bytes]:
    """The bytes of the bundle's ``bundle.json`` and ``model.tflite``, each within the bundle
    format's size limit. Raises ``BundleError``."""
    from ser_edge.bundle import MAX_META_BYTES, MAX_MODEL_BYTES, META_FILE, MODEL_FILE, read_capped

    return read_capped(directory / META_FILE, MAX_META_BYTES), read_capped(directory / MODEL_FILE, MAX_MODEL_BYTES)


def fingerprint(meta: bytes, model: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(meta).digest() + hashlib.sha256(model).digest()).hexdigest()


def load_fingerprint(directory: Path) -> str | None:
    """The fingerprint of the bundle in ``directory`` now, or ``None`` if it cannot be read."""
    from ser_edge.bundle import BundleError

    try:
        return fingerprint(*_read_files(directory))
    except BundleError:
        return None


@dataclasses.dataclass
class Verdict:
    """A finished probe: ``error`` is ``None`` when the candidate loaded and ran."""

    directory: Path
    snapshot: Path | None
    fingerprint: str
    reason: str
    error: str | None

    def discard(self) -> None:
        if self.snapshot is not None:
            shutil.rmtree(self.snapshot, ignore_errors=True)


class Probe:
    """Snapshot + child-process check of the bundle in ``directory`` (see the module docstring).
    ``adapt`` and ``labels`` are the settings the daemon will load it with."""

    def __init__(self, directory: Path, reason: str, *, adapt: bool, labels: Sequence[str] | None) -> None:
        self.directory, self.reason = directory, reason
        self.snapshot, self.fingerprint = snapshot(directory)
        cmd = [
            sys.executable,
            "-m",
            "ser_edge.listen.swap",
            str(self.snapshot),
            json.dumps(bool(adapt)),
            json.dumps(list(labels) if labels is not None else None),
        ]
        try:
            self._err = open(self.snapshot / "probe.log", "w+b")
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err)
        except OSError:
            shutil.rmtree(self.snapshot, ignore_errors=True)
            raise
        self._deadline = time.monotonic() + PROBE_TIMEOUT

    def poll(self) -> Verdict | None:
        """``None`` while the child runs; then the verdict (the snapshot is the caller's)."""
        rc = self._proc.poll()
        if rc is None and time.monotonic() < self._deadline:
            return None
        if rc is None:
            self._proc.kill()
            self._proc.wait()
            error: str | None = f"the check did not finish within {PROBE_TIMEOUT:g} s"
        elif rc == 0:
            error = None
        else:
            # an exception's message is its last line; an abort's (e.g. Rust's "memory
            # allocation of N bytes failed") is its first, before any backtrace
            size = self._err.seek(0, os.SEEK_END)
            self._err.seek(0 if rc < 0 else max(0, size - 4000))
            lines = [x for x in self._err.read(4000).decode("utf-8", "replace").splitlines() if x.strip()]
            pick = (lines[-1] if rc > 0 else lines[0]) if lines else ""
            last = pick.strip().replace(str(self.snapshot), str(self.directory))
            how = f"exit status {rc}" if rc > 0 else f"killed by signal {-rc}"
            error = f"{last} ({how})" if last else f"the check failed ({how})"
        self._err.close()
        return Verdict(self.directory, self.snapshot, self.fingerprint, self.reason, error)

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._err.close()
        shutil.rmtree(self.snapshot, ignore_errors=True)


def trial_run(r: Recognizer) -> Recognizer:
    """Runs a new ``Recognizer`` once on quiet noise (the model must run before it replaces a
    working one) and resets its adaptation; returns it."""
    sr = r.bundle.input.sr
    probe = (np.random.default_rng(0).standard_normal(sr // 2) * 0.01).astype(np.float32)
    r.predict(probe)
    r.adapter.reset()
    return r


def load_verified(verdict: Verdict, *, adapt: bool, labels: Sequence[str] | None) -> Recognizer:
    """The daemon-side load of a snapshot that passed: a ``Recognizer`` whose bundle reports the
    watched folder as its path. Raises ``ValueError`` or ``RuntimeError``."""
    from ser_edge.bundle import load_bundle
    from ser_edge.runtime import Recognizer

    assert verdict.snapshot is not None and verdict.error is None
    bundle = dataclasses.replace(load_bundle(verdict.snapshot), path=verdict.directory)
    return trial_run(Recognizer(bundle, adapt=adapt, allowed=labels))


LAST_GOOD = "last-good-model"


def last_good_dir() -> Path | None:
    """Where a copy of the last bundle the daemon ran is kept: ``$STATE_DIRECTORY/last-good-model``
    (systemd sets ``STATE_DIRECTORY`` for ``StateDirectory=``); ``None`` (nothing kept) without it."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / LAST_GOOD if state else None


def last_good_fingerprint() -> str | None:
    d = last_good_dir()
    try:
        return (d / "fingerprint").read_text().strip() if d is not None else None
    except OSError:
        return None


def keep_last_good(snapshot_dir: Path, fingerprint: str) -> None:
    """Copies a snapshot that runs to :func:`last_good_dir` (a new 0700 folder renamed into
    place, so a crash leaves the old copy or the new one). Raises ``OSError``."""
    from ser_edge.bundle import META_FILE, MODEL_FILE

    dest = last_good_dir()
    if dest is None:
        return
    tmp, old = dest.with_name(f".{dest.name}.new"), dest.with_name(f".{dest.name}.old")
    for d in (tmp, old):
        shutil.rmtree(d, ignore_errors=True)
    tmp.mkdir(mode=0o700, parents=False)
    os.chmod(tmp, 0o700)
    for name in (META_FILE, MODEL_FILE):
        shutil.copyfile(snapshot_dir / name, tmp / name)
    (tmp / "fingerprint").write_text(fingerprint + "\n")
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def check_now(directory: Path, reason: str, *, adapt: bool, labels: Sequence[str] | None) -> Verdict:
    """:class:`Probe`, waited for (start-up). A bundle that cannot even be copied gives a
    verdict with its error and no snapshot."""
    from ser_edge.bundle import BundleError

    try:
        probe = Probe(directory, reason, adapt=adapt, labels=labels)
    except (BundleError, OSError) as e:
        return Verdict(directory, None, "", reason, str(e))
    while (verdict := probe.poll()) is None:
        time.sleep(0.02)
    return verdict


def _child(argv: list[str]) -> int:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = PROBE_MEMORY if hard == resource.RLIM_INFINITY else min(PROBE_MEMORY, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:  # should memory run out, the kernel kills this check rather than the daemon
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    from ser_edge.runtime import Recognizer

    path, adapt, labels = argv[0], json.loads(argv[1]), json.loads(argv[2])
    try:
        trial_run(Recognizer(path, adapt=adapt, allowed=labels))
    except Exception as e:  # any failure refuses the bundle; one line for the daemon's log
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
