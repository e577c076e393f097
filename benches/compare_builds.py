"""Two builds of the native module, back to back: ``yin`` (or ``pyin``) on the benchmark's speech
(1 s and 60 s, 16 kHz, fmin 65.4 Hz, fmax 2093 Hz, frame 2048, hop 512, librosa's defaults
otherwise), calls interleaved in batches of 10, the minimum batch mean of each. On a shared
machine this ratio moves far less than two separate benchmark runs do, since both builds see the
same load. Also prints the largest f0 difference between the two builds (pyin: f0 of the decoded
pitch bin in every frame, and the frames whose voicing differs).

    RAYON_NUM_THREADS=1 PYTHONPATH=python python benches/compare_builds.py OLD.so NEW.so [repeats] [yin|pyin]

(``OLD.so``/``NEW.so``: copies of ``python/ser_edge/_dsp.abi3.so`` built from the two commits;
``repeats``: calls per build on 1 s, a hundredth of them (at least 10) on 60 s; 3000 for yin,
300 for pyin unless given.)
"""

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ser_edge.audio import load

SR = 16000
KW = dict(
    sr=SR,
    fmin=65.4,
    fmax=2093.0,
    frame_length=2048,
    hop_length=None,
    trough_threshold=0.1,
    center=True,
    pad_mode="constant",
)
#: pyin's keywords (librosa's defaults; ``fill_na=None``: f0 in every frame, to compare).
PYIN_KW = dict(
    {k: v for k, v in KW.items() if k != "trough_threshold"},
    n_thresholds=100,
    beta_parameters=(2.0, 18.0),
    boltzmann_parameter=2.0,
    resolution=0.1,
    max_transition_rate=35.92,
    switch_prob=0.01,
    no_trough_prob=0.01,
    fill_na=None,
)


def native(name: str, path: str) -> ModuleType:
    """The extension at ``path``, loaded under its own package name so two builds can coexist."""
    spec = importlib.util.spec_from_file_location(f"{name}._dsp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speech() -> dict[int, np.ndarray]:
    """The benchmark's speech (benches/conftest.py): RAVDESS clips joined end to end."""
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"
    y = np.concatenate([load(f, sr=SR)[0] for f in sorted(root.glob("Actor_0[1-4]/*.flac"))[:40]])
    return {1: np.ascontiguousarray(y[SR : 2 * SR]), 60: np.ascontiguousarray(y[: 60 * SR])}


def main(old_path: str, new_path: str, repeats: str | None = None, fn: str = "yin") -> None:
    builds = {"old": native("old", old_path), "new": native("new", new_path)}
    kw: dict[str, Any] = PYIN_KW if fn == "pyin" else KW
    n_1s = int(repeats) if repeats else {"yin": 3000, "pyin": 300}[fn]

    def call(m: ModuleType, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f0 (float64) and voicing (yin: all frames)."""
        out = getattr(m, fn)(y, **kw)
        f0 = out[0] if fn == "pyin" else out
        return np.asarray(f0, np.float64), (out[1] if fn == "pyin" else np.ones(len(f0), bool))

    for seconds, n in ((1, n_1s), (60, max(n_1s // 100, 10))):
        y = speech()[seconds]
        out = {k: call(m, y) for k, m in builds.items()}
        cents = np.abs(1200 * np.log2(out["new"][0] / out["old"][0]))
        voicing = np.count_nonzero(out["new"][1] != out["old"][1])
        best = dict.fromkeys(builds, np.inf)
        for _ in range(n // 10):
            for k, m in builds.items():
                t = time.perf_counter()
                for _ in range(10):
                    getattr(m, fn)(y, **kw)
                best[k] = min(best[k], (time.perf_counter() - t) / 10)
        print(
            f"{fn} {seconds:2d} s: old {best['old'] * 1e6:8.1f} us, new {best['new'] * 1e6:8.1f} us, "
            f"old/new {best['old'] / best['new']:.3f}; f0 differs on {np.count_nonzero(cents)} frames "
            f"(max {cents.max():.2g} cent), voicing on {voicing}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:5])
