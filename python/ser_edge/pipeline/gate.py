"""Voice activity gating from the Rust core's per-frame RMS and zero-crossing rate.

A frame is *speech* when its level is above both an absolute floor (``threshold_db`` dBFS) and
the tracked noise floor plus ``margin_db``, and its zero-crossing rate is at most ``zcr_max``
(broadband noise crosses zero about every other sample). An utterance starts after
``min_speech`` seconds of speech frames in a row and ends after ``hangover`` seconds without
one (or at ``max_utterance``); its start includes ``pre_roll`` seconds before the first speech
frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_edge.features import FeatureConfig, Stream


@dataclass(frozen=True)
class GateConfig:
    threshold_db: float = -50.0
    margin_db: float = 10.0
    zcr_max: float = 0.45
    min_speech: float = 0.1
    hangover: float = 0.2
    pre_roll: float = 0.2
    max_utterance: float = 20.0
    noise_rise_db_per_s: float = 1.0
    speech: bool = True
    speech_threshold: float = 0.8
    speech_min: int = 5
    speech_window: int = 6
    speech_fraction: float = 0.5
    speech_span: int = 15

    def __post_init__(self) -> None:
        for name in ("min_speech", "hangover", "pre_roll", "noise_rise_db_per_s"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"gate {name}={getattr(self, name)!r} must be >= 0")
        if not 0 < float(self.zcr_max) <= 1:
            raise ValueError(f"gate zcr_max={self.zcr_max!r} must be in (0, 1]")
        if not 0 < float(self.speech_threshold) < 1:
            raise ValueError(f"gate speech_threshold={self.speech_threshold!r} must be in (0, 1)")
        if not 1 <= int(self.speech_min) <= int(self.speech_window):
            raise ValueError(f"gate speech_min={self.speech_min!r} must be in 1..speech_window={self.speech_window!r}")
        if not 0 <= float(self.speech_fraction) <= 1:
            raise ValueError(f"gate speech_fraction={self.speech_fraction!r} must be in [0, 1]")
        if not int(self.speech_span) >= 1:
            raise ValueError(f"gate speech_span={self.speech_span!r} must be >= 1")
        if not float(self.max_utterance) > 0:
            raise ValueError(f"gate max_utterance={self.max_utterance!r} must be > 0")


@dataclass(frozen=True)
class Boundary:
    """An utterance boundary: ``kind`` is ``"start"`` or ``"end"``; ``sample`` is the absolute
    stream index (start: first sample of the utterance incl. pre-roll; end: one past its last)."""

    kind: str
    sample: int


class VoiceGate:
    """Push audio chunks at ``sr``; get utterance boundaries. 25 ms frames, 10 ms hop."""

    def __init__(self, sr: int, config: GateConfig = GateConfig()) -> None:
        self.sr, self.config = int(sr), config
        self.hop = max(1, round(self.sr * 0.010))
        self.n_fft = max(2, round(self.sr * 0.025))
        self._stream = Stream(
            FeatureConfig(
                sr=self.sr, n_fft=self.n_fft, hop_length=self.hop, center=False, features=("rms", "zero_crossing_rate")
            )
        )
        self._frame = 0  # index of the next frame since the stream (re)started
        self._offset = 0  # sample index where the stream (re)started
        self._samples = 0  # samples pushed
        self.noise_db = -90.0
        self.in_speech = False
        self._run = 0  # speech frames in a row (while silent)
        self._silence = 0  # non-speech frames in a row (while in speech)
        self._start = 0  # utterance start sample
        self._last_speech_end = 0
        self.level_db = -120.0

    @property
    def deciding(self) -> bool:
        """An utterance is open (as :attr:`SpeechGate.deciding`)."""
        return self.in_speech

    def _frames(self, seconds: float) -> int:
        return max(1, round(seconds / (self.hop / self.sr)))

    def push(self, chunk: np.ndarray) -> list[Boundary]:
        chunk = np.asarray(chunk, np.float32)
        feats = self._stream.push(chunk)
        self._samples += len(chunk)
        out: list[Boundary] = []
        if feats.shape[1] == 0:
            return out
        db = 20.0 * np.log10(np.maximum(feats[0], 1e-6))
        zcr = feats[1]
        c = self.config
        rise = float(c.noise_rise_db_per_s) * self.hop / self.sr
        min_run, hang, max_len = self._frames(c.min_speech), self._frames(c.hangover), round(c.max_utterance * self.sr)
        for level, z in zip(db.tolist(), zcr.tolist()):
            k = self._frame
            self._frame += 1
            self.level_db = level
            speech = level > c.threshold_db and level > self.noise_db + c.margin_db and z <= c.zcr_max
            self.noise_db = min(self.noise_db + rise, level)
            frame_start = self._offset + k * self.hop
            frame_end = frame_start + self.n_fft
            if not self.in_speech:
                self._run = self._run + 1 if speech else 0
                if self._run >= min_run:
                    first = frame_start - (self._run - 1) * self.hop
                    self._start = max(0, first - round(c.pre_roll * self.sr))
                    self.in_speech, self._silence = True, 0
                    self._last_speech_end = frame_end
                    out.append(Boundary("start", self._start))
                continue
            if speech:
                self._silence = 0
                self._last_speech_end = frame_end
            else:
                self._silence += 1
            if self._silence >= hang or frame_end + self.hop - self._start > max_len:
                end = self._last_speech_end if self._silence >= hang else frame_end
                out.append(Boundary("end", end))
                self.in_speech, self._run = False, 0
                if self._silence < hang and speech:  # split a long utterance: the next starts here
                    self._start = end
                    self.in_speech, self._silence = True, 0
                    out.append(Boundary("start", end))
        return out

    def flush(self) -> list[Boundary]:
        """Ends the stream (or a gap in it): closes an open utterance; the next push starts afresh."""
        self._stream.reset()
        self._offset, self._frame, self._run = self._samples, 0, 0
        if self.in_speech:
            self.in_speech = False
            return [Boundary("end", self._last_speech_end)]
        return []
