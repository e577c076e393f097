"""ser-edge: speech emotion recognition on the device.

``import ser_edge`` is light (numpy only). The audio features live in :mod:`ser_edge.features`
(a Rust core behind a librosa-compatible API); audio files in :mod:`ser_edge.audio`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
