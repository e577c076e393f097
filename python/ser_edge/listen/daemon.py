"""The ``ser-edge listen`` loop: read -> gate -> windows -> inference -> smoothing -> outputs.

Reliability: SIGTERM/SIGINT end the current utterance, flush the outputs and exit 0 (within
about a second); SIGHUP reloads the configuration file and the model without cutting the open
utterance or restarting the stream clock (new gate/window settings apply from the next
utterance); a change of either bundle file is checked in a child process on a private
snapshot (:mod:`.swap`) and then hot-swapped (a bad one is refused, the running model stays); a
model at another rate continues the stream where it was; a missing or lost device is retried
with exponential backoff (0.5 s to 30 s) and listening resumes; overflows and invalid input
samples are counted and reported.
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
from typing import TYPE_CHECKING, Any

import numpy as np

from ser_edge.listen.config import ListenConfig, load_config
from ser_edge.listen.outputs import FileOutput, MqttOutput, Outputs, StdoutOutput
from ser_edge.listen.private import open_private, private_dir
from ser_edge.listen.sources import Source, SourceError, open_source
from ser_edge.listen.state import DeviceState
from ser_edge.listen.swap import (
    Probe,
    Verdict,
    bundle_dir,
    check_now,
    keep_last_good,
    last_good_dir,
    last_good_fingerprint,
    load_fingerprint,
    load_verified,
    trial_run,
)
from ser_edge.pipeline.utterances import Event, Utterances

if TYPE_CHECKING:
    from ser_edge.runtime import Recognizer

log = logging.getLogger("ser_edge.listen")

BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
CLOSE_TIMEOUT = 1.0
INVALID_LOG_EVERY = 10.0  # s between "invalid samples" log lines


class JsonFormatter(logging.Formatter):
    """Structured logs: one JSON object per line (``time``, ``level``, ``msg`` and fields)."""

    def format(self, record: logging.LogRecord) -> str:
        d = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
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
    only when ``--record-dir`` is given. The folder is 0700 and every file 0600, whatever the
    umask (:mod:`.private`). The event gets the WAV's path as ``recording`` (stdout and the
    event file only; MQTT never publishes it)."""

    def __init__(self, directory: str, sr: int) -> None:
        self.dir, self.sr = private_dir(directory, own=True), sr

    def __call__(self, audio: np.ndarray, event: Event) -> None:
        import soundfile as sf

        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S_%fZ")
        base = self.dir / f"{stamp}-{event['label']}"
        wav = f"{base}.wav"
        open_private(wav, "xb").close()  # 0600 before it holds audio; libsndfile then writes to the
        try:  # path (a file object would need a cffi callback: no W+X memory under systemd)
            sf.write(wav, np.clip(audio, -1.0, 1.0), self.sr, subtype="PCM_16", format="WAV")
        except Exception:
            Path(wav).unlink(missing_ok=True)
            raise
        with open_private(f"{base}.json", "x") as f:
            f.write(json.dumps(event) + "\n")
        event["recording"] = f"{base}.wav"


def _model_files(model: str | None) -> list[Path]:
    from ser_edge.bundle import META_FILE, MODEL_FILE

    d = bundle_dir(model)
    return [d / MODEL_FILE, d / META_FILE]


def _stamp(files: list[Path]) -> tuple[Any, ...]:
    out: list[tuple[int, int, int] | None] = []
    for f in files:
        try:
            st = f.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def load_recognizer(config: ListenConfig) -> Recognizer:
    """Loads, validates and test-runs the configured bundle. Raises ``ValueError`` (``BundleError``)
    or ``RuntimeError``."""
    from ser_edge.runtime import Recognizer

    return trial_run(Recognizer(config.model, adapt=config.adapt, allowed=config.labels))


class Daemon:
    def __init__(self, config: ListenConfig, overrides: dict[str, Any]) -> None:
        self.config, self.overrides = config, overrides
        self._stop = False
        self._reload = False
        self.recognizer: Recognizer  # set by run()
        self.fingerprint: str | None = None  # of the running bundle's two files
        self._labels: list[str] | None = None
        self.probe: Probe | None = None
        self.outputs: Outputs | None = None
        self.pipeline: Utterances | None = None
        self.source: Source | None = None
        self.events = 0
        self.overflows = 0
        self.invalid = {"nonfinite": 0, "clipped": 0}  # of closed sources
        self._invalid_logged = (0, 0)
        self._invalid_next = 0.0
        self.state = DeviceState(config.state_dir, config.enrol)

    # -- building blocks ---------------------------------------------------------------------------
    def _outputs(self, config: ListenConfig) -> Outputs:
        outs: list[Any] = []
        if config.stdout:
            outs.append(StdoutOutput())
        if config.file:
            outs.append(FileOutput(config.file, config.file_max_bytes, config.file_backups))
        mqtt = config.mqtt_output()
        if mqtt is not None:
            outs.append(MqttOutput(mqtt, model_id=self.recognizer.model_id))
        return Outputs(outs)

    def _recorder(self) -> Recorder | None:
        c = self.config
        return Recorder(c.record_dir, self.recognizer.bundle.input.sr) if c.record_dir else None

    def _pipeline(self, offset: float = 0.0) -> Utterances:
        c = self.config
        return Utterances(self.recognizer, c.gate, c.windows, on_utterance=self._recorder(), offset=offset)

    def _source(self) -> Source:
        c = self.config
        return open_source(
            c.source,
            self.recognizer.bundle.input.sr,
            device=c.device,
            realtime=c.realtime,
            rate=c.rate,
            channels=c.channels,
            sample_format=c.sample_format,
            chunk=c.chunk,
        )

    def _emit(self, events: list[Event]) -> None:
        assert self.outputs is not None
        for e in events:
            self.events += 1
            self.outputs.emit(e)
        if self.state.after(events, self.recognizer):
            self._stop = True  # the enrolment has heard enough

    # -- model and configuration changes -----------------------------------------------------------
    def _check_model(self, reason: str) -> None:
        """Starts checking the configured bundle (a child process, :mod:`.swap`); the loop swaps
        to it when the check passes (:meth:`_finish_check`)."""
        from ser_edge.bundle import BundleError

        if self.probe is not None:
            self.probe.cancel()
            self.probe = None
        try:
            self.probe = Probe(
                bundle_dir(self.config.model), reason, adapt=self.config.adapt, labels=self.config.labels
            )
        except (BundleError, OSError) as e:
            self._refused(reason, str(e))

    def _refused(self, reason: str, error: str) -> None:
        log.error(
            "model refused; keeping the running model",
            extra={"fields": {"reason": reason, "error": error, "model_id": self.recognizer.model_id}},
        )

    def _finish_check(self, verdict: Verdict) -> None:
        try:
            if verdict.error is not None:
                self._refused(verdict.reason, verdict.error)
                return
            same = (
                verdict.fingerprint == self.fingerprint
                and self.recognizer.adapter.adapt
                == (self.config.adapt and self.recognizer.bundle.input.normalization == "speaker")
                and list(self.config.labels or []) == list(self._labels or [])
            )
            if same:
                return  # touched or reloaded, not changed: keep the model and its adaptation
            try:
                new = load_verified(verdict, adapt=self.config.adapt, labels=self.config.labels)
            except (ValueError, RuntimeError, OSError) as e:
                self._refused(verdict.reason, str(e))
                return
            self._keep(verdict)
        finally:
            verdict.discard()
        self._swap_to(new, verdict.fingerprint, verdict.reason)

    def _keep(self, verdict: Verdict) -> None:
        """Keeps the bundle that now runs as the last good one (with a state folder)."""
        if verdict.snapshot is None or last_good_dir() is None:
            return
        try:
            keep_last_good(verdict.snapshot, verdict.fingerprint)
        except OSError as e:
            log.warning("cannot keep a copy of the model", extra={"fields": {"error": str(e)}})

    def _start_model(self) -> Recognizer:
        """The model to start with. Without a state folder: the configured bundle, loaded here.
        With one (``$STATE_DIRECTORY``, systemd's ``StateDirectory=``): a bundle other than the
        last one that ran is first checked in a child process (:mod:`.swap`); if it is refused,
        the daemon starts with the last good bundle kept there. Raises ``ValueError`` or
        ``RuntimeError`` when there is nothing to start with."""
        from ser_edge.runtime import Recognizer

        kept = last_good_dir()
        directory = bundle_dir(self.config.model)
        fingerprint = load_fingerprint(directory) if kept is not None else None
        if kept is None or (fingerprint is not None and fingerprint == last_good_fingerprint()):
            return load_recognizer(self.config)
        verdict = check_now(directory, "start", adapt=self.config.adapt, labels=self.config.labels)
        try:
            if verdict.error is None:
                r = load_verified(verdict, adapt=self.config.adapt, labels=self.config.labels)
                self._keep(verdict)
                return r
        finally:
            verdict.discard()
        if not (kept / "bundle.json").is_file():
            raise ValueError(verdict.error)
        log.error(
            "model refused at start; running the last good model",
            extra={"fields": {"error": verdict.error, "path": str(kept)}},
        )
        return trial_run(Recognizer(kept, adapt=self.config.adapt, allowed=self.config.labels))

    def _swap_to(self, new: Recognizer, fingerprint: str, reason: str) -> None:
        old = self.recognizer
        assert self.pipeline is not None
        if new.bundle.input.sr != old.bundle.input.sr:
            # another rate needs another pipeline: the open utterance ends here, the clock goes on
            self._emit(self.pipeline.flush())
            offset = self.pipeline.end_time
            self.recognizer = new
            self.pipeline = self._pipeline(offset)
            if self.source is not None:
                self.source.set_sr(new.bundle.input.sr)
        else:
            self.state.carry(old, new)
            self.recognizer = new
            self.pipeline.set_recognizer(new)
        self.fingerprint, self._labels = fingerprint, self.config.labels
        _info("model loaded", reason=reason, model_id=new.model_id, previous=old.model_id)

    def _reload_config(self) -> None:
        try:
            new = load_config(self.config.config_path, self.overrides)
        except ValueError as e:
            log.error(
                "configuration reload failed; keeping the running configuration", extra={"fields": {"error": str(e)}}
            )
            return
        old, self.config = self.config, new
        setup_logging(new.log_level)
        assert self.pipeline is not None and self.outputs is not None
        source_keys = ("source", "device", "realtime", "rate", "channels", "sample_format", "chunk")
        if any(getattr(old, k) != getattr(new, k) for k in source_keys):
            if old.source == new.source == "-":  # one byte stream: it cannot be reopened
                log.warning("stdin settings change at the next start", extra={"fields": {"path": new.config_path}})
            else:
                self._emit(self.pipeline.flush())
                self._close_source()
        self.outputs.close(CLOSE_TIMEOUT)
        try:
            self.pipeline.reconfigure(new.gate, new.windows, self._recorder())
            self.outputs = self._outputs(new)
        except (ValueError, OSError) as e:
            log.error(
                "configuration reload failed; keeping the running configuration", extra={"fields": {"error": str(e)}}
            )
            self.config = old
            self.pipeline.reconfigure(old.gate, old.windows, self._recorder())
            self.outputs = self._outputs(old)
            return
        _info("configuration reloaded", path=new.config_path)
        self._check_model("SIGHUP")

    def _close_source(self) -> None:
        if self.source is not None:
            self.overflows += int(self.source.overflows)
            for k in self.invalid:
                self.invalid[k] += int(getattr(self.source, k, 0))
            self.source.close()
            self.source = None

    def _invalid_counts(self) -> tuple[int, int]:
        return tuple(self.invalid[k] + int(getattr(self.source, k, 0)) for k in ("nonfinite", "clipped"))  # type: ignore[return-value]

    def _report_invalid(self) -> None:
        """One structured log line when input samples were NaN/Inf or beyond full scale (at most
        one per :data:`INVALID_LOG_EVERY` s; the totals are in the ``stopped`` line)."""
        now = self._invalid_counts()
        if now != self._invalid_logged and time.monotonic() >= self._invalid_next:
            self._invalid_logged, self._invalid_next = now, time.monotonic() + INVALID_LOG_EVERY
            log.warning(
                "invalid input samples replaced",
                extra={"fields": {"nonfinite_set_to_0": now[0], "clipped_to_full_scale": now[1]}},
            )

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
        """Listens until stopped or the source ends; returns the exit code."""
        t_start = time.monotonic()
        code = self._start()
        if code is not None:
            return code
        _info(
            "listening",
            model_id=self.recognizer.model_id,
            source=self.config.source,
            startup_s=round(time.monotonic() - t_start, 3),
            pid=os.getpid(),
        )
        code = self._loop()
        return self._finish(code, t_start)

    def _start(self) -> int | None:
        """Model, device state, outputs, pipeline and signal handlers; an exit code if one fails."""
        try:
            self.recognizer = self._start_model()
        except (ValueError, RuntimeError) as e:
            print(f"ser-edge listen: {e}", file=sys.stderr)
            return 2
        self._labels = self.config.labels
        if self.config.enrol is not None and not self.recognizer.adapter.adapt:
            print("ser-edge listen: --enrol needs adapt = true and a model with speaker normalisation", file=sys.stderr)
            return 2
        self.state.restore(self.recognizer)
        try:
            self.outputs = self._outputs(self.config)
            self.pipeline = self._pipeline()
        except (ValueError, OSError) as e:
            print(f"ser-edge listen: output: {e}", file=sys.stderr)
            return 2
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        return None

    def _loop(self) -> int:
        """Reads the source into the pipeline, between model checks, until stopped or the source
        ends (0) or fails for good (1). A lost or missing device is reopened with backoff."""
        watch = _ModelWatch(self)
        backoff = BACKOFF_MIN
        reported = 0
        while not self._stop:
            watch.step()
            if self.source is None:
                try:
                    self._open_source()
                except SourceError as e:
                    log.warning("source unavailable; retrying", extra={"fields": {"error": str(e), "retry_s": backoff}})
                    self._sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                except ValueError as e:  # a bad file or setting: retrying cannot help
                    log.error("source failed", extra={"fields": {"error": str(e)}})
                    print(f"ser-edge listen: {e}", file=sys.stderr)
                    return 1
                backoff, reported = BACKOFF_MIN, 0
            assert self.source is not None and self.pipeline is not None
            try:
                chunk = self.source.read(0.1)
            except EOFError:
                return 0
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
            self._report_invalid()
        return 0

    def _open_source(self) -> None:
        """Opens the configured source (``SourceError``: try again later; ``ValueError``: never)."""
        source = self._source()
        source.open()
        self.source = source
        _info(
            "source open",
            source=self.config.source,
            device=getattr(source, "device_name", None),
            rate=getattr(source, "rate", None),
        )

    def _finish(self, code: int, t_start: float) -> int:
        """Flushes the open utterance, closes the source, saves the device state, drains the
        outputs and logs the run's totals."""
        assert self.pipeline is not None and self.outputs is not None
        if self.probe is not None:
            self.probe.cancel()
        self._emit(self.pipeline.flush())
        self._close_source()
        self.state.save(self.recognizer)
        if self.config.enrol is not None:
            summary = self.state.summary(self.recognizer)
            print(json.dumps(summary), flush=True)
            code = code or (0 if summary["complete"] else 1)
        self.outputs.close(CLOSE_TIMEOUT)
        p = self.pipeline
        _info(
            "stopped",
            events=self.events,
            overflows=self.overflows,
            dropped=self.outputs.dropped,
            nonfinite_set_to_0=self.invalid["nonfinite"],
            clipped_to_full_scale=self.invalid["clipped"],
            inferences=p.inferences,
            mean_inference_ms=round(1000 * p.inference_s / max(p.inferences, 1), 2),
            uptime_s=round(time.monotonic() - t_start, 3),
        )
        return code


class _ModelWatch:
    """Between reads: a SIGHUP reload, a check when the watched model files change, and the
    verdict of a running bundle check."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.files = _model_files(daemon.config.model)
        self.stamp = _stamp(self.files)
        self.next_check = time.monotonic() + daemon.config.watch_interval
        daemon.fingerprint = load_fingerprint(self.files[0].parent)

    def step(self) -> None:
        d = self.daemon
        if d._reload:
            d._reload = False
            d._reload_config()
            self.files = _model_files(d.config.model)
            self.stamp = _stamp(self.files)
        if d.config.watch and time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + d.config.watch_interval
            now = _stamp(self.files)
            if now != self.stamp:
                self.stamp = now
                d._check_model("file changed")
        if d.probe is not None:
            verdict = d.probe.poll()
            if verdict is not None:
                d.probe = None
                d._finish_check(verdict)


def run(config: ListenConfig, overrides: dict[str, Any]) -> int:
    setup_logging(config.log_level)
    return Daemon(config, overrides).run()
