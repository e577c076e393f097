"""Audio features computed by ser-edge's Rust core.

Function names, keywords and defaults follow librosa 0.11, and results match it to the
tolerances written in ``tests/features/test_parity.py``. Inputs are 1-D float32/float64/int16
arrays (int16 scaled to [-1, 1)); outputs are float32 arrays shaped like librosa's. Bad input
raises ``ValueError`` naming the parameter.

A model's input is described by one :class:`FeatureConfig`; :func:`extract`, :func:`extract_many`
and :class:`Stream` compute it.
"""

from ser_edge.features.config import FEATURES, FeatureConfig, Stream, extract, extract_many
from ser_edge.features.pitch import pyin, yin
from ser_edge.features.spectral import (
    chroma_stft,
    delta,
    mel_filters,
    melspectrogram,
    mfcc,
    power_to_db,
    spectral_bandwidth,
    spectral_centroid,
    spectral_contrast,
    spectral_entropy,
    spectral_flatness,
    spectral_flux,
    spectral_rolloff,
    spectrogram,
    stft,
)
from ser_edge.features.temporal import energy_entropy, frame, rms, zero_crossing_rate
from ser_edge.features.voice import (
    alpha_ratio,
    f0_semitones,
    hammarberg_index,
    hnr,
    jitter,
    loudness,
    shimmer,
    slope_0_500,
    slope_500_1500,
    voicing,
)

__all__ = [
    "FEATURES",
    "FeatureConfig",
    "Stream",
    "alpha_ratio",
    "chroma_stft",
    "delta",
    "energy_entropy",
    "extract",
    "extract_many",
    "f0_semitones",
    "frame",
    "hammarberg_index",
    "hnr",
    "jitter",
    "loudness",
    "mel_filters",
    "melspectrogram",
    "mfcc",
    "power_to_db",
    "pyin",
    "rms",
    "shimmer",
    "slope_0_500",
    "slope_500_1500",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_entropy",
    "spectral_flatness",
    "spectral_flux",
    "spectral_rolloff",
    "spectrogram",
    "stft",
    "voicing",
    "yin",
    "zero_crossing_rate",
]
