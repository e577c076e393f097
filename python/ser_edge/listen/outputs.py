"""Where events go: JSON lines on stdout, a rotating JSON-lines file, MQTT (Home Assistant).

Every output's ``emit`` returns at once and never raises: audio is never blocked by an output.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from ser_edge.listen.private import open_private, private_dir

log = logging.getLogger("ser_edge.listen")

Event = dict[str, Any]


class Output(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self, timeout: float) -> None: ...


class StdoutOutput:
    """One JSON object per line, flushed per event."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        try:
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as e:  # closed pipe: keep running, say so once per event
            log.error("stdout output failed", extra={"fields": {"error": str(e)}})

    def close(self, timeout: float) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass


class FileOutput:
    """JSON lines appended to ``path``; when it would exceed ``max_bytes`` it is rotated to
    ``path.1`` (``path.1`` to ``path.2``, ... up to ``backups``). The file is 0600 and the folders
    this creates are 0700, whatever the umask."""

    def __init__(self, path: str, max_bytes: int = 1_000_000, backups: int = 3) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("file output: max_bytes must be >= 1 and backups >= 0")
        self.path, self.max_bytes, self.backups = Path(path), int(max_bytes), int(backups)
        private_dir(self.path.parent, own=False)
        self._f = open_private(self.path, "a")

    def _rotate(self) -> None:
        self._f.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._f = open_private(self.path, "a")

    def emit(self, event: Event) -> None:
        line = json.dumps(event) + "\n"
        try:
            if self._f.tell() > 0 and self._f.tell() + len(line.encode()) > self.max_bytes:
                self._rotate()
            self._f.write(line)
            self._f.flush()
        except OSError as e:
            log.error("file output failed", extra={"fields": {"path": str(self.path), "error": str(e)}})

    def close(self, timeout: float) -> None:
        self._f.close()


@dataclass(frozen=True)
class MqttConfig:
    """The ``[mqtt]`` table; an empty ``host`` means no MQTT output."""

    host: str = ""
    port: int = 1883
    username: str | None = None
    password: str | None = None
    topic: str = "ser-edge"
    node_id: str = ""
    discovery_prefix: str = "homeassistant"
    queue: int = 1000
    keepalive: int = 30
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    password_file: str | None = None

    def __repr__(self) -> str:  # never print the password
        return f"MqttConfig(host={self.host!r}, port={self.port}, username={self.username!r}, tls={self.tls})"

    @property
    def node(self) -> str:
        raw = self.node_id or socket.gethostname()
        return "".join(c if c.isalnum() or c in "_-" else "_" for c in raw) or "device"


class MqttOutput:
    """MQTT with Home Assistant discovery.

    Topics (``{t}`` = ``topic/node``): ``{t}/availability`` (``online``/``offline``, retained;
    ``offline`` is also the last will), ``{t}/state`` (the last utterance event, retained),
    ``{t}/event`` (every event). Discovery configs (retained) under
    ``{discovery_prefix}/sensor/{node}/.../config`` describe an emotion sensor and a confidence
    sensor. While the broker is unreachable events wait in a queue of ``queue`` entries (the
    oldest are dropped and counted when it is full); a background thread sends them, QoS 1.
    With ``tls`` the connection is TLS (certificate chain always verified; ``tls_insecure``
    skips only the host name). Events are published without ``recording`` (a local path).
    """

    def __init__(self, config: MqttConfig, *, model_id: str = "") -> None:
        import paho.mqtt.client as mqtt

        self.config, self.model_id = config, model_id
        node = config.node
        self.base = f"{config.topic}/{node}"
        self.availability = f"{self.base}/availability"
        self._queue: deque[tuple[str, str, bool]] = deque()
        self.dropped = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._discovery_pending = False
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ser-edge-{node}")
        if config.username:
            self._client.username_pw_set(config.username, config.password)
        if config.tls:
            import ssl

            try:
                self._client.tls_set(
                    ca_certs=config.tls_ca,
                    certfile=config.tls_cert,
                    keyfile=config.tls_key,
                    cert_reqs=ssl.CERT_REQUIRED,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
                raise ValueError(f"mqtt TLS: {e}") from None
            self._client.tls_insecure_set(bool(config.tls_insecure))
        self._client.on_connect_fail = self._on_connect_fail
        self._client.will_set(self.availability, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(config.host, int(config.port), keepalive=int(config.keepalive))
        self._client.loop_start()
        self._thread = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._thread.start()

    # -- paho callbacks (paho's thread) ------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt connect refused", extra={"fields": {"reason": str(reason)}})
            return
        log.info("mqtt connected", extra={"fields": {"host": self.config.host, "port": self.config.port}})
        self._discovery_pending = True
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        log.warning("mqtt connect failed", extra={"fields": {"host": self.config.host, "port": self.config.port}})

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("mqtt disconnected", extra={"fields": {"reason": str(reason)}})

    # -- public -------------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        payload = json.dumps({k: v for k, v in event.items() if k != "recording"})
        items = [(f"{self.base}/event", payload, False)]
        if event.get("type") == "utterance":
            items.append((f"{self.base}/state", payload, True))
        with self._lock:
            for item in items:
                if len(self._queue) >= self.config.queue:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(item)
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pending() and self._connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._connected.is_set():
            info = self._client.publish(self.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.05, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        if self.pending():
            log.warning("mqtt events not delivered at exit", extra={"fields": {"pending": self.pending()}})
        self._client.disconnect()
        self._client.loop_stop()

    # -- sender thread ------------------------------------------------------------------------------
    def _discovery(self) -> list[tuple[str, str, bool]]:
        c, node = self.config, self.config.node
        device = {
            "identifiers": [f"ser-edge-{node}"],
            "name": f"ser-edge {node}",
            "manufacturer": "ser-edge",
            "model": "ser-edge listen",
            "sw_version": self.model_id,
        }
        common = {
            "state_topic": f"{self.base}/state",
            "availability_topic": self.availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        emotion = dict(
            common,
            name="Emotion",
            unique_id=f"ser_edge_{node}_emotion",
            icon="mdi:emoticon-outline",
            value_template="{{ value_json.label }}",
            json_attributes_topic=f"{self.base}/state",
        )
        confidence = dict(
            common,
            name="Emotion confidence",
            unique_id=f"ser_edge_{node}_confidence",
            unit_of_measurement="%",
            state_class="measurement",
            value_template="{{ (value_json.confidence * 100) | round(0) }}",
        )
        prefix = f"{c.discovery_prefix}/sensor/{node}"
        return [
            (f"{prefix}/emotion/config", json.dumps(emotion), True),
            (f"{prefix}/confidence/config", json.dumps(confidence), True),
            (self.availability, "online", True),
        ]

    def _publish(self, topic: str, payload: str, retain: bool) -> bool:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:
            return False
        deadline = time.monotonic() + 5.0
        while not info.is_published():
            if not self._connected.is_set() or time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._stop.is_set() and not self.pending():
                return
            if not self._connected.is_set():
                if self._stop.is_set():
                    return
                continue
            if self._discovery_pending:
                if all(self._publish(*m) for m in self._discovery()):
                    self._discovery_pending = False
                else:
                    continue
            while self._connected.is_set():
                with self._lock:
                    if not self._queue:
                        break
                    item = self._queue[0]
                if not self._publish(*item):
                    break
                with self._lock:
                    if self._queue and self._queue[0] is item:
                        self._queue.popleft()
                        self.sent += 1


class Outputs:
    """All configured outputs; ``emit`` fans out to each."""

    def __init__(self, outputs: list[Any]) -> None:
        self.outputs = outputs

    def emit(self, event: Event) -> None:
        for o in self.outputs:
            o.emit(event)

    def close(self, timeout: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        for o in self.outputs:
            try:
                o.close(max(0.05, deadline - time.monotonic()))
            except Exception as e:  # closing one output must not stop the others
                log.error("output close failed", extra={"fields": {"error": str(e)}})

    @property
    def dropped(self) -> int:
        return sum(getattr(o, "dropped", 0) for o in self.outputs)
