"""The systemd units in deploy/: `systemd-analyze verify` clean and `systemd-analyze security
--offline=true` exposure <= 3.0 for every unit; the daemon works under the restrictions a test can
apply without systemd (no writable+executable memory, umask 077)."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _listen_support import utterance

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").rglob("*.service"))
MAX_EXPOSURE = 3.0


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing: apt install systemd (scripts/setup dev installs it)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_every_unit_is_found() -> None:
    assert {u.name for u in UNITS} >= {"ser-edge.service", "ser-edge-supernode.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_is_at_most_3(unit: Path) -> None:
    r = _analyze("security", "--offline=true", "--no-pager", str(unit))
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
    lines = unit.read_text().splitlines()
    for want in (
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ):
        assert want in lines, (unit.name, want)


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies_clean(unit: Path, tmp_path: Path) -> None:
    # the units name the install prefix /opt/ser-edge/.venv: check them against this environment's
    # (verify requires the commands to exist); nothing else is changed
    text = unit.read_text()
    assert "/opt/ser-edge/.venv/bin/" in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace("/opt/ser-edge/.venv", sys.prefix))
    r = _analyze("verify", "--man=no", str(copy))
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_the_daemon_unit_lets_it_use_audio_and_the_network() -> None:
    lines = (ROOT / "deploy" / "ser-edge.service").read_text().splitlines()
    assert "SupplementaryGroups=audio" in lines and "DeviceAllow=char-alsa rw" in lines
    assert "DevicePolicy=closed" in lines and not any(x.startswith("PrivateDevices=yes") for x in lines)
    families = next(x for x in lines if x.startswith("RestrictAddressFamilies=")).split("=", 1)[1].split()
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    assert not any(x.startswith(("PrivateNetwork=yes", "IPAddressDeny=")) for x in lines)
    assert "MemoryDenyWriteExecute=yes" in lines  # see the next test


_MDWE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    sys.exit("prctl(PR_SET_MDWE): " + os.strerror(ctypes.get_errno()))
os.umask(0o077)
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


def test_the_daemon_runs_without_writable_executable_memory(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    """MemoryDenyWriteExecute=yes, applied with the kernel's own switch (PR_SET_MDWE): LiteRT,
    the Rust core, recording and the child process that checks a new bundle all run."""
    from ser_edge.bundle import load_bundle, save_bundle

    src = load_bundle(bundle_dir)
    kw = dict(
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    model = save_bundle(tmp_path / "model", tflite=src.model_path.read_bytes(), name=src.name, **kw)
    rec = tmp_path / "rec"
    wrapper = tmp_path / "mdwe.py"
    wrapper.write_text(_MDWE)
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{model.path}"\n[source]\nkind = "-"\n[record]\ndir = "{rec}"\n[watch]\ninterval = 0.2\n')
    d = daemons("--config", str(conf), stdin=True, python=[sys.executable, str(wrapper)])
    d.write(utterance(speech["one"]))
    d.wait_for(lambda: d.utterances(), message="first event")
    swapped = save_bundle(model.path, tflite=src.model_path.read_bytes(), name="swapped", **kw)
    d.wait_for(
        lambda: [x for x in d.log("model loaded") if x["model_id"] == swapped.model_id],
        timeout=90,
        message="swap (the check runs in a child process)",
    )
    d.write(utterance(speech["two"]))
    d.wait_for(lambda: len(d.utterances()) == 2, message="second event")
    assert d.utterances()[1]["model_id"] == swapped.model_id
    assert d.stop() == 0
    assert not [x for x in d.logs if x["level"] == "error"] and d.raw_err == [], (d.logs, d.raw_err)
    files = sorted(rec.iterdir())
    assert len(files) == 4 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_the_microphone_works_without_writable_executable_memory(
    speech: dict, bundle_dir: Path, tmp_path: Path, pulse: Any, daemons: Any
) -> None:
    """PortAudio -> PulseAudio (a local socket) capture under PR_SET_MDWE."""
    wrapper = tmp_path / "mdwe.py"
    wrapper.write_text(_MDWE)
    d = daemons(
        "--source",
        "mic",
        "--device",
        "pulse",
        "--model",
        str(bundle_dir),
        env=pulse.env,
        python=[sys.executable, str(wrapper)],
    )
    d.wait_for(lambda: d.log("source open"), message="the microphone opens")
    assert pulse.play(speech["conversation"]).wait(30) == 0
    d.wait_for(lambda: len(d.utterances()) >= 2, message="2 utterances from the microphone")
    assert d.stop() == 0
    assert not [x for x in d.logs if x["level"] == "error"], d.logs  # (ALSA prints its own card probing)
