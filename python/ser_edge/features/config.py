"""The feature configuration of a model's input, and extraction from it: batch, many clips in
parallel, and streaming. Training, ``predict``, ``listen`` and the federated client all build
features through :func:`extract` / :class:`Stream` from the configuration saved in the model bundle.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ser_edge import _dsp
from ser_edge._strict import known_keys
from ser_edge.features import _input as _in
from ser_edge.features.voice import VOICE_FEATURES

FEATURES = (
    "mfcc",
    "log_melspectrogram",
    "melspectrogram",
    "rms",
    "zero_crossing_rate",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_flatness",
    "spectral_flux",
    "spectral_entropy",
    "energy_entropy",
    "chroma_stft",
    "spectral_contrast",
) + VOICE_FEATURES


#: Fields added after the first bundles, with the default that :meth:`FeatureConfig.to_dict`
#: leaves out (a bundle without them means the default).
OPTIONAL_FIELDS: dict[str, Any] = {"f0": "yin"}


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that defines a model's input features.

    Rows of the output are the ``features`` stacked in order; each block equals the public
    function of that name called with these parameters (``frame_length=n_fft`` for the
    time-domain features, ``tuning=0.0`` for chroma, dB values with this ``ref``/``amin``). No
    ``top_db``: a clip relative to the loudest frame of a whole signal cannot be streamed, so
    dB values here depend on their own frame only. For the same reason ``spectral_contrast`` here
    is ``power_to_db(peak) - power_to_db(valley)`` of each frame without librosa's ``top_db=80``
    clip (``contrast_fmin``/``contrast_bands`` are librosa's ``fmin``/``n_bands``).

    ``f0`` chooses how the 60 ms voice descriptors (``f0_semitones``, ``voicing``, ``hnr``,
    ``jitter``, ``shimmer``) get F0 and the voiced/unvoiced decision: ``"yin"`` (default,
    frame-local, every row final with its frame) or ``"shs"`` (openSMILE's eGeMAPS tracker:
    subharmonic summation and its Viterbi smoother, whose decision for a frame can wait up to 39
    frames; :class:`Stream` then returns those rows, all features of them, that much later).

    Defaults: 16 kHz, 32 ms FFT window, 10 ms hop, 40 mel bands, 40 MFCC.
    """

    sr: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    mel_norm: str | None = "slaney"
    n_mfcc: int = 40
    lifter: float = 0.0
    ref: float = 1.0
    amin: float = 1e-10
    n_chroma: int = 12
    contrast_fmin: float = 200.0
    contrast_bands: int = 6
    features: tuple[str, ...] = ("mfcc",)
    f0: str = "yin"
    _spec: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        feats = (self.features,) if isinstance(self.features, str) else tuple(self.features)
        object.__setattr__(self, "features", feats)
        for name in feats:
            if name not in FEATURES:
                raise ValueError(f"features: unknown feature {name!r}; known: {', '.join(FEATURES)}")
        if isinstance(self.sr, float) and float(self.sr).is_integer():
            object.__setattr__(self, "sr", int(self.sr))
        if not isinstance(self.window, str):
            raise ValueError(f"window={self.window!r} must be a window name")
        contrast = {
            "fmin": _in.number("contrast_fmin", self.contrast_fmin),
            "n_bands": _in.count("contrast_bands", self.contrast_bands),
        }
        native = [(n, contrast if n == "spectral_contrast" else {}) for n in feats]
        spec = _in.spec(
            native,
            sr=self.sr,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode=self.pad_mode,
            power=self.power,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            mel_norm=self.mel_norm,
            n_mfcc=self.n_mfcc,
            lifter=self.lifter,
            ref=self.ref,
            amin=self.amin,
            n_chroma=self.n_chroma,
            f0=self.f0,
        )
        object.__setattr__(self, "_spec", spec)

    @property
    def n_features(self) -> int:
        """Rows per frame."""
        return int(self._spec.n_features)

    @property
    def rows(self) -> dict[str, tuple[int, int]]:
        """``[start, stop)`` of each feature's rows (the Rust core's table)."""
        return {name: (start, stop) for name, start, stop in self._spec.rows}

    def n_frames(self, n_samples: int) -> int:
        """Frames :func:`extract` gives for ``n_samples`` samples."""
        padded = n_samples + 2 * (self.n_fft // 2) if self.center else n_samples
        return 0 if padded < self.n_fft or n_samples == 0 else 1 + (padded - self.n_fft) // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for the model bundle)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        d["features"] = list(self.features)
        for name, default in OPTIONAL_FIELDS.items():
            # Defaults of fields added later are left out: bundles saved before them stay
            # byte-identical (and load unchanged).
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not ignored."""
        return cls(**known_keys(d, cls, "feature configuration"))


def extract(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features of a whole signal (at ``config.sr``), float32 ``(config.n_features, t)``."""
    return _dsp.extract(_in.audio(y), config._spec)


def extract_many(clips: Iterable[np.ndarray], config: FeatureConfig, *, n_jobs: int | None = None) -> list[np.ndarray]:
    """:func:`extract` on every clip, on ``n_jobs`` threads (default: all cores) with the GIL
    released. A bad clip raises ``ValueError`` naming its index."""
    arrays = [_in.audio(c, f"clips[{i}]") for i, c in enumerate(clips)]
    jobs = len(os.sched_getaffinity(0)) if n_jobs is None else _in.count("n_jobs", n_jobs)
    return list(_dsp.extract_many(arrays, config._spec, jobs))


class Stream:
    """Streaming extraction: :meth:`push` chunks of any size, then :meth:`flush` at the end of
    the signal. The frames returned, concatenated, equal :func:`extract` on the concatenated
    audio exactly.

    A frame is returned as soon as its last sample has arrived (with ``f0="shs"`` and a 60 ms voice
    descriptor, once the F0 smoother has also decided it: at most 39 frames later); with
    ``center=True`` the frames
    that overlap the end padding come from :meth:`flush`, which also resets the stream. A
    non-finite chunk raises ``ValueError`` and leaves the stream as it was; a chunk whose features
    overflow float32 (samples near 1e20) raises ``ValueError`` and resets the stream.
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._native = _dsp.Stream(config._spec)

    @property
    def n_features(self) -> int:
        return int(self._native.n_features)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Adds samples; returns the completed frames, float32 ``(n_features, k)``, k >= 0."""
        return self._native.push(_in.audio(chunk, "chunk"))

    def flush(self) -> np.ndarray:
        """Ends the signal: returns the remaining frames and resets."""
        return self._native.flush()

    def reset(self) -> None:
        """Drops buffered audio and starts a new signal."""
        self._native.reset()


__all__: Sequence[str] = ["FEATURES", "OPTIONAL_FIELDS", "FeatureConfig", "Stream", "extract", "extract_many"]
