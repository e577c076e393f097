"""The LiteRT runtime and the recogniser with the bundled default model on real speech: label
restriction, int8 in/out handling, speaker adaptation that counts each sample once, a model file
replaced under a running classifier, and a machine with no TFLite runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser_edge.audio import load
from ser_edge.bundle import MODEL_FILE, default_bundle_path, load_bundle
from ser_edge.runtime import Classifier, Recognizer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ANGRY = DATA / "emodb/wav/03a01Wa.wav"  # EMO-DB: W = Ärger (anger)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    y, _ = load(ANGRY, sr=16000)
    return y


def test_a_prediction_is_a_distribution_over_the_labels(speech: np.ndarray) -> None:
    r = Recognizer(adapt=False)
    p = r.predict(speech)
    assert set(p.scores) == set(r.labels) and p.label in r.labels
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.confidence == max(p.scores.values()) == p.scores[p.label]
    assert 0 < p.voiced_frames <= p.n_frames == len(r.bundle.input.frames(speech))


def test_int8_inputs_and_outputs_are_quantised_and_dequantised() -> None:
    c = Classifier(load_bundle())
    x = np.random.default_rng(0).standard_normal((4, *c.bundle.input_shape)).astype(np.float32)
    p = c.probabilities(x)
    assert p.shape == (4, len(c.bundle.labels)) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=0.02)  # softmax through int8 output quantisation
    np.testing.assert_array_equal(c.probabilities(x[1:2])[0], p[1])  # rows are independent
    assert c.probabilities(x[:0]).shape == (0, len(c.bundle.labels))
    with pytest.raises(ValueError, match=r"inputs must be shaped \(n, 1105\)"):
        c.probabilities(x[:, :10])


def test_restricting_the_labels_renormalises_over_the_allowed_ones(speech: np.ndarray) -> None:
    r = Recognizer(adapt=False)
    full = r.predict(speech).scores
    allowed = [k for k in r.labels if k != max(full, key=full.__getitem__)][:3]
    r.restrict(allowed)
    p = r.predict(speech)
    assert p.label in allowed and all(p.scores[k] == 0.0 for k in r.labels if k not in allowed)
    total = sum(full[k] for k in allowed)
    for k in allowed:
        assert p.scores[k] == pytest.approx(full[k] / total, rel=1e-5)
    r.restrict(None)
    assert r.predict(speech).scores == pytest.approx(full)
    with pytest.raises(ValueError, match=r"\['joy'\] are not among the model's labels"):
        r.restrict(["angry", "joy"])
    with pytest.raises(ValueError, match="must not be empty"):
        Recognizer(adapt=False, allowed=[])


def test_speaker_adaptation_counts_each_sample_once(speech: np.ndarray) -> None:
    r = Recognizer(adapt=True)
    cfg = r.bundle.input
    frames = cfg.frames(speech)
    r.predict_frames(frames, new_frames=0)
    assert r.adapter.heard.count == 0
    r.predict(speech)
    assert r.adapter.heard.count == len(cfg.voiced(frames))
    r.adapter.reset()
    tail = 1.0  # seconds: a window that overlaps the previous one except for its last second
    r.predict(speech, new_samples=int(tail * cfg.sr))
    n_tail = int(tail * cfg.sr) // cfg.features.hop_length
    assert r.adapter.heard.count == len(cfg.voiced(frames[-n_tail:]))
    assert 0 < r.adapter.heard.count < len(cfg.voiced(frames))


def test_adaptation_moves_towards_the_speaker_and_off_means_stateless(speech: np.ndarray) -> None:
    fixed = Recognizer(adapt=False)
    first = fixed.predict(speech).scores
    for _ in range(3):
        assert fixed.predict(speech).scores == first
    assert fixed.adapter.heard.count == 0
    adapting = Recognizer(adapt=True)
    a = adapting.predict(speech).scores
    b = adapting.predict(speech).scores
    assert a != first and a != b  # the clip's own frames join the statistics, cumulatively


def test_non_finite_or_too_short_audio_is_a_value_error(speech: np.ndarray) -> None:
    r = Recognizer(adapt=False)
    bad = speech.copy()
    bad[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        r.predict(bad)
    with pytest.raises(ValueError):
        r.predict(np.zeros(0, np.float32))


def test_a_model_file_replaced_on_disk_does_not_touch_the_running_model(speech: np.ndarray, tmp_path: Path) -> None:
    d = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), d)
    r = Recognizer(d, adapt=False)
    before = r.predict(speech).scores
    (d / MODEL_FILE).write_bytes(b"")  # truncated in place: a memory-mapped model would fault here
    assert r.predict(speech).scores == before
    (d / MODEL_FILE).write_bytes(os.urandom(4096))
    assert r.predict(speech).scores == before


def test_no_tflite_runtime_is_a_clear_runtime_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ai_edge_litert', 'tflite_runtime', 'tensorflow'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    code = (
        "from ser_edge.runtime import Recognizer\n"
        "try:\n    Recognizer()\nexcept RuntimeError as e:\n    print('RuntimeError:', e)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("RuntimeError: no TFLite runtime: install ai-edge-litert"), r.stdout


def test_a_clean_run_writes_nothing_to_stderr() -> None:
    """LiteRT's one-off "Created TensorFlow Lite XNNPACK delegate" line is kept off stderr, which
    carries only errors (predict) and structured logs (listen)."""
    r = subprocess.run(
        [sys.executable, "-m", "ser_edge", "predict", str(ANGRY)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith(str(ANGRY)) and r.stderr == "", r.stderr
