"""Signals whose feature values are known analytically, and the API.md definitions of the
three non-librosa features checked against the small numpy implementations in conftest."""

from __future__ import annotations

import numpy as np
import pytest
from feature_support import (
    assert_abs,
    assert_rel_peak,
    get_signal,
    ref_energy_entropy,
    ref_magnitude,
    ref_spectral_entropy_from_power,
    ref_spectral_flux_from_S,
)

import ser_edge.features as F

ENTROPY_TOL = 1e-4  # bits, vs the numpy reference implementation of the API.md definition
FLUX_TOL = 1e-4  # relative to the peak, vs the numpy reference implementation


def bin_sine(k, n_fft, sr, seconds=1.0, amp=0.5, phase=0.3):
    """A sinusoid exactly at the centre frequency of FFT bin k (periodic in n_fft samples)."""
    n = int(seconds * sr)
    return (amp * np.cos(2 * np.pi * k * np.arange(n) / n_fft + phase)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# single-bin sine: centroid / bandwidth / rolloff / chroma
# ---------------------------------------------------------------------------------------------

BIN_CASES = [(16000, 512, 160, 37), (22050, 2048, 512, 100), (8000, 256, 64, 50), (48000, 1024, 480, 200)]


@pytest.mark.parametrize("sr,n_fft,hop,k", BIN_CASES)
def test_centroid_of_single_bin_sine(sr, n_fft, hop, k):
    y = bin_sine(k, n_fft, sr)
    c = F.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop, center=False)
    # periodic hann: magnitudes 1:2:1 at bins k-1, k, k+1 -> centroid exactly at bin k
    np.testing.assert_allclose(c[0], k * sr / n_fft, rtol=1e-4)


@pytest.mark.parametrize("sr,n_fft,hop,k", BIN_CASES)
def test_rolloff_of_single_bin_sine(sr, n_fft, hop, k):
    y = bin_sine(k, n_fft, sr)
    df = sr / n_fft
    ro = F.spectral_rolloff(y=y, sr=sr, n_fft=n_fft, hop_length=hop, center=False)
    # cumulative 0.25, 0.75, 1.0 -> 85 % reached at bin k+1
    np.testing.assert_allclose(ro[0], (k + 1) * df, rtol=1e-6)
    ro50 = F.spectral_rolloff(y=y, sr=sr, n_fft=n_fft, hop_length=hop, center=False, roll_percent=0.5)
    np.testing.assert_allclose(ro50[0], k * df, rtol=1e-6)


@pytest.mark.parametrize("sr,n_fft,hop,k", BIN_CASES)
def test_spectral_shape_of_exact_three_bin_spectrum(sr, n_fft, hop, k):
    """S= with magnitudes 1:2:1 at bins k-1..k+1 (what a periodic-hann bin sine gives, without
    the float32 noise floor that makes bandwidth of a real sine far-leakage dominated)."""
    df = sr / n_fft
    S = np.zeros((n_fft // 2 + 1, 3), dtype=np.float32)
    S[k - 1 : k + 2, :] = np.array([1.0, 2.0, 1.0], dtype=np.float32)[:, None] * np.array(
        [1.0, 0.01, 100.0], dtype=np.float32
    )
    np.testing.assert_allclose(F.spectral_centroid(S=S, sr=sr, n_fft=n_fft)[0], k * df, rtol=1e-6)
    np.testing.assert_allclose(F.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft)[0], df / np.sqrt(2.0), rtol=1e-4)
    np.testing.assert_allclose(F.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft, p=1.0)[0], df / 2.0, rtol=1e-4)
    np.testing.assert_allclose(F.spectral_rolloff(S=S, sr=sr, n_fft=n_fft)[0], (k + 1) * df, rtol=1e-6)


def test_chroma_of_a440_peaks_at_A():
    sr = 22050
    t = np.arange(sr) / sr
    y = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    ch = F.chroma_stft(y=y, sr=sr, tuning=0.0, center=False)
    assert ch.shape[0] == 12
    assert np.all(np.argmax(ch, axis=0) == 9)  # C=0 ... A=9
    np.testing.assert_allclose(ch.max(axis=0), 1.0, rtol=1e-5)  # norm=inf


# ---------------------------------------------------------------------------------------------
# time-domain features
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [4, 16, 50, 160])
def test_square_wave_zcr_is_two_over_period(period):
    n = 16000
    y = np.where((np.arange(n) // (period // 2)) % 2 == 0, 0.5, -0.5).astype(np.float32)
    L = 2000
    z = F.zero_crossing_rate(y, frame_length=L, hop_length=500, center=False)
    # a frame of L samples sees L-1 adjacent pairs: count within 1 of L*2/period
    assert np.all(np.abs(z[0] - 2.0 / period) <= 1.0 / L + 1e-7), z


@pytest.mark.parametrize("name", ["silence", "dc"])
def test_zcr_of_silence_and_dc_is_zero(name):
    y = get_signal(name, 16000)
    assert np.all(F.zero_crossing_rate(y, frame_length=512, hop_length=160) == 0)


def test_rms_of_sine_and_dc():
    sr = 16000
    y = bin_sine(16, 512, sr, amp=0.8)  # integer number of periods per 512-sample frame
    r = F.rms(y=y, frame_length=512, hop_length=160, center=False)
    np.testing.assert_allclose(r[0], 0.8 / np.sqrt(2.0), rtol=1e-5)
    dc = np.full(4000, -0.3, dtype=np.float32)
    np.testing.assert_allclose(F.rms(y=dc, frame_length=400, hop_length=100, center=False)[0], 0.3, rtol=1e-6)
    # centred with constant padding: the first frame is half zeros
    np.testing.assert_allclose(F.rms(y=dc, frame_length=400, hop_length=100)[0, 0], 0.3 * np.sqrt(200 / 400), rtol=1e-5)


def test_frame_layout():
    y = np.arange(10, dtype=np.float32)
    fr = F.frame(y, frame_length=4, hop_length=3)
    np.testing.assert_array_equal(fr, np.array([[0, 3, 6], [1, 4, 7], [2, 5, 8], [3, 6, 9]], dtype=np.float32))


def test_stft_of_dc_is_window_sum_in_bin0():
    y = np.full(4096, 0.25, dtype=np.float32)
    X = F.stft(y, n_fft=512, hop_length=256, center=False)
    assert X.dtype == np.complex64 and X.shape == (257, 15)
    np.testing.assert_allclose(X[0].real, 0.25 * 256.0, rtol=1e-5)  # sum(periodic hann 512) = 256
    np.testing.assert_allclose(np.abs(X[1]), 0.25 * 128.0, rtol=1e-5)  # leakage into bin 1: half
    assert np.max(np.abs(X[2:])) <= 1e-4 * 64


# ---------------------------------------------------------------------------------------------
# dB / delta
# ---------------------------------------------------------------------------------------------


def test_power_to_db_known_values():
    S = np.array([[1.0, 10.0, 100.0, 1e-12, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(F.power_to_db(S, top_db=None)[0], [0.0, 10.0, 20.0, -100.0, -100.0], atol=1e-4)
    np.testing.assert_allclose(
        F.power_to_db(S, ref=10.0, top_db=None)[0], [-10.0, 0.0, 10.0, -110.0, -110.0], atol=1e-4
    )
    np.testing.assert_allclose(
        F.power_to_db(S, ref=np.max, top_db=None)[0], [-20.0, -10.0, 0.0, -120.0, -120.0], atol=1e-4
    )
    np.testing.assert_allclose(F.power_to_db(S, top_db=15.0)[0], [5.0, 10.0, 20.0, 5.0, 5.0], atol=1e-4)


@pytest.mark.parametrize("width", [3, 5, 9])
def test_delta_of_linear_ramp(width):
    data = (np.arange(40, dtype=np.float32) * 0.5 + 3.0)[None, :].repeat(3, axis=0)
    d1 = F.delta(data, width=width, order=1)
    np.testing.assert_allclose(d1, 0.5, atol=1e-5)
    d2 = F.delta(data, width=width, order=2)
    np.testing.assert_allclose(d2, 0.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# flatness / entropies / flux
# ---------------------------------------------------------------------------------------------


def test_flatness_noise_high_sine_low():
    noise = get_signal("noise", 16000)
    sine = get_signal("sine", 16000)
    fn = F.spectral_flatness(y=noise, n_fft=512, hop_length=160, center=False)
    fs = F.spectral_flatness(y=sine, n_fft=512, hop_length=160, center=False)
    # power spectrum of white noise: exponential bins -> gmean/amean ~ exp(-euler_gamma) = 0.56
    assert 0.45 < float(np.median(fn)) < 0.65, float(np.median(fn))
    assert float(np.max(fs)) < 0.01, float(np.max(fs))


@pytest.mark.parametrize("n_blocks", [4, 10, 16])
def test_spectral_entropy_single_bin_sine_near_zero(n_blocks):
    n_fft, sr = 512, 16000
    size = (n_fft // 2 + 1) // n_blocks
    k = size // 2 + size  # middle of the second sub-band: bins k-1..k+1 stay inside it
    y = bin_sine(k, n_fft, sr)
    h = F.spectral_entropy(y=y, n_fft=n_fft, hop_length=160, center=False, n_blocks=n_blocks)
    assert h.shape[0] == 1 and h.dtype == np.float32
    assert float(np.max(h)) < 1e-3, float(np.max(h))


@pytest.mark.parametrize("n_blocks", [4, 10, 16])
def test_spectral_entropy_white_noise_near_log2_blocks(n_blocks):
    y = get_signal("noise", 16000)
    h = F.spectral_entropy(y=y, n_fft=1024, hop_length=256, center=False, n_blocks=n_blocks)
    top = np.log2(n_blocks)
    assert float(np.max(h)) <= top + 1e-5
    assert float(np.mean(h)) > top - 0.1, (float(np.mean(h)), top)


@pytest.mark.parametrize("n_blocks", [2, 10, 16])
@pytest.mark.parametrize("signal", ["dc", "alternating"])
def test_energy_entropy_constant_amplitude_is_log2_blocks(signal, n_blocks):
    n = 8000
    y = np.full(n, 0.3, dtype=np.float32)
    if signal == "alternating":
        y[1::2] = -0.3
    h = F.energy_entropy(y=y, frame_length=800, hop_length=200, center=False, n_blocks=n_blocks)
    np.testing.assert_allclose(h[0], np.log2(n_blocks), atol=1e-5)


def test_energy_entropy_single_block_and_silence_are_zero():
    y = np.zeros(4000, dtype=np.float32)
    h0 = F.energy_entropy(y=y, frame_length=1000, hop_length=1000, center=False)
    assert np.all(h0 == 0)
    y[50:60] = 1.0  # all energy of frame 0 in its first block of 100 samples
    h = F.energy_entropy(y=y, frame_length=1000, hop_length=1000, center=False)
    assert abs(float(h[0, 0])) < 1e-6 and np.all(h[0, 1:] == 0)


def test_spectral_flux_stationary_sine_and_onset():
    sr, n_fft, hop = 16000, 512, 160
    t = np.arange(2 * sr) / sr
    sine = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    fl = F.spectral_flux(y=sine, n_fft=n_fft, hop_length=hop, center=False)
    assert fl[0, 0] == 0
    assert float(np.max(fl[0, 2:])) < 1e-6, float(np.max(fl[0, 2:]))

    onset = sine.copy()
    start = sr  # a 2 kHz tone starts at 1 s
    onset[start:] += (0.5 * np.sin(2 * np.pi * 2000.0 * t[start:])).astype(np.float32)
    fo = F.spectral_flux(y=onset, n_fft=n_fft, hop_length=hop, center=False)
    # frames that straddle the onset
    first = (start - n_fft) // hop + 1
    last = start // hop
    assert float(np.max(fo[0, first : last + 1])) > 1e-2
    far = np.r_[2 : first - 1, last + 2 : fo.shape[1]]
    assert float(np.max(fo[0, far])) < 1e-5


# ---------------------------------------------------------------------------------------------
# API.md definitions vs numpy, incl. S= routes and n_blocks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,sr,n_fft,hop",
    [
        ("ravdess", 16000, 512, 160),
        ("emodb", 22050, 2048, 512),
        ("chirp", 16000, 400, 100),
        ("impulses", 8000, 256, 80),
    ],
)
def test_spectral_flux_definition(name, sr, n_fft, hop):
    y = get_signal(name, sr)
    S = ref_magnitude(y, n_fft, hop)
    ref = ref_spectral_flux_from_S(S)
    assert_rel_peak(F.spectral_flux(y=y, n_fft=n_fft, hop_length=hop), ref, FLUX_TOL, "spectral_flux(y=)")
    assert_rel_peak(F.spectral_flux(S=S.astype(np.float32)), ref, FLUX_TOL, "spectral_flux(S=)")


def test_spectral_flux_silent_columns_are_zero():
    S = np.zeros((257, 6), dtype=np.float32)
    S[10, 2] = 1.0
    S[:, 4] = 1.0
    fl = F.spectral_flux(S=S)
    np.testing.assert_allclose(fl, ref_spectral_flux_from_S(S), atol=1e-7)
    assert fl[0, 0] == 0 and fl[0, 1] == 0 and fl[0, 2] == pytest.approx(1.0) and fl[0, 3] == pytest.approx(1.0)


@pytest.mark.parametrize("n_blocks", [1, 3, 10, 20])
@pytest.mark.parametrize(
    "name,sr,n_fft,hop", [("ravdess", 16000, 512, 160), ("emodb", 22050, 2048, 512), ("noise", 8000, 256, 100)]
)
def test_spectral_entropy_definition(name, sr, n_fft, hop, n_blocks):
    y = get_signal(name, sr)
    S = ref_magnitude(y, n_fft, hop)
    ref = ref_spectral_entropy_from_power(S**2, n_blocks)
    assert_abs(
        F.spectral_entropy(y=y, n_fft=n_fft, hop_length=hop, n_blocks=n_blocks),
        ref,
        ENTROPY_TOL,
        "spectral_entropy(y=)",
    )


def test_spectral_entropy_S_route_is_power():
    """S= is a POWER spectrogram (like chroma_stft; as documented in the function's docstring --
    API.md only says "power spectrum |X|^2"): S=|X|**2 must equal the y= route."""
    y = get_signal("ravdess", 16000)
    S = ref_magnitude(y, 512, 160)
    ref = ref_spectral_entropy_from_power(S**2, 10)
    assert_abs(F.spectral_entropy(S=(S**2).astype(np.float32)), ref, ENTROPY_TOL, "spectral_entropy(S=|X|^2)")
    assert_abs(F.spectral_entropy(y=y, n_fft=512, hop_length=160), ref, ENTROPY_TOL, "spectral_entropy(y=)")


@pytest.mark.parametrize("n_blocks", [1, 7, 10])
@pytest.mark.parametrize(
    "name,frame_length,hop,center,pad_mode",
    [
        ("ravdess", 512, 160, True, "constant"),
        ("emodb", 2048, 512, True, "reflect"),
        ("impulses", 1000, 333, False, "constant"),
        ("clipped", 400, 100, True, "edge"),
    ],
)
def test_energy_entropy_definition(name, frame_length, hop, center, pad_mode, n_blocks):
    y = get_signal(name, 16000)
    ours = F.energy_entropy(
        y=y, frame_length=frame_length, hop_length=hop, center=center, pad_mode=pad_mode, n_blocks=n_blocks
    )
    ref = ref_energy_entropy(y, frame_length, hop, center, pad_mode, n_blocks)
    assert_abs(ours, ref, ENTROPY_TOL, "energy_entropy")
