"""What the device learned about its user: the speaker statistics of the :class:`~ser_edge.inputs.Adapter`
(count, mean and spread of the voiced frames it heard), kept on the device across restarts.

The file is ``<state dir>/adapter.json`` (mode 0600 in a 0700 folder, written atomically); the
state dir is ``--state-dir`` / ``[state] dir``, else :func:`default_state_dir`. It is keyed to the model's frame features (``InputConfig``), not
to one model: a new model with the same inputs keeps the user's statistics; one with other
inputs starts from its population statistics. Nothing here is sent anywhere (no event, MQTT
message or federated update carries it).

``ser-edge listen --enrol SECONDS`` starts from the population statistics, listens until the
adapter has learned ``SECONDS`` of speech, saves it and prints a summary.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ser_edge.inputs import FrameStats, InputConfig

log = logging.getLogger("ser_edge.listen")

FORMAT = "ser-edge-adapter"
FILE = "adapter.json"
SAVE_EVERY_S = 60.0


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``), else ``$XDG_STATE_HOME/ser-edge``,
    else ``~/.local/state/ser-edge``."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "ser-edge"


def input_key(config: InputConfig) -> str:
    """What the statistics depend on: the frame features (sha256 of the input configuration)."""
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()


def save_stats(path: Path, stats: FrameStats, config: InputConfig) -> None:
    """Writes ``stats`` atomically to ``path`` (0600; its folder is made 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    doc = {"format": FORMAT, "version": 1, "input": input_key(config), "count": float(stats.count),
           "mean": [float(v) for v in stats.mean], "m2": [float(v) for v in stats.m2],
           "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    fd, tmp = tempfile.mkstemp(prefix=".adapter-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def load_stats(path: Path, config: InputConfig) -> Optional[FrameStats]:
    """The saved statistics, or ``None`` when there are none for these inputs. Raises
    ``ValueError`` naming the file when it is unreadable or malformed."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the adapter state ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not an adapter state file")
    if doc.get("input") != input_key(config):
        return None
    try:
        mean, m2, count = np.asarray(doc["mean"], np.float64), np.asarray(doc["m2"], np.float64), float(doc["count"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed adapter state ({e})") from None
    dim = config.n_frame_features
    if mean.shape != (dim,) or m2.shape != (dim,) or not count >= 0 or not np.all(np.isfinite(mean)) \
            or not np.all(np.isfinite(m2)) or np.any(m2 < 0):
        raise ValueError(f"{path}: malformed adapter state (expected {dim} finite values, count >= 0)")
    return FrameStats(count, mean, m2)


class DeviceState:
    """The daemon's adapter state: restored at start, carried across model swaps, saved at
    most every minute after utterances and at exit; and the enrolment's stop rule."""

    def __init__(self, directory: Optional[str], enrol: Optional[float] = None) -> None:
        self.path = (Path(directory) if directory else default_state_dir()) / FILE
        self.enrol = enrol
        self._saved_at = time.monotonic()
        self._start_count = 0.0
        self.utterances = 0
        self.speech_s = 0.0

    def restore(self, recognizer: Any) -> None:
        a = recognizer.adapter
        if not a.adapt:
            return
        if self.enrol is not None:
            a.reset()
            log.info("enrolment: starting from the population statistics",
                     extra={"fields": {"seconds": self.enrol, "state": str(self.path)}})
            return
        try:
            stats = load_stats(self.path, recognizer.bundle.input)
        except ValueError as e:
            log.warning("adapter state ignored", extra={"fields": {"error": str(e)}})
            return
        if stats is not None:
            a.heard = stats
            log.info("adapter state restored", extra={"fields": {"state": str(self.path), "frames": int(stats.count)}})
        self._start_count = a.heard.count

    def carry(self, old: Any, new: Any) -> None:
        """A swapped-in model keeps what the old one learned if it reads the same frames."""
        if new.adapter.adapt and old.adapter.adapt and input_key(old.bundle.input) == input_key(new.bundle.input):
            new.adapter.heard = old.adapter.heard

    def learned_s(self, recognizer: Any) -> float:
        """Seconds of voiced frames the adapter learned since the start (or the enrolment)."""
        cfg = recognizer.bundle.input
        return (recognizer.adapter.heard.count - self._start_count) * cfg.features.hop_length / cfg.sr

    def after(self, events: list[dict[str, Any]], recognizer: Any) -> bool:
        """Call with each batch of events; saves now and then. True when the enrolment is done."""
        done = False
        for e in events:
            if e.get("type") == "utterance":
                self.utterances += 1
                self.speech_s += float(e.get("duration", 0.0))
        if self.enrol is not None and self.learned_s(recognizer) >= self.enrol:
            done = True
        if events and time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save(recognizer)
        return done

    def save(self, recognizer: Any) -> None:
        """Writes the adapter's statistics (not after an enrolment that learned nothing: the
        saved state stays)."""
        if not recognizer.adapter.adapt or (self.enrol is not None and self.learned_s(recognizer) <= 0):
            return
        try:
            save_stats(self.path, recognizer.adapter.heard, recognizer.bundle.input)
            self._saved_at = time.monotonic()
        except OSError as e:
            log.error("adapter state not saved", extra={"fields": {"state": str(self.path), "error": str(e)}})

    def summary(self, recognizer: Any) -> dict[str, Any]:
        learned = self.learned_s(recognizer)
        return {"type": "enrolment", "complete": learned >= (self.enrol or 0.0), "target_s": self.enrol,
                "learned_s": round(learned, 2), "utterances": self.utterances, "speech_s": round(self.speech_s, 2),
                "frames": int(recognizer.adapter.heard.count), "state": str(self.path)}
