"""Raw-waveform model inputs, on the device as in training: loudness, silence trimming and
fixed-length chunks (numpy only; the edge path imports it).

:class:`WaveformConfig` is the ``waveform`` part of an :class:`~ser_edge.inputs.InputConfig`
(written in ``bundle.json``): a clip is trimmed (:func:`trim_silence`, ``trim_db``), normalised
to ``loudness_dbfs`` (:func:`loudness_normalize`), cut into ``chunk``-second windows every
``hop`` seconds (:func:`sliding_windows`, rule :func:`window_starts`), and the model's chunk
probabilities are pooled into one prediction (``pooling``: ``"mean"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ser_edge._strict import known_keys

CHUNK_POOLINGS = ("mean",)


@dataclass(frozen=True)
class WaveformConfig:
    """How a clip becomes raw-waveform model inputs (see the module docstring)."""

    chunk: float = 1.0
    hop: float = 0.5
    pooling: str = "mean"
    trim_db: float = 40.0
    loudness_dbfs: float = -23.0

    def __post_init__(self) -> None:
        for key in ("chunk", "hop", "trim_db", "loudness_dbfs"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"waveform.{key}={v!r} must be a finite number")
        if not self.chunk > 0 or not 0 < self.hop <= self.chunk:
            raise ValueError(f"waveform: need chunk > 0 and 0 < hop <= chunk; got chunk={self.chunk}, hop={self.hop}")
        if not self.trim_db > 0:
            raise ValueError(f"waveform.trim_db={self.trim_db!r} must be > 0")
        if self.pooling not in CHUNK_POOLINGS:
            raise ValueError(f"waveform.pooling={self.pooling!r}; choose from {', '.join(CHUNK_POOLINGS)}")

    def samples(self, sr: int) -> int:
        """Samples per chunk at ``sr``."""
        return max(1, int(round(self.chunk * sr)))

    def prepare(self, y: np.ndarray) -> np.ndarray:
        """A clip as the model hears it: silence trimmed, loudness normalised."""
        return loudness_normalize(trim_silence(y, top_db=self.trim_db), self.loudness_dbfs)

    def chunks(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The model inputs of a prepared clip: float32 ``(n_chunks, samples(sr))``."""
        return sliding_windows(y, sr, window=self.chunk, hop=self.hop)

    def pool(self, probabilities: np.ndarray) -> np.ndarray:
        """One clip's probabilities from its chunks' ``(n_chunks, n_labels)``."""
        return np.asarray(probabilities, np.float32).mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> WaveformConfig:
        return cls(**known_keys(d, cls, "waveform"))


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf dB for silence is returned as -200)."""
    r = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    return 20.0 * np.log10(r) if r > 1e-10 else -200.0


def loudness_normalize(y: np.ndarray, target_dbfs: float = -23.0, *, peak: float = 0.999) -> np.ndarray:
    """Scales ``y`` to an RMS level of ``target_dbfs`` (then down, if needed, so no sample exceeds
    ``peak``). Silence is returned unchanged."""
    level = rms_dbfs(y)
    if level <= -200.0:
        return np.asarray(y, np.float32)
    out = np.asarray(y, np.float64) * 10.0 ** ((target_dbfs - level) / 20.0)
    m = np.abs(out).max()
    if m > peak:
        out *= peak / m
    return out.astype(np.float32)


def trim_silence(y: np.ndarray, *, top_db: float = 40.0, frame_length: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Drops leading and trailing audio whose frame RMS is more than ``top_db`` below the
    loudest frame (like ``librosa.effects.trim``). Returns ``y`` unchanged if it is all silence."""
    y = np.asarray(y, np.float32)
    if len(y) < frame_length:
        return y
    n = 1 + (len(y) - frame_length) // hop_length
    idx = np.arange(frame_length)[None, :] + hop_length * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(np.square(y[idx], dtype=np.float64), axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    loud = np.flatnonzero(db > db.max() - top_db)
    if rms.max() <= 1e-10 or len(loud) == 0:
        return y
    start, stop = loud[0] * hop_length, min(len(y), loud[-1] * hop_length + frame_length)
    return y[start:stop]


def window_starts(n: int, window: int, hop: int) -> np.ndarray:
    """Start indices of sliding windows of ``window`` items every ``hop`` items over ``n`` items.

    The rule: full windows start at ``0, hop, 2 * hop, ...``; if items are left after the last
    full window (the last partial window), one more window ends exactly at ``n``, so every item is
    in a window and no window is padded; a sequence shorter than one window (``n <= window``) is
    one window starting at 0 (the caller pads it or pools it short). ``hop`` must be in
    ``[1, window]``; ``n = 0`` gives no windows."""
    window, hop, n = int(window), int(hop), int(n)
    if window < 1 or not 1 <= hop <= window:
        raise ValueError(f"window={window} must be >= 1 and hop={hop} in [1, window]")
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if n <= window:
        return np.zeros(1 if n else 0, int)
    starts = np.arange(0, n - window + 1, hop)
    return starts if starts[-1] + window == n else np.append(starts, n - window)


def pad_or_crop(y: np.ndarray, n: int, *, where: str = "center") -> np.ndarray:
    """Exactly ``n`` samples: zero padding or cropping at the end (``where="end"``) or
    symmetrically (``"center"``)."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if where not in ("center", "end"):
        raise ValueError(f"where={where!r} must be 'center' or 'end'")
    y = np.asarray(y, np.float32)
    if len(y) >= n:
        start = (len(y) - n) // 2 if where == "center" else 0
        return y[start : start + n].copy()
    before = (n - len(y)) // 2 if where == "center" else 0
    return np.pad(y, (before, n - len(y) - before))


def sliding_windows(y: np.ndarray, sr: int, *, window: float = 1.0, hop: float = 0.5) -> np.ndarray:
    """Windows of ``window`` seconds every ``hop`` seconds of ``y``: float32
    ``(n_windows, round(window * sr))``.

    Rule (:func:`window_starts`): full windows start at 0, hop,
    2·hop, ...; if samples are left after the last full window, one more window ends at the
    clip's last sample (it overlaps its neighbour more than the others do), so no window is
    padded and every sample is in one. A clip shorter than one window gives one window, zero-padded
    at the end. ``hop`` must be in ``(0, window]``."""
    y = np.asarray(y, np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y must be a non-empty mono signal; got shape {y.shape}")
    if sr <= 0 or not window > 0 or not 0 < hop <= window:
        raise ValueError(f"need sr > 0, window > 0 and 0 < hop <= window; got sr={sr}, window={window}, hop={hop}")
    n, step = max(1, int(round(window * sr))), max(1, int(round(hop * sr)))
    if len(y) < n:
        return pad_or_crop(y, n, where="end")[None]
    starts = window_starts(len(y), n, min(step, n))
    return np.stack([y[s : s + n] for s in starts])


__all__ = [
    "CHUNK_POOLINGS",
    "WaveformConfig",
    "loudness_normalize",
    "pad_or_crop",
    "rms_dbfs",
    "sliding_windows",
    "trim_silence",
    "window_starts",
]
