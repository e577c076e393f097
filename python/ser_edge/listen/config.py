"""``ser-edge listen`` configuration: defaults < TOML file < command line.

The file is ``--config PATH``, else ``/etc/ser-edge/config.toml`` if it exists. Its tables and
keys (all optional; unknown keys are an error)::

    model = "/var/lib/ser-edge/model"      # bundle directory (default: the bundled model)
    labels = ["neutral", "happy", "sad", "angry"]   # restrict the argmax (default: all)
    adapt = true                           # speaker adaptation of the normalisation
    log_level = "info"
    [source]  kind = "mic"  device = "USB"  realtime = false  rate = 16000  channels = 1
              format = "s16le"  chunk = 0.05
    [gate]    threshold_db = -50.0  margin_db = 10.0  zcr_max = 0.45  min_speech = 0.1
              hangover = 0.2  pre_roll = 0.2  max_utterance = 20.0  noise_rise_db_per_s = 1.0
              speech = true  speech_threshold = 0.8  speech_min = 5  speech_window = 6
              speech_fraction = 0.5  speech_span = 15
    [windows] window = 4.0  hop = 2.0  events = false
    [output]  stdout = true  file = "/var/log/ser-edge/events.jsonl"  file_max_bytes = 1000000
              file_backups = 3
    [mqtt]    host = "localhost"  port = 1883  username = ""  password = ""  topic = "ser-edge"
              node_id = ""  discovery_prefix = "homeassistant"  queue = 1000  keepalive = 30
              password_file = ""  tls = false  tls_ca = ""  tls_cert = ""  tls_key = ""
              tls_insecure = false
    [record]  dir = ""                     # audio is written only if this is set
    [state]   dir = ""                     # the user's adapter state (default ~/.local/state/ser-edge)
    [watch]   model = true  interval = 1.0 # hot-swap the model when its files change

MQTT credentials: the username is ``mqtt.username`` (or ``$SER_EDGE_MQTT_USERNAME``); the
password is read from ``mqtt.password_file`` if set (one line; e.g. a systemd credential,
``/run/credentials/ser-edge.service/mqtt-password``), else ``$SER_EDGE_MQTT_PASSWORD``, else
``mqtt.password``. TLS is on when ``tls = true`` or any ``tls_*`` file is given: ``tls_ca``
(default: the system's CAs) verifies the broker, ``tls_cert``/``tls_key`` authenticate this
device; ``tls_insecure = true`` skips only the host-name check (never the certificate chain).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_edge.listen.outputs import MqttConfig
from ser_edge.pipeline.gate import GateConfig
from ser_edge.pipeline.utterances import WindowConfig

DEFAULT_PATH = Path("/etc/ser-edge/config.toml")

#: The tables that are whole settings objects: ``[gate]`` keys are ``GateConfig`` fields, etc.
NESTED: dict[str, type] = {"gate": GateConfig, "windows": WindowConfig, "mqtt": MqttConfig}

# (table, key) in the TOML file -> ListenConfig field, for the keys outside the nested tables
FLAT: dict[tuple[str, str], str] = {
    ("", "model"): "model",
    ("", "labels"): "labels",
    ("", "adapt"): "adapt",
    ("", "log_level"): "log_level",
    ("source", "kind"): "source",
    ("source", "device"): "device",
    ("source", "realtime"): "realtime",
    ("source", "rate"): "rate",
    ("source", "channels"): "channels",
    ("source", "format"): "sample_format",
    ("source", "chunk"): "chunk",
    ("output", "stdout"): "stdout",
    ("output", "file"): "file",
    ("output", "file_max_bytes"): "file_max_bytes",
    ("output", "file_backups"): "file_backups",
    ("record", "dir"): "record_dir",
    ("state", "dir"): "state_dir",
    ("watch", "model"): "watch",
    ("watch", "interval"): "watch_interval",
}


def setting_name(table: str, key: str) -> str | None:
    """The name of a TOML setting in ``load_config``'s values and overrides: a ListenConfig field,
    or ``"<table>.<key>"`` in a nested table; ``None`` if there is no such setting."""
    if table in NESTED:
        return f"{table}.{key}" if key in {f.name for f in dataclasses.fields(NESTED[table])} else None
    return FLAT.get((table, key))


def settings() -> list[tuple[str, str]]:
    """Every ``(table, key)`` the file may hold."""
    return list(FLAT) + [(t, f.name) for t, cls in NESTED.items() for f in dataclasses.fields(cls)]


@dataclass
class ListenConfig:
    model: str | None = None
    labels: list[str] | None = None
    adapt: bool = True
    log_level: str = "info"
    source: str = "mic"
    device: str | None = None
    realtime: bool = False
    rate: int | None = None
    channels: int = 1
    sample_format: str = "s16le"
    chunk: float = 0.05
    gate: GateConfig = field(default_factory=GateConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    stdout: bool = True
    file: str | None = None
    file_max_bytes: int = 1_000_000
    file_backups: int = 3
    mqtt: MqttConfig = field(default_factory=MqttConfig)  # as written: credentials not yet resolved
    record_dir: str | None = None
    state_dir: str | None = None
    enrol: float | None = None
    watch: bool = True
    watch_interval: float = 1.0
    config_path: str | None = field(default=None, compare=False)

    def mqtt_output(self) -> MqttConfig | None:
        """The MQTT settings with the credentials resolved (see the module docstring); ``None``
        without a host. Raises ``ValueError`` naming an unreadable file."""
        m = self.mqtt
        if not m.host:
            return None
        password = m.password or None
        if os.environ.get("SER_EDGE_MQTT_PASSWORD"):
            password = os.environ["SER_EDGE_MQTT_PASSWORD"]
        if m.password_file:
            try:
                password = Path(m.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"mqtt.password_file={m.password_file!r}: cannot read it ({e})") from None
        return dataclasses.replace(
            m,
            username=os.environ.get("SER_EDGE_MQTT_USERNAME") or m.username or None,
            password=password,
            tls=m.tls or any((m.tls_ca, m.tls_cert, m.tls_key)),
            tls_ca=m.tls_ca or None,
            tls_cert=m.tls_cert or None,
            tls_key=m.tls_key or None,
        )

    def validate(self) -> ListenConfig:
        """Raises ``ValueError`` naming the first bad setting (the nested tables check themselves)."""
        if self.sample_format not in ("s16le", "s32le", "f32le"):
            raise ValueError(f"source.format={self.sample_format!r}; choose from s16le, s32le, f32le")
        if self.channels < 1 or (self.rate is not None and self.rate < 1):
            raise ValueError("source.channels and source.rate must be >= 1")
        if not 0.005 <= self.chunk <= 1.0:
            raise ValueError(f"source.chunk={self.chunk!r} must be between 0.005 and 1 s")
        if self.mqtt.queue < 1:
            raise ValueError(f"mqtt.queue={self.mqtt.queue!r} must be >= 1")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log_level={self.log_level!r}; choose from debug, info, warning, error")
        if self.enrol is not None and not self.enrol > 0:
            raise ValueError(f"enrol={self.enrol!r} must be a positive number of seconds")
        if not self.watch_interval > 0:
            raise ValueError(f"watch.interval={self.watch_interval!r} must be > 0")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            f = getattr(self.mqtt, key)
            if f and not os.access(f, os.R_OK):
                raise ValueError(f"mqtt.{key}={f!r}: no such readable file")
        if self.mqtt.tls_key and not self.mqtt.tls_cert:
            raise ValueError("mqtt.tls_key needs mqtt.tls_cert (the device's certificate)")
        self.mqtt_output()  # the password file must be readable
        return self


def _default(name: str) -> Any:
    """The default of setting ``name`` (a ListenConfig field or ``"<table>.<key>"``)."""
    table, _, key = name.rpartition(".")
    cls = NESTED[table] if table else ListenConfig
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    return f.default


def _coerce(name: str, value: Any, where: str) -> Any:
    default = _default(name)
    if name == "labels":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{where}: must be a list of label names")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: must be true or false; got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool) or name == "rate":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}: must be an integer; got {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: must be a number; got {value!r}")
        return float(value)
    if name == "device" and isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be a string; got {value!r}")
    return value


def read_toml(path: Path) -> dict[str, Any]:
    """The settings in a TOML file as ``{field: value}``; ``ValueError`` for a bad file."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot read the configuration ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in items:
            table, k = (key, sub) if sub is not None else ("", key)
            name = setting_name(table, k)
            if name is None:
                raise ValueError(f"{path}: unknown setting {'.'.join(x for x in (table, k) if x)!r}")
            out[name] = _coerce(name, v, f"{path}: {'.'.join(x for x in (table, k) if x)}")
    return out


def load_config(path: str | None, overrides: dict[str, Any]) -> ListenConfig:
    """Defaults, then the TOML file (``path``, else :data:`DEFAULT_PATH` if present), then
    ``overrides`` (command-line values that were given, named as :func:`setting_name` names
    them). Raises ``ValueError``."""
    chosen = Path(path) if path else (DEFAULT_PATH if DEFAULT_PATH.is_file() else None)
    values: dict[str, Any] = read_toml(chosen) if chosen is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {setting_name(t, k) for t, k in settings()} | {"enrol"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    top = {k: v for k, v in values.items() if "." not in k}
    for table, cls in NESTED.items():
        top[table] = cls(**{k.partition(".")[2]: v for k, v in values.items() if k.startswith(table + ".")})
    cfg = ListenConfig(**top, config_path=os.fspath(chosen) if chosen else None)
    return cfg.validate()
