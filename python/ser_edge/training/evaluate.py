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
  what a new device starts from. ``"neutral"``: the Adapter hears only the speaker's neutral
  clips (a calm-speech enrolment), then classifies every clip without adapting further.
- Conditions (``conditions.py``): every clip, the neutral enrolment clips included, is first
  degraded by the condition (``"clean"``, ``"noise:<folder>@<snr>"``, ``"babble:<n>@<snr>"``,
  ``"reverb:<folder>"``, ...), the same way in every run (seeded per clip).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

from ser_edge.labels import GROUPINGS, group

PathLike = Union[str, "os.PathLike[str]"]
NORMALIZATIONS = ("speaker", "online", "cold", "neutral")


def label_mapper(model_labels: Sequence[str]) -> Any:
    """A function canonical label -> model label or ``None`` (see the module docstring)."""
    labels = set(model_labels)
    grouping = next((g for g, (names, _) in GROUPINGS.items() if g != "full" and set(names) == labels), None)

    def mapped(label: str) -> str | None:
        if label in labels:
            return label
        return group(label, grouping) if grouping is not None else None

    return mapped


def evaluate_bundle(
    corpus: str,
    data_dir: PathLike,
    *,
    model: PathLike | None = None,
    normalization: str = "speaker",
    shared_labels: bool = True,
    speakers: Sequence[str] | None = None,
    seed: int = 0,
    num_threads: int = 1,
    condition: str = "clean",
    babble_pool: Sequence[Any] = (),
) -> dict[str, Any]:
    """UAR, accuracy, per-class recall and confusion of a bundle on ``corpus`` (see the module
    docstring) under ``condition``; ``babble_pool``: clips (``corpora.Clip``) of the babble
    talkers. Returns the :func:`ser_edge.training.metrics.report` dict plus ``model_id``,
    ``normalization``, ``condition``, ``shared_labels``, ``skipped``, ``n_speakers`` and ``corpus``."""
    from ser_edge.bundle import load_bundle
    from ser_edge.training.corpora import load_corpus

    bundle = load_bundle(model)
    clips = load_corpus(corpus, data_dir)
    if speakers is not None:
        unknown = sorted(set(speakers) - {c.speaker for c in clips})
        if unknown:
            raise ValueError(f"speakers {unknown} are not in corpus {corpus!r}")
        clips = [c for c in clips if c.speaker in set(speakers)]
    out = score_clips(
        bundle,
        clips,
        conditions=(condition,),
        normalizations=(normalization,),
        shared_labels=shared_labels,
        seed=seed,
        num_threads=num_threads,
        babble_pool=babble_pool,
    )
    rep = out[(condition, normalization)]
    rep.update(corpus=corpus)
    return rep


def score_clips(
    bundle: Any,
    clips: Sequence[Any],
    *,
    conditions: Sequence[str] = ("clean",),
    normalizations: Sequence[str] = ("speaker",),
    shared_labels: bool = True,
    seed: int = 0,
    num_threads: int = 1,
    babble_pool: Sequence[Any] = (),
    raw: bool = False,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Scores ``bundle`` on ``clips`` under every condition x normalisation with the edge runtime
    (each clip's frames computed once per condition). Returns ``{(condition, normalization):
    report}``; with ``raw=True`` each value is ``{"true": [...], "pred": [...], "scored": [...],
    "skipped": {...}}`` instead (to pool folds before scoring)."""
    import numpy as np

    from ser_edge.runtime import Recognizer
    from ser_edge.training.conditions import Degrader, parse_condition
    from ser_edge.training.metrics import report, restricted_argmax

    for n in normalizations:
        if n not in NORMALIZATIONS:
            raise ValueError(f"normalization={n!r}; choose from {', '.join(NORMALIZATIONS)}")
    for c in conditions:
        parse_condition(c)
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
        raise ValueError(f"no clip has a label the model knows ({', '.join(bundle.labels)})")
    scored = [label for label in bundle.labels if label in {m for _, m in todo}]
    allowed = scored if shared_labels else None
    by_speaker: dict[str, list[tuple[Any, str]]] = {}
    for c, m in todo:
        by_speaker.setdefault(c.speaker_key, []).append((c, m))
    if "neutral" in normalizations:
        lacking = sorted(s for s, items in by_speaker.items() if not any(c.label == "neutral" for c, _ in items))
        if lacking:
            raise ValueError(f"normalization 'neutral' needs neutral clips of every speaker; none for {lacking}")
    cfg = bundle.input
    degrader = Degrader(cfg.sr, seed=seed, babble_pool=babble_pool)
    adapting = Recognizer(bundle, adapt=True, num_threads=num_threads)
    fixed = Recognizer(bundle, adapt=False, num_threads=num_threads)
    out = {}
    for cond in conditions:
        if cfg.waveform is not None:  # chunks pooled per clip; no frames, no adaptation: every normalisation alike
            probs = []
            for items in by_speaker.values():
                for c, _ in items:
                    x = cfg.waveform_inputs(degrader.clip(c, cond))
                    probs.append(cfg.pool_chunks(fixed.classifier.probabilities(x)))
            chunked = [bundle.labels[i] for i in restricted_argmax(np.array(probs), bundle.labels, allowed)]
        else:
            frames_of = {}
            for c, _ in todo:
                try:
                    f = cfg.frames(degrader.clip(c, cond))
                except ValueError as e:
                    raise ValueError(f"{c.path}: {e}") from None
                if len(f) == 0:
                    raise ValueError(f"{c.path}: too short for one frame")
                frames_of[c.path] = f
        for norm in normalizations:
            rng = np.random.default_rng(seed)
            true, pred = [], []
            if cfg.waveform is not None:
                true, pred = [m for items in by_speaker.values() for _, m in items], list(chunked)
            else:
                for items in by_speaker.values():
                    rec = fixed if norm == "cold" else adapting
                    rec.adapter.reset()
                    if norm == "online":
                        items = [items[i] for i in rng.permutation(len(items))]
                    for c, _ in items:
                        if norm == "speaker" or (norm == "neutral" and c.label == "neutral"):
                            rec.adapter.update(cfg.voiced(frames_of[c.path]))
                    x = np.stack(
                        [rec.inputs(frames_of[c.path], new_frames=None if norm == "online" else 0) for c, _ in items]
                    )
                    p = restricted_argmax(rec.classifier.probabilities(x), bundle.labels, allowed)
                    true += [m for _, m in items]
                    pred += [bundle.labels[i] for i in p]
            if raw:
                out[(cond, norm)] = {"true": true, "pred": pred, "scored": scored, "skipped": skipped}
                continue
            rep = report(true, pred, scored)
            rep.update(
                model_id=bundle.model_id,
                normalization=norm,
                condition=cond,
                shared_labels=shared_labels,
                skipped=skipped,
                n_speakers=len(by_speaker),
            )
            out[(cond, norm)] = rep
    return out


__all__ = ["NORMALIZATIONS", "evaluate_bundle", "label_mapper", "score_clips"]
