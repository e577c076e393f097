"""Running a model bundle on the device: LiteRT interpreter, quantisation, and the recogniser
that turns a clip (or its frames) into an emotion prediction.

The interpreter comes from ``ai_edge_litert`` (LiteRT), falling back to ``tflite_runtime`` and
then ``tensorflow.lite``. Nothing here imports TensorFlow unless both lighter runtimes are missing.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser_edge.bundle import Bundle, BundleError, load_bundle
from ser_edge.inputs import Adapter, FrameStats

RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")


_first_interpreter = True


@contextlib.contextmanager
def _once_quiet() -> Iterator[None]:
    """Silences the process's stderr (fd 2) while the first interpreter is made: LiteRT's C++ core
    prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." once per process, which would
    be the only line on stderr that is not one of ``listen``'s structured logs."""
    global _first_interpreter
    if not _first_interpreter:
        yield
        return
    _first_interpreter = False
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_interpreter(model: bytes, *, num_threads: int = 1) -> Any:
    """A ready (tensors allocated) TFLite interpreter for the model bytes ``model`` from the first
    runtime of :data:`RUNTIMES` that is installed. Raises ``RuntimeError`` if none is,
    ``BundleError`` if it is not a model the runtime can load.

    The model runs from memory, not from a memory-mapped file: a model file replaced on disk (a
    hot reload) must never change, or fault (SIGBUS on a truncated mapping), a running model.
    """
    for name in RUNTIMES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        try:
            with _once_quiet():
                interpreter = module.Interpreter(model_content=model, num_threads=num_threads)
                interpreter.allocate_tensors()
                interpreter.invoke()  # the delegate announces itself on the first run
        except (ValueError, RuntimeError) as e:
            raise BundleError(f"the TFLite runtime cannot load the model ({e})") from None
        return interpreter
    raise RuntimeError("no TFLite runtime: install ai-edge-litert (pip install ai-edge-litert) or tflite-runtime")


class Classifier:
    """A bundle's TFLite model as a function from inputs ``(n, *input_shape)`` float32 to label
    probabilities ``(n, n_labels)``; quantised (int8) inputs and outputs are handled here."""

    def __init__(self, bundle: Bundle, *, num_threads: int = 1) -> None:
        self.bundle = bundle
        try:
            self._interp = load_interpreter(bundle.model, num_threads=num_threads)
        except BundleError as e:
            raise BundleError(f"{bundle.path}: {e}") from None
        (inp,), (out,) = self._interp.get_input_details(), self._interp.get_output_details()
        if tuple(inp["shape"][1:]) != bundle.input_shape:
            raise BundleError(
                f"{bundle.path}: the model's input {list(inp['shape'][1:])} is not the bundle's "
                f"input_shape {list(bundle.input_shape)}"
            )
        if int(out["shape"][-1]) != len(bundle.labels):
            raise BundleError(
                f"{bundle.path}: the model has {int(out['shape'][-1])} outputs for {len(bundle.labels)} labels"
            )
        self._in, self._out = inp, out

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.bundle.input_shape:
            raise ValueError(
                f"inputs must be shaped (n, {', '.join(map(str, self.bundle.input_shape))}); got {x.shape}"
            )
        return np.stack([self._one(row) for row in x]) if len(x) else np.zeros((0, len(self.bundle.labels)), np.float32)

    def _one(self, row: np.ndarray) -> np.ndarray:
        return run_one(self._interp, self._in, self._out, row)


def run_one(interpreter: Any, inp: dict[str, Any], out: dict[str, Any], row: np.ndarray) -> np.ndarray:
    """One model input (no batch axis) through ``interpreter`` (input/output details ``inp``,
    ``out``): quantised inputs and outputs are scaled here, and the output is float32.

    Every call starts from a zero recurrent state: TFLite's fused LSTM keeps its hidden and cell
    state in variable tensors that persist from one ``invoke`` to the next, so without the reset a
    window would start from the previous window's final state (Keras starts every sequence from
    zeros). That was the cause of the Keras/TFLite divergence of the trained LSTM models
    (docs/results.md). The reset is a no-op for models without variable tensors."""
    v = np.asarray(row, np.float32)[None]
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        v = np.clip(np.round(v / scale + zero), info.min, info.max).astype(inp["dtype"])
    interpreter.reset_all_variables()
    interpreter.set_tensor(inp["index"], v)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])[0]
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]
    n_frames: int
    voiced_frames: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "n_frames": self.n_frames,
            "voiced_frames": self.voiced_frames,
        }


class Recognizer:
    """Clip -> emotion with a bundle: the bundle's input flow (frames, voice gate, speaker
    normalisation, pooling), the model, and the label choice.

    ``adapt=True`` (with a bundle whose ``input.normalization`` is ``"speaker"``) moves the
    normalisation statistics towards the voiced frames this recogniser has seen, as on a device
    that hears its own users; ``adapt=False`` always uses the training population's.
    ``allowed`` restricts the argmax (and the renormalised scores) to those labels.
    """

    def __init__(
        self,
        bundle: Bundle | str | os.PathLike[str] | None = None,
        *,
        adapt: bool = True,
        allowed: Iterable[str] | None = None,
        num_threads: int = 1,
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.classifier = Classifier(self.bundle, num_threads=num_threads)
        n = self.bundle.normalization
        self.adapter = Adapter(
            n.frame_mean, n.frame_std, n.prior_frames, adapt=adapt and self.bundle.input.normalization == "speaker"
        )
        self._allowed: np.ndarray | None = None
        if allowed is not None:
            self.restrict(allowed)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    def restrict(self, labels: Iterable[str] | None) -> None:
        """Takes the argmax over ``labels`` only (``None``: all the model's labels)."""
        if labels is None:
            self._allowed = None
            return
        wanted = set(labels)
        unknown = sorted(wanted - set(self.labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the model's labels {list(self.labels)}")
        if not wanted:
            raise ValueError("allowed labels must not be empty")
        self._allowed = np.array([label in wanted for label in self.labels])

    def inputs(self, frames: np.ndarray, *, new_frames: int | None = None) -> np.ndarray:
        """The model input for one clip's frames (``InputConfig.frames``). When adapting, the
        speaker statistics first learn the voiced frames among the last ``new_frames`` (all when
        ``None``, none when 0): overlapping windows pass only the frames they add, so no audio
        counts twice."""
        return self._inputs(frames, new_frames)[0]

    def _inputs(self, frames: np.ndarray, new_frames: int | None) -> tuple[np.ndarray, int]:
        """:meth:`inputs` and the number of voiced frames."""
        if self.bundle.input.waveform is not None:
            raise ValueError(f"{self.bundle.name} reads raw audio (a waveform bundle): use predict(y), not frames")
        cfg, norm = self.bundle.input, self.bundle.normalization
        voiced = cfg.voiced(frames)
        n_new = len(frames) if new_frames is None else max(0, min(int(new_frames), len(frames)))
        if n_new:
            self.adapter.update(voiced if n_new == len(frames) else cfg.voiced(frames[len(frames) - n_new :]))
        x = cfg.pool(self.adapter.normalize(voiced))
        if cfg.pooling == "stats":
            x = norm.standardize_input(x)
        return x, len(voiced)

    def predict(self, y: np.ndarray, *, new_samples: int | None = None) -> Prediction:
        """Emotion of a clip at ``bundle.input.sr`` (mono float32); ``new_samples``: only the last
        that many samples are new (see :meth:`inputs`). Raises ``ValueError`` for a clip too short
        for one frame or with non-finite samples.

        A waveform bundle (``input.kind == "waveform"``) classifies the clip's chunks and pools
        their probabilities (:meth:`~ser_edge.inputs.InputConfig.waveform_inputs`); its
        :class:`Prediction` counts chunks in ``n_frames`` and ``voiced_frames``."""
        cfg = self.bundle.input
        if cfg.waveform is not None:
            x = cfg.waveform_inputs(y)
            return self._prediction(cfg.pool_chunks(self.classifier.probabilities(x)), len(x), len(x))
        frames = self.bundle.input.frames(y)
        new_frames = None
        if new_samples is not None:
            new_frames = min(len(frames), -(-int(new_samples) // self.bundle.input.features.hop_length))
        return self.predict_frames(frames, new_frames=new_frames)

    def predict_frames(self, frames: np.ndarray, *, new_frames: int | None = None) -> Prediction:
        x, voiced = self._inputs(frames, new_frames)
        return self._prediction(self._probabilities(x), len(frames), voiced)

    def predict_store(self, store: Any) -> Prediction:
        """:meth:`predict_frames` of the frames in a :class:`ser_edge.file_input.ColumnStore`,
        one column group at a time (the same gate, normalisation and pooling, column by column)."""
        cfg, norm, n = self.bundle.input, self.bundle.normalization, store.n_rows
        if n == 0:
            raise ValueError("the clip has no frames (shorter than one hop?)")
        mask = (
            cfg.voiced_mask(store.column(cfg.row("rms")))
            if cfg.vad_db is not None or cfg.vad_floor_db is not None
            else None
        )
        keep = np.arange(n) if mask is None else np.flatnonzero(mask)
        if self.adapter.adapt:
            parts = [FrameStats.of(store.group(i)[keep]) for i in range(len(store.groups))]
            self.adapter.heard.merge(
                FrameStats(
                    float(len(keep)), np.concatenate([p.mean for p in parts]), np.concatenate([p.m2 for p in parts])
                )
            )
        if cfg.pooling != "stats":
            start = max(0, (len(keep) - int(cfg.seq_frames)) // 2)
            x = cfg.pool(self.adapter.normalize(store.rows(keep[start : start + int(cfg.seq_frames)])))
        else:
            d = cfg.n_frame_features
            x = np.empty(cfg.input_shape, np.float32)
            for i, (a, b) in enumerate(store.groups):
                v = cfg.pool(self.adapter.normalize(store.group(i)[keep], cols=slice(a, b))).reshape(-1, b - a)
                for s in range(len(v)):
                    x[s * d + a : s * d + b] = v[s]
            x = norm.standardize_input(x)
        return self._prediction(self._probabilities(x), n, len(keep))

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        """The model's output for one input; a non-finite input or output never becomes a label."""
        if not np.all(np.isfinite(x)):
            raise ValueError("the model input is not finite (NaN or Inf features): no label")
        p = self.classifier.probabilities(x[None])[0]
        if not np.all(np.isfinite(p)):
            raise ValueError("the model output is not finite: no label")
        return p

    def _prediction(self, p: np.ndarray, n_frames: int, voiced: int) -> Prediction:
        mask = np.ones(len(p), bool) if self._allowed is None else self._allowed
        p = np.where(mask, np.maximum(p.astype(np.float64), 0.0), 0.0)
        p = p / p.sum() if p.sum() > 0 else mask / mask.sum()
        i = int(np.argmax(p))
        return Prediction(self.labels[i], float(p[i]), {k: float(v) for k, v in zip(self.labels, p)}, n_frames, voiced)
