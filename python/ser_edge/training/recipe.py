"""A training recipe (TOML, e.g. ``training/default.toml``): corpora, model, hyperparameters,
speaker-independent evaluations, and where the bundle goes. :func:`run` evaluates every split,
then trains on all clips and writes the bundle (and, if asked, reports and a checkpoint).

``model = "cnn_lstm_wave"`` reads raw 1 s waveform chunks (``[train] windows`` sets the chunk
length and hop); its bundle's ``input.waveform`` tells the runtime how to chunk and pool.

Paths in a recipe file are relative to the file's folder. Keys::

    name = "ser-mlp"              # bundle name
    model = "mlp"                 # models.MODELS
    grouping = "full"             # labels.GROUPINGS
    quantization = "int8"         # int8 | dynamic | float32; default: the model's
                                  # (models.default_quantization: dynamic for lstm, bilstm34,
                                  # cnn_lstm_wave and knn, int8 else)
    out = "../python/ser_edge/models/default"
    threads = 1                   # TensorFlow threads (0: TensorFlow's default)
    augment = ""                  # augment.parse spec, e.g. "noise=20,gain=6,shift=0.1,copies=1"
    denoise = false               # spectral-gating noise reduction of every clip: true, or a
                                  # denoise.parse spec such as "n_std=1.5,prop_decrease=1"
    hold_out = false              # the final model also leaves out the test speakers of every
                                  # test-speakers=... evaluation (to score the bundle on them)
    [room]                        # multi-condition training (conditions.RoomAugmentation): each
    noise = "../../shared/data/noise/urbansound8k/fold1"   # copy clean, noisy, babble, reverberant
    rir = "../../shared/data/rir/warehouse"               # or reverberant + noisy; never the
    babble = 3                    # evaluation's sounds or rooms. babble: talkers from the corpus
    babble_corpus = "tess"        # babble_corpus/babble_data (never an evaluated corpus)
    babble_data = "../../shared/data/tess"
    snr = [0, 20]
    copies = 2
    t60 = [0.2, 1.0]              # optional: each room's tail re-timed to a T60 in this range (s)
    float_parity = false          # evaluations also score the float32 TFLite model against Keras
    [[corpus]]                    # one table per corpus
    name = "emodb"
    data = "../../shared/data/emodb"
    [train]                       # trainer.TrainConfig
    epochs = 60
    windows = [2.0, 1.0]          # optional: sliding windows (seconds), scored per clip
    distill = 0.5                 # optional: copies also learn a clean model's answers (trainer.clean_teacher)
    [input]                       # InputConfig overrides (default: the model's default input)
    [[evaluate]]                  # speaker-independent evaluations written to the bundle metrics
    corpus = "emodb"
    split = "loso"
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ser_edge._strict import known_keys
from ser_edge.labels import group_labels

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Recipe:
    name: str = "ser-model"
    model: str = "mlp"
    grouping: str = "full"
    quantization: str | None = None  # None: models.default_quantization(model)
    out: str | None = None
    threads: int = 0
    augment: str = ""
    denoise: bool | str = False
    hold_out: bool = False
    room: dict[str, Any] = field(default_factory=dict)
    float_parity: bool = False
    corpus: list[dict[str, str]] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    evaluate: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> Recipe:
        r = cls(**known_keys(d, cls, "recipe"))
        for c in r.corpus:
            if set(c) != {"name", "data"}:
                raise ValueError(f"each [[corpus]] needs exactly name and data; got {sorted(c)}")
        for e in r.evaluate:
            if not set(e) <= {"corpus", "split"} or "corpus" not in e:
                raise ValueError(f"each [[evaluate]] needs corpus (and split); got {sorted(e)}")
        if base is not None:
            r.corpus = [{"name": c["name"], "data": str((base / c["data"]).resolve())} for c in r.corpus]
            r.out = None if r.out is None else str((base / r.out).resolve())
            r.room = {k: _resolve(base, v) if k in ("noise", "rir", "babble_data") else v for k, v in r.room.items()}
        return r

    def shipped_quantization(self) -> str:
        """``quantization``, or the model's default (:func:`~ser_edge.training.models.default_quantization`)."""
        from ser_edge.training.models import default_quantization

        return self.quantization or default_quantization(self.model)


def _resolve(base: Path, v: Any) -> Any:
    return [str((base / x).resolve()) for x in v] if isinstance(v, list) else str((base / v).resolve())


def load_recipe(path: PathLike) -> Recipe:
    """Reads a recipe TOML file (relative paths resolved against its folder)."""
    import tomllib

    p = Path(os.fspath(path))
    try:
        d = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: no such recipe file") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: not valid TOML ({e})") from None
    return Recipe.from_dict(d, p.resolve().parent)


def input_config(recipe: Recipe) -> Any:
    from ser_edge.features import FeatureConfig
    from ser_edge.inputs import InputConfig
    from ser_edge.training.models import default_input

    base = default_input(recipe.model).to_dict()
    over = dict(recipe.input)
    if "features" in over:
        base["features"] = {**base["features"], **over.pop("features")}
    base.update(over)
    base["features"] = FeatureConfig.from_dict(base["features"]).to_dict()
    return InputConfig.from_dict(base)


def prepare(
    recipe: Recipe,
    *,
    cache_dir: PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    log: Any = print,
) -> tuple[Any, ...]:
    """What every use of a recipe starts from: ``(labels, train_config, input_config, frames,
    augmented_copies_or_None, denoise_gate_or_None, normalisation_modes)``."""
    from ser_edge.training import augment as aug
    from ser_edge.training import dataset as ds
    from ser_edge.training import denoise as dn
    from ser_edge.training import trainer as T
    from ser_edge.training.corpora import grouped, load_corpus

    if not recipe.corpus:
        raise ValueError("the recipe names no corpus (give --corpus NAME --data DIR)")
    T.set_threads(recipe.threads)
    t0 = time.time()
    labels = group_labels(recipe.grouping)
    clips = []
    for c in recipe.corpus:
        clips += load_corpus(c["name"], c["data"])
    clips = grouped(clips, recipe.grouping)
    if not clips:
        raise ValueError(f"no clips left after grouping {recipe.grouping!r}")
    from ser_edge.training.models import WAVE_MODELS

    tc = T.TrainConfig(model=recipe.model, **recipe.train)
    augmentation = aug.parse(recipe.augment) if recipe.augment else None
    gate = dn.parse(recipe.denoise)
    if gate is not None and recipe.out:
        raise ValueError(
            "denoise: a bundle cannot carry noise reduction (the edge runtime feeds the model what the microphone "
            "hears), so a model trained on denoised audio is not exported: evaluate it with --no-bundle"
        )
    extra = None
    modes: tuple[str, ...] = T.MODES
    if recipe.model in WAVE_MODELS:
        if augmentation is not None or recipe.room:
            raise ValueError(f"model {recipe.model!r}: augment is not supported for raw-waveform models")
        from ser_edge.training.wave import load_waves, wave_input

        config, modes = wave_input(input_config(recipe), tc.windows), ("speaker",)  # no speaker normalisation
        assert config.waveform is not None
        frames: Any = load_waves(clips, denoise=gate, progress=progress, waveform=config.waveform)
        log(
            f"{len(clips)} clips, {len(set(frames.speakers))} speakers, raw waveform chunks, "
            f"audio {time.time() - t0:.0f} s"
        )
    else:
        config = input_config(recipe)
        frames = ds.load_frames(
            clips, config, cache_dir=cache_dir, use_cache=use_cache, progress=progress, denoise=gate
        )
        if recipe.room:
            augmentation = room_augmentation(recipe.room, base=augmentation, seed=tc.seed)
        if augmentation is not None:
            extra = aug.augmented_frames(
                frames,
                config,
                augmentation,
                seed=tc.seed,
                progress=progress,
                denoise=gate,
                cache_dir=cache_dir,
                use_cache=use_cache,
            )
        log(
            f"{len(clips)} clips, {len(set(frames.speakers))} speakers, input {config.input_shape}, "
            f"features {time.time() - t0:.0f} s"
        )
    return labels, tc, config, frames, extra, gate, modes


def room_augmentation(room: dict[str, Any], *, base: Any = None, seed: int = 0) -> Any:
    """The recipe's ``[room]`` table as a :class:`~ser_edge.training.conditions.RoomAugmentation`."""
    from ser_edge.training.conditions import RoomAugmentation
    from ser_edge.training.corpora import load_corpus

    room = dict(room)
    name, data = room.pop("babble_corpus", None), room.pop("babble_data", None)
    if (name is None) != (data is None):
        raise ValueError("[room] needs both babble_corpus and babble_data (or neither)")
    pool = load_corpus(name, data) if name is not None else []
    if not pool:
        room["babble"] = 0
    return RoomAugmentation.from_dict(room, base=base, babble_pool=pool, seed=seed)


def run(
    recipe: Recipe,
    *,
    reports: PathLike | None = None,
    checkpoint: PathLike | None = None,
    cache_dir: PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Evaluates the recipe's splits, trains the final model on all clips, writes the bundle to
    ``recipe.out`` (if set). Returns ``{"evaluations": [...], "bundle": path or None, ...}``."""
    from ser_edge.training import trainer as T
    from ser_edge.training.augment import is_copy
    from ser_edge.training.models import WAVE_MODELS

    t0 = time.time()
    labels, tc, config, frames, extra, gate, modes = prepare(
        recipe, cache_dir=cache_dir, use_cache=use_cache, progress=progress, log=log
    )
    rdir = Path(os.fspath(reports)) if reports is not None else None
    if rdir is not None:
        rdir.mkdir(parents=True, exist_ok=True)
    fitter: T.Fit = T.fit
    if recipe.model in WAVE_MODELS:
        from ser_edge.training.wave import fit_wave

        fitter = fit_wave
    metrics = {}
    for ev in recipe.evaluate:
        split = ev.get("split", "loso")
        r = T.evaluate_split(
            frames,
            config,
            labels,
            tc,
            split=split,
            corpus=ev["corpus"],
            quantizations=quantizations(recipe),
            extra=extra,
            progress=progress,
            modes=modes,
            fitter=fitter,
        )
        key = f"{ev['corpus']} {split}"
        metrics[key] = summary(r, recipe.shipped_quantization())
        log(f"{key}: {json.dumps(metrics[key])}")
        if rdir is not None:
            write_report(r, rdir, f"{ev['corpus']}-{split.split('=')[0]}", f"{recipe.name} {key}")
    out: dict[str, Any] = {"evaluations": metrics, "train_seconds": None, "bundle": None}
    if recipe.out is not None or checkpoint is not None:
        train_set = final_training_set(recipe, frames, extra)
        trained = fitter(train_set, config, labels, tc)
        out["train_seconds"] = round(trained.seconds, 1)
        training = {
            "corpora": {c["name"]: sum(k.corpus == c["name"] for k in train_set.clips) for c in recipe.corpus},
            "speakers": sorted({k.speaker_key for k in train_set.clips if not is_copy(k)}),
            "grouping": recipe.grouping,
            "augment": recipe.augment,
            "recipe": recipe.name,
            "denoise": gate.key() if gate is not None else None,
        }
        if checkpoint is not None:
            save_checkpoint(trained, checkpoint, name=recipe.name, training=training, metrics=metrics)
        if recipe.out:
            b = trained.export(
                recipe.out,
                name=recipe.name,
                quantization=recipe.shipped_quantization(),
                training=training,
                metrics=metrics,
            )
            out.update(bundle=str(b.path), model_id=b.model_id, tflite_bytes=b.model_path.stat().st_size)
            log(f"bundle {b.path} ({b.model_id}, {out['tflite_bytes']} bytes, {b.quantization})")
    out["seconds"] = round(time.time() - t0, 1)
    if rdir is not None:
        (rdir / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def write_report(r: dict[str, Any], rdir: Path, stem: str, title: str) -> None:
    """One split's evaluation as ``<stem>.json``, its confusion matrix and training curves as PNGs."""
    from ser_edge.training.metrics import plot_confusion, plot_curves

    (rdir / f"{stem}.json").write_text(json.dumps(r, indent=1) + "\n")
    uar = r["float"]["speaker"]["uar"]
    plot_confusion(
        r["float"]["speaker"], rdir / f"{stem}-confusion.png", title=f"{title} (float, speaker-adapted): UAR {uar:.3f}"
    )
    if any(h.get("loss") for h in r["histories"]):  # knn has no training curve
        plot_curves(r["histories"], rdir / f"{stem}-curves.png", title=title)


def final_training_set(recipe: Recipe, frames: Any, extra: Any) -> Any:
    """Every clip (less the ``test-speakers`` of the evaluations with ``hold_out``), with the
    augmented copies of those clips."""
    import numpy as np

    from ser_edge.training import dataset as ds
    from ser_edge.training import trainer as T

    keep = np.ones(len(frames), bool)
    if recipe.hold_out:
        for ev in recipe.evaluate:
            if ev.get("split", "loso").startswith("test-speakers="):
                for _, _, test in T.splits(frames, ev["split"], ev["corpus"]):
                    keep[test] = False
    train_set = frames.subset(keep)
    if extra is not None:
        train_set = ds.concat(train_set, extra.subset(np.isin(extra.source, np.flatnonzero(keep))))
    return train_set


def quantizations(recipe: Recipe) -> tuple[str, ...]:
    """The TFLite models an evaluation scores: the recipe's quantization, and float32 first with
    ``float_parity``."""
    q = recipe.shipped_quantization()
    qs = ("float32",) if recipe.float_parity or q == "float32" else ()
    return qs + ((q,) if q != "float32" else ())


def summary(r: dict[str, Any], quantization: str) -> dict[str, Any]:
    """The figures of one evaluation that go into the bundle metrics."""
    s = {
        "n": r["float"]["speaker"]["n"],
        "labels": r["labels"],
        "uar": round(r["float"]["speaker"]["uar"], 4),
        "accuracy": round(r["float"]["speaker"]["accuracy"], 4),
    }
    if "cold" in r["float"]:
        s.update(cold_uar=round(r["float"]["cold"]["uar"], 4), cold_accuracy=round(r["float"]["cold"]["accuracy"], 4))
    for q in dict.fromkeys(("float32", quantization)):
        if q in r:
            s.update(
                {
                    f"{q}_uar": round(r[q]["uar"], 4),
                    f"{q}_accuracy": round(r[q]["accuracy"], 4),
                    f"{q}_agreement": round(r[q]["agreement_with_float"], 4),
                    f"{q}_max_prob_diff": round(r[q]["max_prob_diff"], 4),
                }
            )
    return s


# -- checkpoints: a trained model that `ser-edge export` can convert later ------------------------
def save_checkpoint(
    trained: Any, path: PathLike, *, name: str, training: dict[str, Any], metrics: dict[str, Any]
) -> None:
    """Writes ``model.keras`` (or ``knn.npz``), ``representative.npy`` and ``checkpoint.json``."""
    import numpy as np

    d = Path(os.fspath(path))
    d.mkdir(parents=True, exist_ok=True)
    if trained.config.model == "knn":
        np.savez(
            d / "knn.npz",
            memory=trained.model.memory.numpy(),
            onehot=trained.model.memory_onehot.numpy(),
            k=trained.model.k,
        )
    else:
        import tf_keras as K

        # A plain functional copy (same layers): loads without the training-only subclasses.
        K.Model(trained.model.inputs, trained.model.outputs).save(d / "model.keras")
    np.save(
        d / "representative.npy",
        trained.train_inputs[np.random.default_rng(0).permutation(len(trained.train_inputs))[:300]],
    )
    from dataclasses import asdict

    meta = {
        "name": name,
        "model": trained.config.model,
        "labels": list(trained.labels),
        "input": trained.input.to_dict(),
        "normalization": trained.normalization.to_dict(),
        "train_config": asdict(trained.config),
        "training": training,
        "metrics": metrics,
    }
    (d / "checkpoint.json").write_text(json.dumps(meta, indent=1) + "\n")


def export_checkpoint(
    path: PathLike, out: PathLike, *, quantization: str | None = None, name: str | None = None
) -> Any:
    """Converts a checkpoint written by :func:`save_checkpoint` into a bundle (``quantization``
    default: the model's, :func:`~ser_edge.training.models.default_quantization`)."""
    import numpy as np

    from ser_edge.bundle import Normalization
    from ser_edge.inputs import InputConfig
    from ser_edge.training.export import export_bundle
    from ser_edge.training.models import build, default_quantization

    d = Path(os.fspath(path))
    try:
        meta = json.loads((d / "checkpoint.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{d}: not a training checkpoint (no checkpoint.json)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{d}/checkpoint.json: not valid JSON ({e})") from None
    config = InputConfig.from_dict(meta["input"])
    if meta["model"] == "knn":
        z = np.load(d / "knn.npz")
        model = build("knn", config.input_shape, len(meta["labels"]), k=int(z["k"]))
        model.fit(z["memory"], z["onehot"])
    else:
        import tf_keras as K

        model = K.models.load_model(d / "model.keras", compile=False)
    norm = meta["normalization"]
    normalization = Normalization.from_dict(norm)
    rep = np.load(d / "representative.npy")
    return export_bundle(
        model,
        out,
        name=name or meta["name"],
        labels=meta["labels"],
        input=config,
        normalization=normalization,
        quantization=quantization or default_quantization(meta["model"]),
        representative=rep,
        training={**meta["training"], "model": meta["model"], "train_config": meta["train_config"]},
        metrics=meta["metrics"],
    )


__all__ = [
    "Recipe",
    "export_checkpoint",
    "input_config",
    "load_recipe",
    "prepare",
    "quantizations",
    "room_augmentation",
    "run",
    "save_checkpoint",
    "summary",
]
