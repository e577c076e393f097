"""Scores of a classifier on labelled clips: UAR (mean per-class recall), accuracy, per-class
recall, confusion matrix; PNG figures of a confusion matrix and of training curves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


def restricted_argmax(scores: np.ndarray, model_labels: Sequence[str], allowed: Sequence[str] | None) -> np.ndarray:
    """Index (into ``model_labels``) of the best score among ``allowed`` labels (all if None)."""
    s = np.asarray(scores, np.float64).copy()
    if allowed is not None:
        keep = np.array([label in set(allowed) for label in model_labels])
        if not keep.any():
            raise ValueError("no allowed label is among the model's labels")
        s[:, ~keep] = -np.inf
    return s.argmax(1)


def report(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """``{"uar", "accuracy", "n", "labels", "per_class", "confusion"}``. ``labels``: the classes
    scored (rows of ``confusion``); predictions outside them get an extra last column
    ``"other"`` only if any occur. UAR averages the recall of the classes present in ``true``."""
    labels = list(labels)
    true, predicted = list(true), list(predicted)
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels for {len(predicted)} predictions")
    cols = labels + (["other"] if any(p not in labels for p in predicted) else [])
    index = {label: i for i, label in enumerate(cols)}
    conf = np.zeros((len(labels), len(cols)), int)
    for t, p in zip(true, predicted):
        if t not in labels:
            raise ValueError(f"true label {t!r} is not among the scored labels {labels}")
        conf[labels.index(t), index.get(p, len(cols) - 1)] += 1
    support = conf.sum(1)
    recall = {label: (float(conf[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    present = [r for r in recall.values() if r is not None]
    n = int(support.sum())
    return {
        "uar": float(np.mean(present)) if present else 0.0,
        "accuracy": float(np.trace(conf[:, : len(labels)]) / n) if n else 0.0,
        "n": n,
        "labels": labels,
        "per_class": recall,
        "support": {label: int(s) for label, s in zip(labels, support)},
        "confusion": conf.tolist(),
        "confusion_columns": cols,
    }


def plot_confusion(rep: Mapping[str, Any], path: PathLike, *, title: str = "") -> None:
    """Confusion matrix PNG (rows: true labels, row-normalised colour, counts written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = np.asarray(rep["confusion"], float)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * conf.shape[1], 1.0 + 0.6 * conf.shape[0]))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            ax.text(
                j,
                i,
                str(int(conf[i, j])),
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(conf.shape[1]), rep.get("confusion_columns", rep["labels"]), rotation=45, ha="right")
    ax.set_yticks(range(conf.shape[0]), rep["labels"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"UAR {rep['uar']:.3f}  accuracy {rep['accuracy']:.3f}  n={rep['n']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


def plot_curves(histories: Sequence[Mapping[str, Sequence[float]]], path: PathLike, *, title: str = "") -> None:
    """Training curves PNG: loss and accuracy per epoch for each run (e.g. each fold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, h in enumerate(histories):
        for ax, key in zip(axes, ("loss", "accuracy")):
            if h.get(key):
                ax.plot(range(1, len(h[key]) + 1), h[key], lw=0.8, alpha=0.7, label=f"run {k}" if k < 12 else None)
            if h.get("val_" + key):
                ax.plot(range(1, len(h["val_" + key]) + 1), h["val_" + key], lw=0.8, ls="--")
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"training {key}")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


__all__ = ["plot_confusion", "plot_curves", "report", "restricted_argmax"]
