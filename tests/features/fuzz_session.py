"""One hypothesis session over the whole public DSP API, run by ``test_fuzz.py`` in a child
process (an abort or a hang there is then seen as a return code or a timeout, not a lost test
run): ``python tests/features/fuzz_session.py CASES SEED``.

Every case calls one public function (every name in ``ser_edge.features``, plus
``ser_edge.audio.resample`` / ``Resampler``) with arguments drawn from the valid and the hostile:
huge, negative and zero integers, floats where integers are expected, NaN/inf, strings, None,
empty, 2-D, 0-D and wrong-dtype arrays, samples near float32's limits. A case passes when the
call returns finite float arrays or raises ``ValueError``/``TypeError``; anything else
(``PanicException``, ``RuntimeError``, ``OverflowError``, ``MemoryError``, a non-finite
result) fails the session. Prints ``cases=N failures=M`` and one line per distinct failure.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ser_edge.features as F
from ser_edge.audio import Resampler, resample

HUGE_INTS = [
    2**20 + 1,
    2**25,
    2**31,
    2**32 + 1,
    2**40,
    2**62,
    2**63 - 1,
    2**63,
    2**64,
    2**64 + 1,
    2**100,
    -1,
    -(2**63),
    0,
]
INT_NAMES = {
    "n_fft",
    "hop_length",
    "win_length",
    "n_mels",
    "n_mfcc",
    "n_chroma",
    "n_bands",
    "n_blocks",
    "frame_length",
    "width",
    "order",
    "axis",
    "dct_type",
    "n_jobs",
    "contrast_bands",
}
STR_CHOICES = {
    "window": ["hann", "hamming", "blackman", "boxcar", "kaiser", ""],
    "pad_mode": ["constant", "reflect", "edge", "wrap", "symmetric"],
    "mode": ["interp", "nearest", "mirror", "constant", "wrap", "bogus"],
    "mel_norm": ["slaney", "htk"],
    "norm": ["slaney", "ortho", "max"],
    "f0": ["yin", "shs", "pyin", ""],
}
ARRAY_NAMES = {"y", "S", "data", "clips", "chunk"}

small_ints = st.integers(-4, 2100)
sizes = st.sampled_from([1, 2, 3, 4, 8, 16, 64, 128, 256, 512, 1024, 2048])
ints = st.one_of(sizes, sizes, small_ints, st.sampled_from(HUGE_INTS), st.integers(-(2**70), 2**70))
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300, 16000.0, 8000.0, 0.5, 2.0, 1.0]),
)
odd = st.sampled_from(
    [
        None,
        "x",
        "512",
        b"1",
        [],
        [1, 2],
        {},
        True,
        False,
        object(),
        1j,
        np.float32(2.0),
        np.int64(512),
        np.array(3),
        2**2000,
    ]
)


@st.composite
def arrays(draw: Any) -> Any:
    """Audio-like input: mostly short finite float32, sometimes hostile."""
    kind = draw(st.sampled_from(["f32", "f32", "f32", "f64", "i16", "i32", "c64", "bool", "obj", "list"]))
    ndim = draw(st.sampled_from([1, 1, 1, 1, 2, 0, 3]))
    n = draw(st.sampled_from([0, 1, 2, 7, 100, 511, 512, 513, 1000, 2048, 4000]))
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 0.0, 1e-30, 1e10, 1e20, 3e38]))
    special = draw(st.sampled_from([None, None, None, "nan", "inf", "-inf"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = {0: (), 1: (n,), 2: (draw(st.sampled_from([1, 2, 40])), max(n // 40, 0)), 3: (2, 2, max(n // 4, 0))}[ndim]
    x = rng.uniform(-1, 1, shape) * scale
    if special and x.size:
        x.flat[rng.integers(x.size)] = float(special)
    if kind == "f32":
        with np.errstate(over="ignore"):
            return x.astype(np.float32)
    if kind == "f64":
        return x
    if kind == "i16":
        with np.errstate(over="ignore", invalid="ignore"):
            return (np.nan_to_num(x) * 1000).clip(-32768, 32767).astype(np.int16)
    if kind == "i32":
        return np.nan_to_num(x).clip(-1e9, 1e9).astype(np.int32)
    if kind == "c64":
        return x.astype(np.complex64)
    if kind == "bool":
        return x > 0
    if kind == "obj":
        return x.astype(object)
    return x.tolist()


CLEAN_STR = {
    "window": ["hann", "hamming", "blackman", "boxcar"],
    "pad_mode": ["constant", "reflect", "edge"],
    "mode": ["interp", "nearest", "mirror", "constant", "wrap"],
    "mel_norm": ["slaney", None],
    "norm": [None],
    "f0": ["yin", "shs"],
}
CLEAN_FLOATS = {
    "sr": st.sampled_from([8000, 16000, 22050, 44100.0]),
    "fmin": st.floats(0, 400),
    "fmax": st.sampled_from([None, 4000.0, 8000.0]),
    "power": st.sampled_from([1.0, 2.0, 0.5, 3.0]),
    "top_db": st.sampled_from([None, 80.0, 40.0]),
    "roll_percent": st.floats(0.01, 0.99),
    "quantile": st.floats(0.01, 0.5),
    "tuning": st.floats(-0.5, 0.5),
    "orig_sr": st.sampled_from([8000, 44100]),
    "target_sr": st.sampled_from([16000, 22050]),
    "contrast_fmin": st.sampled_from([100.0, 200.0]),
}


def value(name: str, clean: bool = False) -> st.SearchStrategy[Any]:
    """A strategy for keyword ``name``: its own kind (a sane value when ``clean``), or anything."""
    if clean:
        if name in ("S", "data"):
            return st.builds(
                lambda r, t, s: np.abs(np.random.default_rng(s).standard_normal((r, t)), dtype=np.float32),
                st.sampled_from([3, 40, 128, 257, 513]),
                st.sampled_from([1, 5, 40]),
                st.integers(0, 99),
            )
        if name in STR_CHOICES:
            return st.sampled_from(CLEAN_STR[name])
        if name in ("center", "htk", "linear"):
            return st.booleans()
        if name == "features":
            return st.lists(st.sampled_from(F.FEATURES), min_size=1, max_size=4).map(tuple)
        if name == "dct_type":
            return st.just(2)
        if name in ARRAY_NAMES:
            good = st.builds(
                lambda n, s: np.random.default_rng(s).uniform(-1, 1, n).astype(np.float32),
                st.sampled_from([100, 1000, 4000]),
                st.integers(0, 99),
            )
            return good if name != "clips" else st.lists(good, min_size=1, max_size=3)
        if name in INT_NAMES:
            return st.sampled_from([1, 2, 4, 8, 64, 128, 256, 512] if name != "axis" else [-1, 0])
        if name in CLEAN_FLOATS:
            return CLEAN_FLOATS[name]
    if name in ARRAY_NAMES:
        own = arrays() if name != "clips" else st.lists(arrays(), min_size=0, max_size=3)
    elif name in INT_NAMES:
        own = ints
    elif name in STR_CHOICES:
        own = st.sampled_from(STR_CHOICES[name])
    elif name in ("center", "htk", "linear"):
        own = st.booleans()
    elif name == "features":
        own = st.lists(st.sampled_from(list(F.FEATURES) + ["bogus"]), min_size=0, max_size=4).map(tuple)
    elif name == "ref":
        own = st.one_of(floats, st.just(np.max))
    else:
        own = floats
    return st.one_of(own, own, own, own, own, own, ints, floats, odd)


CONFIG_FIELDS = [f for f in inspect.signature(F.FeatureConfig).parameters]
TRACE = bool(os.environ.get("SER_EDGE_FUZZ_TRACE"))
FUNCTIONS: dict[str, Callable[..., Any]] = {n: getattr(F, n) for n in F.__all__ if n not in ("FEATURES",)}
FUNCTIONS["resample"] = resample


def keywords(fn: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(fn).parameters]


@st.composite
def cases(draw: Any) -> tuple[str, Callable[[], Any]]:
    name = draw(st.sampled_from(sorted(FUNCTIONS) + ["Resampler"]))
    if name in ("extract", "extract_many", "Stream"):
        config = draw(configs())
        if name == "extract":
            y = draw(value("y", clean=draw(st.booleans())))
            return name, lambda: F.extract(y, config())
        if name == "extract_many":
            clips, n_jobs = draw(value("clips")), draw(st.one_of(st.none(), value("n_jobs")))
            return name, lambda: F.extract_many(clips, config(), n_jobs=n_jobs)
        chunks = draw(st.lists(value("chunk"), min_size=0, max_size=4))

        def stream() -> list[Any]:
            s = F.Stream(config())
            out = []
            for c in chunks:
                try:
                    out.append(s.push(c))
                except (ValueError, TypeError):
                    pass
            return out + [s.flush()]

        return name, stream
    if name == "Resampler":
        orig, target = draw(value("orig_sr")), draw(value("target_sr"))
        chunks = draw(st.lists(value("chunk"), min_size=0, max_size=3))

        def resampler() -> list[Any]:
            r = Resampler(orig, target)
            return [r.push(c) for c in chunks] + [r.flush()]

        return name, resampler
    fn = FUNCTIONS[name]
    params = keywords(fn)
    sig = inspect.signature(fn).parameters
    chosen = draw(st.lists(st.sampled_from(params), unique=True, max_size=len(params)))
    chosen += [p for p in params if sig[p].default is inspect.Parameter.empty and p not in chosen]
    # Mostly with exactly one of y / S (the array argument is the one that reaches the kernels).
    if "S" in params and "y" in params and draw(st.integers(0, 9)):
        chosen = [p for p in chosen if p not in ("y", "S")] + [draw(st.sampled_from(["y", "y", "y", "S"]))]
    # Half of the cases are sane except for (at most) one argument, so they reach the kernels.
    clean = draw(st.booleans())
    wild = draw(st.sampled_from(chosen)) if chosen and clean else None
    kwargs = {p: draw(value(p, clean=clean and p != wild)) for p in chosen}
    positional = [
        p
        for p, v in inspect.signature(fn).parameters.items()
        if v.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and v.default is inspect.Parameter.empty
    ]
    args = [kwargs.pop(p) for p in positional if p in kwargs]
    if len(args) < len(positional):
        args += [draw(value(p)) for p in positional[len(args) :]]
    return name, lambda: fn(*args, **kwargs)


@st.composite
def configs(draw: Any) -> Callable[[], Any]:
    chosen = draw(st.lists(st.sampled_from(CONFIG_FIELDS), unique=True, max_size=5))
    clean = draw(st.booleans())
    kwargs = {p: draw(value(p, clean=clean)) for p in chosen}
    return lambda: F.FeatureConfig(**kwargs)


def finite_arrays(result: Any) -> bool:
    items = result if isinstance(result, (list, tuple)) else [result]
    for r in items:
        if isinstance(r, np.ndarray) and r.dtype.kind in "fc" and not np.all(np.isfinite(r)):
            return False
    return True


def main(n_cases: int, seed: int) -> int:
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}

    @settings(
        max_examples=n_cases,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def one(case: tuple[str, Callable[[], Any]]) -> None:
        name, call = case
        counts["cases"] += 1
        if TRACE:  # SER_EDGE_FUZZ_TRACE=1: name each call on stderr, to find the one that aborts
            print(name, file=sys.stderr, flush=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = call()
            counts["returned"] += 1
            if name == "pyin":  # f0 is NaN on unvoiced frames by definition (librosa's fill_na=np.nan)
                result = result[1:]
            if not finite_arrays(result):
                failures.setdefault(f"{name}: non-finite result", "")
        except (ValueError, TypeError):
            counts["ValueError/TypeError"] += 1
        except BaseException as e:  # noqa: BLE001 - a PanicException is a BaseException
            if isinstance(e, KeyboardInterrupt):
                raise
            failures.setdefault(f"{name}: {type(e).__name__}: {str(e)[:200]}", "")

    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    one()
    print(
        f"cases={counts['cases']} returned={counts['returned']} "
        f"value_or_type_errors={counts['ValueError/TypeError']} failures={len(failures)}"
    )
    for f in failures:
        print("FAILURE", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0))
