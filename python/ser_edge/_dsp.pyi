"""Private native module (Rust, PyO3). Use :mod:`ser_edge.features`; this API may change.

Every function raises ``ValueError`` for bad values; arrays must be contiguous float32.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

class Spec:
    """A validated feature configuration: ``features`` is a list of ``(name, params)``."""

    def __init__(
        self,
        features: Sequence[tuple[str, dict[str, Any]]],
        *,
        sr: float = 22050.0,
        n_fft: int = 2048,
        hop_length: int = 512,
        win_length: int | None = None,
        window: str | Sequence[float] | None = None,
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        mel_norm: str | float | None = None,
        n_mfcc: int = 20,
        dct_ortho: bool = True,
        lifter: float = 0.0,
        ref: float = 1.0,
        amin: float = 1e-10,
        n_chroma: int = 12,
        single_precision: bool = False,
        f0: str = "yin",
    ) -> None: ...
    @property
    def n_features(self) -> int:
        """Rows each frame yields."""
    @property
    def rows(self) -> list[tuple[str, int, int]]:
        """``(name, start, stop)`` of each feature's rows, in output order."""

class Stream:
    """Streaming extractor: pushed chunks yield exactly the frames of ``extract``."""

    def __init__(self, spec: Spec) -> None: ...
    def push(self, chunk: F32) -> F32:
        """Adds samples; returns completed frames ``(n_features, k)``."""
    def flush(self) -> F32:
        """Ends the signal: remaining frames, then reset."""
    def reset(self) -> None: ...
    @property
    def n_features(self) -> int: ...

class Resampler:
    """Streaming ``resample``: pushed chunks yield exactly the samples of the batch function."""

    def __init__(self, orig_sr: float, target_sr: float) -> None: ...
    def push(self, chunk: F32) -> F32:
        """Adds samples; returns the output samples they complete."""
    def flush(self) -> F32:
        """Ends the signal: remaining samples, then reset."""
    def reset(self) -> None: ...

def extract(y: F32, spec: Spec) -> F32:
    """Features of every frame, ``(n_features, t)``."""

def extract_many(clips: list[F32], spec: Spec, n_jobs: int) -> list[F32]:
    """``extract`` on each clip on ``n_jobs`` threads, GIL released."""

def from_spectrogram(s: F32, spec: Spec) -> F32:
    """One feature from precomputed columns ``(n_bins, t)`` (or log-mel for MFCC)."""

def mfcc(y: F32, spec: Spec, top_db: float | None) -> F32:
    """MFCC with librosa's whole-signal ``top_db`` clip when given."""

def power_to_db(s: F32, ref: float, amin: float, top_db: float | None) -> F32:
    """``librosa.power_to_db`` of a flat array."""

def contrast_db(raw: F32) -> F32:
    """Spectral contrast in dB from stacked peaks and valleys."""

def estimate_tuning(
    spec: Spec,
    bins_per_octave: int,
    y: F32 | None = None,
    s: npt.NDArray[np.float64] | None = None,
) -> float:
    """Tuning deviation (``librosa.estimate_tuning``) from audio ``y`` (the STFT as ``spec`` gives it)
    or from a float64 power spectrogram ``s``."""

def stft(y: F32, spec: Spec) -> npt.NDArray[np.complex64]:
    """Complex STFT ``(1 + n_fft // 2, t)``."""

def frame(y: F32, frame_length: int, hop_length: int) -> F32:
    """``librosa.util.frame``: ``(frame_length, n_frames)``."""

def mel_filters(spec: Spec) -> F32:
    """Dense mel filterbank ``(n_mels, 1 + n_fft // 2)`` of the spec's mel parameters."""

def delta(data: F32, width: int, order: int, mode: str) -> F32:
    """Savitzky-Golay delta along the last axis of a 2-D array."""

def resample(y: F32, orig_sr: float, target_sr: float) -> F32:
    """Windowed-sinc resampling (polyphase for integer rates)."""

def fft_floor(y: F32, n_fft: int, hop_length: int) -> int:
    """Runs only the real FFTs of ``extract``'s frames (benchmark floor); returns the frame count."""

def yin(
    y: F32,
    *,
    sr: float,
    fmin: float,
    fmax: float,
    frame_length: int,
    hop_length: int | None,
    trough_threshold: float,
    center: bool,
    pad_mode: str,
) -> F32:
    """``librosa.yin``: f0 (Hz) of every frame."""

def pyin(
    y: F32,
    *,
    sr: float,
    fmin: float,
    fmax: float,
    frame_length: int,
    hop_length: int | None,
    n_thresholds: int,
    beta_parameters: tuple[float, float],
    boltzmann_parameter: float,
    resolution: float,
    max_transition_rate: float,
    switch_prob: float,
    no_trough_prob: float,
    fill_na: float | None,
    center: bool,
    pad_mode: str,
) -> tuple[F32, npt.NDArray[np.bool_], F32]:
    """``librosa.pyin``: ``(f0, voiced_flag, voiced_prob)`` of every frame."""
