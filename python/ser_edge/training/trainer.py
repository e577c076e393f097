"""One trainer for every model: fit on frames, speaker-independent splits, evaluation with
speaker-adapted and cold normalisation, float vs quantised parity, export.

Normalisation protocol (what the figures mean):

- training clips are z-scored with their own speaker's frame statistics;
- ``speaker`` evaluation: a test speaker's statistics come from all of that speaker's test clips,
  used without their labels. This is speaker adaptation, what the device's
  :class:`~ser_edge.inputs.Adapter` converges to after hearing its user;
- ``cold`` evaluation: every test clip is z-scored with the training population's statistics
  only (the normalisation a brand-new device starts from).

Sliding windows (``TrainConfig.windows = (window_s, hop_s)``, ``--windows 2.0,1.0``): the model
trains on windows of each training clip's voiced frames (each window inherits its clip's label;
each clip's sample weight is shared among its windows), and a clip's prediction is the mean of its
windows' probabilities. Windows are cut after the speaker split, so no window of a test speaker is
ever trained on. The raw-waveform model ``cnn_lstm_wave`` (``wave.py``) always trains on windows
(1 s chunks by default) and is scored the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

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
    #: ``(window, hop)`` in seconds (or ``"2.0,1.0"``): train on sliding windows of each clip and
    #: score a clip by the mean of its windows' probabilities. None: whole clips.
    windows: tuple[float, float] | None = None
    #: Also train on every clip normalised with the population's statistics (what a new device
    #: starts from), beside its speaker-normalised input: one model for cold and adapted inputs.
    cold_inputs: bool = False
    #: Also train on every clip normalised as after a calm-speech enrolment: statistics of its
    #: speaker's neutral clips only, merged with the population prior as the device's Adapter does.
    neutral_inputs: bool = False
    #: Teacher-student training for degraded copies (``[room]``, ``augment``): first a model is fit
    #: on the clean clips alone; every input's target is then ``(1 - distill)`` x its label plus
    #: ``distill`` x that clean model's probabilities for the input's clean original, under the
    #: same normalisation. 0: labels only.
    distill: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill={self.distill} must be in [0, 1]")
        if self.windows is not None:
            from ser_edge.training.augment import parse_windows

            self.windows = parse_windows(self.windows)


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


def window_weights(w: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Each clip's weight ``w[i]`` shared equally among its windows (``owner[j]``: the clip of
    window ``j``), rescaled to a mean of 1 over the windows (the learning rate keeps its meaning)."""
    w, owner = np.asarray(w, np.float64), np.asarray(owner, int)
    counts = np.bincount(owner, minlength=len(w))
    ww = w[owner] / counts[owner]
    return (ww * len(ww) / ww.sum()).astype(np.float32)


def pooled_inputs(
    frames: ds.FrameSet, config: InputConfig, stats: ds.Stats, windows: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, owner)``: one input per clip (``owner = arange``) or, with ``windows`` (seconds),
    one per sliding window of each clip's frames (:func:`ser_edge.training.dataset.window_inputs`)."""
    if windows is None:
        return ds.model_inputs(frames, config, stats), np.arange(len(frames))
    return ds.window_inputs(
        frames, config, stats, ds.seconds_to_frames(windows[0], config), ds.seconds_to_frames(windows[1], config)
    )


def neutral_stats(frames: ds.FrameSet, population: Any, prior_frames: float) -> dict[str, Any]:
    """Per speaker (``corpus/speaker``) with neutral clips: the statistics an :class:`Adapter`
    reaches after hearing only those clips (the ``neutral`` normalisation of the evaluation)."""
    from ser_edge.inputs import Adapter

    adapters: dict[str, Adapter] = {}
    for key, clip, x in zip(frames.speakers, frames.clips, frames.frames):
        if clip.label == "neutral":
            adapters.setdefault(str(key), Adapter(population.mean, population.std, prior_frames)).update(x)
    return {k: a.stats() for k, a in adapters.items()}


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

    def window_inputs(self, frames: ds.FrameSet, mode: str = "speaker") -> tuple[np.ndarray, np.ndarray]:
        """Standardised model inputs of ``frames`` under normalisation ``mode`` and the clip of
        each (one per clip, or one per window with ``config.windows``)."""
        stats = ds.stats_for(frames, self.input, mode=mode, population=self.population)
        x, owner = pooled_inputs(frames, self.input, stats, self.config.windows)
        return ds.standardize(x, self.normalization.input_mean, self.normalization.input_std), owner

    def inputs(self, frames: ds.FrameSet, mode: str = "speaker") -> np.ndarray:
        """Standardised model inputs of ``frames`` under normalisation ``mode`` (per window with
        ``config.windows``)."""
        return self.window_inputs(frames, mode)[0]

    def probabilities(self, frames: ds.FrameSet, mode: str = "speaker") -> np.ndarray:
        """Per-clip probabilities (the mean over a clip's windows with ``config.windows``)."""
        x, owner = self.window_inputs(frames, mode)
        return ds.clip_mean(np.asarray(self.model.predict(x, verbose=0)), owner, len(frames))

    def tflite(self, quantization: str) -> bytes:
        from ser_edge.training.export import to_tflite

        return to_tflite(
            self.model,
            quantization,
            input_shape=self.input.input_shape,
            representative=self.train_inputs,
            seed=self.config.seed,
        )

    def export(
        self,
        out_dir: PathLike,
        *,
        name: str,
        quantization: str = "int8",
        training: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> Bundle:
        from ser_edge.training.export import export_bundle

        info = {
            "model": self.config.model,
            "train_config": asdict(self.config),
            "n_clips": len(self.train_inputs),
            "seconds": round(self.seconds, 1),
            "parameters": int(self.model.count_params()) if self.config.model != "knn" else int(self.train_inputs.size),
        }
        info.update(training or {})
        return export_bundle(
            self.model,
            out_dir,
            name=name,
            labels=self.labels,
            input=self.input,
            normalization=self.normalization,
            quantization=quantization,
            representative=self.train_inputs,
            training=info,
            metrics=metrics,
        )


def fit(
    train: ds.FrameSet, config: InputConfig | None, labels: Sequence[str], tc: TrainConfig, *, verbose: int = 0
) -> Trained:
    """Fits model ``tc.model`` on the frames of ``train`` (labels must be among ``labels``). The
    raw-waveform models (``models.WAVE_MODELS``) train with ``wave.fit_wave`` on a ``WaveSet``."""
    from ser_edge.training.models import WAVE_MODELS, build

    if tc.model in WAVE_MODELS:
        raise ValueError(f"model {tc.model!r} reads raw audio: train it with wave.fit_wave on a WaveSet")
    if config is None:
        raise ValueError(f"model {tc.model!r} needs an InputConfig")
    t0 = time.time()
    labels = tuple(labels)
    y = train.label_indices(labels)
    population = ds.population_stats(train)
    x, owner, mode = training_inputs(train, config, tc, population)
    y = y[owner]
    mean = std = None
    if config.pooling == "stats":
        mean, std = ds.standardization(x)
        x = ds.standardize(x, mean, std)
    targets = np.eye(len(labels), dtype=np.float32)[y]
    if tc.distill:
        targets = (1.0 - tc.distill) * targets + tc.distill * clean_teacher(train, config, labels, tc)(owner, mode)
    model = build(tc.model, config.input_shape, len(labels), lr=tc.lr, seed=tc.seed, **dict(tc.hparams))
    w = sample_weights(train.clips) if tc.balance else None
    if tc.windows is not None or tc.cold_inputs or tc.neutral_inputs:
        w = window_weights(w if w is not None else np.ones(len(train), np.float32), owner)
    hist = model.fit(
        x, targets, sample_weight=w, batch_size=tc.batch_size, epochs=tc.epochs, verbose=verbose, shuffle=True
    )
    history = {k: [float(v) for v in vs] for k, vs in getattr(hist, "history", {}).items()}
    norm = Normalization(
        frame_mean=population.mean,
        frame_std=population.std,
        prior_frames=tc.prior_frames,
        input_mean=mean,
        input_std=std,
    )
    return Trained(model, config, labels, norm, x, history, time.time() - t0, tc, population)


def training_inputs(
    train: ds.FrameSet, config: InputConfig, tc: TrainConfig, population: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, owner, mode)``: the pooled inputs :func:`fit` trains on (not yet standardised), the
    clip of each and its normalisation (0 speaker, 1 population with ``cold_inputs``, 2 neutral
    enrolment with ``neutral_inputs``)."""
    stats = ds.stats_for(train, config, mode="speaker", population=population)
    x, owner = pooled_inputs(train, config, stats, tc.windows)
    mode = np.zeros(len(x), int)
    if tc.cold_inputs:
        x_cold, owner_cold = pooled_inputs(train, config, population, tc.windows)
        x, owner, mode = (
            np.concatenate([x, x_cold]),
            np.concatenate([owner, owner_cold]),
            np.r_[mode, [1] * len(x_cold)],
        )
    if tc.neutral_inputs:
        enrolled = neutral_stats(train, population, tc.prior_frames)
        keep = np.flatnonzero([str(k) in enrolled for k in train.speakers])
        x_n, owner_n = pooled_inputs(train.subset(keep), config, enrolled, tc.windows)
        x, owner, mode = np.concatenate([x, x_n]), np.concatenate([owner, keep[owner_n]]), np.r_[mode, [2] * len(x_n)]
    return x, owner, mode


def clean_teacher(
    train: ds.FrameSet, config: InputConfig, labels: Sequence[str], tc: TrainConfig
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Fits ``tc``'s model on the clean clips of ``train`` (not augmented copies) and returns
    ``targets(owner, mode)``: its probabilities for each input's clean original (the clip with the
    same path) under that input's normalisation (:func:`training_inputs`)."""
    from dataclasses import replace

    from ser_edge.training.augment import is_copy

    if tc.windows is not None:
        raise ValueError("distill works on whole clips (no windows)")
    clean_idx = np.flatnonzero([not is_copy(c) for c in train.clips])
    index = {train.clips[i].path: k for k, i in enumerate(clean_idx)}
    try:
        original = np.array([index[c.path] for c in train.clips])
    except KeyError as e:
        raise ValueError(f"distill: no clean original of the augmented copy {e}") from None
    clean = train.subset(clean_idx)
    teacher = fit(clean, config, labels, replace(tc, distill=0.0))
    xt, owner_t, mode_t = training_inputs(clean, config, tc, teacher.population)
    norm = teacher.normalization
    if config.pooling == "stats":
        xt = ds.standardize(xt, norm.input_mean, norm.input_std)
    probs = np.asarray(teacher.model.predict(xt, verbose=0), np.float32)
    row = {(int(o), int(m)): k for k, (o, m) in enumerate(zip(owner_t, mode_t))}

    def targets(owner: np.ndarray, mode: np.ndarray) -> np.ndarray:
        return probs[[row[(int(original[o]), int(m))] for o, m in zip(owner, mode)]]

    return targets


#: A trainer: ``(train set, input config, labels, train config) -> Trained`` (:func:`fit`, ``wave.fit_wave``).
Fit = Callable[[Any, InputConfig | None, Sequence[str], TrainConfig], Trained]


# -- splits -----------------------------------------------------------------------------------------
def splits(frames: Any, split: str, corpus: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, train_index, test_index)`` of speaker-independent folds over corpus ``corpus``.

    - ``loso``: each speaker of ``corpus`` is the test set once; training = every other clip
      (other corpora included);
    - ``test-speakers=17,18,19,20``: those speakers of ``corpus`` are the test set;
    - ``none``: no test set (one fold that trains on everything).

    ``frames``: anything with ``clips`` and a length (a FrameSet or a ``wave.WaveSet``).
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
            raise ValueError(
                f"--split {split}: speakers {unknown or wanted} are not in corpus {corpus!r} "
                f"(its speakers: {', '.join(sorted(set(spk[in_corpus])))})"
            )
        test = in_corpus & np.isin(spk, wanted)
        yield ",".join(wanted), np.flatnonzero(~test), np.flatnonzero(test)
    else:
        raise ValueError(f"--split {split!r}: use loso, test-speakers=ID,ID,... or none")


def evaluate_split(
    frames: Any,
    config: InputConfig | None,
    labels: Sequence[str],
    tc: TrainConfig,
    *,
    split: str,
    corpus: str,
    quantizations: Sequence[str] = ("int8",),
    modes: Sequence[str] = MODES,
    restrict: bool = True,
    extra: ds.FrameSet | None = None,
    progress: bool = False,
    fitter: Fit | None = None,
) -> dict[str, Any]:
    """Trains one model per fold and scores the held-out speakers.

    Returns ``{"float": {mode: report}, "<quantization>": {"speaker": report, "agreement": ...},
    "folds": [...], "histories": [...], "seconds": ...}``. The quantised models are scored with
    speaker normalisation; ``agreement_with_float`` is the share of clips with the same top-1 as
    Keras, ``max_prob_diff`` the largest difference of a model output (window) from Keras, and
    ``latency_ms`` the median time of one input on LiteRT with one thread. ``quantizations`` may
    include ``"float32"`` (the unquantised TFLite model: the conversion's own parity).
    ``extra``: augmented copies (``source`` = index into ``frames``); a fold trains on the
    copies of its training clips only.
    ``restrict``: the argmax is taken over the labels of ``corpus`` only (documented default).
    ``fitter``: how a fold trains (default :func:`fit`; ``wave.fit_wave`` for the raw-waveform models).
    With windows (``tc.windows``, or a raw-waveform model), every probability, float and
    quantised, is the mean over a clip's windows. ``frames`` may be a ``wave.WaveSet`` for the
    raw-waveform models (they have no frame normalisation: pass ``modes=("speaker",)``)."""
    from ser_edge.training.export import tflite_run

    corpus_labels = [label for label in labels if label in {c.label for c in frames.clips if c.corpus == corpus}]
    allowed = corpus_labels if restrict else None
    true: list[str] = []
    pred: dict[str, list[str]] = {f"float/{m}": [] for m in modes}
    pred.update({f"{q}/speaker": [] for q in quantizations})
    folds, histories, sizes = [], [], {}
    max_diff: dict[str, float] = {q: 0.0 for q in quantizations}
    latency: dict[str, list[float]] = {q: [] for q in quantizations}
    t0 = time.time()
    for name, tr, te in splits(frames, split, corpus):
        train = frames.subset(tr)
        if extra is not None:
            assert extra.source is not None  # extra sets always carry their source split
            train = ds.concat(train, extra.subset(np.isin(extra.source, tr)))
        trained = (fitter or fit)(train, config, labels, tc)
        test = frames.subset(te)
        true += test.labels
        fold = {"fold": name, "n_train": len(train), "n_test": len(te), "train_seconds": round(trained.seconds, 1)}
        if len(trained.train_inputs) != len(train):
            fold["n_train_windows"] = len(trained.train_inputs)
        x, owner = trained.window_inputs(test, "speaker")
        keras = np.asarray(trained.model.predict(x, verbose=0)) if len(x) else np.zeros((0, len(labels)))
        for m in modes:
            probs = ds.clip_mean(keras, owner, len(test)) if m == "speaker" else trained.probabilities(test, m)
            p = restricted_argmax(probs, labels, allowed)
            pred[f"float/{m}"] += [labels[i] for i in p]
        for q in quantizations:
            blob = trained.tflite(q)
            sizes[q] = len(blob)
            lite, seconds = tflite_run(blob, x)
            if len(x):
                max_diff[q] = max(max_diff[q], float(np.abs(lite - keras).max()))
                latency[q].append(seconds)
            p = restricted_argmax(ds.clip_mean(lite, owner, len(test)), labels, allowed)
            pred[f"{q}/speaker"] += [labels[i] for i in p]
        folds.append(fold)
        histories.append(trained.history)
        if progress:
            print(f"  fold {name}: {fold}", flush=True)
    out: dict[str, Any] = {
        "split": split,
        "corpus": corpus,
        "model": tc.model,
        "labels": corpus_labels,
        "restricted_argmax": restrict,
        "folds": folds,
        "histories": histories,
        "seconds": round(time.time() - t0, 1),
        "tflite_bytes": sizes,
    }
    out["float"] = {m: report(true, pred[f"float/{m}"], corpus_labels) for m in modes}
    for q in quantizations:
        r = report(true, pred[f"{q}/speaker"], corpus_labels)
        same = (
            np.mean([a == b for a, b in zip(pred[f"{q}/speaker"], pred["float/speaker"])])
            if "speaker" in modes
            else None
        )
        r["agreement_with_float"] = None if same is None else float(same)
        r["max_prob_diff"] = max_diff[q]  # model outputs (windows), TFLite vs Keras, every fold
        r["latency_ms"] = round(1e3 * float(np.median(latency[q])), 4) if latency[q] else None
        out[q] = r
    return out


__all__ = [
    "MODES",
    "TrainConfig",
    "Trained",
    "clean_teacher",
    "evaluate_split",
    "fit",
    "neutral_stats",
    "pooled_inputs",
    "sample_weights",
    "training_inputs",
    "set_threads",
    "splits",
    "window_weights",
]
