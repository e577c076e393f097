"""Smoothing of window scores into one utterance estimate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class ScoreAverage:
    """Running mean of per-window label scores, each weighted by the window's voiced frames.

    After every window it gives the utterance estimate so far; after the last, the utterance's
    result. Scores are probabilities over ``labels`` (the recogniser already renormalised them
    over any restricted label set), so the mean is one too.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self._sum = np.zeros(len(self.labels))
        self.weight = 0.0
        self.count = 0

    def reset(self) -> None:
        self._sum[:] = 0.0
        self.weight, self.count = 0.0, 0

    def add(self, scores: Mapping[str, float], weight: float) -> None:
        w = max(float(weight), 1e-6)
        self._sum += w * np.array([float(scores[k]) for k in self.labels])
        self.weight += w
        self.count += 1

    def scores(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no window scores yet")
        p = self._sum / self.weight
        return {k: float(v) for k, v in zip(self.labels, p)}

    def best(self) -> tuple[str, float]:
        s = self.scores()
        label = max(s, key=s.__getitem__)
        return label, s[label]
