"""A raw-waveform (``cnn_lstm_wave``) bundle: trained by ``ser-edge train --out``, described by
``input.waveform`` in ``bundle.json``, and run by ``ser-edge predict`` and ``ser-edge listen``
through the same bundle/runtime code as the frame-feature models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from training_data import EMODB, emodb_files

from ser_edge.audio import load
from ser_edge.bundle import load_bundle
from ser_edge.cli import main
from ser_edge.inputs import InputConfig
from ser_edge.runtime import Recognizer
from ser_edge.training.export import tflite_probabilities
from ser_edge.waveform import WaveformConfig, loudness_normalize, sliding_windows, trim_silence

SR = 16000


@pytest.fixture(scope="module")
def wave_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An int8 cnn_lstm_wave bundle (0.5 s chunks, 0.25 s hop) trained 1 epoch on 2 EMO-DB speakers."""
    d = tmp_path_factory.mktemp("wave")
    names = {
        "W": "anger",
        "L": "boredom",
        "E": "disgust",
        "A": "fear",
        "F": "happiness",
        "T": "sadness",
        "N": "neutral",
    }
    rows = ["path,label,speaker"] + [f"{f},{names[f.stem[5]]},{f.stem[:2]}" for f in emodb_files(("03", "08"), 10)]
    (d / "clips.csv").write_text("\n".join(rows) + "\n")
    out = d / "bundle"
    assert (
        main(
            [
                "train",
                "--corpus",
                "csv",
                "--data",
                str(d / "clips.csv"),
                "--split",
                "none",
                "--epochs",
                "1",
                "--model",
                "cnn_lstm_wave",
                "--windows",
                "0.5,0.25",
                "--hparam",
                "filters=[8,8,16]",
                "--hparam",
                "units=16",
                "--quantization",
                "int8",
                "--threads",
                "1",
                "--out",
                str(out),
                "--checkpoint",
                str(d / "checkpoint"),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def test_bundle_json_describes_the_chunks_and_their_pooling(wave_bundle: Path) -> None:
    meta = json.loads((wave_bundle / "bundle.json").read_text())
    assert meta["input"]["waveform"] == {
        "chunk": 0.5,
        "hop": 0.25,
        "pooling": "mean",
        "trim_db": 40.0,
        "loudness_dbfs": -23.0,
    }
    assert meta["input_shape"] == [8000] and meta["quantization"] == "int8"
    b = load_bundle(wave_bundle)
    assert b.input.kind == "waveform" and b.input.input_shape == (8000,)
    assert "waveform" not in InputConfig().to_dict()  # frame bundles keep the dict they had
    bad = json.loads(json.dumps(meta))
    bad["input"]["waveform"]["hop"] = 0.75
    (wave_bundle.parent / "bad").mkdir(exist_ok=True)
    (wave_bundle.parent / "bad" / "bundle.json").write_text(json.dumps(bad))
    (wave_bundle.parent / "bad" / "model.tflite").write_bytes((wave_bundle / "model.tflite").read_bytes())
    with pytest.raises(ValueError, match="hop <= chunk"):
        load_bundle(wave_bundle.parent / "bad")


def test_recognizer_pools_the_chunks_of_the_prepared_clip(wave_bundle: Path) -> None:
    b = load_bundle(wave_bundle)
    y, _ = load(EMODB / "wav" / "11a01Wc.wav", sr=SR)
    chunks = b.input.waveform_inputs(y)
    want = sliding_windows(loudness_normalize(trim_silence(y, top_db=40.0), -23.0), SR, window=0.5, hop=0.25)
    np.testing.assert_array_equal(chunks, want)
    p = Recognizer(b).predict(y)
    expected = tflite_probabilities(b.model, chunks).mean(0)
    assert p.n_frames == len(chunks) > 2
    assert p.scores[p.label] == pytest.approx(max(p.scores.values()))
    np.testing.assert_allclose([p.scores[k] for k in b.labels], expected / expected.sum(), atol=1e-5)
    with pytest.raises(ValueError, match="waveform bundle"):
        Recognizer(b).predict_frames(np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="finite"):
        b.input.waveform_inputs(np.full(100, np.nan, np.float32))
    with pytest.raises(ValueError, match="hop"):
        WaveformConfig(chunk=1.0, hop=0.0)


def test_checkpoint_exports_the_waveform_bundle(wave_bundle: Path, tmp_path: Path) -> None:
    """``--checkpoint`` keeps a raw-waveform model too: ``ser-edge export`` rebuilds its bundle
    (by default in the family's shipped form, dynamic range)."""
    from ser_edge.training.recipe import export_checkpoint

    b = load_bundle(wave_bundle)
    again = export_checkpoint(wave_bundle.parent / "checkpoint", tmp_path / "b")
    assert again.quantization == "dynamic" and again.input == b.input and again.labels == b.labels
    y, _ = load(EMODB / "wav" / "11a01Wc.wav", sr=SR)
    chunks = b.input.waveform_inputs(y)
    np.testing.assert_allclose(
        tflite_probabilities(again.model, chunks), tflite_probabilities(b.model, chunks), atol=0.05
    )


def test_score_clips_pools_the_chunks_of_a_waveform_bundle(wave_bundle: Path) -> None:
    """The scorer of ``ser-edge evaluate`` and the room benchmark: a waveform bundle's prediction
    for a clip is ``Recognizer.predict``'s pooled chunks, the same under every normalisation."""
    from ser_edge.training.corpora import load_corpus
    from ser_edge.training.evaluate import score_clips
    from ser_edge.training.metrics import restricted_argmax

    b = load_bundle(wave_bundle)
    clips = load_corpus("csv", wave_bundle.parent / "clips.csv")[::3]
    out = score_clips(b, clips, normalizations=("cold", "speaker"), raw=True)
    cold, speaker = out["clean", "cold"], out["clean", "speaker"]
    assert cold == speaker and len(cold["pred"]) == len(clips)
    rec = Recognizer(b)
    ordered = sorted(clips, key=lambda c: [k.speaker_key for k in clips].index(c.speaker_key))  # by speaker
    scores = np.array([[rec.predict(load(c.path, sr=SR)[0]).scores[k] for k in b.labels] for c in ordered])
    assert cold["pred"] == [b.labels[i] for i in restricted_argmax(scores, b.labels, cold["scored"])]
    assert cold["true"] == [c.label for c in ordered]


def test_predict_command_runs_the_waveform_bundle(wave_bundle: Path, tmp_path: Path) -> None:
    f = tmp_path / "clip.flac"
    y, _ = load(EMODB / "wav" / "11a01Wc.wav", sr=SR)
    sf.write(f, y, SR)
    r = subprocess.run(
        [sys.executable, "-m", "ser_edge", "predict", str(f), "--model", str(wave_bundle), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    want = Recognizer(wave_bundle, adapt=False).predict(y)
    assert out["label"] == want.label and out["scores"] == pytest.approx(want.scores, abs=1e-4)
    assert out["model_id"] == load_bundle(wave_bundle).model_id


def test_listen_source_runs_the_waveform_bundle(wave_bundle: Path, tmp_path: Path) -> None:
    """Two utterances separated by silence: one event each, from the waveform model."""
    a, _ = load(EMODB / "wav" / "11a01Wc.wav", sr=SR)
    b, _ = load(EMODB / "wav" / "13a02Nc.wav", sr=SR)
    silence = np.zeros(SR, np.float32)
    f = tmp_path / "talk.wav"
    sf.write(f, np.concatenate([silence, a, silence, silence, b, silence]), SR, subtype="PCM_16")
    r = subprocess.run(
        [sys.executable, "-m", "ser_edge", "listen", "--source", str(f), "--model", str(wave_bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    utts = [e for e in events if e["type"] == "utterance"]
    bundle = load_bundle(wave_bundle)
    assert len(utts) == 2, events
    assert all(e["model_id"] == bundle.model_id and set(e["scores"]) == set(bundle.labels) for e in utts)
    assert utts[0]["start"] < 1.0 + len(a) / SR < utts[1]["start"]
