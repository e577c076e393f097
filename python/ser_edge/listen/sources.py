"""Audio sources for ``ser-edge listen``: microphone (PyAudio), file, raw PCM on stdin.

Every source delivers mono float32 chunks at the model's rate (``sr``); devices and streams at
another rate are resampled on the fly by :class:`ser_edge.audio.Resampler` (the Rust core's streaming
polyphase sinc, equal to the batch resampler, about 2 ms latency). ``read(timeout)`` returns a
chunk, or ``None`` if none arrived in time; it raises ``EOFError`` at the end of a file or
stream and :class:`SourceError` when a device is missing or lost (the daemon retries).
``set_sr`` changes the delivered rate in place (a model swap keeps a file's position).

Float PCM on stdin may hold anything: NaN/Inf samples become 0 and samples beyond full scale are
clipped to +-1 before any arithmetic; the counts (``nonfinite``, ``clipped``) are reported by the
daemon as one structured log line (at most one per 10 s).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, BinaryIO, Protocol

import numpy as np

from ser_edge.audio import Resampler

FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}


class SourceError(Exception):
    """The audio device is missing, cannot be opened, or stopped delivering audio."""


class Source(Protocol):
    """What the daemon reads audio from: a file, stdin or the microphone."""

    sr: int
    overflows: int

    def open(self) -> None: ...

    def read(self, timeout: float) -> np.ndarray | None: ...

    def set_sr(self, sr: int) -> None:
        """Resample to ``sr`` from now on (a new model's rate), without losing the position."""

    def close(self) -> None: ...


def _to_mono(raw: bytes, sample_format: str, channels: int) -> tuple[np.ndarray, int, int]:
    """Raw interleaved PCM -> mono float32 in [-1, 1], and how many samples were non-finite
    (set to 0) and beyond full scale (clipped to +-1; only float input can be)."""
    dtype, scale = FORMATS[sample_format]
    a = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    nonfinite = clipped = 0
    if scale != 1.0:
        a /= np.float32(scale)
    else:  # float PCM may hold anything: sanitise before any arithmetic can overflow
        bad = ~np.isfinite(a)
        nonfinite = int(bad.sum())
        if nonfinite:
            a[bad] = 0.0
        over = np.abs(a) > 1.0
        clipped = int(over.sum())
        if clipped:
            np.clip(a, -1.0, 1.0, out=a)
    if channels > 1:
        a = a[: len(a) // channels * channels].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return a, nonfinite, clipped


class FileSource:
    """A WAV/FLAC/OGG file (any rate, bit depth, channels), read with :func:`ser_edge.audio.load`.
    ``realtime=True`` releases each chunk when it would have been captured by a microphone."""

    def __init__(self, path: str, sr: int, *, chunk: float = 0.1, realtime: bool = False) -> None:
        self.path, self.sr, self.realtime = path, int(sr), realtime
        self.live = realtime  # chunks arrive at capture time only when paced
        self.chunk = max(1, round(chunk * self.sr))
        self.overflows = 0
        self._y: np.ndarray | None = None
        self._pos = 0
        self._t0 = 0.0

    def open(self) -> None:
        from ser_edge.audio import load

        self._y, _ = load(self.path, sr=self.sr)  # ValueError for a bad file: not retried
        self._pos = 0
        self._t0 = time.monotonic()

    def read(self, timeout: float) -> np.ndarray | None:
        assert self._y is not None, "open() first"
        if self._pos >= len(self._y):
            raise EOFError
        stop = min(self._pos + self.chunk, len(self._y))
        if self.realtime:
            due = self._t0 + stop / self.sr
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return None
            if wait > 0:
                time.sleep(wait)
        out = self._y[self._pos : stop]
        self._pos = stop
        return out

    def set_sr(self, sr: int) -> None:
        """Continues at the same position in the file, at another rate (a model swap)."""
        from ser_edge.audio import load

        if int(sr) == self.sr:
            return
        old = self.sr
        self.sr, self.chunk = int(sr), max(1, round(self.chunk * int(sr) / old))
        if self._y is not None:
            self._y, _ = load(self.path, sr=self.sr)
            self._pos = min(len(self._y), round(self._pos * self.sr / old))

    def close(self) -> None:
        self._y = None


class _QueueSource:
    """Chunks (mono, at the input rate ``rate``) arrive on another thread into a bounded queue; a
    full queue counts an overflow. ``read`` resamples them to ``sr``."""

    def __init__(self, sr: int, max_chunks: int = 64) -> None:
        self.sr = int(sr)
        self.rate = 0
        self.overflows = 0
        self.nonfinite = 0  # samples that were NaN/Inf (set to 0)
        self.clipped = 0  # samples beyond full scale (clipped)
        self._resampler: Resampler | None = None
        self._resampler_rates = (0, 0)
        self._eof = False
        self._q: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(max_chunks)

    def _mono(self, raw: bytes, sample_format: str, channels: int) -> np.ndarray:
        a, nonfinite, clipped = _to_mono(raw, sample_format, channels)
        self.nonfinite += nonfinite
        self.clipped += clipped
        return a

    def _put(self, item: np.ndarray | BaseException | None) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            if isinstance(item, np.ndarray):
                self.overflows += 1
            else:  # end-of-stream and errors must get through
                self._q.put(item)

    def _get(self, timeout: float) -> np.ndarray | BaseException | None | bool:
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return False
        if isinstance(item, np.ndarray):
            if self._resampler is None or self._resampler_rates != (self.rate, self.sr):
                self._resampler, self._resampler_rates = Resampler(self.rate, self.sr), (self.rate, self.sr)
            return self._resampler.push(item)
        return item

    def _tail(self) -> np.ndarray:
        """The resampler's last samples at the end of the stream."""
        r, self._resampler = self._resampler, None
        return r.flush() if r is not None else np.zeros(0, np.float32)

    def set_sr(self, sr: int) -> None:
        """Delivers at another rate from the next chunk on (a model swap)."""
        self.sr = int(sr)


class StdinSource(_QueueSource):
    """Raw PCM on a binary stream (stdin), e.g. ``arecord -f S16_LE -r 16000 -c 1 -t raw``:
    ``rate`` Hz, ``channels`` interleaved, ``sample_format`` s16le/s32le/f32le. A full queue
    makes the writer wait (the pipe's own back-pressure) rather than dropping audio."""

    def __init__(
        self,
        sr: int,
        *,
        rate: int | None = None,
        channels: int = 1,
        sample_format: str = "s16le",
        chunk: float = 0.1,
        stream: BinaryIO | None = None,
    ) -> None:
        super().__init__(sr)
        if sample_format not in FORMATS:
            raise ValueError(f"format={sample_format!r}; choose from {', '.join(FORMATS)}")
        if channels < 1:
            raise ValueError(f"channels={channels} must be >= 1")
        self.rate, self.channels, self.format = int(rate or sr), int(channels), sample_format
        self._frame_bytes = int(np.dtype(FORMATS[sample_format][0]).itemsize) * self.channels
        self._block = max(1, round(chunk * self.rate)) * self._frame_bytes
        # stdin is read with os.read on its descriptor: a thread blocked in a buffered read
        # would abort the interpreter at exit
        self._stream = stream
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name="stdin-reader", daemon=True)
            self._thread.start()

    def _reader(self) -> None:
        rest = b""
        try:
            while True:
                data = self._stream.read(self._block) if self._stream is not None else os.read(0, self._block)
                if not data:
                    break
                data = rest + data
                n = len(data) // self._frame_bytes * self._frame_bytes
                rest = data[n:]
                if n:  # a pipe waits for the reader (no overflow); a microphone cannot
                    self._q.put(self._mono(data[:n], self.format, self.channels))
        except (OSError, ValueError) as e:
            self._put(SourceError(f"stdin: {e}"))
            return
        self._put(None)

    def read(self, timeout: float) -> np.ndarray | None:
        if self._eof:
            raise EOFError
        item = self._get(timeout)
        if item is False:
            return None
        if item is None or isinstance(item, BaseException):
            self._eof = True
            tail = self._tail()
            if len(tail):
                return tail
            raise EOFError(str(item or ""))
        return item  # type: ignore[return-value]

    def close(self) -> None:
        pass


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise SourceError(
            "the microphone needs PyAudio: pip install 'ser-edge[mic]' (and apt install portaudio19-dev)"
        ) from None
    return pyaudio


def list_devices() -> list[dict[str, Any]]:
    """Input devices PortAudio sees: index, name, channels, default rate, default flag."""
    pyaudio = _pyaudio()
    pa = pyaudio.PyAudio()
    try:
        try:
            default = int(pa.get_default_input_device_info()["index"])
        except OSError:
            default = -1
        out = []
        for i in range(pa.get_device_count()):
            d = pa.get_device_info_by_index(i)
            if int(d["maxInputChannels"]) > 0:
                out.append(
                    {
                        "index": i,
                        "name": str(d["name"]),
                        "channels": int(d["maxInputChannels"]),
                        "rate": int(d["defaultSampleRate"]),
                        "default": i == default,
                    }
                )
        return out
    finally:
        pa.terminate()


class MicSource(_QueueSource):
    """A PortAudio input device via PyAudio (``device``: index, or a case-insensitive part of its
    name; default: the system's default input), opened mono at its native rate and resampled to
    ``sr``. PortAudio input overflows and a full queue are counted in ``overflows``; no audio for
    ``stall`` seconds means the device is lost."""

    def __init__(self, sr: int, *, device: int | str | None = None, chunk: float = 0.1, stall: float = 2.0) -> None:
        super().__init__(sr)
        self.device, self.chunk, self.stall = device, chunk, stall
        self.device_name = ""
        self._pa: Any = None
        self._stream: Any = None
        self._last = 0.0

    def _resolve(self, pa: Any) -> dict[str, Any]:
        d = self.device
        if d is None or d == "":
            try:
                return dict(pa.get_default_input_device_info())
            except OSError:
                raise SourceError("no default input device") from None
        if isinstance(d, int) or (isinstance(d, str) and d.strip().isdigit()):
            try:
                info = dict(pa.get_device_info_by_index(int(d)))
            except (OSError, ValueError):
                raise SourceError(f"no audio device with index {d}") from None
            if int(info["maxInputChannels"]) < 1:
                raise SourceError(f"device {d} ({info['name']}) has no input channels")
            return info
        names = []
        for i in range(pa.get_device_count()):
            info = dict(pa.get_device_info_by_index(i))
            if int(info["maxInputChannels"]) > 0:
                names.append(str(info["name"]))
                if str(d).lower() in str(info["name"]).lower():
                    return info
        raise SourceError(f"no input device named like {d!r} (inputs: {', '.join(names) or 'none'})")

    def open(self) -> None:
        pyaudio = _pyaudio()
        self.close()
        self._pa = pyaudio.PyAudio()
        try:
            info = self._resolve(self._pa)
            self.rate = int(info["defaultSampleRate"])
            self.device_name = str(info["name"])
            self._resampler = None
            block = max(1, round(self.chunk * self.rate))
            self._stream = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=self.rate,
                input=True,
                input_device_index=int(info["index"]),
                frames_per_buffer=block,
                stream_callback=self._callback,
            )
            self._stream.start_stream()
        except (OSError, ValueError) as e:
            self.close()
            raise SourceError(f"cannot open input device {self.device!r}: {e}") from None
        except SourceError:
            self.close()
            raise
        self._last = time.monotonic()

    def _callback(self, data: bytes, frames: int, time_info: Any, status: int) -> tuple[None, int]:
        import pyaudio

        if status & pyaudio.paInputOverflow:
            self.overflows += 1
        self._put(self._mono(data, "s16le", 1))
        return None, pyaudio.paContinue

    def read(self, timeout: float) -> np.ndarray | None:
        item = self._get(timeout)
        if isinstance(item, np.ndarray):
            self._last = time.monotonic()
            return item
        if self._stream is None:
            raise SourceError("the input device is closed")
        if time.monotonic() - self._last > self.stall or not self._stream.is_active():
            raise SourceError(f"input device {self.device_name!r} stopped delivering audio")
        return None

    def close(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream, self._pa = None, None
        if stream is not None:
            try:
                stream.stop_stream()
            except OSError:
                pass
            try:
                stream.close()
            except OSError:
                pass
        if pa is not None:
            pa.terminate()
        while not self._q.empty():
            self._q.get_nowait()


def open_source(
    kind: str,
    sr: int,
    *,
    device: int | str | None = None,
    realtime: bool = False,
    rate: int | None = None,
    channels: int = 1,
    sample_format: str = "s16le",
    chunk: float = 0.1,
) -> Source:
    """``kind``: ``"mic"``, ``"-"`` (stdin) or a file path."""
    if kind == "mic":
        return MicSource(sr, device=device, chunk=chunk)
    if kind == "-":
        return StdinSource(sr, rate=rate, channels=channels, sample_format=sample_format, chunk=chunk)
    return FileSource(kind, sr, chunk=chunk, realtime=realtime)
