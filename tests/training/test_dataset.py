"""Clips -> frames (cached) -> speaker statistics -> model inputs, on real speech."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from training_data import emodb_files

from ser_edge.audio import load
from ser_edge.inputs import InputConfig
from ser_edge.training import dataset as ds
from ser_edge.training.corpora import load_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real EMO-DB files of two speakers, copied so that the test may touch them."""
    d = tmp_path_factory.mktemp("emodb") / "wav"
    d.mkdir()
    for f in emodb_files(("03", "08"), 3):
        shutil.copy(f, d / f.name)
    return d.parent


def test_frames_follow_the_input_config(corpus: Path, tmp_path: Path) -> None:
    cfg = InputConfig()
    clips = load_corpus("emodb", corpus)
    fs = ds.load_frames(clips, cfg, cache_dir=tmp_path)
    y, _ = load(clips[0].path, sr=16000)
    assert np.array_equal(fs.frames[0], cfg.voiced(cfg.frames(y)))
    assert fs.frames[0].shape[1] == cfg.n_frame_features == 211
    assert 0 < len(fs.frames[0]) <= cfg.features.n_frames(len(y))


def test_cache_is_keyed_by_config_and_file(corpus: Path, tmp_path: Path) -> None:
    cfg = InputConfig()
    clips = load_corpus("emodb", corpus)
    first = ds.load_frames(clips, cfg, cache_dir=tmp_path)
    folder = tmp_path / ds.config_key(cfg)
    files = sorted(folder.glob("*.npy"))
    assert len(files) == len(clips)
    # A cached array is what the next call returns (proves the cache is read) ...
    marked = [f for f in files if np.array_equal(np.load(f), first.frames[0])][0]
    np.save(marked, np.full((3, 211), 7.0, np.float32))
    assert (ds.load_frames(clips, cfg, cache_dir=tmp_path).frames[0] == 7.0).all()
    # ... until the audio file changes (its modification time is part of the key) ...
    os.utime(clips[0].path, ns=(0, os.stat(clips[0].path).st_mtime_ns + 10**9))
    assert np.array_equal(ds.load_frames(clips, cfg, cache_dir=tmp_path).frames[0], first.frames[0])
    # ... a damaged cache file is recomputed, and another configuration has its own folder.
    for f in folder.glob("*.npy"):
        f.write_bytes(b"garbage")
    assert np.array_equal(ds.load_frames(clips, cfg, cache_dir=tmp_path).frames[1], first.frames[1])
    other = InputConfig(vad_db=25.0)
    assert ds.config_key(other) != ds.config_key(cfg) and ds.config_key(InputConfig()) == ds.config_key(cfg)
    ds.load_frames(clips, other, cache_dir=tmp_path)
    assert len(list((tmp_path / ds.config_key(other)).glob("*.npy"))) == len(clips)
    assert not list(tmp_path.rglob("*.tmp.npy"))


def test_speaker_and_population_statistics(corpus: Path, tmp_path: Path) -> None:
    cfg = InputConfig()
    fs = ds.load_frames(load_corpus("emodb", corpus), cfg, cache_dir=tmp_path)
    stats = ds.speaker_stats(fs)
    assert sorted(stats) == ["emodb/03", "emodb/08"]
    for key, s in stats.items():
        frames = np.concatenate([x for k, x in zip(fs.speakers, fs.frames) if k == key])
        assert s.count == len(frames)
        np.testing.assert_allclose(s.mean, frames.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.std, frames.std(0), rtol=1e-4, atol=1e-5)
    pop = ds.population_stats(fs)
    assert pop.count == sum(len(x) for x in fs.frames)
    normed = ds.population_stats(fs, per_speaker=True)
    np.testing.assert_allclose(normed.mean, 0, atol=1e-4)
    x_spk = ds.inputs_for(fs, cfg, mode="speaker")
    x_cold = ds.inputs_for(fs, cfg, mode="cold")
    assert x_spk.shape == x_cold.shape == (len(fs), 1055) and np.isfinite(x_spk).all()
    assert not np.allclose(x_spk, x_cold)
    mean, std = ds.standardization(x_spk)
    z = ds.standardize(x_spk, mean, std)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    with pytest.raises(ValueError, match="mode="):
        ds.inputs_for(fs, cfg, mode="warm")


def test_sequence_inputs(corpus: Path, tmp_path: Path) -> None:
    cfg = InputConfig(pooling="sequence", seq_frames=150)
    fs = ds.load_frames(load_corpus("emodb", corpus), cfg, cache_dir=tmp_path)
    x = ds.inputs_for(fs, cfg)
    assert x.shape == (len(fs), 150, 211)
    assert fs.subset([0, 2]).clips == [fs.clips[0], fs.clips[2]]


def test_bad_audio_names_the_file(tmp_path: Path) -> None:
    d = tmp_path / "wav"
    d.mkdir()
    (d / "03a01Fa.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    clips = load_corpus("emodb", tmp_path)
    with pytest.raises(ValueError, match="03a01Fa.wav"):
        ds.load_frames(clips, InputConfig(), cache_dir=tmp_path / "c")
