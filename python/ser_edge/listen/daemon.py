"""The ``ser-edge listen`` loop: read -> gate -> windows -> inference -> smoothing -> outputs.

Reliability: SIGTERM/SIGINT end the current utterance, flush the outputs and exit 0 (within
about a second); SIGHUP reloads the configuration file and the model; a changed model file is
validated and hot-swapped (a bad one is refused, the running model stays); a missing or lost
device is retried with exponential backoff (0.5 s to 30 s) and listening resumes; overflows
are counted and reported.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ser_edge.listen.config import ListenConfig, load_config
from ser_edge.listen.outputs import FileOutput, MqttOutput, Outputs, StdoutOutput
from ser_edge.listen.sources import SourceError, open_source
from ser_edge.listen.state import DeviceState
from ser_edge.listen.utterances import Event, Utterances

log = logging.getLogger("ser_edge.listen")

BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
CLOSE_TIMEOUT = 1.0


class JsonFormatter(logging.Formatter):
    """Structured logs: one JSON object per line (``time``, ``level``, ``msg`` and fields)."""

    def format(self, record: logging.LogRecord) -> str:
        d = {"time": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
             "level": record.levelname.lower(), "msg": record.getMessage()}
        d.update(getattr(record, "fields", {}))
        return json.dumps(d)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def _info(msg: str, **fields: Any) -> None:
    log.info(msg, extra={"fields": fields})


class Recorder:
    """Writes each utterance's audio (16-bit WAV) and its event (JSON) into ``directory``; used
    only when ``--record-dir`` is given."""

    def __init__(self, directory: str, sr: int) -> None:
        self.dir, self.sr = Path(directory), sr
        self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, audio: np.ndarray, event: Event) -> None:
        import soundfile as sf

        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
        base = self.dir / f"{stamp}-{event['label']}"
        sf.write(f"{base}.wav", np.clip(audio, -1.0, 1.0), self.sr, subtype="PCM_16")
        Path(f"{base}.json").write_text(json.dumps(event) + "\n", encoding="utf-8")
        event["recording"] = f"{base}.wav"


def _model_files(model: Optional[str]) -> list[Path]:
    from ser_edge.bundle import META_FILE, MODEL_FILE, default_bundle_path

    p = Path(model) if model else default_bundle_path()
    d = p if p.is_dir() or p.suffix not in (".json", ".tflite") else p.parent
    return [d / MODEL_FILE, d / META_FILE]


def _stamp(files: list[Path]) -> tuple[Any, ...]:
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def load_recognizer(config: ListenConfig) -> Any:
    """Loads, validates and test-runs the configured bundle. Raises ``ValueError`` (``BundleError``)
    or ``RuntimeError``."""
    from ser_edge.runtime import Recognizer

    r = Recognizer(config.model, adapt=config.adapt, allowed=config.labels)
    sr = r.bundle.input.sr
    probe = (np.random.default_rng(0).standard_normal(sr // 2) * 0.01).astype(np.float32)
    r.predict(probe)  # the model must run before it replaces a working one
    if config.adapt:
        r.adapter.reset()
    return r


class Daemon:
    def __init__(self, config: ListenConfig, overrides: dict[str, Any]) -> None:
        self.config, self.overrides = config, overrides
        self._stop = False
        self._reload = False
        self.recognizer: Any = None
        self.outputs: Optional[Outputs] = None
        self.pipeline: Optional[Utterances] = None
        self.source: Any = None
        self.events = 0
        self.overflows = 0
        self.state = DeviceState(config.state_dir, config.enrol)

    # -- building blocks ---------------------------------------------------------------------------
    def _outputs(self, config: ListenConfig) -> Outputs:
        outs: list[Any] = []
        if config.stdout:
            outs.append(StdoutOutput())
        if config.file:
            outs.append(FileOutput(config.file, config.file_max_bytes, config.file_backups))
        mqtt = config.mqtt()
        if mqtt is not None:
            outs.append(MqttOutput(mqtt, model_id=self.recognizer.model_id if self.recognizer else ""))
        return Outputs(outs)

    def _pipeline(self) -> Utterances:
        c = self.config
        recorder = Recorder(c.record_dir, self.recognizer.bundle.input.sr) if c.record_dir else None
        return Utterances(self.recognizer, c.gate(), c.windows(), on_utterance=recorder)

    def _source(self) -> Any:
        c = self.config
        return open_source(c.source, self.recognizer.bundle.input.sr, device=c.device, realtime=c.realtime,
                           rate=c.rate, channels=c.channels, sample_format=c.sample_format, chunk=c.chunk)

    def _emit(self, events: list[Event]) -> None:
        assert self.outputs is not None
        for e in events:
            self.events += 1
            self.outputs.emit(e)
        if self.state.after(events, self.recognizer):
            self._stop = True  # the enrolment has heard enough

    # -- model and configuration changes -----------------------------------------------------------
    def _swap_model(self, reason: str) -> None:
        old = self.recognizer
        try:
            new = load_recognizer(self.config)
        except (ValueError, RuntimeError) as e:
            log.error("model refused; keeping the running model",
                      extra={"fields": {"reason": reason, "error": str(e), "model_id": old.model_id}})
            return
        if new.model_id == old.model_id and reason == "file changed":
            return
        assert self.pipeline is not None
        if new.bundle.input.sr != old.bundle.input.sr:
            self._emit(self.pipeline.flush())
            self.recognizer = new
            self.pipeline = self._pipeline()
            self._close_source()
        else:
            self.state.carry(old, new)
            self.recognizer = new
            self.pipeline.set_recognizer(new)
        _info("model loaded", reason=reason, model_id=new.model_id, previous=old.model_id)

    def _reload_config(self) -> None:
        try:
            new = load_config(self.config.config_path, self.overrides)
        except ValueError as e:
            log.error("configuration reload failed; keeping the running configuration",
                      extra={"fields": {"error": str(e)}})
            return
        old, self.config = self.config, new
        setup_logging(new.log_level)
        assert self.pipeline is not None and self.outputs is not None
        self._emit(self.pipeline.flush())
        self._swap_model("SIGHUP")
        self.pipeline = self._pipeline()
        source_keys = ("source", "device", "realtime", "rate", "channels", "sample_format", "chunk")
        if any(getattr(old, k) != getattr(new, k) for k in source_keys):
            self._close_source()
        self.outputs.close(CLOSE_TIMEOUT)
        self.outputs = self._outputs(new)
        _info("configuration reloaded", path=new.config_path)

    def _close_source(self) -> None:
        if self.source is not None:
            self.overflows += int(self.source.overflows)
            self.source.close()
            self.source = None

    # -- signals and the loop ----------------------------------------------------------------------
    def _on_stop(self, signum: int, frame: Any) -> None:
        self._stop = True

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._reload = True

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop and not self._reload and time.monotonic() < end:
            time.sleep(min(0.05, end - time.monotonic()))

    def run(self) -> int:
        t_start = time.monotonic()
        try:
            self.recognizer = load_recognizer(self.config)
        except (ValueError, RuntimeError) as e:
            print(f"ser-edge listen: {e}", file=sys.stderr)
            return 2
        if self.config.enrol is not None and not self.recognizer.adapter.adapt:
            print("ser-edge listen: --enrol needs adapt = true and a model with speaker normalisation", file=sys.stderr)
            return 2
        self.state.restore(self.recognizer)
        try:
            self.outputs = self._outputs(self.config)
        except (ValueError, OSError) as e:
            print(f"ser-edge listen: output: {e}", file=sys.stderr)
            return 2
        self.pipeline = self._pipeline()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        watched = _model_files(self.config.model)
        stamp, next_check = _stamp(watched), time.monotonic() + self.config.watch_interval
        backoff = BACKOFF_MIN
        code = reported = 0
        _info("listening", model_id=self.recognizer.model_id, source=self.config.source,
              startup_s=round(time.monotonic() - t_start, 3), pid=os.getpid())
        while not self._stop:
            if self._reload:
                self._reload = False
                self._reload_config()
                watched = _model_files(self.config.model)
                stamp = _stamp(watched)
            if self.config.watch and time.monotonic() >= next_check:
                next_check = time.monotonic() + self.config.watch_interval
                now = _stamp(watched)
                if now != stamp:
                    stamp = now
                    self._swap_model("file changed")
            if self.source is None:
                try:
                    self.source = self._source()
                    self.source.open()
                    reported = 0
                    _info("source open", source=self.config.source,
                          device=getattr(self.source, "device_name", None), rate=getattr(self.source, "rate", None))
                    backoff = BACKOFF_MIN
                except SourceError as e:
                    self.source = None
                    log.warning("source unavailable; retrying",
                                extra={"fields": {"error": str(e), "retry_s": backoff}})
                    self._sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                except ValueError as e:  # a bad file or setting: retrying cannot help
                    log.error("source failed", extra={"fields": {"error": str(e)}})
                    print(f"ser-edge listen: {e}", file=sys.stderr)
                    self.source = None
                    code = 1
                    break
            try:
                chunk = self.source.read(0.1)
            except EOFError:
                break
            except SourceError as e:
                log.warning("source lost; retrying", extra={"fields": {"error": str(e), "retry_s": backoff}})
                self._emit(self.pipeline.flush())
                self._close_source()
                self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if chunk is not None and len(chunk):
                captured = time.monotonic() if getattr(self.source, "live", True) else None
                self._emit(self.pipeline.push(chunk, captured))
            if self.source is not None and self.source.overflows > reported:
                reported = self.source.overflows
                log.warning("input overflow", extra={"fields": {"overflows": self.overflows + reported}})
        self._emit(self.pipeline.flush())
        self._close_source()
        self.state.save(self.recognizer)
        if self.config.enrol is not None:
            summary = self.state.summary(self.recognizer)
            print(json.dumps(summary), flush=True)
            code = code or (0 if summary["complete"] else 1)
        self.outputs.close(CLOSE_TIMEOUT)
        p = self.pipeline
        _info("stopped", events=self.events, overflows=self.overflows, dropped=self.outputs.dropped,
              inferences=p.inferences, mean_inference_ms=round(1000 * p.inference_s / max(p.inferences, 1), 2),
              uptime_s=round(time.monotonic() - t_start, 3))
        return code


def run(config: ListenConfig, overrides: dict[str, Any]) -> int:
    setup_logging(config.log_level)
    return Daemon(config, overrides).run()
