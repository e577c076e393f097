"""The room benchmark: a recipe's models on held-out speakers under acoustic conditions and
normalisations, scored through the shipped path (the int8 bundle, LiteRT, ``Recognizer``).

For every fold of every evaluation (``emodb:loso``, ``ravdess:test-speakers=17,18,19,20``) a
model is trained with the recipe on the fold's training speakers (never the babble talkers'),
exported as a bundle, and :func:`~ser_edge.training.evaluate.score_clips` scores the held-out
speakers under every condition (``conditions.py``) and normalisation (``cold``, ``online``,
``speaker``, ``neutral``); predictions are pooled over the folds before UAR and accuracy::

    python -m ser_edge.training.room --recipe training/default.toml \\
        --eval emodb:loso --eval ravdess:test-speakers=17,18,19,20 \\
        --babble ravdess:../shared/data/ravdess:17,18,19,20 \\
        --condition clean --condition noise:../shared/data/noise/urbansound8k/fold2@10 \\
        --condition babble:4@10 --condition reverb:../shared/data/rir/house \\
        --out docs/results/room/default.json

``--bundle DIR`` scores an existing bundle instead (one ``test-speakers`` evaluation, no
training); ``--folds N`` keeps the first N folds of each evaluation and ``--epochs`` overrides
the recipe's (cheap exploration; the figures in docs/results.md use neither).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_NORMALIZATIONS = ("cold", "online", "speaker", "neutral")


def babble_pool(spec: str) -> list[Any]:
    """``corpus:folder:ID,ID`` (or ``corpus:folder``) -> the clips of those speakers."""
    from ser_edge.training.corpora import load_corpus

    name, _, rest = spec.partition(":")
    folder, _, ids = rest.rpartition(":") if rest.count(":") else (rest, "", "")
    clips = load_corpus(name, folder)
    if ids:
        wanted = {s.strip() for s in ids.split(",") if s.strip()}
        clips = [c for c in clips if c.speaker in wanted]
        if not clips:
            raise ValueError(f"--babble {spec!r}: no clips of speakers {sorted(wanted)}")
    return clips


def bench(
    recipe: Any,
    evaluations: Sequence[tuple[str, str]],
    conditions: Sequence[str],
    *,
    normalizations: Sequence[str] = DEFAULT_NORMALIZATIONS,
    babble: Sequence[Any] = (),
    folds: int | None = None,
    seed: int = 0,
    cache_dir: Any = None,
    log: Any = print,
    partial: Any = None,
) -> dict[str, Any]:
    """Trains and scores every fold (see the module docstring); returns ``{"results": {evaluation:
    {condition: {normalization: {"uar", "accuracy", "n", "per_class"}}}}, "predictions": {evaluation:
    {fold: {"condition|normalization": [true, pred]}}}, ...}``. ``partial(result)`` is called
    after every fold with the folds so far (a long run can be read, or cut short, as it goes)."""
    import numpy as np

    from ser_edge.training import dataset as ds
    from ser_edge.training import trainer as T
    from ser_edge.training.evaluate import score_clips
    from ser_edge.training.metrics import report
    from ser_edge.training.recipe import prepare

    t0 = time.time()
    labels, tc, config, frames, extra, _gate, _modes = prepare(recipe, cache_dir=cache_dir, progress=False, log=log)
    banned = {c.speaker_key for c in babble}
    usable = ~np.isin(frames.speakers, sorted(banned))
    out: dict[str, Any] = {
        "recipe": recipe.name,
        "conditions": list(conditions),
        "normalizations": list(normalizations),
        "babble_speakers": sorted(banned),
        "folds": {},
        "results": {},
    }
    for corpus, split in evaluations:
        pooled: dict[tuple[str, str], dict[str, list[str]]] = {}
        scored: list[str] = []
        names: list[str] = []
        per_fold = out.setdefault("predictions", {}).setdefault(f"{corpus} {split}", {})
        for k, (name, tr, te) in enumerate(T.splits(frames, split, corpus)):
            if folds is not None and k >= folds:
                break
            tr = tr[usable[tr]]
            train = frames.subset(tr)
            if extra is not None:
                train = ds.concat(train, extra.subset(np.isin(extra.source, tr)))
            trained = T.fit(train, config, labels, tc)
            with tempfile.TemporaryDirectory() as tmp:
                bundle = trained.export(
                    Path(tmp) / "bundle", name=f"{recipe.name}-fold{k}", quantization=recipe.shipped_quantization()
                )
                out["tflite_bytes"] = bundle.model_path.stat().st_size
                res = score_clips(
                    bundle,
                    frames.subset(te).clips,
                    conditions=conditions,
                    normalizations=normalizations,
                    seed=seed,
                    babble_pool=babble,
                    raw=True,
                )
            for key, r in res.items():
                p = pooled.setdefault(key, {"true": [], "pred": []})
                p["true"] += r["true"]
                p["pred"] += r["pred"]
                scored = [label for label in labels if label in set(scored) | set(r["scored"])]
                per_fold.setdefault(name, {})["|".join(key)] = [r["true"], r["pred"]]
            names.append(name)
            log(
                f"{corpus} {split} fold {name}: {len(tr)} training clips (+{len(train) - len(tr)} augmented), "
                f"{len(te)} test clips, {time.time() - t0:.0f} s"
            )
            out["folds"][f"{corpus} {split}"] = names
            table: dict[str, Any] = {}
            for (cond, norm), p in pooled.items():
                rep = report(p["true"], p["pred"], scored)
                table.setdefault(cond, {})[norm] = {
                    "uar": round(rep["uar"], 4),
                    "accuracy": round(rep["accuracy"], 4),
                    "n": rep["n"],
                    "per_class": rep["per_class"],
                }
            out["results"][f"{corpus} {split}"] = table
            if partial is not None:
                partial(out)
    out["seconds"] = round(time.time() - t0, 1)
    return out


def bench_bundle(
    model: Any,
    corpus: str,
    data: str,
    speakers: Sequence[str],
    conditions: Sequence[str],
    *,
    normalizations: Sequence[str] = DEFAULT_NORMALIZATIONS,
    babble: Sequence[Any] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """An existing bundle on ``speakers`` of ``corpus`` (same result layout as :func:`bench`)."""
    from ser_edge.bundle import load_bundle
    from ser_edge.training.corpora import load_corpus
    from ser_edge.training.evaluate import score_clips

    bundle = load_bundle(model)
    clips = [c for c in load_corpus(corpus, data) if c.speaker in set(speakers)]
    if not clips:
        raise ValueError(f"no clips of speakers {list(speakers)} in {corpus!r}")
    res = score_clips(
        bundle, clips, conditions=conditions, normalizations=normalizations, seed=seed, babble_pool=babble
    )
    table: dict[str, Any] = {}
    for (cond, norm), rep in res.items():
        table.setdefault(cond, {})[norm] = {
            "uar": round(rep["uar"], 4),
            "accuracy": round(rep["accuracy"], 4),
            "n": rep["n"],
            "per_class": rep["per_class"],
        }
    key = f"{corpus} test-speakers={','.join(speakers)}"
    return {
        "model_id": bundle.model_id,
        "conditions": list(conditions),
        "normalizations": list(normalizations),
        "results": {key: table},
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as one markdown table per evaluation (UAR / accuracy)."""
    lines = []
    norms = result["normalizations"]
    for ev, table in result["results"].items():
        lines += [f"**{ev}**", "", "| condition | " + " | ".join(norms) + " |", "|---|" + "---|" * len(norms)]
        for cond in result["conditions"]:
            cells = [f"{table[cond][n]['uar']:.3f} / {table[cond][n]['accuracy']:.3f}" for n in norms]
            lines.append(f"| `{short(cond)}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def short(condition: str) -> str:
    """A condition with its folders shortened to their last two parts."""
    import re

    return re.sub(r"(?<=[:])([^@+]*/)?([^/@+]+/[^/@+]+)(?=[@+]|$)", r"\2", condition)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_edge.training.room", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", help="recipe TOML (trains one model per fold)")
    p.add_argument("--bundle", help="score this bundle instead (with one --eval CORPUS:test-speakers=... and --data)")
    p.add_argument("--data", help="with --bundle: the corpus folder")
    p.add_argument(
        "--eval",
        action="append",
        required=True,
        metavar="CORPUS:SPLIT",
        help="e.g. emodb:loso or ravdess:test-speakers=17,18,19,20 (the corpus must be in the recipe)",
    )
    p.add_argument("--condition", action="append", required=True, help="a condition (conditions.py); repeat")
    p.add_argument(
        "--normalization",
        default=",".join(DEFAULT_NORMALIZATIONS),
        help="comma-separated: cold, online, speaker, neutral",
    )
    p.add_argument("--babble", help="babble talkers CORPUS:FOLDER[:ID,ID] (never trained on)")
    p.add_argument("--folds", type=int, help="only the first N folds of each evaluation (exploration)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (exploration)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=JSON",
        help="override a recipe value, e.g. train.cold_inputs=true, input.vad_db=25, "
        'input.features.f0="shs" or recipe.augment="noise=20,copies=1" (exploration)',
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the conditions' random choices")
    p.add_argument("--out", help="write the JSON here (and the markdown table next to it, .md)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        evaluations = []
        for e in args.eval:
            corpus, sep, split = e.partition(":")
            if not sep or not split:
                raise ValueError(f"--eval {e!r} must be CORPUS:SPLIT")
            evaluations.append((corpus, split))
        norms = [n.strip() for n in args.normalization.split(",") if n.strip()]
        pool = babble_pool(args.babble) if args.babble else []
        log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
        if args.bundle:
            if len(evaluations) != 1 or not evaluations[0][1].startswith("test-speakers=") or not args.data:
                raise ValueError("--bundle needs one --eval CORPUS:test-speakers=ID,... and --data")
            speakers = [s for s in evaluations[0][1].split("=", 1)[1].split(",") if s]
            result = bench_bundle(
                args.bundle,
                evaluations[0][0],
                args.data,
                speakers,
                args.condition,
                normalizations=norms,
                babble=pool,
                seed=args.seed,
            )
        else:
            from ser_edge.training.recipe import load_recipe

            if not args.recipe:
                raise ValueError("give --recipe (or --bundle)")
            recipe = load_recipe(args.recipe)
            if args.epochs is not None:
                recipe.train["epochs"] = args.epochs
            for item in args.set:
                key, sep, value = item.partition("=")
                section, dot, name = key.partition(".")
                if not sep or not dot or section not in ("recipe", "train", "input", "room", "hparams"):
                    raise ValueError(f"--set {item!r} must be recipe|train|input|room|hparams.KEY=JSON")
                if section == "recipe":  # a top-level recipe key, e.g. recipe.augment="noise=20,copies=1"
                    if name not in ("augment", "grouping", "quantization"):
                        raise ValueError(f"--set {item!r}: recipe.KEY is augment, grouping or quantization")
                    setattr(recipe, name, json.loads(value))
                    continue
                target = recipe.train.setdefault("hparams", {}) if section == "hparams" else getattr(recipe, section)
                *parents, leaf = name.split(".")  # nested tables: input.features.f0="shs"
                for parent in parents:
                    target = target.setdefault(parent, {})
                target[leaf] = json.loads(value)
            result = bench(
                recipe,
                evaluations,
                args.condition,
                normalizations=norms,
                babble=pool,
                folds=args.folds,
                seed=args.seed,
                log=log,
                partial=(lambda r: _write(r, Path(args.out + ".partial"))) if args.out else None,
            )
        args_given = sys.argv[1:] if argv is None else list(argv)
        result["command"] = " ".join(["python -m ser_edge.training.room", *args_given])
    except ValueError as e:
        print(f"room: {e}", file=sys.stderr)
        return 1
    if args.out:
        _write(result, Path(args.out))
        Path(args.out + ".partial").unlink(missing_ok=True)
        Path(args.out).with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


def _write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
