"""A fixed-capacity ring buffer of audio samples addressed by absolute sample index."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Keeps the last ``capacity`` samples of a stream; ``total`` counts every sample written.

    Samples are addressed by their absolute index in the stream, so a reader can ask for
    ``[start, stop)`` as long as ``start >= total - capacity``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, np.float32)
        self.total = 0

    @property
    def oldest(self) -> int:
        """Index of the oldest sample still held."""
        return max(0, self.total - self.capacity)

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).ravel()
        if len(x) >= self.capacity:
            self._data[:] = x[-self.capacity :]
            # keep the invariant: sample i lives at i % capacity
            self._data = np.roll(self._data, (self.total + len(x)) % self.capacity)
            self.total += len(x)
            return
        i = self.total % self.capacity
        k = min(len(x), self.capacity - i)
        self._data[i : i + k] = x[:k]
        self._data[: len(x) - k] = x[k:]
        self.total += len(x)

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of samples ``[start, stop)``; raises ``ValueError`` if they are not held."""
        if start < self.oldest or stop > self.total or start > stop:
            raise ValueError(f"samples [{start}, {stop}) are not held (have [{self.oldest}, {self.total}))")
        n = stop - start
        i = start % self.capacity
        if i + n <= self.capacity:
            return self._data[i : i + n].copy()
        return np.concatenate([self._data[i:], self._data[: n - (self.capacity - i)]])
