"""What a model reads, and how audio becomes it: the one configuration saved in a model bundle.

Audio flows one way: ``frames`` (the Rust feature core, log of the energy-like rows, deltas of
the MFCC) -> ``voiced`` (frames within ``vad_db`` of the clip's loudest) -> speaker
normalisation (:class:`FrameStats`, :class:`Adapter`) -> ``pool`` (an utterance vector, or a
fixed-length frame sequence) -> the model. Training, ``predict``, ``listen`` and the federated
client all call these functions with the bundle's :class:`InputConfig`.

A raw-waveform model (``InputConfig.waveform`` set, :class:`~ser_edge.waveform.WaveformConfig`)
reads chunks of the loudness-normalised clip instead (:meth:`InputConfig.waveform_inputs`), and
its chunk probabilities are pooled into one prediction (:meth:`InputConfig.pool_chunks`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ser_edge.features import FeatureConfig, delta, extract
from ser_edge.waveform import WaveformConfig

#: Rows replaced by ``log(x + LOG_EPS)``: energy-like values spread over orders of magnitude.
LOG_FEATURES = ("rms", "spectral_flatness", "spectral_flux")
LOG_EPS = 1e-8
#: Statistics of the normalised voiced frames that make an utterance vector, in this order.
STATS = ("mean", "std", "p10", "p50", "p90")
POOLINGS = ("stats", "sequence")

DEFAULT_FEATURES = FeatureConfig(
    sr=16000, n_fft=1024, win_length=800, hop_length=160, n_mels=64, fmax=8000.0, n_mfcc=40,
    contrast_fmin=100.0, contrast_bands=6,
    features=("log_melspectrogram", "mfcc", "rms", "zero_crossing_rate", "spectral_centroid",
              "spectral_bandwidth", "spectral_rolloff", "spectral_flatness", "spectral_contrast",
              "chroma_stft", "spectral_flux", "spectral_entropy"),
)


@dataclass(frozen=True)
class InputConfig:
    """The model input: frame features, voice gating, and pooling.

    - ``features``: the Rust core's frame features (must include ``rms`` for the gate).
    - ``deltas``: 0, 1 or 2: append Δ (and ΔΔ) of the ``mfcc`` rows, ``delta_width`` frames wide.
    - ``vad_db``: keep frames whose RMS is within this many dB of the clip's loudest frame (None:
      keep all); clips with fewer than ``min_frames`` such frames keep all frames.
    - ``pooling``: ``"stats"`` gives one vector per clip (:data:`STATS` of every frame row);
      ``"sequence"`` gives ``(seq_frames, n_frame_features)`` (centre crop or zero padding).
    - ``normalization``: ``"speaker"`` (frames z-scored with the speaker's statistics, adapted on
      the device) or ``"global"`` (the training population's statistics only).
    - ``waveform``: set for a raw-waveform model (:attr:`kind` ``"waveform"``): the model reads
      chunks of samples at ``features.sr`` (:meth:`waveform_inputs`), with no frame features,
      voice gate or speaker normalisation (``deltas=0``, ``vad_db=None``). None: frame features.
    """

    features: FeatureConfig = DEFAULT_FEATURES
    deltas: int = 2
    delta_width: int = 9
    vad_db: Optional[float] = 35.0
    min_frames: int = 5
    pooling: str = "stats"
    seq_frames: int = 300
    normalization: str = "speaker"
    waveform: Optional[WaveformConfig] = None
    _rows: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.features, FeatureConfig):
            raise ValueError(f"features must be a FeatureConfig; got {type(self.features).__name__}")
        if self.deltas not in (0, 1, 2):
            raise ValueError(f"deltas={self.deltas!r} must be 0, 1 or 2")
        if self.deltas and "mfcc" not in self.features.features:
            raise ValueError("deltas need 'mfcc' in features.features")
        if self.vad_db is not None and not (float(self.vad_db) > 0):
            raise ValueError(f"vad_db={self.vad_db!r} must be a positive number of dB or None")
        if self.vad_db is not None and "rms" not in self.features.features:
            raise ValueError("vad_db needs 'rms' in features.features")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; choose from {', '.join(POOLINGS)}")
        if self.normalization not in ("speaker", "global"):
            raise ValueError(f"normalization={self.normalization!r} must be 'speaker' or 'global'")
        if int(self.min_frames) < 1 or int(self.seq_frames) < 1 or int(self.delta_width) < 3:
            raise ValueError("min_frames and seq_frames must be >= 1, delta_width >= 3")
        if self.waveform is not None:
            if not isinstance(self.waveform, WaveformConfig):
                raise ValueError(f"waveform must be a WaveformConfig; got {type(self.waveform).__name__}")
            if self.deltas or self.vad_db is not None:
                raise ValueError("a waveform input has no frame features: it needs deltas=0 and vad_db=None")
        object.__setattr__(self, "_rows", _row_ranges(self.features))

    @property
    def sr(self) -> int:
        return int(self.features.sr)

    @property
    def kind(self) -> str:
        """``"frames"`` (frame features) or ``"waveform"`` (raw sample chunks)."""
        return "frames" if self.waveform is None else "waveform"

    @property
    def n_frame_features(self) -> int:
        """Values per frame after logs and deltas (0 for a waveform input: no frames)."""
        if self.waveform is not None:
            return 0
        return self.features.n_features + self.deltas * self.features.n_mfcc

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one model input (without the batch axis)."""
        if self.waveform is not None:
            return (self.waveform.samples(self.sr),)
        d = self.n_frame_features
        return (len(STATS) * d,) if self.pooling == "stats" else (int(self.seq_frames), d)

    def row(self, name: str) -> int:
        """Index of the first frame row of feature ``name``."""
        return self._rows[name][0]

    # -- the flow ---------------------------------------------------------------------------------
    def frames(self, y: np.ndarray) -> np.ndarray:
        """Frame features of a clip at ``self.sr``: float32 ``(t, n_frame_features)``."""
        x = extract(y, self.features)
        for name in LOG_FEATURES:
            if name in self._rows:
                a, b = self._rows[name]
                x[a:b] = np.log(x[a:b] + np.float32(LOG_EPS))
        if self.deltas:
            a, b = self._rows["mfcc"]
            x = np.vstack([x] + [delta(x[a:b], width=self.delta_width, order=k) for k in range(1, self.deltas + 1)]
                          if x.shape[1] else [x, np.zeros((self.deltas * (b - a), 0), np.float32)])
        return np.ascontiguousarray(x.T)

    def voiced(self, frames: np.ndarray) -> np.ndarray:
        """The frames the voice gate keeps (all if the gate is off or keeps too few)."""
        if self.vad_db is None or len(frames) == 0:
            return frames
        db = frames[:, self.row("rms")] * np.float32(20.0 / np.log(10.0))
        keep = db > db.max() - np.float32(self.vad_db)
        return frames[keep] if int(keep.sum()) >= int(self.min_frames) else frames

    def pool(self, normalized: np.ndarray) -> np.ndarray:
        """One model input from a clip's normalised voiced frames (float32 ``input_shape``)."""
        if len(normalized) == 0:
            raise ValueError("the clip has no frames (shorter than one hop?)")
        if self.pooling == "stats":
            q = np.percentile(normalized, (10, 50, 90), axis=0)
            v = np.concatenate([normalized.mean(0), normalized.std(0), q[0], q[1], q[2]])
            return v.astype(np.float32)
        n, out = int(self.seq_frames), np.zeros(self.input_shape, np.float32)
        start = max(0, (len(normalized) - n) // 2)
        part = normalized[start:start + n]
        out[:len(part)] = part
        return out

    def waveform_inputs(self, y: np.ndarray) -> np.ndarray:
        """The model inputs of a clip at ``self.sr`` for a waveform input: float32
        ``(n_chunks, *input_shape)`` chunks of the trimmed, loudness-normalised clip."""
        if self.waveform is None:
            raise ValueError("waveform_inputs needs a waveform input (InputConfig.waveform)")
        y = np.asarray(y, np.float32)
        if y.ndim != 1 or len(y) == 0 or not np.all(np.isfinite(y)):
            raise ValueError(f"y must be a non-empty, finite mono signal; got shape {y.shape}")
        return self.waveform.chunks(self.waveform.prepare(y), self.sr)

    def pool_chunks(self, probabilities: np.ndarray) -> np.ndarray:
        """One clip's probabilities from those of its chunks (waveform inputs)."""
        if self.waveform is None:
            raise ValueError("pool_chunks needs a waveform input (InputConfig.waveform)")
        return self.waveform.pool(probabilities)

    # -- the bundle -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        d["features"] = self.features.to_dict()
        if self.waveform is None:  # frame inputs keep the dict they always had
            del d["waveform"]
        else:
            d["waveform"] = self.waveform.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise ValueError(f"input configuration must be a mapping; got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"input configuration has unknown keys: {', '.join(unknown)}")
        d = dict(d)
        if "features" in d:
            d["features"] = FeatureConfig.from_dict(d["features"])
        if d.get("waveform") is not None:
            d["waveform"] = WaveformConfig.from_dict(d["waveform"])
        return cls(**d)


@dataclass
class FrameStats:
    """Running count, mean and variance of frame rows (Chan/Welford merge; float64)."""

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "FrameStats":
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, frames: np.ndarray) -> "FrameStats":
        f = np.asarray(frames, np.float64)
        mean = f.mean(0) if len(f) else np.zeros(f.shape[1])
        return cls(float(len(f)), mean, ((f - mean) ** 2).sum(0))

    def add(self, frames: np.ndarray) -> None:
        """Adds frames ``(t, dim)``."""
        self.merge(FrameStats.of(frames))

    def merge(self, other: "FrameStats") -> None:
        """Adds another set's statistics."""
        n = self.count + other.count
        if other.count == 0:
            return
        d = other.mean - self.mean
        self.mean = self.mean + d * (other.count / n)
        self.m2 = self.m2 + other.m2 + d * d * (self.count * other.count / n)
        self.count = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1.0))


class Adapter:
    """Speaker normalisation on the device: z-scores frames with statistics that start at the
    training population's (worth ``prior_frames`` frames) and move towards the voiced frames
    this device has heard. With ``normalization="global"`` it never moves."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, prior_frames: float, adapt: bool = True) -> None:
        self.prior = FrameStats(float(prior_frames), np.asarray(mean, np.float64),
                                np.asarray(std, np.float64) ** 2 * float(prior_frames))
        self.heard = FrameStats.empty(len(self.prior.mean))
        self.adapt = adapt

    def update(self, voiced: np.ndarray) -> None:
        if self.adapt:
            self.heard.add(voiced)

    def reset(self) -> None:
        self.heard = FrameStats.empty(len(self.prior.mean))

    def normalize(self, frames: np.ndarray) -> np.ndarray:
        s = FrameStats(self.prior.count, self.prior.mean.copy(), self.prior.m2.copy())
        if self.heard.count:
            s.merge(self.heard)
        return normalize(frames, s.mean, s.std)


def normalize(frames: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(frames - mean) / (std + 1e-5)`` in float32."""
    return ((frames - mean) / (std + 1e-5)).astype(np.float32)


def _row_ranges(config: FeatureConfig) -> dict[str, tuple[int, int]]:
    sizes = {"mfcc": config.n_mfcc, "log_melspectrogram": config.n_mels, "melspectrogram": config.n_mels,
             "chroma_stft": config.n_chroma, "spectral_contrast": config.contrast_bands + 1}
    rows, start = {}, 0
    for name in config.features:
        rows[name] = (start, start + sizes.get(name, 1))
        start += sizes.get(name, 1)
    return rows
