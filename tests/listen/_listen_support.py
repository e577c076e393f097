"""Helpers for the listen tests: real speech, the daemon as a subprocess, mosquitto, PulseAudio."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SR = 16000
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def bundle_path() -> Path:
    from ser_edge.bundle import default_bundle_path

    return Path(os.environ.get("SER_EDGE_TEST_BUNDLE") or default_bundle_path())


def espeak(text: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def speech_bounds(y: np.ndarray, sr: int = SR) -> tuple[int, int]:
    """First and last sample louder than -40 dBFS (10 ms frames): where speech is."""
    hop = sr // 100
    frames = y[: len(y) // hop * hop].reshape(-1, hop)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(1)) > 10 ** (-40 / 20))
    return int(loud[0] * hop), int((loud[-1] + 1) * hop)


def utterance(path: Path) -> np.ndarray:
    """The speech in ``path`` at 16 kHz with 0.25 s of silence before and 0.5 s after."""
    from ser_edge.audio import load

    y, _ = load(path, sr=SR)
    a, b = speech_bounds(y)
    return np.concatenate([np.zeros(SR // 4, np.float32), y[a:b], np.zeros(SR // 2, np.float32)])


def wait(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Polls ``what()`` until it is truthy; returns it. ``AssertionError`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def listen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ser_edge", "listen", *args]


class Daemon:
    """``ser-edge listen`` as a subprocess; stdout events and stderr logs collected by threads."""

    def __init__(
        self,
        args: list[str],
        *,
        stdin: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        python: list[str] | None = None,
    ) -> None:
        cmd = listen_cmd(*args)
        if python is not None:  # e.g. [sys.executable, wrapper.py]: a wrapper that execs the rest
            cmd = python + cmd[1:]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.events: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.raw_err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.events), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.logs), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, into: list[dict[str, Any]]) -> None:
        for line in stream:
            text = line.decode("utf-8", "replace").strip()
            try:
                into.append(json.loads(text))
            except json.JSONDecodeError:
                self.raw_err.append(text)

    def write(self, audio: np.ndarray) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        self.proc.stdin.flush()

    def wait_for(self, what: Callable[[], Any], timeout: float = 20.0, message: str = "") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = what()
            if got:
                return got
            if self.proc.poll() is not None:
                time.sleep(0.2)
                got = what()
                if got:
                    return got
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}) before {message}: {self.logs} {self.raw_err}"
                )
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message}; events={self.events} logs={self.logs} {self.raw_err}")

    def log(self, msg: str) -> list[dict[str, Any]]:
        return [x for x in self.logs if x.get("msg") == msg]

    def utterances(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "utterance"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(2)
        return rc

    def close(self) -> None:
        """Kills the daemon if it still runs and closes its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for t in self._threads:
            t.join(2)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except BrokenPipeError:
                    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A real mosquitto on 127.0.0.1 (anonymous, no persistence)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.conf = workdir / "mosquitto.conf"
        # persistence keeps a subscriber's session (and its queued QoS 1 messages) over a restart
        self.conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {workdir}/\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir
        )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


class Subscriber:
    """Collects every message on the broker (paho client)."""

    def __init__(self, port: int, *, persistent: bool = False) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}-{persistent}", clean_session=not persistent
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, u, f, r, p=None: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, suffix: str) -> list[tuple[str, str, bool]]:
        with self._lock:
            return [m for m in self.messages if m[0].endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Pulse:
    """A private PulseAudio server with a null sink; its monitor is the test "microphone"."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.env = {
            "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(runtime),
            "PULSE_SOURCE": "virt_mic_sink.monitor",
            "PULSE_SINK": "virt_mic_sink",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pulse:
        # in the foreground (no -D): works as root too, where pulseaudio only warns
        self.proc = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "--use-pid-file=no",
                "--load=module-native-protocol-unix",
                "--load=module-null-sink sink_name=virt_mic_sink",
            ],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if subprocess.run(["pactl", "info"], env={**os.environ, **self.env}, capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("pulseaudio did not start")

    def play(self, path: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["paplay", "--device=virt_mic_sink", str(path)], env={**os.environ, **self.env})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
