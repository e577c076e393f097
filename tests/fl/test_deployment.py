"""Flower's deployment runtime on 127.0.0.1: a SuperLink with TLS (certificates from
scripts/make-certs) and SuperNode authentication, two SuperNodes each with its own clips
(``--node-config``), one FedAvg round under secure aggregation (SecAgg+) through ``flwr run``;
the global model lands as an int8 bundle in the directory a running ``ser-edge listen`` watches,
which hot-swaps to it. Device 1's data is its own: the utterances that same daemon recorded
(``--record-dir``, ``[record] dir``), labelled with ``ser-edge fl label --label``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fl_support import BIN, EMODB, ROOT, Processes, free_port, speaker_csv

SR = 16000


class Listener:
    """``ser-edge listen`` reading raw PCM from stdin; JSON events (stdout) and logs (stderr)."""

    def __init__(self, procs: Processes, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ser_edge", "listen", "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=procs.env,
            cwd=procs.cwd,
            start_new_session=True,
        )
        self.events: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.threads = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.events), (self.proc.stderr, self.logs))
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream: Any, into: list[dict[str, Any]]) -> None:
        for line in stream:
            try:
                into.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def speak(self, y: np.ndarray) -> None:
        audio = np.concatenate([np.zeros(SR // 2, np.float32), y, np.zeros(SR, np.float32)])
        assert self.proc.stdin is not None
        self.proc.stdin.write((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        self.proc.stdin.flush()

    def say(self, y: np.ndarray, what: str) -> dict[str, Any]:
        """Speaks ``y`` and returns its utterance event."""
        n = len(self.utterances())
        self.speak(y)
        self.wait_for(lambda: len(self.utterances()) > n, message=f"the event of {what}")
        return self.utterances()[n]

    def utterances(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "utterance"]

    def wait_for(self, what: Any, timeout: float = 60.0, message: str = "") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = what()
            if got:
                return got
            assert self.proc.poll() is None, f"ser-edge listen exited ({self.proc.returncode}): {self.logs}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {message}: events={self.events} logs={self.logs}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(10)
        for t in self.threads:
            t.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                try:
                    f.close()
                except BrokenPipeError:
                    pass
        return rc


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, quiet_env: dict[str, str]) -> Any:
    from ser_edge.audio import load
    from ser_edge.bundle import load_bundle, save_bundle

    work = tmp_path_factory.mktemp("deploy")
    env = {**quiet_env, "FLWR_HOME": str(work / "flwr"), "UV_CACHE_DIR": str(work / "uv")}
    procs = Processes(env, work)
    certs = work / "certs"
    subprocess.run([str(ROOT / "scripts" / "make-certs"), str(certs), "3"], check=True, capture_output=True)
    link = free_port()
    (work / "flwr").mkdir()
    (work / "flwr" / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{link}"\n'
        f'root-certificates = "{certs / "ca.crt"}"\n'
    )
    recordings = work / "recordings"
    node_data = [recordings / "labels.csv", speaker_csv(work / "device-2.csv", ["08"])]
    eval_csv = speaker_csv(work / "server-eval.csv", ["09"])

    # the device's daemon, on a copy of the default model, watching its bundle directory
    src = load_bundle()
    live = save_bundle(
        work / "device-model",
        tflite=src.model_path.read_bytes(),
        name=src.name,
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    conf = work / "listen.toml"
    conf.write_text(
        f'model = "{live.path}"\n[source]\nkind = "-"\n[watch]\ninterval = 0.2\n[record]\ndir = "{recordings}"\n'
    )
    listener = Listener(procs, conf)
    speech, _ = load(str(EMODB / "wav" / "10a01Wa.wav"), sr=SR)

    # device 1 records its own utterances and its user labels them: 4 angry, then 4 sad ones
    labelled = []
    for label, names in (
        ("angry", ("03a01Wa", "03a05Wa", "03b01Wa", "03b09Wa")),
        ("sad", ("03a02Ta", "03a04Ta", "03b01Td", "03b02Tb")),
    ):
        for name in names:
            listener.say(load(str(EMODB / "wav" / f"{name}.wav"), sr=SR)[0], name)
        labelled.append(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ser_edge",
                    "fl",
                    "label",
                    str(recordings),
                    "--label",
                    label,
                    "--speaker",
                    "device-1",
                ],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=120,
            )
        )

    procs.start(
        "superlink",
        str(BIN / "flower-superlink"),
        "--ssl-ca-certfile",
        str(certs / "ca.crt"),
        "--ssl-certfile",
        str(certs / "server.crt"),
        "--ssl-keyfile",
        str(certs / "server.key"),
        "--enable-supernode-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(link),
        "--disable-runtime-dependency-installation",
        "--database",
        str(work / "state.db"),
    )
    registered = []
    end = time.monotonic() + 60
    for i in (1, 2):  # register the two devices' public keys (retries while the SuperLink starts)
        while True:
            r = subprocess.run(
                [
                    str(BIN / "flwr"),
                    "supernode",
                    "register",
                    str(certs / f"supernode-{i}.pub"),
                    "test",
                    "--format",
                    "json",
                ],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
            )
            answer = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip().startswith("{") else {}
            if answer.get("success") or time.monotonic() > end:
                break
            time.sleep(1)
        registered.append(answer)
    for i, data in enumerate(node_data, 1):
        procs.start(
            f"supernode-{i}",
            str(BIN / "flower-supernode"),
            "--root-certificates",
            str(certs / "ca.crt"),
            "--superlink",
            f"127.0.0.1:{link}",
            "--port",
            str(free_port()),
            "--auth-supernode-private-key",
            str(certs / f"supernode-{i}"),
            "--node-config",
            f'corpus="csv" data="{data}"',
        )
    # a third SuperNode whose key was never registered: must not take part
    procs.start(
        "supernode-unregistered",
        str(BIN / "flower-supernode"),
        "--root-certificates",
        str(certs / "ca.crt"),
        "--superlink",
        f"127.0.0.1:{link}",
        "--port",
        str(free_port()),
        "--auth-supernode-private-key",
        str(certs / "supernode-3"),
        "--max-retries",
        "3",
        "--max-wait-time",
        "20",
        "--node-config",
        f'corpus="csv" data="{node_data[0]}"',
    )

    before = listener.utterances()[0]["model_id"]

    overrides = (
        f"num-server-rounds=1 local-epochs=2 min-nodes=2 out='{live.path}' name='fl-test' "
        f"eval-corpus='csv' eval-data='{eval_csv}' secagg='on'"
    )
    t0 = time.monotonic()
    with open(work / "flwr-run.log", "wb") as log:  # a file, not a pipe: the stream is long
        run = subprocess.Popen(
            [
                str(BIN / "flwr"),
                "run",
                str(ROOT / "deploy" / "fl" / "app"),
                "test",
                "--stream",
                "--run-config",
                overrides,
            ],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while run.poll() is None and time.monotonic() - t0 < 300:
            procs.track()
            time.sleep(1)
        if run.poll() is None:
            run.kill()
        run.wait()
    out = (work / "flwr-run.log").read_text(errors="replace")
    procs.track()
    yield {
        "procs": procs,
        "work": work,
        "registered": registered,
        "run_rc": run.returncode,
        "run_out": out,
        "bundle_dir": live.path,
        "listener": listener,
        "before": before,
        "recordings": recordings,
        "labelled": labelled,
        "speech": speech,
    }
    listener.stop()
    procs.stop()


def test_one_round_over_tls_with_two_authenticated_supernodes(federation: Any) -> None:
    from ser_edge.bundle import load_bundle
    from ser_edge.runtime import Classifier

    assert all(r.get("success") for r in federation["registered"]), federation["registered"]
    log = federation["procs"].log("superlink")
    assert "https://127.0.0.1" in log, log[-2000:]  # the SuperLink served TLS only
    assert federation["run_rc"] == 0, federation["run_out"][-4000:]
    out = federation["run_out"]
    # secure aggregation (SecAgg+) over TLS: the server only unmasked the sum of the two updates
    assert "Secure aggregation completed" in out and "received 2 results and 0 failures" in out, out[-4000:]
    b = load_bundle(federation["bundle_dir"])
    assert b.name == "fl-test" and b.quantization == "int8"
    assert b.training["federated"] is True and b.training["clients"] == 2 and b.training["secagg"] == "on"
    assert 0.0 <= b.metrics["uar"] <= 1.0 and 0.0 <= b.metrics["uar_int8"] <= 1.0
    probs = Classifier(b).probabilities(np.zeros((2, *b.input_shape), np.float32))
    assert probs.shape == (2, len(b.labels)) and np.allclose(probs.sum(1), 1.0, atol=0.05)


def test_the_device_trains_on_its_own_labelled_recordings(federation: Any) -> None:
    import csv

    for r in federation["labelled"]:
        assert r.returncode == 0, r.stderr
    recordings = federation["recordings"]
    with open(recordings / "labels.csv", newline="") as f:
        rows = [r for r in csv.reader(f)][1:]
    wavs = sorted(recordings.glob("*.wav"))
    assert len(rows) == len(wavs) >= 8  # every recording labelled once, none twice
    assert {str((recordings / p).resolve()) for p, _, _ in rows} == {str(w.resolve()) for w in wavs}
    assert [label for _, label, _ in rows].count("angry") >= 4 and [label for _, label, _ in rows][-1] == "sad"
    assert {speaker for _, _, speaker in rows} == {"device-1"}
    assert "SuperNode ID" in federation["procs"].log("supernode-1")  # it joined; the round had 2 results


def test_the_unregistered_supernode_is_refused(federation: Any) -> None:
    log = federation["procs"].log("supernode-unregistered")
    assert "SuperNode ID" not in log, log[-2000:]  # it never received an id from the SuperLink
    ok = federation["procs"].log("supernode-1")
    assert "SuperNode ID" in ok, ok[-2000:]


def test_the_running_daemon_switches_to_the_federated_model(federation: Any) -> None:
    from ser_edge.bundle import load_bundle

    listener, new = federation["listener"], load_bundle(federation["bundle_dir"]).model_id
    assert new != federation["before"]
    listener.wait_for(
        lambda: [x for x in listener.logs if x.get("msg") == "model loaded" and x.get("model_id") == new],
        message="the hot swap",
    )
    assert listener.say(federation["speech"], "the next utterance")["model_id"] == new
    assert listener.proc.pid and listener.proc.poll() is None  # the same process: no restart


def test_every_started_process_is_stopped(federation: Any) -> None:
    procs = federation["procs"]
    assert len(procs.seen) >= 4  # SuperLink, two SuperNodes, their SuperExec/app processes
    assert federation["listener"].stop() == 0
    assert procs.stop() == set()
