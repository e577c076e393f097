"""Every model family as the bundle it ships as (``models.default_quantization``: int8, dynamic
range for ``lstm``, ``bilstm34`` and ``cnn_lstm_wave``) on the device path: TFLite size and the time of one
inference window (LiteRT, one thread, ``runtime.Classifier`` with its recurrent-state reset),
the shipped default bundle timed in the same run as the reference. The recurrent families are
also timed in their other quantizations (keys ``NAME/QUANTIZATION``).

Size and time depend on the architecture, not on the trained values, so each family is built
at its training input shape (``models.default_input``), converted to int8 with random
representative inputs and timed. Writes ``docs/results/model-latency.json`` (docs/results.md).

Run: ``.venv/bin/python -m pytest benches/test_bench_models.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_edge.training.models import default_quantization

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("mlp", "cnn1d", "lstm", "cnn_lstm", "bilstm34", "cnn2d", "cnn_lstm_wave")
RECURRENT = ("lstm", "cnn_lstm", "bilstm34", "cnn_lstm_wave")
HPARAMS: dict[str, dict[str, Any]] = {"mlp": {"members": 3, "units": [64, 32]}}  # the default bundle's recipe
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if FIGURES:
        FIGURES["_run"] = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python -m pytest benches/test_bench_models.py -p no:cacheprovider -q",
        }
        ref = FIGURES.get("default", {}).get("ms")
        for k, v in FIGURES.items():
            if ref and isinstance(v, dict) and "ms" in v and k in FIGURES:
                v["x_default"] = round(v["ms"] / ref, 2)  # ratio to the default bundle, same run
        out = ROOT / "docs" / "results" / "model-latency.json"
        old = json.loads(out.read_text()) if out.is_file() else {}  # a run of some tests updates their keys
        old = {k: v for k, v in old.items() if k.partition("/")[2] != _shipped(k.partition("/")[0])}
        out.write_text(json.dumps(dict(sorted({**old, **FIGURES}.items())), indent=1) + "\n")


def _shipped(name: str) -> str | None:
    """The family's shipped quantization (timed under its plain name; None: not a family)."""
    return default_quantization(name) if name in FAMILIES else None


_BUNDLES: dict[tuple[str, str], Any] = {}


def _bundle(name: str, tmp: Path, quantization: str | None = None) -> Any:
    quantization = quantization or default_quantization(name)
    if (name, quantization) not in _BUNDLES:
        _BUNDLES[name, quantization] = _make_bundle(name, tmp / quantization, quantization)
    return _BUNDLES[name, quantization]


def _make_bundle(name: str, tmp: Path, quantization: str) -> Any:
    import tensorflow as tf

    from ser_edge.bundle import Normalization
    from ser_edge.labels import CANONICAL
    from ser_edge.training.export import export_bundle
    from ser_edge.training.models import build, default_input

    tf.config.threading.set_intra_op_parallelism_threads(1)
    config = default_input(name)
    model = build(name, config.input_shape, len(CANONICAL), **HPARAMS.get(name, {}))
    rep = np.random.default_rng(0).standard_normal((64, *config.input_shape)).astype(np.float32)
    if config.waveform is not None:
        rep *= 0.05  # loudness-normalised audio
    d = config.n_frame_features
    stats = config.pooling == "stats" and config.waveform is None
    norm = Normalization(
        np.zeros(d),
        np.ones(d),
        300.0,
        np.zeros(config.input_shape) if stats else None,
        np.ones(config.input_shape) if stats else None,
    )
    return export_bundle(
        model,
        tmp / name,
        name=name,
        labels=CANONICAL,
        input=config,
        normalization=norm,
        quantization=quantization,
        representative=rep,
    )


@pytest.mark.benchmark(group="window")
def test_default_bundle_window(benchmark):
    from ser_edge.bundle import load_bundle
    from ser_edge.runtime import Classifier

    b = load_bundle()
    c = Classifier(b)
    x = np.random.default_rng(0).standard_normal((1, *b.input_shape)).astype(np.float32)
    benchmark(c.probabilities, x)
    FIGURES["default"] = _times(benchmark) | {"bytes": len(b.model)}


def _times(benchmark: Any) -> dict[str, float]:
    """``ms``: the fastest call (the least disturbed by other jobs on a shared machine), and the median."""
    st = benchmark.stats.stats
    return {"ms": round(1e3 * st.min, 4), "median_ms": round(1e3 * st.median, 4)}


@pytest.mark.benchmark(group="window")
@pytest.mark.parametrize("name", FAMILIES)
def test_family_window(benchmark, name, tmp_path_factory):
    from ser_edge.runtime import Classifier

    b = _bundle(name, tmp_path_factory.mktemp(name))
    c = Classifier(b)
    x = np.random.default_rng(1).standard_normal((1, *b.input_shape)).astype(np.float32)
    benchmark(c.probabilities, x)
    FIGURES[name] = _times(benchmark) | {
        "bytes": len(b.model),
        "input_shape": list(b.input_shape),
        "quantization": b.quantization,
    }
    assert len(b.model) <= 256 * 1024, f"{name}: {b.quantization} model {len(b.model)} bytes > 256 KB"
    assert FIGURES[name]["ms"] <= 5.0, f"{name}: {b.quantization} window {FIGURES[name]['ms']} ms > 5 ms"


@pytest.mark.benchmark(group="window")
@pytest.mark.parametrize(
    "name,quantization",
    [(n, q) for n in RECURRENT for q in ("int8", "dynamic", "float32") if q != default_quantization(n)],
)
def test_recurrent_window_other_quantizations(benchmark, name, quantization, tmp_path_factory):
    """The recurrent families also in the quantizations they do not ship as (TFLite's int8 LSTM
    kernel is slower than its float one)."""
    from ser_edge.runtime import Classifier

    b = _bundle(name, tmp_path_factory.mktemp(name), quantization)
    c = Classifier(b)
    x = np.random.default_rng(1).standard_normal((1, *b.input_shape)).astype(np.float32)
    benchmark(c.probabilities, x)
    FIGURES[f"{name}/{quantization}"] = _times(benchmark) | {"bytes": len(b.model)}


@pytest.mark.benchmark(group="listen")
@pytest.mark.parametrize("name", ("cnn_lstm", "bilstm34", "cnn_lstm_wave"))
def test_listen_realtime_with_a_sequence_bundle(benchmark, name, tmp_path, tmp_path_factory):
    """``ser-edge listen --realtime`` on 60 s of continuous speech with a sequence-model bundle
    as it ships: CPU % of one core (whole run, start-up included) and the daemon's peak RSS."""
    import subprocess
    import sys

    from test_bench_edge import _continuous_speech

    b = _bundle(name, tmp_path_factory.mktemp(name))
    wav = tmp_path / "speech.wav"
    seconds = _continuous_speech(wav)

    def run() -> dict[str, Any]:
        # /usr/bin/time (GNU time) reports the daemon's own peak RSS and CPU seconds
        cmd = [
            "/usr/bin/time",
            "-f",
            "%M %U %S %e",
            sys.executable,
            "-m",
            "ser_edge",
            "listen",
            "--source",
            str(wav),
            "--realtime",
            "--model",
            str(b.path),
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        assert p.returncode == 0, p.stderr
        rss_kb, user, system, wall = (float(v) for v in p.stderr.strip().splitlines()[-1].split())
        n = sum(json.loads(x)["type"] == "utterance" for x in p.stdout.splitlines() if x.strip())
        return {"cpu_pct": 100 * (user + system) / wall, "rss_mb": rss_kb / 1024, "utterances": n}

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    assert r["utterances"] > 0
    FIGURES[f"listen_{name}"] = {
        "seconds": round(seconds, 1),
        "cpu_pct": round(r["cpu_pct"], 2),
        "rss_mb": round(r["rss_mb"], 1),
        "utterances": r["utterances"],
    }
