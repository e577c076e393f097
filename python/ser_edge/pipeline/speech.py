"""Speech, not sound: a small int8 LiteRT model that tells speech from other sounds, behind the
energy gate of :mod:`ser_edge.pipeline.gate`.

The model reads :data:`CONTEXT` frames (0.66 s) of 32-band log-mel features from the Rust core
(25 ms window, 10 ms hop), each block minus its own mean (so the level does not matter), and
gives the probability that the block holds speech; it runs every :data:`STEP` frames (0.1 s)
while the energy gate hears something. :class:`SpeechGate` has :class:`VoiceGate`'s interface
and passes on only the utterances that the model confirms, in two steps over the decisions that
fall in the utterance (a decision is *speech-probable* at or above ``speech_threshold``):

1. ``speech_min`` speech-probable decisions among the last ``speech_window`` (an utterance too
   short to hold ``speech_window`` decisions, such as a single word, needs at least
   ``speech_min - 1`` of them and no more misses than ``speech_window - speech_min``);
2. the whole utterance is speech-like, not a sound that is speech-like now and then (a dog that
   barks, a horn): at least ``speech_fraction`` of the decisions since the first
   speech-probable one (at most the last ``speech_span``) are speech-probable. It is judged once
   ``speech_span`` decisions have passed since the first speech-probable one, and at the end of
   an utterance not yet confirmed over the last ``speech_span`` decisions (fewer in a short one)
   up to its last speech-probable one (trailing misses do not count, so a short word passes).

An utterance that is never confirmed (an engine, a tone, a dog) gives no boundaries at all.

The model ships in ``models/speech`` (``speech.tflite`` + ``speech.json``): three networks trained
apart by ``python -m ser_edge.training.speech_gate --members 3``, their probabilities averaged in
one graph, on corpus speech (clean and with UrbanSound8K fold 1 mixed in) against fold 1 and
:mod:`ser_edge.listen.sounds`; fold 2 is held out for ``python -m ser_edge.listen.gatebench``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_edge.audio import Resampler
from ser_edge.features import FeatureConfig, Stream, extract
from ser_edge.pipeline.gate import Boundary, GateConfig, VoiceGate

FEATURES = FeatureConfig(
    sr=16000, n_fft=400, hop_length=160, center=False, n_mels=32, fmax=8000.0, features=("log_melspectrogram",)
)
CONTEXT = 64  # frames per decision (0.655 s)
STEP = 10  # frames between decisions (0.1 s)
FLOOR_DB = -100.0  # log-mel of digital silence (amin 1e-10): the context before a stream starts
SCALE = 20.0  # dB per input unit
MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "speech"
FORMAT = "ser-edge-speech"


def model_input(block: np.ndarray) -> np.ndarray:
    """One model input from ``CONTEXT`` log-mel frames ``(CONTEXT, n_mels)``: minus the block's
    mean, in units of :data:`SCALE` dB (float32)."""
    b = np.asarray(block, np.float32)
    return ((b - b.mean()) / np.float32(SCALE)).astype(np.float32)


def frames(y: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(t, n_mels)`` of a 16 kHz clip (what the stream gives, all at once)."""
    return np.ascontiguousarray(extract(np.asarray(y, np.float32), FEATURES).T)


def blocks(f: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Model inputs ending (exclusive) at frame indices ``ends``; frames before 0 are silence."""
    pad = np.full((CONTEXT, f.shape[1]), FLOOR_DB, np.float32)
    g = np.concatenate([pad, f])
    return (
        np.stack([model_input(g[e : e + CONTEXT]) for e in np.asarray(ends, int)])
        if len(ends)
        else np.zeros((0, CONTEXT, f.shape[1]), np.float32)
    )


class SpeechModel:
    """The speech/non-speech model: ``probability(x)`` for inputs ``(n, CONTEXT, n_mels)``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        from ser_edge.runtime import load_interpreter

        d = Path(directory) if directory is not None else MODEL_DIR
        try:
            meta = json.loads((d / "speech.json").read_text(encoding="utf-8"))
            model = (d / "speech.tflite").read_bytes()
        except (OSError, ValueError) as e:
            raise ValueError(f"{d}: cannot read the speech model ({e})") from None
        if meta.get("format") != FORMAT or hashlib.sha256(model).hexdigest() != meta.get("sha256"):
            raise ValueError(f"{d}: not a speech model or its sha256 does not match speech.json")
        if FeatureConfig.from_dict(meta["features"]) != FEATURES or meta.get("context") != CONTEXT:
            raise ValueError(f"{d}: the speech model was made for other features")
        self.meta: dict[str, Any] = meta
        self._interp = load_interpreter(model)
        (self._in,), (self._out,) = self._interp.get_input_details(), self._interp.get_output_details()

    def probability(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x), np.float32)
        d, o = self._in, self._out
        for i, row in enumerate(np.asarray(x, np.float32)):
            v = row[None]
            if d["dtype"] != np.float32:
                s, z = d["quantization"]
                v = np.clip(np.round(v / s + z), -128, 127).astype(d["dtype"])
            self._interp.set_tensor(d["index"], v)
            self._interp.invoke()
            y = self._interp.get_tensor(o["index"])[0]
            if o["dtype"] != np.float32:
                s, z = o["quantization"]
                y = (y.astype(np.float32) - z) * s
            out[i] = float(np.ravel(y)[0])
        return out

    def clip_probabilities(self, y: np.ndarray) -> np.ndarray:
        """A decision every :data:`STEP` frames of a whole 16 kHz clip."""
        f = frames(y)
        return self.probability(blocks(f, np.arange(STEP, len(f) + 1, STEP)))


_shared: dict[str, SpeechModel] = {}


def shared_model() -> SpeechModel:
    """The packaged model, loaded once per process."""
    if "m" not in _shared:
        _shared["m"] = SpeechModel()
    return _shared["m"]


@dataclass
class _Pending:
    start: int
    end: int | None = None
    confirmed: bool = False
    dense: bool = False  # step 1 met: speech_min of the last speech_window decisions
    hits: list[bool] = field(default_factory=list)  # the decisions in the utterance, in order


class SpeechGate:
    """:class:`VoiceGate` whose utterances are confirmed as speech by :class:`SpeechModel`.

    Audio at another rate than the model's 16 kHz is resampled (streaming) for the model only;
    boundaries stay in samples at ``sr``."""

    def __init__(self, sr: int, config: GateConfig = GateConfig(), model: SpeechModel | None = None) -> None:
        self.energy = VoiceGate(sr, config)
        self._resampler = None if int(sr) == FEATURES.sr else Resampler(int(sr), FEATURES.sr)
        self.sr, self.config = int(sr), config
        self.model = model if model is not None else shared_model()
        self.threshold = float(config.speech_threshold)
        self._stream = Stream(FEATURES)
        self._ctx = np.full((CONTEXT, FEATURES.n_mels), FLOOR_DB, np.float32)
        self._frames = 0  # log-mel frames since the stream (re)started
        self._offset = 0  # sample where the stream (re)started
        self._samples = 0
        self._open: list[_Pending] = []
        self.decisions = 0
        self._centre = -1  # sample at the centre of the last decision's context
        self.last_probability = 0.0

    @property
    def in_speech(self) -> bool:
        return any(p.confirmed and p.end is None for p in self._open)

    @property
    def deciding(self) -> bool:
        """An utterance is open or not yet confirmed or dropped."""
        return bool(self._open)

    @property
    def level_db(self) -> float:
        return self.energy.level_db

    @property
    def noise_db(self) -> float:
        """The energy gate's tracked noise floor (dBFS)."""
        return self.energy.noise_db

    @noise_db.setter
    def noise_db(self, value: float) -> None:
        self.energy.noise_db = value

    def push(self, chunk: np.ndarray) -> list[Boundary]:
        chunk = np.asarray(chunk, np.float32)
        self._samples += len(chunk)
        for b in self.energy.push(chunk):
            self._energy(b)
        out = self._resolve(final=False)
        return out + self._model_frames(chunk if self._resampler is None else self._resampler.push(chunk))

    def _model_frames(self, y16: np.ndarray) -> list[Boundary]:
        """Feeds 16 kHz audio to the model's feature stream; a decision every STEP frames."""
        out: list[Boundary] = []
        f = self._stream.push(y16).T
        if len(f):
            buf = np.concatenate([self._ctx, f])
            first, self._frames = self._frames, self._frames + len(f)
            for k in range(first - first % STEP + STEP, self._frames + 1, STEP):
                if self._open:
                    e = CONTEXT + k - first
                    out += self._decide(buf[e - CONTEXT : e], k)
                    out += self._resolve(final=False)
            self._ctx = buf[-CONTEXT:]
        return out

    def flush(self) -> list[Boundary]:
        """Ends the stream (or a gap in it): a last decision on what is left, then utterances
        are closed (confirmed) or dropped; the next push starts afresh."""
        for b in self.energy.flush():
            self._energy(b)
        out = self._resolve(final=False)
        if self._resampler is not None:
            out += self._model_frames(self._resampler.flush())
        if self._open and self._frames % STEP:
            out += self._decide(self._ctx, self._frames)
        out += self._resolve(final=True)
        self._stream.reset()
        self._ctx = np.full((CONTEXT, FEATURES.n_mels), FLOOR_DB, np.float32)
        self._offset, self._frames = self._samples, 0
        return out

    # -- internals ----------------------------------------------------------------------------------
    def _energy(self, b: Boundary) -> None:
        if b.kind == "start":
            self._open.append(_Pending(b.sample))
        else:
            for p in self._open:
                if p.end is None:
                    p.end = b.sample

    def _decide(self, block: np.ndarray, k: int) -> list[Boundary]:
        """One model decision on the context ending at frame ``k``; confirms the utterances
        whose span holds the context's centre."""
        prob = float(self.model.probability(model_input(block)[None])[0])
        self.decisions += 1
        self.last_probability = prob
        hop = FEATURES.hop_length
        centre16 = (k - 1) * hop + FEATURES.n_fft - (CONTEXT * hop) // 2  # in 16 kHz samples
        self._centre = self._offset + round(centre16 * self.sr / FEATURES.sr)
        out: list[Boundary] = []
        c = self.config
        for p in self._open:
            if p.start <= self._centre and (p.end is None or self._centre <= p.end):
                p.hits.append(prob >= self.threshold)
                p.dense = p.dense or sum(p.hits[-int(c.speech_window) :]) >= int(c.speech_min)
                if not p.confirmed and self._speech_like(p, ended=False):
                    p.confirmed = True
                    out.append(Boundary("start", p.start))
        return out

    def _speech_like(self, p: _Pending, ended: bool) -> bool:
        """Both steps of the confirmation (module docstring) on the decisions so far."""
        c = self.config
        k, n = int(c.speech_min), int(c.speech_window)
        hits = sum(p.hits)
        short = ended and len(p.hits) < n and hits >= max(1, k - 1) and len(p.hits) - hits <= n - k
        if not (p.dense or short):
            return False
        if float(c.speech_fraction) <= 0:
            return True
        first, span = p.hits.index(True), int(c.speech_span)
        if ended:  # the last `span` decisions up to the last speech-probable one (fewer for a short one)
            last = len(p.hits) - p.hits[::-1].index(True)
            tail = p.hits[max(first, last - span) : last]
        else:
            tail = p.hits[max(first, len(p.hits) - span) :]
            if len(tail) < span:
                return False
        return sum(tail) >= float(c.speech_fraction) * len(tail)

    def _resolve(self, final: bool) -> list[Boundary]:
        """Ends confirmed utterances that the energy gate ended; once the last decision of an
        ended unconfirmed one has passed (or at ``final``), confirms it whole if it is
        speech-like up to its end (a short word), else drops it."""
        out: list[Boundary] = []
        keep: list[_Pending] = []
        for p in self._open:
            if p.end is None:
                keep.append(p)
            elif p.confirmed:
                out.append(Boundary("end", p.end))
            elif not final and self._centre < p.end and not self._certain(p):
                keep.append(p)
            elif self._speech_like(p, ended=True):
                out += [Boundary("start", p.start), Boundary("end", p.end)]
        self._open = keep
        return out

    def _certain(self, p: _Pending) -> bool:
        """``p`` (ended) is speech-like whatever its decisions still to come: it need not wait
        for them (the event comes sooner; the boundaries are the same)."""
        c = self.config
        if not p.dense or p.end is None:
            return False
        if float(c.speech_fraction) <= 0:
            return True
        step = STEP * FEATURES.hop_length * self.sr / FEATURES.sr
        more = int(np.ceil((p.end - self._centre) / step)) + 1
        span = int(c.speech_span)
        tail = p.hits[max(p.hits.index(True), len(p.hits) - span) :]
        dropped = max(0, len(tail) + more - span)  # at worst all speech-probable
        return sum(tail) - dropped >= float(c.speech_fraction) * min(span, len(tail) + more)


def make_gate(sr: int, config: GateConfig = GateConfig(), model: SpeechModel | None = None) -> SpeechGate | VoiceGate:
    """The gate ``listen`` and ``predict`` use: :class:`SpeechGate` when ``config.speech``
    (with ``model``, else the packaged one)."""
    return SpeechGate(sr, config, model) if config.speech else VoiceGate(sr, config)


def speech_spans(
    y: np.ndarray,
    sr: int = FEATURES.sr,
    config: GateConfig = GateConfig(),
    *,
    chunk: float = 0.05,
    model: SpeechModel | None = None,
) -> list[tuple[int, int]]:
    """The utterances ``(start, end)`` (samples) that the gate passes on for a whole clip, pushed
    in ``chunk``-second pieces as ``listen`` reads a microphone."""
    gate = make_gate(sr, config, model)
    n = max(1, round(chunk * sr))
    bounds: list[Boundary] = []
    for i in range(0, len(y), n):
        bounds += gate.push(y[i : i + n])
    bounds += gate.flush()
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for b in bounds:
        if b.kind == "start":
            start = b.sample
        elif start is not None:
            spans.append((start, b.sample))
            start = None
    return spans
