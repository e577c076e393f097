"""``ser-edge train``, ``ser-edge evaluate`` and ``ser-edge export`` (argparse only at import;
TensorFlow and the training code are imported inside the commands)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SPLIT_HELP = "loso (leave one speaker out), test-speakers=ID,ID,... or none"


def add_parsers(sub: Any) -> None:
    """Adds ``train``, ``evaluate`` and ``export`` to an argparse sub-parsers object."""
    t = sub.add_parser(
        "train",
        help="train a model on corpora, evaluate it on unseen speakers, write a bundle",
        description="Evaluates the model on speakers it never saw (--split), then trains it "
        "on every clip and writes the bundle (--out). A --recipe TOML file gives "
        "defaults for everything; flags override it.",
    )
    t.add_argument("--recipe", help="recipe TOML (e.g. training/default.toml)")
    t.add_argument(
        "--corpus",
        action="append",
        default=None,
        help="corpus name (emodb, ravdess, tess, turev, cremad, savee, folder, csv); repeat with --data",
    )
    t.add_argument("--data", action="append", default=None, help="the corpus directory (csv: the CSV file)")
    t.add_argument(
        "--model",
        help="mlp (default), knn, lstm, cnn1d, cnn_lstm, bilstm34, cnn2d, "
        "cnn_lstm_wave (raw 1 s audio chunks; evaluation only: --no-bundle)",
    )
    t.add_argument("--grouping", help="full (default), 4class, 3class, 2class, quadrants")
    t.add_argument("--split", help=SPLIT_HELP + " (default loso)")
    t.add_argument("--eval-corpus", help="corpus the split tests on (default: the first --corpus)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument(
        "--hparam",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="model hyperparameter (JSON value), e.g. --hparam members=1 --hparam units=[128,64]",
    )
    t.add_argument(
        "--augment", help='train-only augmentation, e.g. "noise=20,gain=6,shift=0.1,speed=0.1,pitch=2,copies=1"'
    )
    t.add_argument(
        "--windows",
        metavar="WINDOW,HOP",
        help="train on sliding windows of each clip (seconds, e.g. 2.0,1.0) and score a clip by the "
        "mean of its windows' probabilities (cnn_lstm_wave: the chunk length, default 1.0,0.5)",
    )
    t.add_argument(
        "--denoise",
        nargs="?",
        const="on",
        metavar="SPEC",
        help="spectral-gating noise reduction of every clip (train and test); optional settings, "
        "e.g. n_std=1.5,prop_decrease=1",
    )
    t.add_argument(
        "--quantization",
        choices=("int8", "dynamic", "float32"),
        help="default: the model's (int8; lstm, bilstm34, cnn_lstm_wave: dynamic)",
    )
    t.add_argument(
        "--float-parity",
        action="store_true",
        help="evaluations also score the float32 TFLite model (agreement and max probability difference with Keras)",
    )
    t.add_argument("--name", help="bundle name")
    t.add_argument("--out", help="write the bundle to this directory")
    t.add_argument(
        "--hold-out",
        action="store_true",
        help="the bundle is trained without the test speakers of --split test-speakers=... too",
    )
    t.add_argument("--no-bundle", action="store_true", help="evaluate only: no final training, no bundle")
    t.add_argument("--reports", help="write evaluation JSON, confusion and training-curve PNGs here")
    t.add_argument("--checkpoint", help="also save the trained Keras model here (for ser-edge export)")
    t.add_argument("--threads", type=int, help="TensorFlow threads (0: all)")
    t.add_argument("--cache", help="feature cache directory (default $SER_EDGE_CACHE or ~/.cache/ser-edge/frames)")
    t.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(run=_train)

    e = sub.add_parser(
        "evaluate",
        help="score a bundle on a labelled corpus with the edge runtime (JSON)",
        description="Runs the bundle with the edge runtime on every clip of the corpus. "
        "Speaker normalisation: each speaker's statistics come from that speaker's "
        "clips, without labels (speaker adaptation, like the device's Adapter); "
        "--normalization online adapts clip by clip; cold uses the training "
        "population's statistics only. "
        "By default the prediction is the argmax over the labels the model and the "
        "corpus share (--all-labels: over all the model's labels).",
    )
    e.add_argument("--corpus", required=True, help="emodb, ravdess, tess, turev, cremad, savee, folder or csv")
    e.add_argument("--data", required=True, help="the corpus directory (csv: the CSV file)")
    e.add_argument("--model", help="bundle directory, bundle.json, model.tflite, or a packaged model: default, room")
    e.add_argument("--speakers", help="only these speakers (comma-separated ids)")
    e.add_argument(
        "--normalization",
        choices=("speaker", "online", "cold", "neutral"),
        default="speaker",
        help="speaker: statistics from all of a speaker's clips first; online: updated clip by clip "
        "as a device would (random order); cold: population statistics only; neutral: "
        "statistics from the speaker's neutral clips only",
    )
    e.add_argument(
        "--condition",
        default="clean",
        help="degrade every clip first: clean, noise:FOLDER@SNR, white@SNR, babble:N@SNR (talkers: the "
        "other evaluated speakers), reverb:FOLDER, or several joined by + (seeded per clip)",
    )
    e.add_argument("--all-labels", action="store_true", help="argmax over all the model's labels")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--confusion-png", help="also save the confusion matrix as a PNG")
    e.set_defaults(run=_evaluate)

    x = sub.add_parser("export", help="convert a training checkpoint into a bundle (float32/dynamic/int8)")
    x.add_argument("checkpoint", help="a directory written by ser-edge train --checkpoint")
    x.add_argument("--out", required=True, help="bundle directory to write")
    x.add_argument(
        "--quantization",
        choices=("int8", "dynamic", "float32"),
        help="default: the model's (int8; lstm, bilstm34, cnn_lstm_wave: dynamic)",
    )
    x.add_argument("--name", help="bundle name (default: the checkpoint's)")
    x.set_defaults(run=_export)


def _fail(cmd: str, e: BaseException) -> int:
    print(f"ser-edge {cmd}: {e}", file=sys.stderr)
    return 1


def _train(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ser_edge.training.recipe import Recipe, load_recipe, run

    try:
        recipe = load_recipe(args.recipe) if args.recipe else Recipe()
        corpora, data = args.corpus or [], args.data or []
        if len(corpora) != len(data):
            raise ValueError(f"give one --data per --corpus ({len(corpora)} --corpus, {len(data)} --data)")
        if corpora:
            recipe.corpus = [{"name": c, "data": d} for c, d in zip(corpora, data)]
        for key in ("model", "grouping", "quantization", "out", "threads", "augment", "denoise", "name"):
            if getattr(args, key) is not None:
                setattr(recipe, key, getattr(args, key))
        for item in args.hparam or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--hparam {item!r} must be KEY=VALUE")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            recipe.train.setdefault("hparams", {})[key] = parsed
        if args.no_bundle:
            recipe.out = None
        if args.hold_out:
            recipe.hold_out = True
        if args.float_parity:
            recipe.float_parity = True
        for key in ("epochs", "batch_size", "lr", "seed", "windows"):
            if getattr(args, key) is not None:
                recipe.train[key] = getattr(args, key)
        if args.split is not None or args.eval_corpus is not None or (corpora and not args.recipe):
            split = args.split or "loso"
            if split != "none":
                if not recipe.corpus:
                    raise ValueError("give --corpus NAME --data DIR")
                recipe.evaluate = [{"corpus": args.eval_corpus or recipe.corpus[0]["name"], "split": split}]
            else:
                recipe.evaluate = []
        if not recipe.out and not args.reports and not args.checkpoint:
            raise ValueError("nothing to write: give --out (bundle), --reports or --checkpoint")
        if args.no_bundle and (args.out or args.checkpoint):
            raise ValueError("--no-bundle contradicts --out/--checkpoint")
        log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        result = run(
            recipe,
            reports=args.reports,
            checkpoint=args.checkpoint,
            cache_dir=args.cache,
            use_cache=not args.no_cache,
            progress=not args.quiet,
            log=log,
        )
    except ValueError as e:
        return _fail("train", e)
    print(json.dumps(result))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ser_edge.training.evaluate import evaluate_bundle

    try:
        speakers = [s.strip() for s in args.speakers.split(",") if s.strip()] if args.speakers else None
        pool = []
        if "babble:" in args.condition:
            from ser_edge.training.corpora import load_corpus

            pool = [c for c in load_corpus(args.corpus, args.data) if speakers is None or c.speaker in speakers]
        rep = evaluate_bundle(
            args.corpus,
            args.data,
            model=args.model,
            normalization=args.normalization,
            shared_labels=not args.all_labels,
            speakers=speakers,
            condition=args.condition,
            babble_pool=pool,
        )
        if args.confusion_png:
            from ser_edge.training.metrics import plot_confusion

            plot_confusion(rep, args.confusion_png, title=f"{rep['model_id']} on {args.corpus}: UAR {rep['uar']:.3f}")
    except (ValueError, RuntimeError) as e:
        return _fail("evaluate", e)
    if args.json:
        print(json.dumps(rep))
        return 0
    print(
        f"{rep['model_id']} on {args.corpus} ({rep['n']} clips, {rep['normalization']} normalisation, "
        f"{rep['condition']}): "
        f"UAR {rep['uar']:.3f}  accuracy {rep['accuracy']:.3f}"
    )
    for label, r in rep["per_class"].items():
        print(f"  {label:<10} recall {'-' if r is None else f'{r:.3f}'}  n={rep['support'][label]}")
    if rep["skipped"]:
        print(f"  skipped (labels the model does not know): {rep['skipped']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ser_edge.training.recipe import export_checkpoint

    try:
        b = export_checkpoint(args.checkpoint, args.out, quantization=args.quantization, name=args.name)
    except (ValueError, OSError) as e:
        return _fail("export", e)
    print(
        json.dumps(
            {
                "bundle": str(b.path),
                "model_id": b.model_id,
                "quantization": b.quantization,
                "tflite_bytes": b.model_path.stat().st_size,
            }
        )
    )
    return 0


__all__ = ["add_parsers"]
