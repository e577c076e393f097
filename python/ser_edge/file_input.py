"""A whole file's model input in bounded memory (``ser-edge predict`` on long recordings).

Audio is read, mixed and resampled block by block (:func:`ser_edge.audio.blocks`), and turned
into finished frames by :class:`FrameStream` (the feature stream, logs and MFCC deltas with just
enough context). Finished frames go to temporary files, one per group of columns
(:class:`ColumnStore`); the recogniser then gates and pools one group at a time
(:meth:`ser_edge.runtime.Recognizer.predict_store`). Memory holds a block of audio, a few frames
and one column group, whatever the file's length. The frames equal ``InputConfig.frames`` of the
whole loaded clip exactly (the streaming resampler and feature stream equal their batch forms).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator

import numpy as np

from ser_edge.features import Stream
from ser_edge.inputs import InputConfig

#: Frame columns per temporary file: 4 columns of a 30-minute file are 2.9 MB.
GROUP = 4


class FrameStream:
    """``InputConfig.frames`` for a signal given in chunks: :meth:`push` returns the frames
    ``(k, n_frame_features)`` that are final, :meth:`flush` the rest. A frame's deltas need
    ``delta_width // 2`` frames on each side, so those are held back until they arrive."""

    def __init__(self, config: InputConfig) -> None:
        self.config = config
        self._stream = Stream(config.features)
        self._half = config.delta_width // 2 if config.deltas else 0
        self._buf = np.zeros((config.features.n_features, 0), np.float32)  # logged rows, context first
        self._first = 0  # column of `_buf` holding the first frame not yet returned

    def push(self, chunk: np.ndarray) -> np.ndarray:
        return self._take(self._stream.push(chunk), final=False)

    def flush(self) -> np.ndarray:
        return self._take(self._stream.flush(), final=True)

    def _take(self, raw: np.ndarray, final: bool) -> np.ndarray:
        cfg, h = self.config, self._half
        buf = np.hstack([self._buf, cfg.with_logs(raw)])
        if not cfg.deltas:
            self._buf = buf[:, :0]
            return np.ascontiguousarray(buf.T)
        if buf.shape[1] < cfg.delta_width and not final:
            self._buf = buf
            return np.zeros((0, cfg.n_frame_features), np.float32)
        full = cfg.with_deltas(buf)  # at the ends of the signal: the same edge fits as the whole clip
        stop = buf.shape[1] if final else buf.shape[1] - h
        out = full[:, self._first : stop]
        # Keep 2h frames of context before the held ones, so the end fit always has delta_width frames.
        keep = max(stop - 2 * h, 0)
        self._buf, self._first = buf[:, keep:], stop - keep
        return np.ascontiguousarray(out.T)


class ColumnStore:
    """Frames ``(t, d)`` appended block by block into unnamed temporary files, one per
    :data:`GROUP` columns; read back one group (all frames, a few columns) at a time."""

    def __init__(self, n_cols: int) -> None:
        self.n_cols, self.n_rows = n_cols, 0
        self.groups = [(a, min(a + GROUP, n_cols)) for a in range(0, n_cols, GROUP)]
        self._files = [tempfile.TemporaryFile() for _ in self.groups]

    def append(self, frames: np.ndarray) -> None:
        for (a, b), f in zip(self.groups, self._files):
            f.write(np.ascontiguousarray(frames[:, a:b], np.float32).tobytes())
        self.n_rows += len(frames)

    def group(self, i: int) -> np.ndarray:
        """Columns ``groups[i]`` of every frame, float32 ``(n_rows, width)``."""
        a, b = self.groups[i]
        f = self._files[i]
        f.seek(0)
        out = np.frombuffer(f.read(), np.float32).reshape(self.n_rows, b - a)
        f.seek(0, 2)
        return out

    def column(self, j: int) -> np.ndarray:
        i = j // GROUP
        return np.ascontiguousarray(self.group(i)[:, j - self.groups[i][0]])

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Whole frames ``index`` (few of them), float32 ``(len(index), n_cols)``."""
        return (
            np.hstack([self.group(i)[index] for i in range(len(self.groups))])
            if self.groups
            else np.zeros((len(index), 0), np.float32)
        )

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self) -> ColumnStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frames_to_store(config: InputConfig, chunks: Iterable[np.ndarray], store: ColumnStore) -> Iterator[np.ndarray]:
    """Pushes ``chunks`` through a :class:`FrameStream` into ``store``; yields each chunk on
    (for a second consumer such as the utterance pipeline)."""
    fs = FrameStream(config)
    for chunk in chunks:
        store.append(fs.push(chunk))
        yield chunk
    store.append(fs.flush())
