"""Who can read what: recordings and event files 0600 in 0700 folders whatever the umask; MQTT
never publishes a recording's path; MQTT over TLS (a throw-away CA, a real mosquitto TLS
listener on 127.0.0.1) with credentials from a file or the environment."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _listen_support import free_port, listen_cmd, utterance, wait


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_recordings_and_event_files_are_0600_in_0700_folders(
    speech: dict, bundle_dir: Path, tmp_path: Path, umask: int
) -> None:
    rec, logs = tmp_path / "rec" / "a" / "b", tmp_path / "logs" / "x"
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o755)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[output]\nfile = "{logs}/events.jsonl"\nfile_max_bytes = 600\n')
    for record_dir in (rec, existing):
        r = subprocess.run(
            listen_cmd(
                "--config",
                str(conf),
                "--source",
                str(speech["conversation"]),
                "--model",
                str(bundle_dir),
                "--record-dir",
                str(record_dir),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            umask=umask,
        )
        assert r.returncode == 0, r.stderr
    wavs = sorted(rec.glob("*.wav")) + sorted(existing.glob("*.wav"))
    assert len(wavs) == 4 and len(list(rec.glob("*.json"))) == 2
    for d in (tmp_path / "rec", tmp_path / "rec" / "a", rec, existing, tmp_path / "logs", logs):
        assert _mode(d) == 0o700, d
    files = list(rec.iterdir()) + list(existing.iterdir()) + list(logs.iterdir())
    assert {p.name for p in logs.iterdir()} >= {"events.jsonl", "events.jsonl.1"}  # rotated too
    for f in files:
        assert _mode(f) == 0o600, f


def test_mqtt_events_never_carry_the_recording_path(
    speech: dict, bundle_dir: Path, tmp_path: Path, broker: Any, daemons: Any
) -> None:
    from _listen_support import Subscriber

    broker.start()
    sub = Subscriber(broker.port)
    try:
        rec = tmp_path / "rec"
        d = daemons(
            "--source",
            "-",
            "--model",
            str(bundle_dir),
            "--mqtt-host",
            "127.0.0.1",
            "--mqtt-port",
            str(broker.port),
            "--node-id",
            "den",
            "--record-dir",
            str(rec),
            stdin=True,
        )
        d.write(utterance(speech["one"]))
        local = d.wait_for(lambda: d.utterances(), message="event")[0]
        assert Path(local["recording"]).is_file()  # stdout (local) has it
        state = json.loads(wait(lambda: sub.on("den/state"))[-1][1])
        event = json.loads(wait(lambda: sub.on("den/event"))[-1][1])
        assert "recording" not in state and "recording" not in event
        assert state == {k: v for k, v in local.items() if k != "recording"}
        assert not [m for m in sub.messages if str(rec) in m[1]]
        assert d.stop() == 0
    finally:
        sub.close()


# -- TLS ---------------------------------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        cwd=d,
    )


def _issue(d: Path, ca: str, name: str, ext: str) -> None:
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=d,
    )
    (d / f"{name}.ext").write_text(ext)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=d,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA; a broker certificate for 127.0.0.1, one for another host name only; a
    device (client) certificate; and a second, unrelated CA."""
    assert shutil.which("openssl") and shutil.which("mosquitto_passwd"), "needs openssl and mosquitto"
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _issue(d, "ca", "broker", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _issue(d, "ca", "elsewhere", "subjectAltName=DNS:broker.example\nextendedKeyUsage=serverAuth\n")
    _issue(d, "ca", "device", "extendedKeyUsage=clientAuth\n")
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(d / "passwd"), "device", "s3cret pass"], check=True, capture_output=True
    )
    return d


class TlsBroker:
    """mosquitto with only a TLS listener on 127.0.0.1: client certificate and password required."""

    def __init__(self, pki: Path, workdir: Path, server: str = "broker") -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        # "user root": as root, mosquitto would read the files as the mosquitto user, who cannot
        # enter pytest's 0700 temporary folders (ignored when the tests do not run as root)
        conf.write_text(
            f"user root\nper_listener_settings true\nlistener {self.port} 127.0.0.1\ncafile {pki}/ca.crt\n"
            f"certfile {pki}/{server}.crt\nkeyfile {pki}/{server}.key\nrequire_certificate true\n"
            f"allow_anonymous false\npassword_file {pki}/passwd\n"
        )
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait(lambda: self._up(), timeout=10)

    def _up(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def subscriber(self, pki: Path) -> Any:
        import paho.mqtt.client as mqtt

        messages: list[tuple[str, str]] = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tls-sub-{self.port}")
        c.tls_set(
            ca_certs=str(pki / "ca.crt"),
            certfile=str(pki / "device.crt"),
            keyfile=str(pki / "device.key"),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        c.username_pw_set("device", "s3cret pass")
        c.on_connect = lambda cl, u, f, r, p=None: cl.subscribe("#", qos=1)
        c.on_message = lambda cl, u, m: messages.append((m.topic, m.payload.decode()))
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        c.messages = messages  # type: ignore[attr-defined]
        return c

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def tls_broker(pki: Path, tmp_path: Path) -> Any:
    brokers: list[TlsBroker] = []

    def start(server: str = "broker") -> TlsBroker:
        b = TlsBroker(pki, tmp_path, server)
        brokers.append(b)
        return b

    yield start
    for b in brokers:
        b.stop()


def _tls_conf(tmp_path: Path, pki: Path, port: int, *, ca: str = "ca", extra: str = "") -> Path:
    conf = tmp_path / "listen.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nnode_id = "hall"\nusername = "device"\n'
        f'tls_ca = "{pki}/{ca}.crt"\ntls_cert = "{pki}/device.crt"\ntls_key = "{pki}/device.key"\n'
        f"{extra}"
    )
    return conf


@pytest.mark.parametrize("credential", ["password_file", "environment"])
def test_mqtt_over_tls_with_a_device_certificate_and_a_password(
    speech: dict, bundle_dir: Path, tmp_path: Path, pki: Path, tls_broker: Any, daemons: Any, credential: str
) -> None:
    broker = tls_broker()
    sub = broker.subscriber(pki)
    try:
        env: dict[str, str] = {}
        if credential == "password_file":
            secret = tmp_path / "mqtt-password"
            secret.write_text("s3cret pass\n")
            os.chmod(secret, 0o600)
            extra = f'password_file = "{secret}"\npassword = "wrong"\n'
        else:
            env, extra = {"SER_EDGE_MQTT_PASSWORD": "s3cret pass"}, 'password = "wrong"\n'
        conf = _tls_conf(tmp_path, pki, broker.port, extra=extra)
        d = daemons("--config", str(conf), "--source", "-", "--model", str(bundle_dir), stdin=True, env=env)
        wait(lambda: [m for m in sub.messages if m[0] == "ser-edge/hall/availability" and m[1] == "online"])
        d.write(utterance(speech["two"]))
        state = json.loads(wait(lambda: [m for m in sub.messages if m[0] == "ser-edge/hall/state"])[-1][1])
        assert state == d.wait_for(lambda: d.utterances(), message="stdout event")[0]
        assert d.stop() == 0
        assert "s3cret" not in json.dumps(d.logs)
    finally:
        sub.disconnect()
        sub.loop_stop()


@pytest.mark.parametrize("fault", ["unknown CA", "wrong password", "host name mismatch"])
def test_mqtt_tls_refusals_keep_the_daemon_listening(
    speech: dict, bundle_dir: Path, tmp_path: Path, pki: Path, tls_broker: Any, daemons: Any, fault: str
) -> None:
    broker = tls_broker("elsewhere" if fault == "host name mismatch" else "broker")
    sub = broker.subscriber(pki) if fault != "host name mismatch" else None
    try:
        ca = "other-ca" if fault == "unknown CA" else "ca"
        password = "wrong" if fault == "wrong password" else "s3cret pass"
        conf = _tls_conf(tmp_path, pki, broker.port, ca=ca, extra=f'password = "{password}"\n')
        d = daemons("--config", str(conf), "--source", "-", "--model", str(bundle_dir), stdin=True)
        msg = "mqtt connect refused" if fault == "wrong password" else "mqtt connect failed"
        d.wait_for(lambda: d.log(msg), message=msg)
        d.write(utterance(speech["one"]))
        d.wait_for(lambda: d.utterances(), message="stdout event")  # still listening
        time.sleep(0.5)
        if sub is not None:
            assert not [m for m in sub.messages if "/hall/" in m[0]]
        assert d.stop() == 0
        assert d.raw_err == [], d.raw_err
    finally:
        if sub is not None:
            sub.disconnect()
            sub.loop_stop()

    if fault == "host name mismatch":  # tls_insecure skips only the host name check
        conf = _tls_conf(tmp_path, pki, broker.port, extra='password = "s3cret pass"\ntls_insecure = true\n')
        d = daemons("--config", str(conf), "--source", "-", "--model", str(bundle_dir), stdin=True)
        d.wait_for(lambda: [x for x in d.logs if x.get("msg") == "mqtt connected"], message="insecure connect")
        assert d.stop() == 0


def test_bad_tls_and_password_settings_are_clear_errors(tmp_path: Path, bundle_dir: Path) -> None:
    for extra, name in (
        ('tls_ca = "/nonexistent/ca.crt"', "mqtt.tls_ca='/nonexistent/ca.crt': no such readable file"),
        (f'password_file = "{tmp_path}/missing"', "mqtt.password_file="),
        ('tls_key = "/etc/hostname"', "mqtt.tls_key needs mqtt.tls_cert"),
    ):
        conf = tmp_path / "c.toml"
        conf.write_text(f'[mqtt]\nhost = "127.0.0.1"\n{extra}\n')
        r = subprocess.run(
            listen_cmd("--config", str(conf), "--model", str(bundle_dir)), capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 2 and name in r.stderr, (extra, r.stderr)
