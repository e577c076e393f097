"""yin and pyin against librosa 0.11 on real speech (EMO-DB, RAVDESS) and synthetic signals,
plus properties and bad input.

librosa gets a float64 copy of the very samples ours get (its float64 arithmetic is ours).
Parity figures (all cases together) are printed by

    PYTHONPATH=python python tests/features/test_pitch.py

and written in docs/benchmarks.md ("Pitch").
"""

from __future__ import annotations

import functools
import warnings

import librosa
import numpy as np
import pytest
from feature_support import HYPOTHESIS_DERANDOMIZE, as_ref64, get_signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ser_edge.features as F

# (sr, frame_length, hop_length, fmin, fmax)
SETTINGS = [
    (16000, 2048, None, 65.4, 2093.0),
    (16000, 1024, 160, 60.0, 500.0),
    (22050, 2048, 512, 80.0, 800.0),
    (8000, 512, 80, 75.0, 400.0),
]
SPEECH = ["emodb", "ravdess", "ravdess_stereo"]
SYNTH = ["sine", "chirp", "noise", "silence", "vibrato", "harmonics", "gated"]

YIN_CENTS = 0.01  # |f0 difference| on every frame that is not near-silent, in cents
# Near-silent frames (peak <= 2 LSB of 16-bit audio) have CMNDF plateaus whose troughs are
# decided by rounding noise, in librosa's FFT and in ours alike; they are counted, not compared.
NEAR_SILENT = 2.0 / 32768
PYIN_VOICING = 0.99  # fraction of frames with equal voicing decisions (per signal)
PYIN_CENTS = 1.0  # |f0 difference| where both call a frame voiced
PYIN_PROB = 1e-6  # |voiced_prob difference|


@functools.cache
def signal(name: str, sr: int) -> np.ndarray:
    if name in SPEECH:
        return get_signal(name, sr)
    t = np.arange(int(1.5 * sr)) / sr
    rng = np.random.default_rng(7)
    if name == "sine":
        y = 0.5 * np.sin(2 * np.pi * 196.0 * t)
    elif name == "chirp":  # 80 -> 600 Hz, logarithmic
        y = 0.5 * np.sin(2 * np.pi * 80.0 * 1.5 / np.log(7.5) * (7.5 ** (t / 1.5) - 1))
    elif name == "noise":
        y = 0.1 * rng.standard_normal(len(t))
    elif name == "silence":
        y = np.zeros(len(t))
    elif name == "vibrato":  # 220 Hz +- 1 semitone at 5.5 Hz
        y = 0.5 * np.sin(2 * np.pi * 220.0 * t + (220.0 * (2 ** (1 / 12) - 1) / 5.5) * np.sin(2 * np.pi * 5.5 * t))
    elif name == "harmonics":  # 150 Hz, 12 harmonics falling 1/k, random phases
        y = sum(np.sin(2 * np.pi * 150.0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 13) if 150 * k < sr / 2)
        y = 0.3 * y / np.max(np.abs(y))
    elif name == "gated":  # tone bursts in noise: voicing switches
        y = 0.4 * np.sin(2 * np.pi * 130.0 * t) * ((t * 3) % 1 < 0.5) + 0.01 * rng.standard_normal(len(t))
    else:
        raise KeyError(name)
    return np.ascontiguousarray(y, dtype=np.float32)


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(1200.0 * np.log2(np.asarray(a, np.float64) / np.asarray(b, np.float64)))


def kwargs(setting) -> dict:
    sr, fl, hop, fmin, fmax = setting
    return dict(sr=sr, frame_length=fl, hop_length=hop, fmin=fmin, fmax=fmax)


def frame_peaks(y: np.ndarray, setting, center: bool = True) -> np.ndarray:
    sr, fl, hop, _, _ = setting
    yp = np.pad(np.abs(y), fl // 2) if center else np.abs(y)
    return librosa.util.frame(yp, frame_length=fl, hop_length=hop or fl // 4).max(axis=0)


def yin_case(name: str, setting) -> dict:
    y = signal(name, setting[0])
    ours = F.yin(y, **kwargs(setting))
    ref = librosa.yin(as_ref64(y), **kwargs(setting))
    assert ours.shape == ref.shape and ours.dtype == np.float32
    d = cents(ours, ref)
    loud = frame_peaks(y, setting) > NEAR_SILENT
    return dict(
        frames=len(d),
        loud=int(loud.sum()),
        max_cents=float(d[loud].max(initial=0.0)),
        within=int((d[loud] <= YIN_CENTS).sum()),
        quiet_differ=int((d[~loud] > YIN_CENTS).sum()),
    )


def pyin_case(name: str, setting) -> dict:
    y = signal(name, setting[0])
    f0, vf, vp = F.pyin(y, **kwargs(setting))
    rf0, rvf, rvp = librosa.pyin(as_ref64(y), **kwargs(setting))
    assert f0.shape == rf0.shape and vf.dtype == np.bool_ and vp.dtype == np.float32
    both = vf & rvf
    d = cents(f0[both], rf0[both])
    assert np.array_equal(np.isnan(f0), ~vf)
    loud = frame_peaks(y, setting) > NEAR_SILENT
    dp = np.abs(vp - rvp)
    return dict(
        frames=len(vf),
        voicing_equal=int((vf == rvf).sum()),
        both_voiced=int(both.sum()),
        f0_within=int((d <= PYIN_CENTS).sum()),
        max_prob_diff=float(dp[loud].max(initial=0.0)),
        max_prob_diff_quiet=float(dp[~loud].max(initial=0.0)),
    )


CASES = [(n, s) for s in SETTINGS for n in SPEECH + SYNTH]
IDS = [f"{n}-{s[0]}-{s[1]}" for n, s in CASES]


@pytest.mark.parametrize("name,setting", CASES, ids=IDS)
def test_yin_equals_librosa(name, setting):
    r = yin_case(name, setting)
    assert r["within"] == r["loud"], f"{name} {setting}: {r}"
    assert r["loud"] >= 0.5 * r["frames"] or name == "silence", r  # the comparison covers most frames


@pytest.mark.parametrize("name,setting", CASES, ids=IDS)
def test_pyin_equals_librosa(name, setting):
    r = pyin_case(name, setting)
    assert r["voicing_equal"] >= PYIN_VOICING * r["frames"], r
    assert r["f0_within"] == r["both_voiced"], r
    assert r["max_prob_diff"] <= PYIN_PROB, r
    assert r["max_prob_diff_quiet"] <= 0.01 + PYIN_PROB, r  # at most no_trough_prob: a trough or none


def test_pyin_options_equal_librosa():
    y = signal("ravdess", 16000)
    kw = dict(sr=16000, fmin=70.0, fmax=600.0, frame_length=1024, hop_length=256)
    for opts in [
        dict(fill_na=None),
        dict(fill_na=-1.0, center=False),
        dict(pad_mode="reflect", switch_prob=0.05),
        dict(n_thresholds=40, beta_parameters=(1.5, 10.0), boltzmann_parameter=1.0),
        dict(resolution=0.05, max_transition_rate=20.0, no_trough_prob=0.05),
    ]:
        f0, vf, vp = F.pyin(y, **kw, **opts)
        rf0, rvf, rvp = librosa.pyin(as_ref64(y), **kw, **opts)
        assert (vf == rvf).mean() >= PYIN_VOICING, opts
        fill = opts.get("fill_na", np.nan)
        if fill is None:
            assert np.all(np.isfinite(f0)) and np.all(cents(f0, rf0)[vf == rvf] <= PYIN_CENTS), opts
        elif np.isnan(fill):
            assert np.all(np.isnan(f0[~vf])), opts
        else:
            assert np.all(f0[~vf] == fill), opts
        assert np.abs(vp - rvp).max() <= PYIN_PROB, opts


def test_yin_options_equal_librosa():
    y = signal("emodb", 22050)
    for opts in [
        dict(center=False),
        dict(pad_mode="reflect"),
        dict(pad_mode="edge", trough_threshold=0.3),
        dict(trough_threshold=0.02, hop_length=100),
    ]:
        kw = dict(sr=22050, fmin=70.0, fmax=900.0, frame_length=2048, **opts)
        assert cents(F.yin(y, **kw), librosa.yin(as_ref64(y), **kw)).max() <= YIN_CENTS, opts


def test_float32_librosa_within_its_own_precision():
    """librosa on the float32 samples (its float32 arithmetic) agrees as closely on speech."""
    y = signal("emodb", 16000)
    kw = kwargs(SETTINGS[0])
    assert np.quantile(cents(F.yin(y, **kw), librosa.yin(y, **kw)), 0.99) <= 0.05
    f0, vf, _ = F.pyin(y, **kw)
    rf0, rvf, _ = librosa.pyin(y, **kw)
    assert (vf == rvf).mean() >= PYIN_VOICING


def test_known_pitches():
    sr = 16000
    t = np.arange(sr) / sr
    for f in (82.0, 196.0, 440.0):
        y = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        f0 = F.yin(y, sr=sr, fmin=60, fmax=1000, frame_length=1024)
        assert np.max(cents(f0[3:-3], f)) < 20  # librosa's difference function is biased by up to ~15 cents
        pf0, vf, vp = F.pyin(y, sr=sr, fmin=60, fmax=1000, frame_length=1024)
        assert vf[3:-3].all() and np.all(cents(pf0[3:-3], f) < 25) and np.all(vp[3:-3] > 0.3)
    f0, vf, vp = F.pyin(np.zeros(sr, np.float32), sr=sr, fmin=60, fmax=1000, frame_length=1024)
    assert not vf.any() and np.isnan(f0).all() and np.all(vp == 0)


def test_input_types():
    y = signal("emodb", 16000)
    kw = dict(sr=16000, fmin=65.0, fmax=800.0)
    i16 = np.round(y * 32767).astype(np.int16)
    assert np.array_equal(F.yin(i16, **kw), F.yin(i16.astype(np.float32) / np.float32(32768), **kw))
    assert np.array_equal(F.yin(y.astype(np.float64), **kw), F.yin(y, **kw))
    assert np.array_equal(F.yin(y[::2], **kw), F.yin(np.ascontiguousarray(y[::2]), **kw))
    with pytest.warns(FutureWarning):
        F.yin(y, win_length=1024, **kw)


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------

PROFILE = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=HYPOTHESIS_DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@st.composite
def pitch_inputs(draw):
    sr = draw(st.sampled_from([8000, 16000, 22050]))
    fl = draw(st.sampled_from([256, 512, 1024, 2048]))
    fmin = draw(st.floats(2.0 * sr / fl + 1.0, sr / 8.0))
    fmax = draw(st.floats(fmin * 1.5, sr / 2.0))
    hop = draw(st.sampled_from([None, 64, 160, 301]))
    n = draw(st.integers(1, 6000))
    kind = draw(st.sampled_from(["noise", "tone", "silence", "impulses", "square"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    t = np.arange(n) / sr
    if kind == "noise":
        y = rng.standard_normal(n)
    elif kind == "tone":
        y = np.sin(2 * np.pi * rng.uniform(fmin, fmax) * t)
    elif kind == "silence":
        y = np.zeros(n)
    elif kind == "impulses":
        y = np.zeros(n)
        y[rng.integers(0, n, size=max(1, n // 300))] = 1.0
    else:
        y = np.where((t * rng.uniform(fmin, fmax)) % 1 < 0.5, 1.0, -1.0)
    amp = 10.0 ** draw(st.floats(-6.0, 3.0))
    center = draw(st.booleans())
    return (amp * y).astype(np.float32), dict(
        sr=sr, frame_length=fl, hop_length=hop, fmin=fmin, fmax=fmax, center=center
    )


def _frames(n: int, kw: dict) -> int:
    hop = kw["hop_length"] or kw["frame_length"] // 4
    length = n + 2 * (kw["frame_length"] // 2) if kw["center"] else n
    return 1 + (length - kw["frame_length"]) // hop


@PROFILE
@given(pitch_inputs())
def test_yin_properties(case):
    y, kw = case
    if not kw["center"] and len(y) < kw["frame_length"]:
        with pytest.raises(ValueError, match="frame_length"):
            F.yin(y, **kw)
        return
    f0 = F.yin(y, **kw)
    assert f0.shape == (_frames(len(y), kw),) and f0.dtype == np.float32
    sr = kw["sr"]
    lo, hi = sr / (min(int(np.ceil(sr / kw["fmin"])), kw["frame_length"] - 1) + 1), sr / (int(sr / kw["fmax"]) - 1)
    assert np.all((f0 >= lo * 0.999) & (f0 <= hi * 1.001)), (f0.min(), f0.max(), lo, hi)
    # CMNDF is scale-invariant: a 2**k gain changes nothing but rounding.
    assert np.all(cents(F.yin(y * np.float32(4.0), **kw), f0) < 1e-3) or not np.any(y)


@PROFILE
@given(pitch_inputs())
def test_pyin_properties(case):
    y, kw = case
    if not kw["center"] and len(y) < kw["frame_length"]:
        with pytest.raises(ValueError, match="frame_length"):
            F.pyin(y, **kw)
        return
    hop = kw["hop_length"] or kw["frame_length"] // 4
    n_bins = int(np.floor(120 * np.log2(kw["fmax"] / kw["fmin"]))) + 1
    if round(35.92 * 12 * hop / kw["sr"]) * 10 + 1 > n_bins:  # librosa cannot build its transition matrix
        with pytest.raises(ValueError, match="max_transition_rate"):
            F.pyin(y, **kw)
        return
    f0, vf, vp = F.pyin(y, **kw)
    n = _frames(len(y), kw)
    assert f0.shape == vf.shape == vp.shape == (n,)
    assert np.array_equal(np.isnan(f0), ~vf)
    assert np.all((vp >= 0) & (vp <= 1))
    step = 2 ** (1 / 120)
    assert np.all((f0[vf] >= kw["fmin"] / 1.0001) & (f0[vf] <= kw["fmax"] * step))
    g0, gf, gp = F.pyin(y, fill_na=None, **kw)
    assert np.array_equal(gf, vf) and np.array_equal(gp, vp) and np.array_equal(g0[vf], f0[vf])
    assert np.all(np.isfinite(g0))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

GOOD = np.random.default_rng(1).uniform(-0.5, 0.5, 4000).astype(np.float32)
BASE = dict(sr=16000, fmin=80.0, fmax=800.0, frame_length=1024)

BAD = [
    (dict(fmin=0.0), "fmin"),
    (dict(fmin=-10.0), "fmin"),
    (dict(fmin=900.0), "fmin"),
    (dict(fmin=800.0), "fmin"),
    (dict(fmax=9000.0), "fmax"),
    (dict(fmin=None), "fmin"),
    (dict(fmax=None), "fmax"),
    (dict(fmin=float("nan")), "fmin"),
    (dict(fmax=float("inf")), "fmax"),
    (dict(fmin=15.0), "fmin=15.000 is too small for frame_length=1024"),
    (dict(frame_length=0), "frame_length"),
    (dict(frame_length=10**12), "frame_length"),
    (dict(frame_length=1024.0), "frame_length"),
    (dict(hop_length=0), "hop_length"),
    (dict(hop_length=-3), "hop_length"),
    (dict(sr=0), "sr"),
    (dict(sr=float("nan")), "sr"),
    (dict(pad_mode="mirror"), "pad_mode"),
    (dict(pad_mode=3), "pad_mode"),
    (dict(center=False, frame_length=8192, fmin=80.0), "frame_length"),
]
PYIN_BAD = [
    (dict(n_thresholds=0), "n_thresholds"),
    (dict(n_thresholds=10**9), "n_thresholds"),
    (dict(beta_parameters=(0.0, 18.0)), "beta_parameters"),
    (dict(beta_parameters=(2.0,)), "beta_parameters"),
    (dict(beta_parameters=None), "beta_parameters"),
    (dict(boltzmann_parameter=-1.0), "boltzmann_parameter"),
    (dict(resolution=0.0), "resolution"),
    (dict(resolution=1.0), "resolution"),
    (dict(resolution=1e-7), "resolution"),
    (dict(max_transition_rate=0.0), "max_transition_rate"),
    (dict(max_transition_rate=1e9), "max_transition_rate"),
    (dict(switch_prob=1.0), "switch_prob"),
    (dict(no_trough_prob=-0.1), "no_trough_prob"),
]
BAD_AUDIO = [
    (np.zeros(0, np.float32), "y is empty"),
    (np.array([0.0, np.nan] * 1000, np.float32), "not finite"),
    (np.array([0.0, np.inf] * 1000), "not finite"),
    (np.zeros((2, 1000), np.float32), "1-D"),
    (np.zeros(1000, np.complex64), "dtype"),
    (None, "y is required"),
]


@pytest.mark.parametrize("fn", [F.yin, F.pyin])
@pytest.mark.parametrize("bad,match", BAD, ids=[repr(b) for b, _ in BAD])
def test_bad_parameters(fn, bad, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(")):
        fn(GOOD, **{**BASE, **bad})


@pytest.mark.parametrize("bad,match", PYIN_BAD, ids=[repr(b) for b, _ in PYIN_BAD])
def test_bad_pyin_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        F.pyin(GOOD, **{**BASE, **bad})


@pytest.mark.parametrize("fn", [F.yin, F.pyin])
@pytest.mark.parametrize("y,match", BAD_AUDIO, ids=[m for _, m in BAD_AUDIO])
def test_bad_audio(fn, y, match):
    with pytest.raises(ValueError, match=match):
        fn(y, **BASE)


def test_fewer_than_two_periods_warns_like_librosa():
    with pytest.warns(UserWarning, match="less than two periods"):
        F.yin(GOOD, sr=16000, fmin=20.0, fmax=800.0, frame_length=1024)


def main() -> None:
    """Prints the parity figures over every case."""
    warnings.simplefilter("ignore")
    totals = dict(
        yin_frames=0, yin_loud=0, yin_within=0, yin_quiet=0, yin_max=0.0, frames=0, voicing=0, both=0, f0=0, prob=0.0
    )
    for name, s in CASES:
        y, p = yin_case(name, s), pyin_case(name, s)
        totals["yin_frames"] += y["frames"]
        totals["yin_loud"] += y["loud"]
        totals["yin_within"] += y["within"]
        totals["yin_quiet"] += y["quiet_differ"]
        totals["yin_max"] = max(totals["yin_max"], y["max_cents"])
        totals["frames"] += p["frames"]
        totals["voicing"] += p["voicing_equal"]
        totals["both"] += p["both_voiced"]
        totals["f0"] += p["f0_within"]
        totals["prob"] = max(totals["prob"], p["max_prob_diff"])
        print(
            f"{name:15s} sr={s[0]:5d} frame={s[1]:4d}  yin max {y['max_cents']:.2e} cents  "
            f"pyin voicing {p['voicing_equal']}/{p['frames']}  f0 within 1 cent {p['f0_within']}/{p['both_voiced']}"
        )
    t = totals
    print(
        f"\n{len(CASES)} cases. yin: {t['yin_within']}/{t['yin_loud']} frames above 2 LSB within {YIN_CENTS} cent "
        f"(max {t['yin_max']:.2e} cents); {t['yin_quiet']} of the {t['yin_frames'] - t['yin_loud']} near-silent "
        f"frames differ. pyin: voicing equal on {t['voicing']}/{t['frames']} frames "
        f"({100 * t['voicing'] / t['frames']:.2f} %), f0 within 1 cent on {t['f0']}/{t['both']} frames voiced in "
        f"both, voiced_prob max difference {t['prob']:.1e}"
    )


if __name__ == "__main__":
    main()


@pytest.mark.parametrize(
    "kw", [{"boltzmann_parameter": 1e-300}, {"beta_parameters": (1e300, 1)}, {"fill_na": 10**400}, {"fill_na": "x"}]
)
def test_pyin_extreme_priors_and_fill_values_are_value_errors(kw):
    y = np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32)
    with pytest.raises(ValueError, match="boltzmann_parameter|fill_na"):
        F.pyin(y, sr=16000, fmin=60, fmax=500, **kw)
