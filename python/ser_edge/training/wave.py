"""Raw-waveform training for ``cnn_lstm_wave`` (training-side only).

The model bundle and the edge runtime feed frame features (:class:`~ser_edge.inputs.InputConfig`),
not raw audio, so a raw-waveform model is trained, converted to TFLite (for its size and parity)
and evaluated here, but never bundled.

Flow: :func:`load_waves` reads each clip at 16 kHz, applies the optional noise reduction
(``denoise``), trims leading/trailing silence (40 dB) and normalises the loudness to -23 dBFS
(:func:`prepare`); :func:`chunk_inputs` cuts every clip into sliding windows of ``window``
seconds every ``hop`` seconds (``augment.sliding_windows``: 1 s and 0.5 s by default; a clip
shorter than a window is zero-padded). Each chunk inherits its clip's label, each clip's sample
weight is shared among its chunks, and a clip's prediction is the mean of its chunks'
probabilities. There is no speaker normalisation: the clip's loudness normalisation is the only
one, so "speaker" and "cold" evaluations would be the same and only "speaker" is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from ser_edge.training.corpora import Clip
from ser_edge.training.dataset import ClipSet, Denoise, subset_index

SR = 16000
DEFAULT_WINDOWS = (1.0, 0.5)  # seconds: window, hop


@dataclass
class WaveSet(ClipSet):
    """Clips with their prepared waveforms (``waves[i]``: float32 samples at ``sr``)."""

    clips: list[Clip]
    waves: list[np.ndarray]
    sr: int = SR
    source: Optional[np.ndarray] = None

    def subset(self, index: Union[Sequence[int], np.ndarray]) -> "WaveSet":
        idx = subset_index(index)
        return WaveSet([self.clips[i] for i in idx], [self.waves[i] for i in idx], self.sr,
                       None if self.source is None else self.source[idx])


def prepare(y: np.ndarray, sr: int, *, denoise: Optional[Denoise] = None, top_db: float = 40.0,
            target_dbfs: float = -23.0) -> np.ndarray:
    """One clip as the waveform model reads it: ``denoise`` (optional), then silence trimmed at
    ``top_db`` and loudness normalised to ``target_dbfs``."""
    from ser_edge.training.augment import loudness_normalize, trim_silence

    y = np.asarray(y, np.float32)
    if denoise is not None:
        y = denoise(y, sr)
    return loudness_normalize(trim_silence(y, top_db=top_db), target_dbfs)


def load_waves(clips: Sequence[Clip], *, sr: int = SR, denoise: Optional[Denoise] = None,
               progress: bool = False) -> WaveSet:
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
        waves.append(prepare(y, sr, denoise=denoise))
    return WaveSet(list(clips), waves, sr)


def chunk_inputs(waves: WaveSet, window: float, hop: float) -> tuple[np.ndarray, np.ndarray]:
    """``(x, owner)``: float32 ``(n_chunks, round(window * sr))`` sliding windows of every clip
    and the index of each chunk's clip."""
    from ser_edge.training.augment import sliding_windows

    parts = [sliding_windows(y, waves.sr, window=window, hop=hop) for y in waves.waves]
    if not parts:
        return np.zeros((0, int(round(window * waves.sr))), np.float32), np.zeros(0, int)
    owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    return np.concatenate(parts).astype(np.float32), owner


@dataclass
class TrainedWave:
    """A fitted raw-waveform model; the same interface as ``trainer.Trained`` for
    ``trainer.evaluate_split`` (``mode`` is accepted and ignored: no speaker normalisation)."""

    model: Any
    labels: tuple[str, ...]
    windows: tuple[float, float]
    train_inputs: np.ndarray
    history: dict[str, list[float]]
    seconds: float
    config: Any  # trainer.TrainConfig

    def window_inputs(self, waves: WaveSet, mode: str = "speaker") -> tuple[np.ndarray, np.ndarray]:
        """The chunks of ``waves`` and the clip of each."""
        return chunk_inputs(waves, *self.windows)

    def inputs(self, waves: WaveSet, mode: str = "speaker") -> np.ndarray:
        return self.window_inputs(waves, mode)[0]

    def probabilities(self, waves: WaveSet, mode: str = "speaker") -> np.ndarray:
        """Per-clip probabilities: the mean over each clip's chunks."""
        from ser_edge.training.dataset import clip_mean

        x, owner = self.window_inputs(waves, mode)
        return clip_mean(np.asarray(self.model.predict(x, batch_size=64, verbose=0)), owner, len(waves))

    def tflite(self, quantization: str) -> bytes:
        from ser_edge.training.export import to_tflite

        return to_tflite(self.model, quantization, input_shape=self.train_inputs.shape[1:],
                         representative=self.train_inputs, seed=self.config.seed)


def fit_wave(train: WaveSet, labels: Sequence[str], tc: Any, *, verbose: int = 0) -> TrainedWave:
    """Fits ``tc.model`` (a raw-waveform model) on the chunks of ``train``: ``tc.windows`` (default
    :data:`DEFAULT_WINDOWS`) gives the chunk length and hop in seconds."""
    from ser_edge.training.models import build
    from ser_edge.training.trainer import sample_weights, window_weights

    if not isinstance(train, WaveSet):
        raise ValueError(f"model {tc.model!r} trains on a WaveSet (raw audio); got {type(train).__name__}")
    t0 = time.time()
    labels = tuple(labels)
    y = train.label_indices(labels)
    windows = tuple(tc.windows) if tc.windows is not None else DEFAULT_WINDOWS
    x, owner = chunk_inputs(train, *windows)
    y = y[owner]
    w = sample_weights(train.clips) if tc.balance else np.ones(len(train), np.float32)
    model = build(tc.model, x.shape[1:], len(labels), lr=tc.lr, seed=tc.seed, **dict(tc.hparams))
    onehot = np.eye(len(labels), dtype=np.float32)[y]
    hist = model.fit(x, onehot, sample_weight=window_weights(w, owner), batch_size=tc.batch_size, epochs=tc.epochs,
                     verbose=verbose, shuffle=True)
    history = {k: [float(v) for v in vs] for k, vs in getattr(hist, "history", {}).items()}
    return TrainedWave(model, labels, (float(windows[0]), float(windows[1])), x, history, time.time() - t0, tc)


__all__ = ["DEFAULT_WINDOWS", "SR", "TrainedWave", "WaveSet", "chunk_inputs", "fit_wave", "load_waves", "prepare"]
