"""Sub-commands ``predict``, ``listen`` and ``devices`` (argparse only at import time)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _listen(args: argparse.Namespace) -> int:
    from ser_edge.listen.config import load_config
    from ser_edge.listen.daemon import run

    overrides: dict[str, Any] = {
        "model": args.model,
        "source": args.source,
        "device": args.device,
        "realtime": args.realtime or None,
        "rate": args.rate,
        "channels": args.channels,
        "sample_format": args.format,
        "windows.events": args.window_events or None,
        "stdout": False if args.no_stdout else None,
        "file": args.out_file,
        "mqtt.host": args.mqtt_host,
        "mqtt.port": args.mqtt_port,
        "mqtt.node_id": args.node_id,
        "record_dir": args.record_dir,
        "log_level": args.log_level,
        "labels": args.labels.split(",") if args.labels else None,
        "windows.window": args.window,
        "windows.hop": args.hop,
        "gate.threshold_db": args.threshold_db,
        "gate.hangover": args.hangover,
        "state_dir": args.state_dir,
        "enrol": args.enrol,
        "gate.speech": False if args.no_speech_gate else None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        config = load_config(args.config, overrides)
    except ValueError as e:
        print(f"ser-edge listen: {e}", file=sys.stderr)
        return 2
    return run(config, overrides)


def _devices(args: argparse.Namespace) -> int:
    from ser_edge.listen.sources import SourceError, list_devices

    try:
        devices = list_devices()
    except SourceError as e:
        print(f"ser-edge devices: {e}", file=sys.stderr)
        return 1
    if args.json:
        for d in devices:
            print(json.dumps(d))
    elif not devices:
        print("no input devices found", file=sys.stderr)
    else:
        for d in devices:
            star = "*" if d["default"] else " "
            print(f"{star}{d['index']:>3}  {d['name']}  ({d['channels']} ch, {d['rate']} Hz)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ser_edge.predict import run

    return run(args.files, model=args.model, as_json=args.json, segments=args.segments)


def add_parsers(sub: Any) -> None:
    """Adds ``predict``, ``listen`` and ``devices`` to the ``ser-edge`` sub-parsers."""
    p = sub.add_parser("predict", help="emotion of speech files (one result per file)")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV/FLAC/OGG, any rate, bit depth, channels")
    p.add_argument("--model", help="model bundle directory, or a packaged model: default, room (default: default)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--segments", action="store_true", help="also one result per utterance in each file")
    p.set_defaults(run=_predict)

    li = sub.add_parser(
        "listen",
        help="always-on emotion recognition from a microphone, file or stdin",
        description="Reads audio, finds utterances and prints one JSON event per utterance. "
        "Settings: defaults < TOML file (--config, else /etc/ser-edge/config.toml) "
        "< these options. Audio is written only with --record-dir.",
    )
    li.add_argument("--config", help="TOML configuration file")
    li.add_argument("--model", help="model bundle directory, or a packaged model: default, room (default: default)")
    li.add_argument("--source", help="'mic' (default), a WAV/FLAC file, or '-' for raw PCM on stdin")
    li.add_argument("--device", help="microphone: device index or part of its name (see `ser-edge devices`)")
    li.add_argument("--realtime", action="store_true", help="pace a file source like a microphone")
    li.add_argument("--rate", type=int, help="stdin: sample rate of the raw PCM (default: the model's)")
    li.add_argument("--channels", type=int, help="stdin: interleaved channels (default 1)")
    li.add_argument("--format", choices=("s16le", "s32le", "f32le"), help="stdin: sample format (default s16le)")
    li.add_argument("--labels", help="comma-separated labels to choose from (default: all the model's)")
    li.add_argument("--window", type=float, help="inference window in seconds (default 4)")
    li.add_argument("--hop", type=float, help="seconds between windows within an utterance (default 2)")
    li.add_argument("--threshold-db", type=float, help="voice gate: minimum level in dBFS (default -50)")
    li.add_argument("--hangover", type=float, help="voice gate: silence that ends an utterance, s (default 0.2)")
    li.add_argument(
        "--no-speech-gate",
        action="store_true",
        help="energy gate only: also emit events for sounds that are not speech",
    )
    li.add_argument("--state-dir", help="keep the user's adapter state here (default ~/.local/state/ser-edge)")
    li.add_argument(
        "--enrol",
        type=float,
        metavar="SECONDS",
        help="enrolment: learn this much of the user's calm speech, save it, print a summary, exit",
    )
    li.add_argument("--window-events", action="store_true", help="also emit one event per window")
    li.add_argument("--no-stdout", action="store_true", help="do not print events on stdout")
    li.add_argument("--out-file", help="append events to this rotating JSON-lines file")
    li.add_argument("--mqtt-host", help="publish events to this MQTT broker (Home Assistant discovery)")
    li.add_argument("--mqtt-port", type=int, help="MQTT port (default 1883)")
    li.add_argument("--node-id", help="MQTT/Home Assistant node id (default: the host name)")
    li.add_argument("--record-dir", help="save each utterance's audio and event here (off unless given)")
    li.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    li.set_defaults(run=_listen)

    d = sub.add_parser("devices", help="list audio input devices")
    d.add_argument("--json", action="store_true", help="one JSON object per device")
    d.set_defaults(run=_devices)
