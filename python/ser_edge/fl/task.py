"""A federated client's data and model: its own labelled clips -> model inputs (through the
bundle's :class:`~ser_edge.inputs.InputConfig` and the Rust core, as on the device) -> local
training and evaluation of a model from :mod:`ser_edge.training.models`.

Where the clips come from: ``corpus``/``data`` in the SuperNode's ``--node-config`` (a device's
own folder or CSV), else in the run config (simulation); speakers listed in ``holdout`` are never
used by a client; ``partition-id``/``num-partitions`` split a corpus into clients by
:func:`partition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser_edge.inputs import FrameStats, InputConfig, normalize

#: The run configuration (kebab-case, as in ``deploy/fl/app/pyproject.toml``) and its defaults.
DEFAULTS: dict[str, Any] = {
    "num-server-rounds": 3,
    "local-epochs": 5,
    "fraction-train": 1.0,
    "fraction-evaluate": 1.0,
    "min-nodes": 2,
    "lr": 1e-3,
    "batch-size": 8,
    "model": "mlp",
    "grouping": "full",
    "min-clips": 8,
    "seed": 0,
    "corpus": "",
    "data": "",
    "partition": "speaker",
    "holdout": "",
    "eval-corpus": "",
    "eval-data": "",
    "cache-dir": "",
    "out": "",
    "name": "fl-global",
    "dp": "off",
    "dp-noise": 0.1,
    "dp-clip": 10.0,
    "dp-delta": 1e-5,
    "dp-epsilon": 0.0,
    "max-update-norm": 100.0,
    "max-examples": 1000,
    "trainer": "numpy",
    "median-bounds": "on",
    "aggregation-order": "digest",
    "secagg": "off",
    "secagg-clip": 8.0,
}
TRAINERS = ("numpy", "keras")
PARTITIONS = ("speaker", "iid")
DP_MODES = ("off", "server", "client", "example")
#: Models FedAvg can train (knn memorises its training set: nothing to average).
FEDERATED_MODELS = ("mlp", "lstm", "cnn1d", "cnn_lstm", "bilstm34", "cnn2d")


class NotEnoughData(ValueError):
    """The client has too few labelled clips to take part."""


def settings(run_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run configuration with defaults filled in and types checked."""
    cfg = dict(DEFAULTS)
    for source in (run_config, overrides or {}):
        for key, value in source.items():
            if key not in DEFAULTS:
                raise ValueError(f"unknown run config key {key!r}; known: {', '.join(DEFAULTS)}")
            kind = type(DEFAULTS[key])
            try:
                cfg[key] = (
                    kind(value) if not (kind is int and isinstance(value, float) and value != int(value)) else None
                )
            except (TypeError, ValueError):
                cfg[key] = None
            if cfg[key] is None:
                raise ValueError(f"run config {key}={value!r} must be a {kind.__name__}")
    if cfg["model"] not in FEDERATED_MODELS:
        raise ValueError(
            f"model={cfg['model']!r} cannot be trained by FedAvg; choose from {', '.join(FEDERATED_MODELS)}"
        )
    if cfg["partition"] not in PARTITIONS:
        raise ValueError(f"partition={cfg['partition']!r}; choose from {', '.join(PARTITIONS)}")
    if cfg["secagg"] not in ("off", "on"):
        raise ValueError(f"secagg={cfg['secagg']!r}; choose from off, on")
    if cfg["secagg"] == "on" and cfg["dp"] in ("server", "client"):
        raise ValueError("secagg=on works with dp=off or example only (the DP wrappers need each client's update)")
    if cfg["aggregation-order"] not in ("digest", "reversed"):
        raise ValueError(f"aggregation-order={cfg['aggregation-order']!r}; choose from digest, reversed")
    if cfg["aggregation-order"] == "reversed" and cfg["secagg"] == "on":
        raise ValueError("aggregation-order=reversed needs secagg=off (SecAgg+ sums what it receives)")
    if cfg["median-bounds"] not in ("on", "off"):
        raise ValueError(f"median-bounds={cfg['median-bounds']!r}; choose from on, off")
    if cfg["trainer"] not in TRAINERS:
        raise ValueError(f"trainer={cfg['trainer']!r}; choose from {', '.join(TRAINERS)}")
    if cfg["dp"] not in DP_MODES:
        raise ValueError(f"dp={cfg['dp']!r}; choose from {', '.join(DP_MODES)}")
    for key in ("num-server-rounds", "local-epochs", "min-nodes", "batch-size", "min-clips"):
        if cfg[key] < 1:
            raise ValueError(f"{key}={cfg[key]} must be >= 1")
    for key in ("fraction-train", "fraction-evaluate"):
        if not 0.0 < cfg[key] <= 1.0:
            raise ValueError(f"{key}={cfg[key]} must be in (0, 1]")
    for key in ("max-update-norm", "max-examples", "secagg-clip"):
        if not 0 < cfg[key] < float("inf"):
            raise ValueError(f"{key}={cfg[key]} must be a positive finite number")
    if cfg["dp"] == "example" and not (cfg["model"] in NUMPY_MODELS and cfg["trainer"] == "numpy"):
        raise ValueError("dp=example (DP-SGD on the device) needs model=mlp and trainer=numpy")
    if not 0 < cfg["dp-delta"] < 1 or not cfg["dp-epsilon"] >= 0:
        raise ValueError(f"dp-delta={cfg['dp-delta']} must be in (0, 1) and dp-epsilon={cfg['dp-epsilon']} >= 0")
    if not cfg["lr"] > 0:
        raise ValueError(f"lr={cfg['lr']} must be > 0")
    return cfg


def input_config(cfg: Mapping[str, Any]) -> InputConfig:
    """The model input every client computes (the model's default input configuration)."""
    from ser_edge.training.models import default_input

    return default_input(str(cfg["model"]))


def labels(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The model's output labels (the grouping's labels)."""
    from ser_edge.labels import group_labels

    return group_labels(str(cfg["grouping"]))


def holdout(cfg: Mapping[str, Any]) -> set[str]:
    return {s.strip() for s in str(cfg["holdout"]).split(",") if s.strip()}


def corpus_clips(corpus: str, data: str, cfg: Mapping[str, Any]) -> list:
    """The clips of a corpus relabelled with the run's grouping (clips it leaves out dropped)."""
    from ser_edge.training.corpora import grouped, load_corpus

    clips = load_corpus(corpus, data)
    return clips if cfg["grouping"] == "full" else grouped(clips, str(cfg["grouping"]))


def partition(clips: list, index: int, count: int, mode: str = "speaker", seed: int = 0) -> list:
    """Client ``index`` of ``count``'s share of ``clips``. ``"speaker"`` (non-IID): speakers dealt
    round-robin to clients, so a client holds whole speakers; with more clients than speakers
    each client holds one speaker and the clients sharing a speaker split their clips.
    ``"iid"``: clips shuffled (``seed``) and dealt round-robin."""
    if not 0 <= index < count:
        raise ValueError(f"partition-id={index} must be in [0, num-partitions={count})")
    if mode not in PARTITIONS:
        raise ValueError(f"partition={mode!r}; choose from {', '.join(PARTITIONS)}")
    rng = np.random.default_rng(seed)
    if mode == "iid":
        order = rng.permutation(len(clips))
        return [clips[i] for i in sorted(order[index::count])]
    speakers = sorted({c.speaker_key for c in clips})
    if count <= len(speakers):
        mine = set(speakers[index::count])
        return [c for c in clips if c.speaker_key in mine]
    s = index % len(speakers)
    sharers = list(range(s, count, len(speakers)))
    own = [c for c in clips if c.speaker_key == speakers[s]]
    order = rng.permutation(len(own))
    return [own[i] for i in sorted(order[sharers.index(index) :: len(sharers)])]


def client_clips(node_config: Mapping[str, Any], cfg: Mapping[str, Any]) -> list:
    """This client's labelled clips (see the module docstring)."""
    corpus = str(node_config.get("corpus") or cfg["corpus"])
    data = str(node_config.get("data") or cfg["data"])
    if not corpus or not data:
        raise ValueError(
            "this client has no data: give the SuperNode --node-config "
            '\'corpus="csv" data="/path/to/clips.csv"\' (or corpus/data in the run config)'
        )
    held = holdout(cfg)
    clips = [c for c in corpus_clips(corpus, data, cfg) if c.speaker not in held]
    if "num-partitions" in node_config:
        clips = partition(
            clips,
            int(node_config.get("partition-id", 0)),
            int(node_config["num-partitions"]),
            str(node_config.get("partition", cfg["partition"])),
            int(cfg["seed"]),
        )
    return clips


@dataclass
class LocalData:
    """A client's model inputs (pooled, speaker-normalised, not yet standardised) and labels,
    with the statistics it contributes to the global normalisation."""

    x: np.ndarray
    y: np.ndarray  # label index into the model's labels
    weights: np.ndarray  # class-balancing sample weights (the trainer's)
    frame_stats: FrameStats  # raw voiced frames

    def __len__(self) -> int:
        return len(self.y)


_CACHE: dict[tuple[Any, ...], LocalData] = {}


def local_data(
    clips: list, config: InputConfig, model_labels: tuple[str, ...], *, cache_dir: str = "", min_clips: int = 1
) -> LocalData:
    """Model inputs of ``clips`` (the training package's dataset flow). Raises
    :class:`NotEnoughData` when there are fewer than ``min_clips``. Kept per process, and the
    frames on disk (``cache_dir`` or the training cache)."""
    if len(clips) < min_clips:
        raise NotEnoughData(f"{len(clips)} labelled clips; at least {min_clips} are needed to train")
    from ser_edge.training.dataset import config_key, inputs_for, load_frames, population_stats
    from ser_edge.training.trainer import sample_weights

    key = (config_key(config), tuple(model_labels), tuple((c.path, c.label, c.speaker_key) for c in clips))
    if key not in _CACHE:
        unknown = sorted({c.label for c in clips} - set(model_labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the model's labels {list(model_labels)}")
        frames = load_frames(clips, config, cache_dir=cache_dir or None)
        x = inputs_for(frames, config, mode="speaker")
        y = np.array([model_labels.index(c.label) for c in clips], np.int64)
        _CACHE.clear()  # one client per process at a time: keep memory flat
        _CACHE[key] = LocalData(x, y, sample_weights(clips), population_stats(frames))
    return _CACHE[key]


def standardize(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """The runtime's input standardisation (:func:`ser_edge.inputs.normalize`) with a run config's
    ``input-mean``/``input-std`` lists; empty lists: none (the input is used as it is)."""
    if not len(mean):
        return np.asarray(x, np.float32)
    return normalize(x, np.asarray(mean, np.float64), np.asarray(std, np.float64))


def build_model(cfg: Mapping[str, Any], config: InputConfig, n_labels: int) -> Any:
    """A compiled model of the run (same seed everywhere: every client starts from one model)."""
    from ser_edge.training.models import build
    from ser_edge.training.trainer import set_threads

    set_threads(1)
    return build(str(cfg["model"]), config.input_shape, n_labels, lr=float(cfg["lr"]), seed=int(cfg["seed"]))


_MODEL: dict[tuple[Any, ...], Any] = {}


def model_with(cfg: Mapping[str, Any], config: InputConfig, n_labels: int, weights: list[np.ndarray]) -> Any:
    """The run's compiled model holding ``weights``, its optimizer state reset: the same model,
    bit for bit, as a new one from :func:`build_model` given the weights. One model is kept per
    process and reused, because building a Keras model per message grows the process by about
    10 MB each time even after ``clear_session`` (a simulation's client actors handle hundreds
    of messages; see docs/federated.md); :func:`fit` retraces it only when the seed changes
    (~3 MB)."""
    key = (str(cfg["model"]), tuple(config.input_shape), int(n_labels), float(cfg["lr"]), int(cfg["seed"]))
    model = _MODEL.get(key)
    if model is None:
        release_model()
        model = _MODEL[key] = build_model(cfg, config, n_labels)
    else:
        for v in model.optimizer.variables:  # Adam's step count and moments
            v.assign(np.zeros(v.shape, v.dtype.as_numpy_dtype))
    model.set_weights(weights)
    return model


def release_model() -> None:
    """Frees the Keras graph state of the models built so far, the kept one included."""
    import tf_keras

    _MODEL.clear()
    tf_keras.backend.clear_session()


#: Models a client trains without TensorFlow (:mod:`ser_edge.fl.numpy_mlp`); the others in tf_keras.
NUMPY_MODELS = ("mlp",)


def local_fit(
    cfg: Mapping[str, Any],
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    dp: Any = None,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """A client's local training from ``weights``: the new weights and the last epoch's loss and
    accuracy. With ``trainer="numpy"``, ``mlp`` trains in numpy (no TensorFlow import); other
    models, or ``trainer="keras"``, in tf_keras. ``dp``: a :class:`numpy_mlp.DPSGD` (numpy only)."""
    if cfg["model"] in NUMPY_MODELS and cfg["trainer"] == "numpy":
        from ser_edge.fl import numpy_mlp

        return numpy_mlp.fit(
            weights,
            x,
            y,
            w,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            cfg=numpy_mlp.MLPConfig(lr=float(cfg["lr"])),
            dp=dp,
        )
    if dp is not None:
        raise ValueError("DP-SGD runs in the numpy trainer only")
    config = input_config(cfg)
    model = model_with(cfg, config, len(labels(cfg)), weights)
    metrics = fit(model, x, y, w, epochs=epochs, batch_size=batch_size, seed=seed)
    return model.get_weights(), metrics


def local_evaluate(cfg: Mapping[str, Any], weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss and accuracy of ``weights`` on a client's inputs (numpy for ``mlp``, as :func:`local_fit`)."""
    if cfg["model"] in NUMPY_MODELS and cfg["trainer"] == "numpy":
        from ser_edge.fl import numpy_mlp

        return numpy_mlp.evaluate(weights, x, y)
    return evaluate(model_with(cfg, input_config(cfg), len(labels(cfg)), weights), x, y)


def fit(
    model: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray, *, epochs: int, batch_size: int, seed: int
) -> dict[str, float]:
    """Local training (sample weights ``w``); returns the last epoch's loss and accuracy."""
    import tf_keras

    tf_keras.utils.set_random_seed(int(seed))
    if getattr(model, "_ser_edge_seed", None) != int(seed):
        # Dropout and noise seeds are fixed when fit's graph is traced: a kept model (model_with)
        # retraces when the seed changes, so it draws what a new model would.
        model.make_train_function(force=True)
        model._ser_edge_seed = int(seed)
    n_labels = int(model.output_shape[-1])
    h = model.fit(
        x,
        np.eye(n_labels, dtype=np.float32)[y],
        sample_weight=w,
        epochs=int(epochs),
        batch_size=int(batch_size),
        shuffle=True,
        verbose=0,
    )
    return {"loss": float(h.history["loss"][-1]), "accuracy": float(h.history["accuracy"][-1])}


def evaluate(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss and accuracy of the model on labelled inputs."""
    n_labels = int(model.output_shape[-1])
    loss, acc = model.evaluate(x, np.eye(n_labels, dtype=np.float32)[y], batch_size=256, verbose=0)
    return {"loss": float(loss), "accuracy": float(acc)}


def scores(probabilities: np.ndarray, y: np.ndarray, model_labels: tuple[str, ...]) -> dict[str, Any]:
    """UAR and accuracy with the argmax restricted to the labels present in ``y`` (as the
    training package scores a corpus)."""
    from ser_edge.training.metrics import report, restricted_argmax

    true = [model_labels[i] for i in y]
    allowed = sorted(set(true), key=model_labels.index)
    pred = restricted_argmax(probabilities, model_labels, allowed)
    return report(true, [model_labels[i] for i in pred], allowed)
