"""Reading audio files and resampling. WAV/FLAC/OGG of any sample rate, bit depth and channel
count (libsndfile via soundfile) become mono float32 in [-1, 1]."""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in

PathLike = Union[str, "os.PathLike[str]"]


def load(path: PathLike, *, sr: Optional[float] = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Reads ``path``; returns ``(y, sr)`` with ``y`` float32, resampled to ``sr`` if given.

    ``mono=True`` averages the channels (shape ``(n,)``); otherwise ``y`` is ``(channels, n)``.
    Raises ``ValueError`` naming the file if it is missing, empty, truncated, not audio, or holds
    non-finite samples.
    """
    import soundfile as sf

    _check_wav_length(path)
    try:
        data, native_sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError, EOFError, ValueError) as e:
        raise ValueError(f"{os.fspath(path)}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise ValueError(f"{os.fspath(path)}: the file holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{os.fspath(path)}: the file holds non-finite samples (NaN or Inf)")
    y = data.mean(axis=1, dtype=np.float32) if mono else np.ascontiguousarray(data.T)
    if sr is not None and float(sr) != float(native_sr):
        if mono:
            y = resample(y, orig_sr=native_sr, target_sr=sr)
        else:
            y = np.stack([resample(ch, orig_sr=native_sr, target_sr=sr) for ch in y])
        return y, int(sr)
    return y, int(native_sr)


def _check_wav_length(path: PathLike) -> None:
    """A WAV whose data chunk is shorter than its header says is truncated (libsndfile would
    silently read what is there)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return
                size = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"data":
                    available = os.fstat(f.fileno()).st_size - f.tell()
                    if size not in (0, 0xFFFFFFFF) and size > available:
                        raise ValueError(f"{os.fspath(path)}: truncated WAV: the header declares {size} bytes of "
                                         f"audio but the file holds {available}")
                    return
                f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError as e:
        raise ValueError(f"{os.fspath(path)}: cannot read audio ({e})") from None


def resample(y: np.ndarray, *, orig_sr: float, target_sr: float) -> np.ndarray:
    """Band-limited resampling (Kaiser-windowed sinc, 32 zero crossings, cutoff 0.945 of the
    lower Nyquist; polyphase for integer rates). Returns ``ceil(len(y) * target_sr / orig_sr)``
    float32 samples."""
    return _dsp.resample(_in.audio(y), _in.number("orig_sr", orig_sr), _in.number("target_sr", target_sr))


class Resampler:
    """Streaming :func:`resample`: :meth:`push` chunks of any size, then :meth:`flush` at the end
    of the stream. The samples returned, concatenated, equal :func:`resample` of the concatenated
    chunks exactly.

    A sample is returned once the input its kernel reaches has arrived: about 2 ms of latency
    (4 ms when upsampling from 8 kHz). A non-finite chunk raises ``ValueError`` and leaves the
    stream as it was.
    """

    def __init__(self, orig_sr: float, target_sr: float) -> None:
        self.orig_sr = _in.number("orig_sr", orig_sr)
        self.target_sr = _in.number("target_sr", target_sr)
        self._native = _dsp.Resampler(self.orig_sr, self.target_sr)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Adds samples; returns the float32 output samples they complete (possibly none)."""
        return self._native.push(_in.audio(chunk, "chunk"))

    def flush(self) -> np.ndarray:
        """Ends the stream (zero-padded like :func:`resample`'s edges): returns the remaining
        samples and resets."""
        return self._native.flush()

    def reset(self) -> None:
        """Drops buffered audio and starts a new stream."""
        self._native.reset()


__all__ = ["Resampler", "load", "resample"]
