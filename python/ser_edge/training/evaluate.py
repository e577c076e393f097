"""Scoring a model bundle on a labelled corpus with the edge runtime (no TensorFlow).

- Labels: a clip's canonical label is used as is when the model knows it; otherwise it is mapped
  through the grouping whose labels are the model's (e.g. ``angry`` -> ``negative`` for a 3-class
  model); clips with labels the model cannot express are counted in ``skipped``.
- Prediction: the argmax over the labels the model and the corpus share (default), or over all
  the model's labels (``shared_labels=False``; other predictions then count as errors, column
  ``"other"`` of the confusion matrix).
- Normalisation ``"speaker"``: each speaker's statistics come from that speaker's clips without
  their labels (speaker adaptation: the :class:`~ser_edge.inputs.Adapter` is fed every clip of
  the speaker first, starting from the bundle's population prior); clips without a speaker id
  are treated as one speaker. ``"online"``: as a device hears them: each speaker's clips in a
  random (seeded) order, the statistics updated with each clip before it is classified, so early
  clips see mostly the population prior. ``"cold"``: the bundle's population statistics only,
  what a new device starts from.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from ser_edge.labels import GROUPINGS, group

PathLike = Union[str, "os.PathLike[str]"]
NORMALIZATIONS = ("speaker", "online", "cold")


def label_mapper(model_labels: Sequence[str]) -> Any:
    """A function canonical label -> model label or ``None`` (see the module docstring)."""
    labels = set(model_labels)
    grouping = next((g for g, (names, _) in GROUPINGS.items() if g != "full" and set(names) == labels), None)

    def mapped(label: str) -> Optional[str]:
        if label in labels:
            return label
        return group(label, grouping) if grouping is not None else None

    return mapped


def evaluate_bundle(corpus: str, data_dir: PathLike, *, model: Optional[PathLike] = None,
                    normalization: str = "speaker", shared_labels: bool = True,
                    speakers: Optional[Sequence[str]] = None, seed: int = 0, num_threads: int = 1) -> dict[str, Any]:
    """UAR, accuracy, per-class recall and confusion of a bundle on ``corpus`` (see the module
    docstring). Returns the :func:`ser_edge.training.metrics.report` dict plus ``model_id``,
    ``normalization``, ``shared_labels``, ``skipped`` and ``corpus``."""
    import numpy as np

    from ser_edge.audio import load
    from ser_edge.bundle import load_bundle
    from ser_edge.runtime import Recognizer
    from ser_edge.training.corpora import load_corpus
    from ser_edge.training.metrics import report, restricted_argmax

    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}; choose from {', '.join(NORMALIZATIONS)}")
    bundle = load_bundle(model)
    clips = load_corpus(corpus, data_dir)
    if speakers is not None:
        unknown = sorted(set(speakers) - {c.speaker for c in clips})
        if unknown:
            raise ValueError(f"speakers {unknown} are not in corpus {corpus!r}")
        clips = [c for c in clips if c.speaker in set(speakers)]
    mapped = label_mapper(bundle.labels)
    skipped: dict[str, int] = {}
    todo = []
    for c in clips:
        m = mapped(c.label)
        if m is None:
            skipped[c.label] = skipped.get(c.label, 0) + 1
        else:
            todo.append((c, m))
    if not todo:
        raise ValueError(f"no clip of {corpus!r} has a label the model knows ({', '.join(bundle.labels)})")
    scored = [label for label in bundle.labels if label in {m for _, m in todo}]
    allowed = scored if shared_labels else None
    true, pred = [], []
    by_speaker: dict[str, list[tuple[Any, str]]] = {}
    for c, m in todo:
        by_speaker.setdefault(c.speaker, []).append((c, m))
    rng = np.random.default_rng(seed)
    for spk, items in by_speaker.items():
        rec = Recognizer(bundle, adapt=normalization != "cold", num_threads=num_threads)
        if normalization == "online":
            items = [items[i] for i in rng.permutation(len(items))]
        frames = []
        for c, _ in items:
            y, _sr = load(c.path, sr=bundle.input.sr)
            try:
                f = bundle.input.frames(y)
            except ValueError as e:
                raise ValueError(f"{c.path}: {e}") from None
            if len(f) == 0:
                raise ValueError(f"{c.path}: too short for one frame")
            frames.append(f)
            if normalization == "speaker":
                rec.adapter.update(bundle.input.voiced(f))
        x = np.stack([rec.inputs(f, new_frames=None if normalization == "online" else 0) for f in frames])
        p = restricted_argmax(rec.classifier.probabilities(x), bundle.labels, allowed)
        true += [m for _, m in items]
        pred += [bundle.labels[i] for i in p]
    rep = report(true, pred, scored)
    rep.update(model_id=bundle.model_id, corpus=corpus, normalization=normalization, shared_labels=shared_labels,
               skipped=skipped, n_speakers=len(by_speaker))
    return rep


__all__ = ["NORMALIZATIONS", "evaluate_bundle", "label_mapper"]
