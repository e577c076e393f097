"""One trainer for every model: fit on frames, speaker-independent splits, evaluation with
speaker-adapted and cold normalisation, float vs quantised parity, export.

Normalisation protocol (what the figures mean):

- training clips are z-scored with their own speaker's frame statistics;
- ``speaker`` evaluation: a test speaker's statistics come from all of that speaker's test clips,
  used without their labels. This is speaker adaptation, what the device's
  :class:`~ser_edge.inputs.Adapter` converges to after hearing its user;
- ``cold`` evaluation: every test clip is z-scored with the training population's statistics
  only (the normalisation a brand-new device starts from).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from ser_edge.bundle import Bundle, Normalization
from ser_edge.inputs import InputConfig
from ser_edge.training import dataset as ds
from ser_edge.training.metrics import report, restricted_argmax

PathLike = Union[str, "os.PathLike[str]"]
MODES = ("speaker", "cold")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (``hparams`` go to :func:`models.build`).

    ``prior_frames``: how many frames the population statistics weigh in the bundle's
    speaker adaptation (:class:`~ser_edge.inputs.Adapter`). 300 (3 s of voiced speech) lets a
    device reach its user's statistics quickly; with 3000, the held-out RAVDESS actors lost 5
    points of UAR after hearing all of their ~60 clips (docs/results.md)."""

    model: str = "mlp"
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    balance: bool = True
    prior_frames: float = 300.0
    hparams: dict[str, Any] = field(default_factory=dict)


def set_threads(n: int) -> None:
    """TensorFlow intra/inter-op threads (0: TensorFlow's default). Call before building models."""
    if n > 0:
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:
            pass  # already initialised: keeps the first setting


def sample_weights(clips: Sequence[Any]) -> np.ndarray:
    """Balances classes within each corpus and gives each corpus the same total weight:
    ``N / (n_corpora * n_classes_in_corpus * count(corpus, class))``."""
    corpus = np.array([c.corpus for c in clips])
    label = np.array([c.label for c in clips])
    w = np.ones(len(clips), np.float32)
    corpora = np.unique(corpus)
    for c in corpora:
        classes = np.unique(label[corpus == c])
        for k in classes:
            m = (corpus == c) & (label == k)
            w[m] = len(clips) / (len(corpora) * len(classes) * m.sum())
    return w


@dataclass
class Trained:
    """A fitted model with everything needed to feed it and to export it."""

    model: Any
    input: InputConfig
    labels: tuple[str, ...]
    normalization: Normalization
    train_inputs: np.ndarray
    history: dict[str, list[float]]
    seconds: float
    config: TrainConfig
    population: Any = None  # FrameStats of the training frames

    def inputs(self, frames: ds.FrameSet, mode: str = "speaker") -> np.ndarray:
        """Standardised model inputs of ``frames`` under normalisation ``mode``."""
        x = ds.inputs_for(frames, self.input, mode=mode, population=self.population)
        return ds.standardize(x, self.normalization.input_mean, self.normalization.input_std)

    def probabilities(self, frames: ds.FrameSet, mode: str = "speaker") -> np.ndarray:
        return np.asarray(self.model.predict(self.inputs(frames, mode), verbose=0))

    def tflite(self, quantization: str) -> bytes:
        from ser_edge.training.export import to_tflite

        return to_tflite(self.model, quantization, input_shape=self.input.input_shape,
                         representative=self.train_inputs, seed=self.config.seed)

    def export(self, out_dir: PathLike, *, name: str, quantization: str = "int8",
               training: Optional[dict[str, Any]] = None, metrics: Optional[dict[str, Any]] = None) -> Bundle:
        from ser_edge.training.export import export_bundle

        info = {"model": self.config.model, "train_config": asdict(self.config), "n_clips": len(self.train_inputs),
                "seconds": round(self.seconds, 1), "parameters": int(self.model.count_params())
                if self.config.model != "knn" else int(self.train_inputs.size)}
        info.update(training or {})
        return export_bundle(self.model, out_dir, name=name, labels=self.labels, input=self.input,
                             normalization=self.normalization, quantization=quantization,
                             representative=self.train_inputs, training=info, metrics=metrics)


def fit(train: ds.FrameSet, config: InputConfig, labels: Sequence[str], tc: TrainConfig, *,
        verbose: int = 0) -> Trained:
    """Fits model ``tc.model`` on ``train`` (labels must be among ``labels``)."""
    from ser_edge.training.models import build

    t0 = time.time()
    labels = tuple(labels)
    index = {label: i for i, label in enumerate(labels)}
    missing = sorted({c.label for c in train.clips} - set(index))
    if missing:
        raise ValueError(f"training labels {missing} are not among the model's labels {list(labels)}")
    y = np.array([index[c.label] for c in train.clips])
    population = ds.population_stats(train)
    x = ds.inputs_for(train, config, mode="speaker", population=population)
    mean = std = None
    if config.pooling == "stats":
        mean, std = ds.standardization(x)
        x = ds.standardize(x, mean, std)
    model = build(tc.model, config.input_shape, len(labels), lr=tc.lr, seed=tc.seed, **dict(tc.hparams))
    w = sample_weights(train.clips) if tc.balance else None
    onehot = np.eye(len(labels), dtype=np.float32)[y]
    hist = model.fit(x, onehot, sample_weight=w, batch_size=tc.batch_size, epochs=tc.epochs, verbose=verbose,
                     shuffle=True)
    history = {k: [float(v) for v in vs] for k, vs in getattr(hist, "history", {}).items()}
    norm = Normalization(frame_mean=population.mean, frame_std=population.std, prior_frames=tc.prior_frames,
                         input_mean=mean, input_std=std)
    return Trained(model, config, labels, norm, x, history, time.time() - t0, tc, population)


# -- splits -----------------------------------------------------------------------------------------
def splits(frames: ds.FrameSet, split: str, corpus: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, train_index, test_index)`` of speaker-independent folds over corpus ``corpus``.

    - ``loso``: each speaker of ``corpus`` is the test set once; training = every other clip
      (other corpora included);
    - ``test-speakers=17,18,19,20``: those speakers of ``corpus`` are the test set;
    - ``none``: no test set (one fold that trains on everything).
    """
    corp = np.array([c.corpus for c in frames.clips])
    spk = np.array([c.speaker for c in frames.clips])
    in_corpus = corp == corpus
    if split != "none" and not in_corpus.any():
        raise ValueError(f"no clips of corpus {corpus!r} to test on")
    if split == "none":
        yield "all", np.arange(len(frames)), np.arange(0)
    elif split == "loso":
        speakers = sorted(set(spk[in_corpus]))
        if len(speakers) < 2:
            raise ValueError(f"--split loso needs at least 2 speakers in {corpus!r}; found {speakers}")
        for s in speakers:
            test = in_corpus & (spk == s)
            yield str(s), np.flatnonzero(~test), np.flatnonzero(test)
    elif split.startswith("test-speakers="):
        wanted = [s.strip() for s in split.split("=", 1)[1].split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(spk[in_corpus]))
        if not wanted or unknown:
            raise ValueError(f"--split {split}: speakers {unknown or wanted} are not in corpus {corpus!r} "
                             f"(its speakers: {', '.join(sorted(set(spk[in_corpus])))})")
        test = in_corpus & np.isin(spk, wanted)
        yield ",".join(wanted), np.flatnonzero(~test), np.flatnonzero(test)
    else:
        raise ValueError(f"--split {split!r}: use loso, test-speakers=ID,ID,... or none")


def evaluate_split(frames: ds.FrameSet, config: InputConfig, labels: Sequence[str], tc: TrainConfig, *,
                   split: str, corpus: str, quantizations: Sequence[str] = ("int8",),
                   modes: Sequence[str] = MODES, restrict: bool = True, extra: Optional[ds.FrameSet] = None,
                   progress: bool = False) -> dict[str, Any]:
    """Trains one model per fold and scores the held-out speakers.

    Returns ``{"float": {mode: report}, "<quantization>": {"speaker": report, "agreement": ...},
    "folds": [...], "histories": [...], "seconds": ...}``. The quantised models are scored with
    speaker normalisation; ``agreement`` is the share of clips with the same top-1 as float.
    ``extra``: augmented copies (``source`` = index into ``frames``); a fold trains on the
    copies of its training clips only.
    ``restrict``: the argmax is taken over the labels of ``corpus`` only (documented default)."""
    from ser_edge.training.export import tflite_probabilities

    corpus_labels = [label for label in labels if label in {c.label for c in frames.clips if c.corpus == corpus}]
    allowed = corpus_labels if restrict else None
    true: list[str] = []
    pred: dict[str, list[str]] = {f"float/{m}": [] for m in modes}
    pred.update({f"{q}/speaker": [] for q in quantizations})
    folds, histories, sizes = [], [], {}
    t0 = time.time()
    for name, tr, te in splits(frames, split, corpus):
        train = frames.subset(tr)
        if extra is not None:
            train = ds.concat(train, extra.subset(np.isin(extra.source, tr)))
        trained = fit(train, config, labels, tc)
        test = frames.subset(te)
        true += test.labels
        fold = {"fold": name, "n_train": len(train), "n_test": len(te), "train_seconds": round(trained.seconds, 1)}
        for m in modes:
            p = restricted_argmax(trained.probabilities(test, m), labels, allowed)
            pred[f"float/{m}"] += [labels[i] for i in p]
        x = trained.inputs(test, "speaker")
        for q in quantizations:
            blob = trained.tflite(q)
            sizes[q] = len(blob)
            p = restricted_argmax(tflite_probabilities(blob, x), labels, allowed)
            pred[f"{q}/speaker"] += [labels[i] for i in p]
        folds.append(fold)
        histories.append(trained.history)
        if progress:
            print(f"  fold {name}: {fold}", flush=True)
    out: dict[str, Any] = {"split": split, "corpus": corpus, "model": tc.model, "labels": corpus_labels,
                           "restricted_argmax": restrict, "folds": folds, "histories": histories,
                           "seconds": round(time.time() - t0, 1), "tflite_bytes": sizes}
    out["float"] = {m: report(true, pred[f"float/{m}"], corpus_labels) for m in modes}
    for q in quantizations:
        r = report(true, pred[f"{q}/speaker"], corpus_labels)
        same = np.mean([a == b for a, b in zip(pred[f"{q}/speaker"], pred["float/speaker"])]) \
            if "speaker" in modes else None
        r["agreement_with_float"] = None if same is None else float(same)
        out[q] = r
    return out


__all__ = ["MODES", "TrainConfig", "Trained", "evaluate_split", "fit", "sample_weights", "set_threads", "splits"]
