"""Reading audio files and resampling. WAV/FLAC/OGG of any sample rate, bit depth and channel
count (libsndfile via soundfile) become mono float32 in [-1, 1]."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Any, Union

import numpy as np

from ser_edge import _dsp
from ser_edge.features import _input as _in

PathLike = Union[str, "os.PathLike[str]"]
#: Sample rates and channel counts a file header may declare; anything else is corrupt or hostile
#: (a header saying 1 Hz would make resampling to 16 kHz grow memory for minutes).
FILE_SR_RANGE = (1000, 768000)
MAX_CHANNELS = 64
_READ_ERRORS = (RuntimeError, TypeError, OSError, EOFError, ValueError)


def load(path: PathLike, *, sr: float | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Reads ``path``; returns ``(y, sr)`` with ``y`` float32, resampled to ``sr`` if given.

    ``mono=True`` averages the channels (shape ``(n,)``); otherwise ``y`` is ``(channels, n)``.
    Raises ``ValueError`` naming the file if it is missing, empty, truncated, not audio, or holds
    non-finite samples.
    """
    with _open(path) as f:
        native_sr = f.samplerate
        try:
            data = f.read(dtype="float32", always_2d=True)
        except _READ_ERRORS as e:
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


def blocks(path: PathLike, *, sr: float | None = None, seconds: float = 1.0) -> Iterator[np.ndarray]:
    """The file as mono float32 blocks (about ``seconds`` each) at ``sr``: read, mixed and
    resampled block by block, so memory does not grow with the file's length. Concatenated,
    the blocks equal ``load(path, sr=sr)[0]`` exactly. Errors as :func:`load`."""
    name = os.fspath(path)
    with _open(path) as f:
        native = f.samplerate
        r = Resampler(native, sr) if sr is not None and float(sr) != float(native) else None
        total = 0
        try:
            for data in f.blocks(blocksize=max(1, int(seconds * native)), dtype="float32", always_2d=True):
                if not np.all(np.isfinite(data)):
                    raise ValueError(f"{name}: the file holds non-finite samples (NaN or Inf)")
                total += len(data)
                y = data.mean(axis=1, dtype=np.float32)
                out = r.push(y) if r is not None else y
                if len(out):
                    yield out
        except _READ_ERRORS as e:
            if isinstance(e, ValueError) and str(e).startswith(name):
                raise
            raise ValueError(f"{name}: cannot read audio ({e})") from None
        if total == 0:
            raise ValueError(f"{name}: the file holds no audio samples")
        if r is not None:
            tail = r.flush()
            if len(tail):
                yield tail


def _open(path: PathLike) -> Any:
    """An open ``soundfile.SoundFile`` after the checks that need no decoding: a regular file
    (a FIFO or device could block forever, so ``stat`` comes before ``open``), a WAV not
    truncated, a usable sample rate and channel count."""
    import soundfile as sf

    name = os.fspath(path)
    try:
        st = os.stat(name)
    except (OSError, ValueError) as e:
        raise ValueError(f"{name}: cannot read audio ({getattr(e, 'strerror', None) or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{name}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(
            f"{name}: not a regular file (a FIFO, socket or device); refused, since reading it could block forever"
        )
    _check_wav_length(path)
    try:
        f = sf.SoundFile(name)
    except (sf.LibsndfileError, *_READ_ERRORS) as e:
        raise ValueError(f"{name}: cannot read audio ({e})") from None
    lo, hi = FILE_SR_RANGE
    if not lo <= f.samplerate <= hi or not 1 <= f.channels <= MAX_CHANNELS:
        f.close()
        raise ValueError(
            f"{name}: the header declares {f.samplerate} Hz and {f.channels} channel(s); a usable "
            f"file has {lo}-{hi} Hz and 1-{MAX_CHANNELS} channels"
        )
    return f


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
                        raise ValueError(
                            f"{os.fspath(path)}: truncated WAV: the header declares {size} bytes of "
                            f"audio but the file holds {available}"
                        )
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


__all__ = ["Resampler", "blocks", "load", "resample"]
