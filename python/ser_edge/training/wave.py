"""Raw-waveform training for ``cnn_lstm_wave``.

The model's input is a waveform :class:`~ser_edge.inputs.InputConfig` (``models.WAVE_INPUT``):
its :class:`~ser_edge.waveform.WaveformConfig` prepares and chunks the audio here exactly as the
edge runtime does, so the trained model exports to a bundle that ``predict`` and ``listen`` run.

Flow: :func:`load_waves` reads each clip at 16 kHz, applies the optional noise reduction
(``denoise``), trims leading/trailing silence (40 dB) and normalises the loudness to -23 dBFS
(:func:`prepare`, ``WaveformConfig.prepare``); :func:`chunk_inputs` cuts every clip into sliding
windows of ``chunk`` seconds every ``hop`` seconds (``WaveformConfig.chunks``: 1 s and 0.5 s by
default; a clip shorter than a window is zero-padded). Each chunk inherits its clip's label, each clip's sample
weight is shared among its chunks, and a clip's prediction is the mean of its chunks'
probabilities. There is no speaker normalisation: the clip's loudness normalisation is the only
one, so "speaker" and "cold" evaluations would be the same and only "speaker" is reported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser_edge.inputs import InputConfig
from ser_edge.training.corpora import Clip
from ser_edge.training.dataset import ClipSet, Denoise, subset_index
from ser_edge.training.trainer import TrainConfig, Trained, sample_weights, window_weights
from ser_edge.waveform import WaveformConfig

SR = 16000


@dataclass
class WaveSet(ClipSet):
    """Clips with their prepared waveforms (``waves[i]``: float32 samples at ``sr``)."""

    clips: list[Clip]
    waves: list[np.ndarray]
    sr: int = SR
    source: np.ndarray | None = None

    def subset(self, index: Sequence[int] | np.ndarray) -> WaveSet:
        idx = subset_index(index)
        return WaveSet(
            [self.clips[i] for i in idx],
            [self.waves[i] for i in idx],
            self.sr,
            None if self.source is None else self.source[idx],
        )


def prepare(
    y: np.ndarray, sr: int, *, denoise: Denoise | None = None, waveform: WaveformConfig = WaveformConfig()
) -> np.ndarray:
    """One clip as the waveform model reads it: ``denoise`` (optional), then
    ``waveform.prepare`` (silence trimmed, loudness normalised), as on the device."""
    y = np.asarray(y, np.float32)
    if denoise is not None:
        y = denoise(y, sr)
    return waveform.prepare(y)


def load_waves(
    clips: Sequence[Clip],
    *,
    sr: int = SR,
    denoise: Denoise | None = None,
    progress: bool = False,
    waveform: WaveformConfig = WaveformConfig(),
) -> WaveSet:
    """Every clip read at ``sr`` and :func:`prepare`-d (not cached: reading is fast)."""
    from ser_edge.audio import load

    it: Any = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc="audio", unit="clip", leave=False)
    waves = []
    for clip in it:
        y, _ = load(clip.path, sr=sr)
        if len(y) == 0:
            raise ValueError(f"{clip.path}: no audio")
        waves.append(prepare(y, sr, denoise=denoise, waveform=waveform))
    return WaveSet(list(clips), waves, sr)


def chunk_inputs(waves: WaveSet, waveform: WaveformConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(x, owner)``: float32 ``(n_chunks, waveform.samples(sr))`` chunks of every (prepared)
    clip and the index of each chunk's clip."""
    parts = [waveform.chunks(y, waves.sr) for y in waves.waves]
    if not parts:
        return np.zeros((0, waveform.samples(waves.sr)), np.float32), np.zeros(0, int)
    owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    return np.concatenate(parts).astype(np.float32), owner


class TrainedWave(Trained):
    """A fitted raw-waveform model: a :class:`~ser_edge.training.trainer.Trained` whose inputs
    are the chunks of a ``WaveSet`` (``mode`` is accepted and ignored: no speaker normalisation).
    It exports to a bundle like any other model."""

    def window_inputs(self, waves: WaveSet, mode: str = "speaker") -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        """The chunks of ``waves`` and the clip of each."""
        assert self.input.waveform is not None
        return chunk_inputs(waves, self.input.waveform)


def wave_input(config: InputConfig | None, windows: Sequence[float] | None) -> InputConfig:
    """``config`` (default ``models.WAVE_INPUT``) with the chunk length and hop ``windows``
    (seconds), if given."""
    from ser_edge.training.models import WAVE_INPUT

    config = config or WAVE_INPUT
    if config.waveform is None:
        raise ValueError("a raw-waveform model needs a waveform InputConfig")
    if windows is None:
        return config
    return dataclasses.replace(
        config, waveform=dataclasses.replace(config.waveform, chunk=float(windows[0]), hop=float(windows[1]))
    )


def fit_wave(
    train: WaveSet, config: InputConfig | None, labels: Sequence[str], tc: TrainConfig, *, verbose: int = 0
) -> TrainedWave:
    """Fits ``tc.model`` (a raw-waveform model) on the chunks of ``train``: ``config`` (default
    ``models.WAVE_INPUT``) chunks the audio; ``tc.windows`` overrides its chunk length and hop
    (seconds)."""
    from ser_edge.bundle import Normalization
    from ser_edge.training.models import build

    if not isinstance(train, WaveSet):
        raise ValueError(f"model {tc.model!r} trains on a WaveSet (raw audio); got {type(train).__name__}")
    t0 = time.time()
    labels = tuple(labels)
    y = train.label_indices(labels)
    config = wave_input(config, tc.windows)
    assert config.waveform is not None
    x, owner = chunk_inputs(train, config.waveform)
    y = y[owner]
    w = sample_weights(train.clips) if tc.balance else np.ones(len(train), np.float32)
    model = build(tc.model, x.shape[1:], len(labels), lr=tc.lr, seed=tc.seed, **dict(tc.hparams))
    onehot = np.eye(len(labels), dtype=np.float32)[y]
    hist = model.fit(
        x,
        onehot,
        sample_weight=window_weights(w, owner),
        batch_size=tc.batch_size,
        epochs=tc.epochs,
        verbose=verbose,
        shuffle=True,
    )
    history = {k: [float(v) for v in vs] for k, vs in getattr(hist, "history", {}).items()}
    none = Normalization(frame_mean=np.zeros(0), frame_std=np.zeros(0), prior_frames=0.0)
    return TrainedWave(model, config, labels, none, x, history, time.time() - t0, tc)


__all__ = ["SR", "TrainedWave", "WaveSet", "chunk_inputs", "fit_wave", "load_waves", "prepare", "wave_input"]
