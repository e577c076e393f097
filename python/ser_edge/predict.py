"""``ser-edge predict FILE...``: the emotion of each file with a model bundle.

Each file is read at any rate, bit depth and channel count and gets one result (label,
confidence, scores); ``segments=True`` adds one result per utterance, found by the same voice
gate and windows as ``ser-edge listen``. The speech gate of ``listen``
(:mod:`ser_edge.pipeline.speech`) decides first: a file in which it finds no speech gets
``"speech": false`` and no emotion (no label, confidence or scores); segments are speech
utterances only. A file that cannot be read gets a clear error and the other files still get
their results.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from ser_edge.pipeline.gate import GateConfig

#: The gate for files: ``listen``'s, with the absolute level floor at -80 dBFS instead of -50 (a
#: recording may be quiet; the speech model does not depend on the level).
FILE_GATE = GateConfig(threshold_db=-80.0)


def predict_segments(
    recognizer: Any, y: np.ndarray | Iterable[np.ndarray], *, chunk: float = 0.1
) -> list[dict[str, Any]]:
    """Utterance events of a clip (or of its blocks, in order) at the recogniser's rate, pushed
    through the ``listen`` pipeline in ``chunk``-second pieces as a microphone would deliver them."""
    from ser_edge.pipeline.utterances import Utterances

    pipeline = Utterances(recognizer, FILE_GATE)
    n = max(1, round(chunk * pipeline.sr))
    events: list[dict[str, Any]] = []
    pending = np.zeros(0, np.float32)
    for block in [y] if isinstance(y, np.ndarray) else y:
        pending = np.concatenate([pending, block])
        cut = len(pending) - len(pending) % n
        for i in range(0, cut, n):
            events += pipeline.push(pending[i : i + n])
        pending = pending[cut:]
    if len(pending):
        events += pipeline.push(pending)
    events += pipeline.flush()
    return [{k: v for k, v in e.items() if k not in ("type", "time")} for e in events if e["type"] == "utterance"]


class _Scan:
    """A file's blocks at ``sr``, counted and passed through the speech gate of ``listen`` as
    they are read: after :meth:`blocks` is consumed, ``samples`` and ``speech`` are known."""

    def __init__(self, path: str, sr: int) -> None:
        from ser_edge.pipeline.speech import make_gate

        self.path, self.sr = path, sr
        self.gate = make_gate(sr, FILE_GATE)
        self.samples, self.starts = 0, 0

    @property
    def speech(self) -> bool:
        return self.starts > 0

    def blocks(self) -> Iterator[np.ndarray]:
        from ser_edge.audio import blocks

        for b in blocks(self.path, sr=self.sr):
            self.samples += len(b)
            self.starts += sum(x.kind == "start" for x in self.gate.push(b))
            yield b
        self.starts += sum(x.kind == "start" for x in self.gate.flush())


def predict_files(
    files: Iterable[str], *, model: str | None = None, segments: bool = False, adapt: bool = False
) -> Iterable[dict[str, Any]]:
    """One dict per file: ``file``, ``speech`` (true), ``label``, ``confidence``, ``scores``,
    ``model_id``, ``seconds`` (and ``segments``); ``file``, ``speech`` (false), ``model_id`` and
    ``seconds`` (and empty ``segments``) when it holds no speech; or ``file`` and ``error``. Each
    file is judged on its own (``adapt=False``: the training population's normalisation, no
    memory of earlier files).

    Files are streamed (:mod:`ser_edge.file_input`): memory does not grow with their length (a
    raw-waveform bundle holds the file's samples at the model's rate)."""
    from ser_edge.file_input import ColumnStore, frames_to_store
    from ser_edge.runtime import Recognizer

    recognizer = Recognizer(model, adapt=adapt)
    cfg = recognizer.bundle.input
    for path in files:
        try:
            scan = _Scan(path, cfg.sr)
            if cfg.kind == "waveform":  # the model reads the clip's samples (held whole), not frames
                audio = np.concatenate([np.zeros(0, np.float32), *scan.blocks()])
                events = predict_segments(recognizer, audio) if segments else None
                p = recognizer.predict(audio) if scan.speech else None
            else:
                with ColumnStore(cfg.n_frame_features) as store:
                    chunks = frames_to_store(cfg, scan.blocks(), store)
                    if segments:
                        events = predict_segments(recognizer, chunks)
                    else:
                        for _ in chunks:  # frames only
                            pass
                    p = recognizer.predict_store(store) if scan.speech else None
            speech = scan.speech
            out: dict[str, Any] = {
                "file": os.fspath(path),
                "speech": speech,
                **(p.to_dict() if p else {}),
                "model_id": recognizer.model_id,
                "seconds": round(scan.samples / cfg.sr, 3),
            }
            if segments:
                out["segments"] = events
        except (ValueError, OSError) as e:  # OSError: the temporary frame files (a full disk)
            msg = str(e)
            yield {"file": os.fspath(path), "error": msg if os.fspath(path) in msg else f"{os.fspath(path)}: {msg}"}
            continue
        yield out


def _text(r: dict[str, Any]) -> str:
    if not r.get("speech", True):
        return f"{r['file']}: no speech ({r['seconds']:.2f} s)"
    top = sorted(r["scores"].items(), key=lambda kv: -kv[1])[:3]
    line = f"{r['file']}: {r['label']} {r['confidence']:.2f}  ({', '.join(f'{k} {v:.2f}' for k, v in top)})"
    for s in r.get("segments", []):
        line += f"\n  {s['start']:7.2f}-{s['end']:7.2f} s  {s['label']} {s['confidence']:.2f}"
    return line


def run(
    files: Sequence[str],
    *,
    model: str | None = None,
    as_json: bool = False,
    segments: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """The command: prints results, errors to ``err``; returns 1 if any file failed, 2 if the
    model cannot be used, else 0."""
    from ser_edge.bundle import BundleError

    failed = 0
    try:
        for r in predict_files(files, model=model, segments=segments):
            if "error" in r:
                failed += 1
                print(f"ser-edge predict: {r['error']}", file=err)
                if as_json:
                    print(json.dumps(r), file=out)
            else:
                print(json.dumps(r) if as_json else _text(r), file=out)
            out.flush()
    except (BundleError, RuntimeError) as e:
        print(f"ser-edge predict: {e}", file=err)
        return 2
    if failed:
        print(f"ser-edge predict: {failed} of {len(files)} files failed", file=err)
    return 1 if failed else 0
