"""Two builds of the native module, back to back: ``yin`` on the benchmark's speech (1 s and 60 s,
16 kHz, fmin 65.4 Hz, fmax 2093 Hz, frame 2048, hop 512), calls interleaved in batches of 10,
the minimum batch mean of each. On a shared machine this ratio moves far less than two separate
benchmark runs do, since both builds see the same load. Also prints the largest f0 difference
between the two builds.

    RAYON_NUM_THREADS=1 PYTHONPATH=python python benches/compare_builds.py OLD.so NEW.so [repeats]

(``OLD.so``/``NEW.so``: copies of ``python/ser_edge/_dsp.abi3.so`` built from the two commits.)
"""

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

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


def main(old_path: str, new_path: str, repeats: str = "3000") -> None:
    builds = {"old": native("old", old_path), "new": native("new", new_path)}
    for seconds, n in ((1, int(repeats)), (60, max(int(repeats) // 100, 10))):
        y = speech()[seconds]
        f0 = {k: m.yin(y, **KW).astype(np.float64) for k, m in builds.items()}
        cents = np.abs(1200 * np.log2(f0["new"] / f0["old"]))
        best = dict.fromkeys(builds, np.inf)
        for _ in range(n // 10):
            for k, m in builds.items():
                t = time.perf_counter()
                for _ in range(10):
                    m.yin(y, **KW)
                best[k] = min(best[k], (time.perf_counter() - t) / 10)
        print(
            f"{seconds:2d} s: old {best['old'] * 1e6:8.1f} us, new {best['new'] * 1e6:8.1f} us, "
            f"old/new {best['old'] / best['new']:.3f}; f0 differs on {np.count_nonzero(cents)} frames "
            f"(max {cents.max():.2g} cent)"
        )


if __name__ == "__main__":
    main(*sys.argv[1:4])
