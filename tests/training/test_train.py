"""Training on real speech, speaker-independent evaluation, int8/dynamic parity, bundles, and
the train/evaluate/export commands. Models are small and trained for few epochs (CI budget)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from training_data import EMODB, emodb_files

from ser_edge.bundle import load_bundle
from ser_edge.cli import main
from ser_edge.inputs import InputConfig
from ser_edge.labels import CANONICAL
from ser_edge.runtime import Recognizer
from ser_edge.training import dataset as ds
from ser_edge.training import trainer as T
from ser_edge.training.corpora import load_corpus
from ser_edge.training.export import tflite_probabilities, to_tflite
from ser_edge.training.metrics import report, restricted_argmax

EMO = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"]
TRAIN_SPEAKERS = ("03", "08", "09", "10", "11")


@pytest.fixture(scope="module")
def emodb(cache_dir: Path) -> ds.FrameSet:
    T.set_threads(1)
    return ds.load_frames(load_corpus("emodb", EMODB), InputConfig(), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def trained(emodb: ds.FrameSet) -> tuple[T.Trained, ds.FrameSet]:
    """An MLP on 5 EMO-DB speakers; the other 5 (292 clips) are held out."""
    train = np.array([c.speaker in TRAIN_SPEAKERS for c in emodb.clips])
    t = T.fit(emodb.subset(train), InputConfig(), CANONICAL, T.TrainConfig(epochs=40))
    return t, emodb.subset(~train)


def test_mlp_learns_unseen_speakers(trained: tuple[T.Trained, ds.FrameSet]) -> None:
    t, test = trained
    p = restricted_argmax(t.probabilities(test), CANONICAL, EMO)
    r = report(test.labels, [CANONICAL[i] for i in p], EMO)
    assert r["n"] == 292 and r["uar"] > 0.5  # chance: 1/7
    cold = restricted_argmax(t.probabilities(test, "cold"), CANONICAL, EMO)
    assert report(test.labels, [CANONICAL[i] for i in cold], EMO)["uar"] > 1 / 7
    assert len(t.history["loss"]) == 40 and t.history["loss"][-1] < t.history["loss"][0]


@pytest.mark.parametrize("quantization", ["int8", "dynamic"])
def test_quantized_parity_on_held_out_speech(trained: tuple[T.Trained, ds.FrameSet], quantization: str) -> None:
    t, test = trained
    x = t.inputs(test)
    blob = t.tflite(quantization)
    pf = restricted_argmax(np.asarray(t.model.predict(x, verbose=0)), CANONICAL, EMO)
    pq = restricted_argmax(tflite_probabilities(blob, x), CANONICAL, EMO)
    same = float(np.mean(pf == pq))
    uar_f = report(test.labels, [CANONICAL[i] for i in pf], EMO)["uar"]
    uar_q = report(test.labels, [CANONICAL[i] for i in pq], EMO)["uar"]
    assert same >= 0.98, f"{quantization}: {same:.3f} same top-1"
    assert uar_f - uar_q <= 0.01, f"{quantization}: UAR {uar_f:.3f} -> {uar_q:.3f}"
    if quantization == "int8":
        assert len(blob) < 256 * 1024


def test_bundle_runs_in_the_edge_runtime(trained: tuple[T.Trained, ds.FrameSet], tmp_path: Path) -> None:
    t, test = trained
    b = t.export(tmp_path / "b", name="tiny-mlp", quantization="int8", metrics={"note": "test"})
    again = load_bundle(tmp_path / "b")
    assert again.sha256 == b.sha256 and again.quantization == "int8" and again.labels == CANONICAL
    assert again.training["model"] == "mlp" and again.metrics == {"note": "test"}
    assert again.normalization.input_mean is not None and len(again.normalization.frame_mean) == 211
    # The runtime (no TensorFlow) gives the same inputs and, here, the same answers as training.
    rec = Recognizer(again, adapt=False)
    frames = test.frames[:20]
    pop = ds.model_inputs(test.subset(range(20)), t.input, t.population)
    x = ds.standardize(pop, t.normalization.input_mean, t.normalization.input_std)
    np.testing.assert_allclose(np.stack([rec.inputs(f, new_frames=0) for f in frames]), x, atol=1e-4)


def test_splits(emodb: ds.FrameSet) -> None:
    folds = list(T.splits(emodb, "loso", "emodb"))
    assert [f[0] for f in folds] == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    for name, tr, te in folds:
        assert {emodb.clips[i].speaker for i in te} == {name} and not set(tr) & set(te)
        assert len(tr) + len(te) == len(emodb)
    ((name, tr, te),) = T.splits(emodb, "test-speakers=03,16", "emodb")
    assert {emodb.clips[i].speaker for i in te} == {"03", "16"} and name == "03,16"
    for bad, match in (("test-speakers=99", "not in corpus"), ("random", "use loso"), ("test-speakers=", "not in")):
        with pytest.raises(ValueError, match=match):
            list(T.splits(emodb, bad, "emodb"))
    with pytest.raises(ValueError, match="no clips of corpus 'ravdess'"):
        list(T.splits(emodb, "loso", "ravdess"))


def test_sample_weights_balance_corpora_and_classes(emodb: ds.FrameSet) -> None:
    clips = load_corpus("emodb", EMODB)[:100] + load_corpus("ravdess", EMODB.parent / "ravdess")[:50]
    w = T.sample_weights(clips)
    corp = np.array([c.corpus for c in clips])
    assert w[corp == "emodb"].sum() == pytest.approx(w[corp == "ravdess"].sum())
    lab = np.array([c.label for c in clips])
    per_class = [w[(corp == "emodb") & (lab == k)].sum() for k in set(lab[corp == "emodb"])]
    assert np.allclose(per_class, per_class[0])


# -- the sequence models and the kNN baseline ------------------------------------------------------
@pytest.mark.parametrize("name", ["knn", "lstm", "cnn1d", "cnn_lstm", "bilstm34", "cnn2d"])
def test_every_model_trains_and_converts(name: str, cache_dir: Path) -> None:
    from ser_edge.training.models import build, default_input

    cfg = default_input(name)
    fs = ds.load_frames(load_corpus("emodb", EMODB)[:60:3], cfg, cache_dir=cache_dir)
    t = T.fit(fs, cfg, CANONICAL, T.TrainConfig(model=name, epochs=1, batch_size=8))
    x = t.inputs(fs)
    assert x.shape == (len(fs), *cfg.input_shape)
    keras = np.asarray(t.model.predict(x[:4], verbose=0) if name != "knn" else t.model.predict(x[:4]))
    lite = tflite_probabilities(to_tflite(t.model, "dynamic", input_shape=cfg.input_shape), x[:4])
    assert keras.shape == lite.shape == (4, 9)
    np.testing.assert_allclose(lite.sum(1), 1, atol=1e-3)
    assert np.abs(lite - keras).max() < 0.1
    if name == "knn":  # each training clip is its own nearest neighbour
        assert (keras.argmax(1) == [CANONICAL.index(c.label) for c in fs.clips[:4]]).mean() >= 0.75
    with pytest.raises(ValueError, match="no hyperparameters"):
        build(name, cfg.input_shape, 9, colour="red")


def test_unknown_model() -> None:
    from ser_edge.training.models import build

    with pytest.raises(ValueError, match="unknown model 'svm'"):
        build("svm", (10,), 2)


# -- the commands ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 real EMO-DB clips of 4 speakers listed in a CSV (path,label,speaker)."""
    d = tmp_path_factory.mktemp("csv")
    rows = ["path,label,speaker"]
    for f in emodb_files(("03", "08", "09", "10"), 8):
        label = {
            "W": "anger",
            "L": "boredom",
            "E": "disgust",
            "A": "fear",
            "F": "happiness",
            "T": "sadness",
            "N": "neutral",
        }[f.stem[5]]
        rows.append(f"{f},{label},{f.stem[:2]}")
    (d / "clips.csv").write_text("\n".join(rows) + "\n")
    return d / "clips.csv"


@pytest.fixture(scope="module")
def trained_cli(small_csv: Path, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("run")
    rc = main(
        [
            "train",
            "--corpus",
            "csv",
            "--data",
            str(small_csv),
            "--split",
            "test-speakers=03,08",
            "--epochs",
            "3",
            "--out",
            str(out / "bundle"),
            "--reports",
            str(out / "reports"),
            "--checkpoint",
            str(out / "ckpt"),
            "--cache",
            str(cache_dir),
            "--threads",
            "1",
            "--name",
            "tiny",
            "--hold-out",
            "--quiet",
        ]
    )
    assert rc == 0
    return out


def test_train_command_writes_bundle_reports_checkpoint(trained_cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = load_bundle(trained_cli / "bundle")
    assert b.name == "tiny" and b.quantization == "int8" and b.labels == CANONICAL
    assert b.training["speakers"] == ["csv/09", "csv/10"]  # --hold-out: the test speakers are left out
    assert b.training["corpora"] == {"csv": 16} and b.training["model"] == "mlp"
    m = b.metrics["csv test-speakers=03,08"]
    assert m["n"] == 16 and 0 <= m["uar"] <= 1 and 0 <= m["int8_agreement"] <= 1 and "cold_uar" in m
    r = json.loads((trained_cli / "reports" / "csv-test-speakers.json").read_text())
    assert r["folds"] == [
        {"fold": "03,08", "n_train": 16, "n_test": 16, "train_seconds": r["folds"][0]["train_seconds"]}
    ]
    assert np.array(r["float"]["speaker"]["confusion"]).sum() == 16
    for png in ("csv-test-speakers-confusion.png", "csv-test-speakers-curves.png"):
        assert (trained_cli / "reports" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained_cli / "ckpt" / "checkpoint.json").is_file()


@pytest.mark.parametrize("quantization", ["float32", "dynamic"])
def test_export_command(
    trained_cli: Path, tmp_path: Path, quantization: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(["export", str(trained_cli / "ckpt"), "--out", str(tmp_path / "b"), "--quantization", quantization]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    b = load_bundle(out["bundle"])
    assert b.quantization == quantization and b.name == "tiny"
    y = np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.1
    pred = Recognizer(b).predict(y)
    assert pred.label in CANONICAL and abs(sum(pred.scores.values()) - 1) < 1e-3


def test_evaluate_command_json(trained_cli: Path, small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(
            ["evaluate", "--corpus", "csv", "--data", str(small_csv), "--model", str(trained_cli / "bundle"), "--json"]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert {"uar", "accuracy", "n", "labels", "per_class", "confusion"} <= set(rep)
    assert (
        rep["n"] == 32
        and rep["n_speakers"] == 4
        and rep["labels"] == EMO
        and rep["skipped"] == {}
        and rep["normalization"] == "speaker"
    )
    assert rep["confusion_columns"] == EMO  # argmax over the shared labels only
    assert (
        main(
            [
                "evaluate",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--model",
                str(trained_cli / "bundle"),
                "--json",
                "--all-labels",
                "--normalization",
                "cold",
            ]
        )
        == 0
    )
    cold = json.loads(capsys.readouterr().out)
    assert cold["n"] == 32 and cold["shared_labels"] is False and cold["normalization"] == "cold"
    assert (
        main(
            [
                "evaluate",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--model",
                str(trained_cli / "bundle"),
                "--json",
                "--speakers",
                "03,08",
                "--confusion-png",
                str(trained_cli / "c.png"),
            ]
        )
        == 0
    )
    held = json.loads(capsys.readouterr().out)
    assert held["n"] == 16 and held["n_speakers"] == 2
    assert (
        main(
            [
                "evaluate",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--model",
                str(trained_cli / "bundle"),
                "--json",
                "--normalization",
                "online",
            ]
        )
        == 0
    )
    online = json.loads(capsys.readouterr().out)
    assert online["n"] == 32 and online["normalization"] == "online"
    assert (trained_cli / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_maps_and_skips_labels(
    small_csv: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--split",
                "none",
                "--epochs",
                "2",
                "--grouping",
                "3class",
                "--out",
                str(tmp_path / "b3"),
                "--cache",
                str(cache_dir),
                "--quiet",
                "--quantization",
                "dynamic",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(["evaluate", "--corpus", "csv", "--data", str(small_csv), "--model", str(tmp_path / "b3"), "--json"]) == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["labels"] == ["positive", "neutral", "negative"] and rep["n"] == 32 and rep["skipped"] == {}
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--split",
                "none",
                "--epochs",
                "2",
                "--grouping",
                "4class",
                "--out",
                str(tmp_path / "b4"),
                "--cache",
                str(cache_dir),
                "--quiet",
                "--quantization",
                "float32",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--corpus", "csv", "--data", str(small_csv), "--model", str(tmp_path / "b4")]) == 0
    text = capsys.readouterr().out
    assert "skipped (labels the model does not know)" in text and "'fearful'" in text


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--corpus", "csv", "--out", "x"], "one --data per --corpus"),
        (
            ["train", "--corpus", "csv", "--data", "{csv}", "--split", "test-speakers=77", "--out", "{tmp}"],
            "not in corpus",
        ),
        (["train", "--corpus", "csv", "--data", "{csv}", "--model", "svm", "--out", "{tmp}"], "unknown model"),
        (["train", "--corpus", "csv", "--data", "{csv}"], "nothing to write"),
        (["train", "--recipe", "{tmp}/missing.toml", "--out", "{tmp}"], "no such recipe"),
        (["train", "--corpus", "csv", "--data", "{csv}", "--denoise", "--out", "{tmp}/b"], "bundle cannot carry noise"),
        (["evaluate", "--corpus", "csv", "--data", "{csv}", "--model", "{tmp}/nope"], "no such model bundle"),
        (["evaluate", "--corpus", "emodb", "--data", "{tmp}"], "no audio files"),
        (["export", "{tmp}", "--out", "{tmp}/b"], "not a training checkpoint"),
    ],
)
def test_command_errors(
    argv: list[str], match: str, small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(csv=small_csv, tmp=tmp_path) for a in argv]
    assert main(argv + (["--quiet"] if argv[0] == "train" else [])) == 1
    assert match in capsys.readouterr().err


def test_recipe_errors(tmp_path: Path) -> None:
    from ser_edge.training.recipe import load_recipe

    (tmp_path / "r.toml").write_text('name = "x"\ncolour = "red"\n')
    with pytest.raises(ValueError, match="unknown keys: colour"):
        load_recipe(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('name = "x\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        load_recipe(tmp_path / "r.toml")
    r = load_recipe(Path(__file__).resolve().parents[2] / "training" / "default.toml")
    assert r.model == "mlp" and [c["name"] for c in r.corpus] == ["emodb", "ravdess"]
    assert Path(r.corpus[0]["data"]) == EMODB.resolve()


# -- the bundled default model -----------------------------------------------------------------------
@pytest.mark.parametrize(("model", "recipe_file"), [(None, "default.toml"), ("room", "room-default.toml")])
def test_packaged_bundles(model: str | None, recipe_file: str) -> None:
    b = load_bundle(model)
    assert b.quantization == "int8" and b.labels == CANONICAL and b.model_path.stat().st_size <= 256 * 1024
    from ser_edge.training.recipe import input_config, load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "training" / recipe_file)
    assert b.name == recipe.name
    assert b.input == input_config(recipe) and b.training["model"] == "mlp"  # the recipe's input, prosody rows too
    assert {"f0_semitones", "jitter", "shimmer", "hnr", "loudness"} <= set(b.input.features.features)
    from ser_edge.audio import load

    rec = Recognizer(b)
    hits = [rec.predict(load(c.path, sr=16000)[0]).label == c.label for c in load_corpus("emodb", EMODB)[::10]]
    assert np.mean(hits) > 0.6  # clips it was trained on: a check that the shipped model works


def test_light_imports() -> None:
    code = (
        "import sys, ser_edge.training, ser_edge.training.cli, ser_edge.training.corpora, "
        "ser_edge.training.dataset, ser_edge.training.evaluate, ser_edge.training.metrics, "
        "ser_edge.training.augment, ser_edge.training.models, ser_edge.training.export, ser_edge.training.trainer, "
        "ser_edge.training.denoise, ser_edge.training.wave;"
        "bad = [m for m in ('tensorflow', 'tf_keras', 'keras', 'librosa') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_evaluate_needs_no_tensorflow(small_csv: Path) -> None:
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'librosa'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from ser_edge.training.evaluate import evaluate_bundle
r = evaluate_bundle('csv', {str(small_csv)!r})
print(r['n'], r['model_id'])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "32"


def test_mlp_ensemble_trains_exports_and_reloads(emodb: ds.FrameSet, tmp_path: Path) -> None:
    from ser_edge.training.recipe import export_checkpoint, save_checkpoint

    small = emodb.subset(range(0, len(emodb), 6))
    t = T.fit(small, InputConfig(), CANONICAL, T.TrainConfig(epochs=2, hparams={"members": 2, "units": (16, 8)}))
    x = t.inputs(small)[:10]
    keras = np.asarray(t.model.predict(x, verbose=0))
    np.testing.assert_allclose(keras.sum(1), 1, atol=1e-5)
    save_checkpoint(t, tmp_path / "ck", name="ens", training={}, metrics={})
    b = export_checkpoint(tmp_path / "ck", tmp_path / "b", quantization="float32")
    lite = tflite_probabilities(b.model_path.read_bytes(), x)
    np.testing.assert_allclose(lite, keras, atol=1e-4)


def test_lstm_families_ship_as_dynamic_range_by_default(cache_dir: Path, tmp_path: Path) -> None:
    """Without --quantization, a recipe and ``ser-edge export`` use the family's shipped form:
    dynamic range for the LSTM families (their full-int8 kernel is slow or inexact), int8 else."""
    from ser_edge.training.models import MODELS, default_input
    from ser_edge.training.recipe import Recipe, export_checkpoint, quantizations, save_checkpoint

    shipped = {m: Recipe(model=m).shipped_quantization() for m in MODELS}
    assert shipped == {m: "dynamic" if m in ("lstm", "bilstm34", "cnn_lstm_wave", "knn") else "int8" for m in MODELS}
    assert quantizations(Recipe(model="bilstm34", float_parity=True)) == ("float32", "dynamic")
    assert Recipe(model="lstm", quantization="int8").shipped_quantization() == "int8"
    cfg = default_input("lstm")
    fs = ds.load_frames(load_corpus("emodb", EMODB)[:40:4], cfg, cache_dir=cache_dir)
    t = T.fit(fs, cfg, CANONICAL, T.TrainConfig(model="lstm", epochs=1, batch_size=8, hparams={"units": 8}))
    save_checkpoint(t, tmp_path / "ck", name="lstm", training={}, metrics={})
    assert export_checkpoint(tmp_path / "ck", tmp_path / "b").quantization == "dynamic"


def test_augmented_copies_train_only(emodb: ds.FrameSet) -> None:
    from ser_edge.training.augment import augmented_frames, parse

    cfg = InputConfig()
    small = emodb.subset([i for i, c in enumerate(emodb.clips) if c.speaker in ("03", "08")][::6])
    extra = augmented_frames(small, cfg, parse("noise=20,gain=6,copies=2"), seed=0)
    assert len(extra) == 2 * len(small) and sorted(set(extra.source)) == list(range(len(small)))
    assert {c.speaker for c in extra.clips} == {"03~aug0", "03~aug1", "08~aug0", "08~aug1"}
    assert not np.array_equal(extra.frames[0], small.frames[0])
    r = T.evaluate_split(
        small,
        cfg,
        CANONICAL,
        T.TrainConfig(epochs=1),
        split="test-speakers=03",
        corpus="emodb",
        quantizations=(),
        extra=extra,
    )
    n03 = sum(c.speaker == "03" for c in small.clips)
    assert r["folds"][0]["n_test"] == n03
    assert r["folds"][0]["n_train"] == 3 * (len(small) - n03)  # originals + 2 copies of speaker 08 only


# -- sliding windows, raw-waveform chunks, noise reduction -------------------------------------------
def test_windows_train_and_score_per_clip(emodb: ds.FrameSet) -> None:
    cfg = InputConfig()
    small = emodb.subset([i for i, c in enumerate(emodb.clips) if c.speaker in ("03", "08", "09")][::4])
    tc = T.TrainConfig(epochs=2, windows="1.0,0.5", hparams={"units": (16, 8)})
    assert tc.windows == (1.0, 0.5)
    r = T.evaluate_split(
        small, cfg, CANONICAL, tc, split="test-speakers=03", corpus="emodb", quantizations=("dynamic",)
    )
    fold = r["folds"][0]
    train = small.subset([c.speaker != "03" for c in small.clips])
    x, owner = ds.window_inputs(train, cfg, ds.speaker_stats(train), 100, 50)
    # Windows of the training speakers only (speaker 03 is never trained on), several per clip.
    assert fold["n_train"] == len(train) and fold["n_train_windows"] == len(x) > len(train)
    assert r["float"]["speaker"]["n"] == fold["n_test"] == sum(c.speaker == "03" for c in small.clips)
    t = T.fit(train, cfg, CANONICAL, tc)
    test = small.subset([c.speaker == "03" for c in small.clips])
    xw, ow = t.window_inputs(test)
    assert len(xw) > len(test) and sorted(set(ow)) == list(range(len(test)))
    p = t.probabilities(test)
    per_window = np.asarray(t.model.predict(xw, verbose=0))
    np.testing.assert_allclose(p[0], per_window[ow == 0].mean(0), atol=1e-6)  # a clip = mean of its windows
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    w = T.window_weights(np.ones(3), np.array([0, 0, 1, 2, 2, 2]))
    assert w.mean() == pytest.approx(1) and w[0] + w[1] == pytest.approx(w[2]) == pytest.approx(w[3:].sum())


def test_cnn_lstm_wave_trains_converts_and_scores_per_clip() -> None:
    from ser_edge.training import wave as W
    from ser_edge.training.models import build, default_input

    T.set_threads(1)
    clips = load_corpus("emodb", EMODB)[:120:12]
    waves = W.load_waves(clips)
    assert all(abs(20 * np.log10(np.sqrt(np.mean(w.astype(np.float64) ** 2))) + 23) < 0.1 for w in waves.waves)
    tc = T.TrainConfig(
        model="cnn_lstm_wave",
        epochs=1,
        batch_size=16,
        windows=(0.25, 0.25),
        hparams={"filters": [8, 8, 16], "units": 16},
    )
    t = W.fit_wave(waves, None, CANONICAL, tc)
    x, owner = t.window_inputs(waves)
    assert x.shape[1:] == (4000,) and len(x) == len(t.train_inputs) > len(waves)
    keras = np.asarray(t.model.predict(x[:8], verbose=0))
    lite = tflite_probabilities(t.tflite("int8"), x[:8])  # (dynamic: in the command test below)
    assert lite.shape == keras.shape == (8, 9) and np.abs(lite - keras).max() < 0.1
    np.testing.assert_allclose(lite.sum(1), 1, atol=0.02)
    p = t.probabilities(waves)
    assert p.shape == (len(waves), 9)
    np.testing.assert_allclose(p[1], np.asarray(t.model.predict(x[owner == 1], verbose=0)).mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="WaveSet"):
        W.fit_wave(ds.FrameSet([], []), None, CANONICAL, tc)
    assert default_input("cnn_lstm_wave").kind == "waveform" and t.input.input_shape == (4000,)
    with pytest.raises(ValueError, match="n_samples >= 1024"):
        build("cnn_lstm_wave", (100,), 9)


def test_wave_and_denoise_commands(small_csv: Path, tmp_path: Path, cache_dir: Path) -> None:
    reports = tmp_path / "wave"
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--split",
                "test-speakers=03",
                "--epochs",
                "1",
                "--model",
                "cnn_lstm_wave",
                "--windows",
                "0.25,0.25",
                "--hparam",
                "filters=[8,8,16]",
                "--hparam",
                "units=16",
                "--quantization",
                "dynamic",
                "--threads",
                "1",
                "--reports",
                str(reports),
                "--no-bundle",
                "--quiet",
            ]
        )
        == 0
    )
    r = json.loads((reports / "csv-test-speakers.json").read_text())
    assert r["model"] == "cnn_lstm_wave" and r["folds"][0]["n_test"] == 8 and r["float"]["speaker"]["n"] == 8
    assert "cold" not in r["float"] and r["folds"][0]["n_train_windows"] > r["folds"][0]["n_train"] == 24
    assert r["tflite_bytes"]["dynamic"] > 0 and r["dynamic"]["agreement_with_float"] >= 0.5
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--split",
                "test-speakers=03",
                "--epochs",
                "1",
                "--denoise",
                "--windows",
                "2.0,1.0",
                "--quantization",
                "float32",
                "--no-bundle",
                "--reports",
                str(tmp_path / "dn"),
                "--cache",
                str(cache_dir),
                "--quiet",
            ]
        )
        == 0
    )
    r = json.loads((tmp_path / "dn" / "csv-test-speakers.json").read_text())
    assert r["folds"][0]["n_test"] == 8 and r["float"]["speaker"]["n"] == 8
    assert any("-dn" in p.name for p in cache_dir.iterdir())  # denoised frames have their own cache folder
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(small_csv),
                "--windows",
                "1,2",
                "--out",
                str(tmp_path / "x"),
                "--quiet",
            ]
        )
        == 1
    )


def test_evaluate_under_a_condition(trained_cli: Path, small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    base = ["evaluate", "--corpus", "csv", "--data", str(small_csv), "--model", str(trained_cli / "bundle"), "--json"]
    assert main(base + ["--normalization", "neutral", "--condition", "babble:2@5"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 32 and rep["normalization"] == "neutral" and rep["condition"] == "babble:2@5"
    assert main(base + ["--condition", "hum@3"]) == 1
    assert "'hum@3' is not clean" in capsys.readouterr().err


def test_room_bench_trains_per_fold_and_scores_bundles(
    small_csv: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ser_edge.training.room import main as room

    (tmp_path / "r.toml").write_text(
        f'name = "tiny"\nthreads = 1\n[[corpus]]\nname = "csv"\ndata = "{small_csv}"\n[train]\nepochs = 1\n'
    )
    out = tmp_path / "room.json"
    assert (
        room(
            [
                "--recipe",
                str(tmp_path / "r.toml"),
                "--eval",
                "csv:loso",
                "--folds",
                "2",
                "--babble",
                f"csv:{small_csv}:10",
                "--condition",
                "clean",
                "--condition",
                "white@0",
                "--normalization",
                "cold,speaker,neutral",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["folds"] == {"csv loso": ["03", "08"]} and r["babble_speakers"] == ["csv/10"]
    table = r["results"]["csv loso"]
    assert set(table) == {"clean", "white@0"} and set(table["clean"]) == {"cold", "speaker", "neutral"}
    assert all(v["n"] == 16 and 0 <= v["uar"] <= 1 for t in table.values() for v in t.values())
    assert "| `white@0` |" in out.with_suffix(".md").read_text()
    assert room(["--recipe", str(tmp_path / "r.toml"), "--eval", "csv", "--condition", "clean"]) == 1
    assert "must be CORPUS:SPLIT" in capsys.readouterr().err
    base = ["--recipe", str(tmp_path / "r.toml"), "--eval", "csv:loso", "--condition", "clean", "--set"]
    assert room([*base, 'recipe.name="x"']) == 1
    assert "recipe.KEY is augment, grouping or quantization" in capsys.readouterr().err
    assert room([*base, 'recipe.augment="fan=1"']) == 1  # the value reaches the recipe (and is checked there)
    assert "augment: 'fan=1' must be NAME=VALUE" in capsys.readouterr().err


def test_fit_with_cold_and_neutral_inputs(emodb: ds.FrameSet) -> None:
    small = emodb.subset([i for i, c in enumerate(emodb.clips) if c.speaker in ("03", "08")])
    base = T.fit(small, InputConfig(), CANONICAL, T.TrainConfig(epochs=1, hparams={"members": 1, "units": (8,)}))
    both = T.fit(
        small,
        InputConfig(),
        CANONICAL,
        T.TrainConfig(epochs=1, cold_inputs=True, neutral_inputs=True, hparams={"members": 1, "units": (8,)}),
    )
    assert len(base.train_inputs) == len(small)
    assert len(both.train_inputs) == 3 * len(small)  # speaker, cold and neutral-enrolled inputs of every clip
    pop = both.population
    x_cold = ds.standardize(
        ds.model_inputs(small, InputConfig(), pop), both.normalization.input_mean, both.normalization.input_std
    )
    np.testing.assert_allclose(both.train_inputs[len(small) : 2 * len(small)], x_cold, atol=1e-5)


def test_distill_targets_come_from_a_clean_teacher(emodb: ds.FrameSet) -> None:
    """``distill``: every copy's target is the clean model's output for its original, same normalisation."""
    from ser_edge.training.augment import augmented_frames, parse

    cfg = InputConfig()
    small = emodb.subset([i for i, c in enumerate(emodb.clips) if c.speaker in ("03", "08")][::3])
    extra = augmented_frames(small, cfg, parse("noise=10,copies=1"), seed=0)
    train = ds.concat(small, extra)
    tc = T.TrainConfig(epochs=2, cold_inputs=True, neutral_inputs=True, hparams={"members": 1, "units": (8,)})
    x, owner, mode = T.training_inputs(train, cfg, tc, ds.population_stats(train))
    assert len(x) == len(owner) == len(mode) and set(mode) == {0, 1, 2}
    targets = T.clean_teacher(train, cfg, CANONICAL, tc)(owner, mode)
    assert targets.shape == (len(x), len(CANONICAL))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    n = len(small)
    row = {(int(o), int(m)): k for k, (o, m) in enumerate(zip(owner, mode))}
    for i in range(n):  # copy n + i of clip i: the same target as the original, in every mode
        for m in (0, 1):
            np.testing.assert_array_equal(targets[row[(n + i, m)]], targets[row[(i, m)]])
    assert not np.allclose(targets[row[(0, 0)]], targets[row[(0, 1)]])  # modes are the teacher's own inputs
    student = T.fit(train, cfg, CANONICAL, dataclasses.replace(tc, distill=0.5))
    assert len(student.train_inputs) == len(x)
    with pytest.raises(ValueError, match="no clean original"):
        T.clean_teacher(extra, cfg, CANONICAL, tc)
    with pytest.raises(ValueError, match="distill"):
        T.TrainConfig(distill=1.5)
