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
from typing import Any

import numpy as np

from ser_edge._strict import known_keys
from ser_edge.features import FeatureConfig, delta, extract
from ser_edge.features import _input as _in
from ser_edge.waveform import WaveformConfig

#: Rows replaced by ``log(x + LOG_EPS)``: energy-like values spread over orders of magnitude.
LOG_FEATURES = ("rms", "spectral_flatness", "spectral_flux")
LOG_EPS = 1e-8
#: Statistics of the normalised voiced frames that make an utterance vector, in this order.
STATS = ("mean", "std", "p10", "p50", "p90")
POOLINGS = ("stats", "sequence")
#: Bounds on the pooling and gate parameters (with the Rust core's bounds on the feature sizes).
MAX_SEQ_FRAMES = 100_000
MAX_DELTA_WIDTH = 1025
MAX_VAD_DB = 200.0

DEFAULT_FEATURES = FeatureConfig(
    sr=16000,
    n_fft=1024,
    win_length=800,
    hop_length=160,
    n_mels=64,
    fmax=8000.0,
    n_mfcc=40,
    contrast_fmin=100.0,
    contrast_bands=6,
    features=(
        "log_melspectrogram",
        "mfcc",
        "rms",
        "zero_crossing_rate",
        "spectral_centroid",
        "spectral_bandwidth",
        "spectral_rolloff",
        "spectral_flatness",
        "spectral_contrast",
        "chroma_stft",
        "spectral_flux",
        "spectral_entropy",
    ),
)


#: Fields added after the first bundles, with the value that turns them off: a bundle may leave
#: them out (then they are off), so older bundles keep loading.
OPTIONAL_FIELDS: dict[str, Any] = {"vad_floor_db": None, "waveform": None}


@dataclass(frozen=True)
class InputConfig:
    """The model input: frame features, voice gating, and pooling.

    - ``features``: the Rust core's frame features (must include ``rms`` for the gate).
    - ``deltas``: 0, 1 or 2: append Δ (and ΔΔ) of the ``mfcc`` rows, ``delta_width`` frames wide.
    - ``vad_db``: keep frames whose RMS is within this many dB of the clip's loudest frame (None:
      keep all); clips with fewer than ``min_frames`` such frames keep all frames.
    - ``vad_floor_db``: also drop frames less than this many dB above the clip's noise floor (the
      10th percentile of its frame levels), so that in noise the pauses, now filled with noise,
      are not pooled as speech (None: off).
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
    vad_db: float | None = 35.0
    vad_floor_db: float | None = None
    min_frames: int = 5
    pooling: str = "stats"
    seq_frames: int = 300
    normalization: str = "speaker"
    waveform: WaveformConfig | None = None
    _rows: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.features, FeatureConfig):
            raise ValueError(f"features must be a FeatureConfig; got {type(self.features).__name__}")
        if isinstance(self.deltas, bool) or self.deltas not in (0, 1, 2):
            raise ValueError(f"deltas={self.deltas!r} must be 0, 1 or 2")
        if self.deltas and "mfcc" not in self.features.features:
            raise ValueError("deltas need 'mfcc' in features.features")
        if self.vad_db is not None and not (0 < _in.number("vad_db", self.vad_db) <= MAX_VAD_DB):
            raise ValueError(f"vad_db={self.vad_db!r} must be a positive number of dB (at most {MAX_VAD_DB:g}) or None")
        if self.vad_floor_db is not None and not (0 <= _in.number("vad_floor_db", self.vad_floor_db) <= MAX_VAD_DB):
            raise ValueError(
                f"vad_floor_db={self.vad_floor_db!r} must be a non-negative number of dB (at most "
                f"{MAX_VAD_DB:g}) or None"
            )
        if (self.vad_db is not None or self.vad_floor_db is not None) and "rms" not in self.features.features:
            raise ValueError("vad_db and vad_floor_db need 'rms' in features.features")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; choose from {', '.join(POOLINGS)}")
        if self.normalization not in ("speaker", "global"):
            raise ValueError(f"normalization={self.normalization!r} must be 'speaker' or 'global'")
        _in.count("min_frames", self.min_frames)
        if _in.count("seq_frames", self.seq_frames) > MAX_SEQ_FRAMES:
            raise ValueError(f"seq_frames={self.seq_frames} must be at most {MAX_SEQ_FRAMES}")
        width = _in.count("delta_width", self.delta_width, minimum=3)
        if width % 2 != 1 or width > MAX_DELTA_WIDTH:
            raise ValueError(f"delta_width={width} must be an odd integer in [3, {MAX_DELTA_WIDTH}]")
        if self.waveform is not None:
            if not isinstance(self.waveform, WaveformConfig):
                raise ValueError(f"waveform must be a WaveformConfig; got {type(self.waveform).__name__}")
            if self.deltas or self.vad_db is not None:
                raise ValueError("a waveform input has no frame features: it needs deltas=0 and vad_db=None")
        object.__setattr__(self, "_rows", self.features.rows)

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
        return np.ascontiguousarray(self.with_deltas(self.with_logs(extract(y, self.features))).T)

    def with_logs(self, x: np.ndarray) -> np.ndarray:
        """Feature rows ``(n_features, t)`` with :data:`LOG_FEATURES` rows logged (in place)."""
        for name in LOG_FEATURES:
            if name in self._rows:
                a, b = self._rows[name]
                x[a:b] = np.log(x[a:b] + np.float32(LOG_EPS))
        return x

    def with_deltas(self, x: np.ndarray) -> np.ndarray:
        """Rows ``(n_features, t)`` with the MFCC deltas appended. A clip with frames but fewer
        than ``delta_width`` of them is too short for the deltas: ``ValueError`` saying so."""
        if not self.deltas:
            return x
        a, b = self._rows["mfcc"]
        if not x.shape[1]:
            return np.vstack([x, np.zeros((self.deltas * (b - a), 0), np.float32)])
        if x.shape[1] < self.delta_width:
            hop = self.features.hop_length
            raise ValueError(
                f"the clip is too short: {x.shape[1]} frame(s); the model needs at least "
                f"{self.delta_width} (about {(self.delta_width - 1) * hop / self.sr:.2f} s of audio)"
            )
        return np.vstack([x] + [delta(x[a:b], width=self.delta_width, order=k) for k in range(1, self.deltas + 1)])

    def voiced(self, frames: np.ndarray) -> np.ndarray:
        """The frames the voice gate keeps (all if the gate is off or keeps too few)."""
        if (self.vad_db is None and self.vad_floor_db is None) or len(frames) == 0:
            return frames
        keep = self.voiced_mask(frames[:, self.row("rms")])
        return frames if keep is None else frames[keep]

    def voiced_mask(self, rms: np.ndarray) -> np.ndarray | None:
        """Which frames the gate keeps, from their (logged) ``rms`` values; ``None``: all."""
        if (self.vad_db is None and self.vad_floor_db is None) or len(rms) == 0:
            return None
        db = rms * np.float32(20.0 / np.log(10.0))
        keep = np.ones(len(db), bool)
        if self.vad_db is not None:
            keep &= db > db.max() - np.float32(self.vad_db)
        if self.vad_floor_db is not None:
            keep &= db > np.percentile(db, 10) + np.float32(self.vad_floor_db)
        return keep if int(keep.sum()) >= int(self.min_frames) else None

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
        part = normalized[start : start + n]
        out[: len(part)] = part
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
        for name, off in OPTIONAL_FIELDS.items():  # written only when used: older configurations keep their dict
            if d[name] == off:
                del d[name]
        if self.waveform is not None:
            d["waveform"] = self.waveform.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(known_keys(d, cls, "input configuration"))
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
    def empty(cls, dim: int) -> FrameStats:
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, frames: np.ndarray) -> FrameStats:
        f = np.asarray(frames, np.float64)
        mean = f.mean(0) if len(f) else np.zeros(f.shape[1])
        return cls(float(len(f)), mean, ((f - mean) ** 2).sum(0))

    def add(self, frames: np.ndarray) -> None:
        """Adds frames ``(t, dim)``."""
        self.merge(FrameStats.of(frames))

    def merge(self, other: FrameStats) -> None:
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
        self.prior = FrameStats(
            float(prior_frames), np.asarray(mean, np.float64), np.asarray(std, np.float64) ** 2 * float(prior_frames)
        )
        self.heard = FrameStats.empty(len(self.prior.mean))
        self.adapt = adapt

    def update(self, voiced: np.ndarray) -> None:
        if self.adapt:
            self.heard.add(voiced)

    def reset(self) -> None:
        self.heard = FrameStats.empty(len(self.prior.mean))

    def stats(self) -> FrameStats:
        """The statistics :meth:`normalize` uses: the prior merged with what was heard."""
        s = FrameStats(self.prior.count, self.prior.mean.copy(), self.prior.m2.copy())
        if self.heard.count:
            s.merge(self.heard)
        return s

    def normalize(self, frames: np.ndarray, cols: slice = slice(None)) -> np.ndarray:
        """``frames`` z-scored; ``cols``: the frame columns ``frames`` holds (default: all)."""
        s = self.stats()
        return normalize(frames, s.mean[cols], s.std[cols])


def normalize(frames: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(frames - mean) / (std + 1e-5)`` in float32."""
    return ((frames - mean) / (std + 1e-5)).astype(np.float32)
