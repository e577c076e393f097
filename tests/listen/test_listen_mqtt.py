"""The MQTT output against a real mosquitto on 127.0.0.1: Home Assistant discovery,
availability and last will, retained state, and the bounded queue while the broker is down."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from _listen_support import Subscriber, utterance, wait

from ser_edge.bundle import load_bundle


def test_discovery_state_availability_and_last_will(speech: dict, bundle_dir: Path, broker: Any, daemons: Any) -> None:
    broker.start()
    sub = Subscriber(broker.port)
    try:
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
            "kitchen",
            stdin=True,
        )
        wait(lambda: sub.on("kitchen/availability"))
        assert sub.on("kitchen/availability")[-1][1] == "online"
        emotion = json.loads(wait(lambda: sub.on("homeassistant/sensor/kitchen/emotion/config"))[-1][1])
        assert emotion["state_topic"] == "ser-edge/kitchen/state"
        assert emotion["availability_topic"] == "ser-edge/kitchen/availability"
        assert emotion["value_template"] == "{{ value_json.label }}" and emotion["unique_id"]
        assert wait(lambda: sub.on("homeassistant/sensor/kitchen/confidence/config"))
        d.write(utterance(speech["one"]))
        state = json.loads(wait(lambda: sub.on("kitchen/state"))[-1][1])
        assert state["label"] in load_bundle(bundle_dir).labels and state["type"] == "utterance"
        assert state == d.wait_for(lambda: d.utterances(), message="stdout event")[0]
        d.proc.kill()  # no clean disconnect: the broker publishes the last will
        wait(lambda: sub.on("kitchen/availability")[-1][1] == "offline")
    finally:
        sub.close()

    late = Subscriber(broker.port)  # retained: a new subscriber gets discovery, state and availability
    try:
        wait(
            lambda: (
                late.on("kitchen/state")
                and late.on("kitchen/availability")
                and late.on("sensor/kitchen/emotion/config")
            )
        )
        assert all(m[2] for m in late.messages)
        assert json.loads(late.on("kitchen/state")[-1][1]) == state
        assert late.on("kitchen/availability")[-1][1] == "offline"
    finally:
        late.close()


def test_events_wait_in_a_bounded_queue_while_the_broker_is_down(
    speech: dict, bundle_dir: Path, broker: Any, daemons: Any, tmp_path: Path
) -> None:
    broker.start()
    sub = Subscriber(broker.port, persistent=True)  # its session outlives the broker's restart
    try:
        wait(lambda: sub.client.is_connected())
        time.sleep(0.3)
        broker.stop()
        conf = tmp_path / "c.toml"
        conf.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nnode_id = "hall"\nqueue = 3\n')
        d = daemons("--config", str(conf), "--source", "-", "--model", str(bundle_dir), stdin=True)
        y = utterance(speech["two"])
        for _ in range(4):  # 4 utterances = 8 messages (event + state each) for a queue of 3
            d.write(y)
        d.wait_for(lambda: len(d.utterances()) == 4, message="4 events on stdout while the broker is down")
        assert not sub.messages
        broker.start()
        wait(lambda: len(sub.on("hall/state")) == 2 and sub.on("hall/event"), timeout=40)
        time.sleep(0.5)
        stdout = d.utterances()
        # the 3 newest messages arrive, in order: state 3, event 4, state 4; the 5 oldest were dropped
        assert [json.loads(m[1]) for m in sub.on("hall/event")] == [stdout[3]]
        assert [json.loads(m[1]) for m in sub.on("hall/state")] == [stdout[2], stdout[3]]
        assert d.stop() == 0
        assert d.log("stopped")[0]["dropped"] == 5
        wait(lambda: sub.on("hall/availability") and sub.on("hall/availability")[-1][1] == "offline")
    finally:
        sub.close()
