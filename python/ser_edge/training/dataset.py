"""Clips -> model inputs, through :class:`ser_edge.inputs.InputConfig` (the flow the device runs).

1. :func:`load_frames`: audio at ``config.sr`` -> ``config.frames`` -> ``config.voiced``, one
   array per clip, cached on disk under a key made of the configuration (sha256 of
   ``config.to_dict()``) and each file's path, size and modification time.
2. Normalisation statistics: :func:`speaker_stats` (one :class:`~ser_edge.inputs.FrameStats` per
   ``corpus/speaker``) and :func:`population_stats` (all frames: what a new device starts from).
3. :func:`model_inputs`: each clip's voiced frames z-scored with its speaker's statistics (or the
   population's), then ``config.pool``; :func:`standardization` gives the pooled vector's
   mean/std over the training set (stats pooling), applied by :func:`standardize`.
4. Sliding windows (``TrainConfig.windows``): :func:`window_inputs` pools windows of each clip's
   normalised voiced frames (:func:`window_starts` gives the rule) instead of the whole clip.
   Windowing the frames equals windowing the waveform and computing each window's frames, up to
   the STFT's centring at the window edges, and costs no new feature extraction. Because the frames
   are voice-gated first, a window of ``w`` seconds holds ``w`` seconds of *voiced* speech (pauses
   are skipped). The normalisation statistics are still those of whole clips, so overlapping
   windows do not weigh any frame twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ser_edge.audio import load
from ser_edge.inputs import FrameStats, InputConfig, normalize
from ser_edge.training.corpora import Clip
from ser_edge.waveform import window_starts

PathLike = Union[str, "os.PathLike[str]"]
#: ``augment(y, sr, rng) -> y``: a train-only change of the waveform (see ``augment.py``).
Augment = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
#: ``denoise(y, sr) -> y``: preprocessing of every clip (``denoise.SpectralGate``), after ``augment``.
Denoise = Callable[[np.ndarray, int], np.ndarray]


def default_cache_dir() -> Path:
    """``$SER_EDGE_CACHE`` or ``~/.cache/ser-edge/frames``."""
    env = os.environ.get("SER_EDGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ser-edge" / "frames"


def config_key(config: InputConfig) -> str:
    """A short hash of the input configuration (the cache folder name)."""
    blob = json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class ClipSet:
    """What every set of clips offers (:class:`FrameSet`, and the waveform models' ``WaveSet``)."""

    clips: list[Clip]

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.clips]

    @property
    def speakers(self) -> np.ndarray:
        """``corpus/speaker`` of every clip."""
        return np.array([c.speaker_key for c in self.clips])

    def label_indices(self, labels: Sequence[str]) -> np.ndarray:
        """Index in ``labels`` of every clip's label; ``ValueError`` if a label is not there."""
        index = {label: i for i, label in enumerate(labels)}
        missing = sorted({c.label for c in self.clips} - set(index))
        if missing:
            raise ValueError(f"training labels {missing} are not among the model's labels {list(labels)}")
        return np.array([index[c.label] for c in self.clips])


def subset_index(index: Sequence[int] | np.ndarray) -> np.ndarray:
    """Positions from a boolean mask or a list of positions."""
    return np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)


@dataclass
class FrameSet(ClipSet):
    """Clips with their voiced frames (``frames[i]``: float32 ``(t_i, n_frame_features)``)."""

    clips: list[Clip]
    frames: list[np.ndarray]
    #: For augmented copies: index of each clip's original in the set it was made from.
    source: np.ndarray | None = None

    def subset(self, index: Sequence[int] | np.ndarray) -> FrameSet:
        idx = subset_index(index)
        return FrameSet(
            [self.clips[i] for i in idx],
            [self.frames[i] for i in idx],
            None if self.source is None else self.source[idx],
        )


def concat(*sets: FrameSet) -> FrameSet:
    """One FrameSet holding the clips of all ``sets`` (``source`` is dropped)."""
    return FrameSet([c for s in sets for c in s.clips], [x for s in sets for x in s.frames])


def clip_frames(
    clip: Clip,
    config: InputConfig,
    *,
    augment: Augment | None = None,
    rng: np.random.Generator | None = None,
    denoise: Denoise | None = None,
) -> np.ndarray:
    """The voiced frames of one clip (``augment``, then ``denoise``, are applied to the waveform
    first: a device would denoise what it hears, noise and all)."""
    y, sr = load(clip.path, sr=config.sr)
    if augment is not None:
        y = augment(y, sr, rng if rng is not None else np.random.default_rng())
    if denoise is not None:
        y = denoise(y, sr)
    try:
        frames = config.frames(y)
    except ValueError as e:
        raise ValueError(f"{clip.path}: {e}") from None
    if len(frames) == 0:
        raise ValueError(f"{clip.path}: too short for one frame ({len(y)} samples)")
    return config.voiced(frames)


def seconds_to_frames(seconds: float, config: InputConfig) -> int:
    """How many frames (of ``config``'s hop) span ``seconds`` (at least 1)."""
    if not seconds > 0:
        raise ValueError(f"window length {seconds!r} s must be > 0")
    return max(1, int(round(float(seconds) * config.sr / config.features.hop_length)))


def load_frames(
    clips: Sequence[Clip],
    config: InputConfig,
    *,
    cache_dir: PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
    augment: Augment | None = None,
    seed: int = 0,
    denoise: Denoise | None = None,
) -> FrameSet:
    """Voiced frames of every clip. Cached on disk (``cache_dir``, default
    :func:`default_cache_dir`) unless ``use_cache=False`` or ``augment`` is given (augmented
    frames differ on every call). ``denoise`` (e.g. a ``denoise.SpectralGate``) is applied to
    every clip first; its ``key()`` (or repr) is part of the cache folder name.
    ``progress`` shows a tqdm bar."""
    rng = np.random.default_rng(seed)
    folder = Path(os.fspath(cache_dir)) if cache_dir is not None else default_cache_dir()
    folder = folder / config_key(config)
    if denoise is not None:
        text = denoise.key() if hasattr(denoise, "key") else repr(denoise)
        folder = folder.with_name(f"{folder.name}-dn{hashlib.sha256(text.encode()).hexdigest()[:8]}")
    caching = use_cache and augment is None
    if caching:
        folder.mkdir(parents=True, exist_ok=True)
    it = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc="features", unit="clip", leave=False)
    frames = []
    for clip in it:
        if not caching:
            frames.append(clip_frames(clip, config, augment=augment, rng=rng, denoise=denoise))
            continue
        path = folder / f"{_file_key(clip.path)}.npy"
        x = _read_cached(path)
        if x is None:
            x = clip_frames(clip, config, denoise=denoise)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, x)
            os.replace(tmp, path)
        frames.append(x)
    return FrameSet(list(clips), frames)


def _file_key(path: str) -> str:
    st = os.stat(path)
    return hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()


def _read_cached(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing or damaged: recompute


def speaker_stats(frames: FrameSet) -> dict[str, FrameStats]:
    """Statistics of each speaker's voiced frames (keys ``corpus/speaker``)."""
    out: dict[str, FrameStats] = {}
    for key, x in zip(frames.speakers, frames.frames):
        out.setdefault(str(key), FrameStats.empty(x.shape[1])).add(x)
    return out


def population_stats(frames: FrameSet, *, per_speaker: bool = False) -> FrameStats:
    """Statistics of all voiced frames (the normalisation a device starts from). With
    ``per_speaker=True`` the frames are first z-scored per speaker, which gives the statistics
    of the normalised population (mean ~0, std ~1)."""
    total = FrameStats.empty(frames.frames[0].shape[1])
    if per_speaker:
        stats = speaker_stats(frames)
        for key, x in zip(frames.speakers, frames.frames):
            s = stats[str(key)]
            total.add(normalize(x, s.mean, s.std))
        return total
    for x in frames.frames:
        total.add(x)
    return total


Stats = FrameStats | Mapping[str, FrameStats]


def model_inputs(frames: FrameSet, config: InputConfig, stats: Stats) -> np.ndarray:
    """Pooled model inputs ``(n, *config.input_shape)`` float32. ``stats``: one
    :class:`FrameStats` for every clip (population/"cold" normalisation) or a mapping
    ``corpus/speaker -> FrameStats`` (speaker normalisation)."""
    out = np.empty((len(frames), *config.input_shape), np.float32)
    for i, (key, x) in enumerate(zip(frames.speakers, frames.frames)):
        s = stats if isinstance(stats, FrameStats) else stats[str(key)]
        out[i] = config.pool(normalize(x, s.mean, s.std))
    return out


def window_inputs(
    frames: FrameSet, config: InputConfig, stats: Stats, window: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`model_inputs`, but one pooled input per sliding window (``window``/``hop`` in
    frames, :func:`window_starts`) of each clip's normalised frames. Returns ``(x, owner)``:
    ``owner[j]`` is the index in ``frames`` of the clip window ``j`` comes from."""
    rows, owner = [], []
    for i, (key, x) in enumerate(zip(frames.speakers, frames.frames)):
        s = stats if isinstance(stats, FrameStats) else stats[str(key)]
        z = normalize(x, s.mean, s.std)
        for start in window_starts(len(z), window, hop):
            rows.append(config.pool(z[start : start + window]))
            owner.append(i)
    if not rows:
        return np.zeros((0, *config.input_shape), np.float32), np.zeros(0, int)
    return np.stack(rows).astype(np.float32), np.array(owner, int)


def clip_mean(p: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per-clip mean of window rows ``p`` (``owner[j]``: the clip of row ``j``; ``n`` clips)."""
    p, owner = np.asarray(p, np.float64), np.asarray(owner, int)
    if len(p) != len(owner):
        raise ValueError(f"{len(p)} rows for {len(owner)} owners")
    counts = np.bincount(owner, minlength=n)
    if len(counts) > n or (counts == 0).any():
        raise ValueError("every clip needs at least one window, and owners must be < n")
    out = np.zeros((n, *p.shape[1:]))
    np.add.at(out, owner, p)
    return (out / counts.reshape(-1, *([1] * (p.ndim - 1)))).astype(np.float32)


def standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof 0) of pooled inputs over the training set (axis 0)."""
    x = np.asarray(x, np.float64)
    return x.mean(0), x.std(0)


def standardize(x: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """``(x - mean) / (std + 1e-5)`` as the runtime applies it (identity if ``mean`` is None)."""
    if mean is None or std is None:
        return np.asarray(x, np.float32)
    return normalize(x, mean, std)


def stats_for(
    frames: FrameSet, config: InputConfig, *, mode: str = "speaker", population: FrameStats | None = None
) -> Stats:
    """The normalisation statistics :func:`inputs_for` uses for ``frames`` under ``mode``."""
    if mode not in ("speaker", "cold"):
        raise ValueError(f"mode={mode!r} must be 'speaker' or 'cold'")
    if mode == "speaker" and config.normalization == "speaker":
        return speaker_stats(frames)
    return population if population is not None else population_stats(frames)


def inputs_for(
    frames: FrameSet, config: InputConfig, *, mode: str = "speaker", population: FrameStats | None = None
) -> np.ndarray:
    """Pooled model inputs of ``frames`` with normalisation ``mode``: ``"speaker"`` (each
    speaker's own statistics from their clips in ``frames``, used without labels: speaker
    adaptation) or ``"cold"`` (``population``, the training population's statistics; default:
    those of ``frames``). ``config.normalization="global"`` always uses the population's."""
    return model_inputs(frames, config, stats_for(frames, config, mode=mode, population=population))


__all__ = [
    "Augment",
    "Denoise",
    "FrameSet",
    "clip_frames",
    "clip_mean",
    "concat",
    "config_key",
    "default_cache_dir",
    "inputs_for",
    "load_frames",
    "model_inputs",
    "population_stats",
    "seconds_to_frames",
    "speaker_stats",
    "standardization",
    "standardize",
    "stats_for",
    "window_inputs",
    "window_starts",
]
