"""Speed of the Rust core against librosa 0.11 (same machine, same run, same signals)."""

import librosa
import numpy as np
import pytest
from conftest import hop_pusher

import ser_edge.features as F
from ser_edge import _dsp

SR = 16000
LENGTHS = [1, 60]


@pytest.fixture(scope="module", autouse=True)
def warm(speech):
    """librosa's numba kernels compile on first use; time them warm, as a fair reference."""
    y = speech[1]
    librosa.feature.mfcc(y=y, sr=SR)
    librosa.feature.zero_crossing_rate(y)
    F.mfcc(y=y, sr=SR)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="mfcc")
def test_mfcc_librosa(benchmark, speech, seconds):
    benchmark(librosa.feature.mfcc, y=speech[seconds], sr=SR)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="mfcc")
def test_mfcc_ser_edge(benchmark, speech, seconds):
    out = benchmark(F.mfcc, y=speech[seconds], sr=SR)
    ref = librosa.feature.mfcc(y=speech[seconds], sr=SR)
    assert np.max(np.abs(out - ref)) < 1e-2


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="mfcc")
def test_mfcc_fft_floor(benchmark, speech, seconds):
    """Only the real FFTs of the same frames (n_fft 2048, hop 512): the floor for mfcc."""
    benchmark(_dsp.fft_floor, speech[seconds], 2048, 512)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="melspectrogram")
def test_melspectrogram_librosa(benchmark, speech, seconds):
    benchmark(librosa.feature.melspectrogram, y=speech[seconds], sr=SR)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="melspectrogram")
def test_melspectrogram_ser_edge(benchmark, speech, seconds):
    benchmark(F.melspectrogram, y=speech[seconds], sr=SR)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="zcr")
def test_zcr_librosa(benchmark, speech, seconds):
    benchmark(librosa.feature.zero_crossing_rate, speech[seconds])


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="zcr")
def test_zcr_ser_edge(benchmark, speech, seconds):
    benchmark(F.zero_crossing_rate, speech[seconds])


@pytest.mark.benchmark(group="stream")
def test_stream_hop_ser_edge(benchmark, speech):
    """One 10 ms hop (160 samples) pushed into a 40-MFCC stream (n_fft 512): one frame out."""
    out = benchmark(hop_pusher(F.Stream(F.FeatureConfig(n_mfcc=40, n_mels=40)), speech[60]))
    assert out.shape == (40, 1)


@pytest.mark.benchmark(group="stream")
def test_stream_hop_librosa(benchmark, speech):
    """The librosa way to get the same frame: mfcc of the last 512 samples, uncentred."""
    y = speech[1][:512]
    benchmark(librosa.feature.mfcc, y=y, sr=SR, n_mfcc=40, n_mels=40, n_fft=512, hop_length=160, center=False)


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.benchmark(group="parallel")
def test_extract_many(benchmark, speech, n_jobs):
    """500 clips of 1 s, 40 MFCC at 16 kHz."""
    y = speech[60]
    clips = [y[(i % 59) * SR : (i % 59 + 1) * SR] for i in range(500)]
    config = F.FeatureConfig()
    out = benchmark.pedantic(F.extract_many, args=(clips, config), kwargs={"n_jobs": n_jobs}, rounds=5, warmup_rounds=1)
    assert len(out) == 500
