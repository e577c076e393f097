"""Bounds that keep one malicious client from taking over the global model, in numpy only (the
client uses them too), and compatible with secure aggregation:

* **client-side clipping**: an honest client scales its update (new weights - global weights) to
  an L2 norm of at most ``max-update-norm`` (:func:`clip_update`) and reports at most
  ``max-examples`` as its weight. Under secure aggregation the server cannot see one update, so
  these are what bound an honest client's share; the server checks the *aggregate* against the
  same bound (a weighted mean of clipped updates is within it).
* **where the server sees each update** (no secure aggregation): an update whose norm is above
  4 x the round's median is left out, every other update clipped to the round's median norm and
  every weight capped at twice the median weight (:func:`median_cap`, with at least
  :data:`MIN_FOR_MEDIAN` replies), on top of the fixed bounds.
* **statistics round**: counts and M2 are checked (:func:`check_stats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Fewest replies for which the round's median is used (the median of two is their mean).
MIN_FOR_MEDIAN = 3
#: Most voiced frames a clip can contribute to the statistics round (10 minutes at a 10 ms hop).
MAX_FRAMES_PER_CLIP = 60_000


def update_norm(new: Sequence[np.ndarray], old: Sequence[np.ndarray]) -> float:
    """L2 norm of ``new - old`` over all arrays (float64; ``inf`` when it overflows)."""
    total = 0.0
    for a, b in zip(new, old):
        d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            total += float(np.sum(d * d))
    return math.sqrt(total) if math.isfinite(total) else math.inf


def clip_update(new: Sequence[np.ndarray], old: Sequence[np.ndarray], max_norm: float) -> list[np.ndarray]:
    """``old + (new - old) * min(1, max_norm / |new - old|)``, each array in its own dtype."""
    norm = update_norm(new, old)
    if norm <= max_norm:
        return [np.asarray(a) for a in new]
    dtypes = [np.asarray(a).dtype for a in new]
    deltas = [np.asarray(a, np.float64) - np.asarray(b, np.float64) for a, b in zip(new, old)]
    if not math.isfinite(norm):  # overflowing update: rescale into a safe range first
        peak = max(float(np.max(np.abs(d))) if d.size else 0.0 for d in deltas)
        deltas = [d / peak for d in deltas]
        norm = math.sqrt(sum(float(np.sum(d * d)) for d in deltas))
    scale = max_norm / norm
    return [(np.asarray(b, np.float64) + d * scale).astype(t) for b, d, t in zip(old, deltas, dtypes)]


def median_cap(values: Sequence[float], relative: float, fixed: float) -> float:
    """The round's bound on one reply's update norm or weight: ``fixed``, and ``relative`` x the
    median of ``values`` when there are at least :data:`MIN_FOR_MEDIAN` of them."""
    if len(values) < MIN_FOR_MEDIAN:
        return fixed
    return min(fixed, relative * float(np.median(values)))


def check_stats(count: float, frames: float, arrays: dict[str, np.ndarray], max_examples: float) -> str | None:
    """Why a statistics reply (clip ``count``, voiced ``frames``, means and M2s) is unsound, or
    ``None``: counts must be finite, at least 1 and at most ``max_examples`` clips and
    :data:`MAX_FRAMES_PER_CLIP` frames a clip; means finite; M2 finite and >= 0."""
    if not (math.isfinite(count) and 1 <= count <= max_examples):
        return f"num-examples={count!r} is not in [1, {max_examples:g}]"
    if not (math.isfinite(frames) and 1 <= frames <= count * MAX_FRAMES_PER_CLIP):
        return f"frames={frames!r} is not in [1, {MAX_FRAMES_PER_CLIP} x num-examples]"
    for key, a in arrays.items():
        if not np.all(np.isfinite(a)):
            return f"{key} has NaN or Inf values"
        if key.endswith("m2") and np.any(a < 0):
            return f"{key} has negative values (a sum of squares)"
    return None
