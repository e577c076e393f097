"""Speed of the eGeMAPS voice descriptors against openSMILE's eGeMAPS v02 LLD extraction (same
machine, same run, same audio), and the streaming cost of one 10 ms hop."""

import opensmile
import pytest
from conftest import hop_pusher

import ser_edge.features as F

SR = 16000
LENGTHS = [1, 60]
# All of ser-edge's descriptors; n_fft 1024 holds the 60 ms F0 frame.
VOICE = F.FeatureConfig(sr=SR, n_fft=1024, hop_length=160, features=F.voice.VOICE_FEATURES)
# The same with openSMILE's F0 chain (SHS + Viterbi smoother, f0="shs").
VOICE_SHS = F.FeatureConfig(sr=SR, n_fft=1024, hop_length=160, features=F.voice.VOICE_FEATURES, f0="shs")


@pytest.fixture(scope="module")
def smile():
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    )


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="egemaps-lld")
def test_egemaps_lld_opensmile(benchmark, smile, speech, seconds):
    """openSMILE's whole eGeMAPS v02 LLD set (25 descriptors, F0 and formants included)."""
    benchmark(smile.process_signal, speech[seconds], SR)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="egemaps-lld")
def test_egemaps_voice_ser_edge(benchmark, speech, seconds):
    """ser-edge's 10 descriptors: loudness, alpha ratio, Hammarberg, 2 slopes, F0, voicing, HNR, jitter, shimmer."""
    out = benchmark(F.extract, speech[seconds], VOICE)
    assert out.shape[0] == len(F.voice.VOICE_FEATURES)


@pytest.mark.benchmark(group="voice-stream")
def test_voice_stream_hop_ser_edge(benchmark, speech):
    """One 10 ms hop (160 samples) pushed into a stream of the 10 descriptors: one frame out."""
    out = benchmark(hop_pusher(F.Stream(VOICE), speech[60]))
    assert out.shape == (len(F.voice.VOICE_FEATURES), 1)


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.benchmark(group="egemaps-lld")
def test_egemaps_voice_shs_ser_edge(benchmark, speech, seconds):
    """The 10 descriptors with f0="shs" (openSMILE's SHS + Viterbi F0, HNR, jitter, shimmer)."""
    out = benchmark(F.extract, speech[seconds], VOICE_SHS)
    assert out.shape[0] == len(F.voice.VOICE_FEATURES)


@pytest.mark.benchmark(group="voice-stream")
def test_voice_shs_stream_hop_ser_edge(benchmark, speech):
    """One 10 ms hop pushed into a stream of the 10 descriptors with f0="shs": the hop's frame is
    analysed; the rows the smoother has decided come out (on average one per hop)."""
    out = benchmark(hop_pusher(F.Stream(VOICE_SHS), speech[60]))
    assert out.shape[0] == len(F.voice.VOICE_FEATURES)
