"""From audio chunks to events: ring buffer -> voice gate (energy, then the speech model) ->
windows -> inference -> smoothing.

:class:`Utterances` is the whole pipeline without I/O, so ``ser-edge predict --segments`` runs a
file through exactly what ``ser-edge listen`` runs on a microphone.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser_edge.pipeline.gate import GateConfig
from ser_edge.pipeline.ring import RingBuffer
from ser_edge.pipeline.smoothing import ScoreAverage
from ser_edge.pipeline.speech import make_gate

log = logging.getLogger("ser_edge.listen")

Event = dict[str, Any]


@dataclass(frozen=True)
class WindowConfig:
    """Inference windows over an utterance: ``window`` seconds every ``hop`` seconds; an
    utterance shorter than one window is one window; ``events`` also emits per-window events."""

    window: float = 4.0
    hop: float = 2.0
    events: bool = False

    def __post_init__(self) -> None:
        if not float(self.window) > 0 or not 0 < float(self.hop) <= float(self.window):
            raise ValueError(
                f"windows: need window > 0 and 0 < hop <= window; got window={self.window!r}, hop={self.hop!r}"
            )


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


class Utterances:
    """Feeds chunks at the recogniser's rate through the gate and the model.

    ``push(chunk, captured=t)`` takes the wall-clock (``time.monotonic``) time at which the
    chunk's last sample was captured (for live sources), and returns the events it completed.
    ``on_utterance(audio, event)`` is called with each utterance's audio (for ``--record-dir``).
    Event times are seconds since the stream began, plus ``offset`` (a pipeline that replaces
    another, e.g. for a model at another rate, continues its clock). An utterance never starts
    before the previous one ended (the gate's pre-roll is cut there), so events never overlap.
    """

    def __init__(
        self,
        recognizer: Any,
        gate: GateConfig = GateConfig(),
        windows: WindowConfig = WindowConfig(),
        *,
        on_utterance: Callable[[np.ndarray, Event], None] | None = None,
        offset: float = 0.0,
    ) -> None:
        self.recognizer = recognizer
        self.sr = int(recognizer.bundle.input.sr)
        self.offset = float(offset)
        self.on_utterance = on_utterance
        self.ring = RingBuffer(1)
        self._gate_base = 0  # stream sample where the current gate began
        self._pending: tuple[GateConfig, WindowConfig] | None = None
        self._apply(gate, windows)
        self._last_end = 0
        self._captured: deque[tuple[int, float]] = deque(maxlen=512)
        self._avg = ScoreAverage(recognizer.labels)
        self._start: int | None = None
        self._next_end = 0
        self._covered = 0
        self.inference_s = 0.0
        self.inferences = 0

    def _apply(self, gate: GateConfig, windows: WindowConfig) -> None:
        """New gate and window settings (between utterances): the stream clock and the audio
        held go on; a new gate starts from the old one's noise floor."""
        self.windows, self.win, self.hop = windows, round(windows.window * self.sr), round(windows.hop * self.sr)
        capacity = round((gate.max_utterance + gate.pre_roll + windows.window + 2.0) * self.sr)
        if capacity != self.ring.capacity:
            old, self.ring = self.ring, RingBuffer(capacity)
            held = old.read(max(old.oldest, old.total - capacity), old.total)
            self.ring.total = old.total - len(held)
            self.ring.write(held)
        if getattr(self, "gate_config", None) != gate:
            previous = getattr(self, "gate", None)
            self.gate, self.gate_config, self._gate_base = make_gate(self.sr, gate), gate, self.ring.total
            if previous is not None and hasattr(previous, "noise_db"):
                self.gate.noise_db = previous.noise_db

    def reconfigure(
        self, gate: GateConfig, windows: WindowConfig, on_utterance: Callable[[np.ndarray, Event], None] | None
    ) -> None:
        """New settings (a configuration reload) without cutting the utterance in progress: they
        apply now if none is open (nor one the gate is still deciding on), else when it ends."""
        self.on_utterance = on_utterance
        self._pending = (gate, windows)
        self._apply_pending()

    def _apply_pending(self) -> None:
        if self._pending is not None and self._start is None and not self.gate.deciding:
            self._apply(*self._pending)
            self._pending = None

    @property
    def end_time(self) -> float:
        """The stream time (s) after the last sample pushed: the ``offset`` of a successor."""
        return self.offset + self.ring.total / self.sr

    @property
    def model_id(self) -> str:
        return str(self.recognizer.model_id)

    def set_recognizer(self, recognizer: Any) -> None:
        """Swaps the model (same sample rate); the utterance in progress continues with it."""
        if int(recognizer.bundle.input.sr) != self.sr:
            raise ValueError("a model with another sample rate needs a new pipeline")
        self.recognizer = recognizer
        if tuple(recognizer.labels) != self._avg.labels:
            self._avg = ScoreAverage(recognizer.labels)

    def push(self, chunk: np.ndarray, captured: float | None = None) -> list[Event]:
        chunk = np.asarray(chunk, np.float32)
        self.ring.write(chunk)
        if captured is not None:
            self._captured.append((self.ring.total, captured))
        events: list[Event] = []
        gate, base = self.gate, self._gate_base
        for b in gate.push(chunk):
            if self.gate is not gate:  # new settings took effect at an utterance's end
                break
            if b.kind == "start":
                self._begin(b.sample + base)
            else:
                events += self._windows_until(b.sample + base)
                events += self._end(b.sample + base)
        if self._start is not None:
            events += self._windows_until(self.ring.total)
        else:
            self._apply_pending()  # the gate dropped what it was deciding on
        return events

    def flush(self) -> list[Event]:
        """Ends the stream (or a lost device): closes an open utterance and resets the gate."""
        events: list[Event] = []
        for b in self.gate.flush():
            events += self._windows_until(b.sample + self._gate_base)
            events += self._end(b.sample + self._gate_base)
        return events

    # -- internals ----------------------------------------------------------------------------------
    def _begin(self, start: int) -> None:
        self._start = max(start, self.ring.oldest, self._last_end)
        self._next_end = self._start + self.win
        self._covered = self._start
        self._avg = ScoreAverage(self.recognizer.labels)

    def _windows_until(self, limit: int) -> list[Event]:
        events: list[Event] = []
        while self._start is not None and self._next_end <= limit:
            a, b = self._next_end - self.win, self._next_end
            event = self._infer(a, b)
            self._next_end += self.hop
            if event is not None and self.windows.events:
                events.append(event)
        return events

    def _infer(self, a: int, b: int) -> Event | None:
        audio = self.ring.read(max(a, self.ring.oldest), b)
        t0 = time.perf_counter()
        try:
            p = self.recognizer.predict(audio, new_samples=b - max(a, self._covered))
        except ValueError as e:
            log.warning("window skipped", extra={"fields": {"error": str(e)}})
            return None
        self.inference_s += time.perf_counter() - t0
        self.inferences += 1
        self._avg.add(p.scores, p.voiced_frames)
        self._covered = b
        label, conf = self._avg.best()
        return {
            "type": "window",
            "start": self._time(a),
            "end": self._time(b),
            "label": p.label,
            "confidence": round(p.confidence, 4),
            "scores": {k: round(v, 4) for k, v in p.scores.items()},
            "utterance_label": label,
            "utterance_confidence": round(conf, 4),
            "model_id": self.model_id,
            "time": _now_iso(),
        }

    def _end(self, end: int) -> list[Event]:
        events = self._close(end)
        self._apply_pending()
        return events

    def _close(self, end: int) -> list[Event]:
        start, self._start = self._start, None
        if start is None:
            return []
        self._last_end = max(self._last_end, end)
        if self._avg.count == 0 or end > self._covered:
            self._infer(max(start, end - self.win), end)
        if self._avg.count == 0:
            return []
        label, conf = self._avg.best()
        event: Event = {
            "type": "utterance",
            "start": self._time(start),
            "end": self._time(end),
            "duration": round((end - start) / self.sr, 3),
            "label": label,
            "confidence": round(conf, 4),
            "scores": {k: round(v, 4) for k, v in self._avg.scores().items()},
            "windows": self._avg.count,
            "model_id": self.model_id,
            "time": _now_iso(),
        }
        delay = self._delay(end)
        if delay is not None:
            event["delay_ms"] = round(delay * 1000.0, 1)
        if self.on_utterance is not None:
            try:
                self.on_utterance(self.ring.read(max(start, self.ring.oldest), end), event)
            except Exception as e:  # recording must never stop recognition
                log.error("recording failed", extra={"fields": {"error": str(e)}})
        return [event]

    def _time(self, sample: int) -> float:
        return round(self.offset + sample / self.sr, 3)

    def _delay(self, sample: int) -> float | None:
        """Seconds from the capture of ``sample`` to now (live sources only)."""
        for total, t in self._captured:
            if total >= sample:
                return time.monotonic() - (t - (total - sample) / self.sr)
        return None
