"""Writes the DSP section of docs/benchmarks.md from a pytest-benchmark JSON file and a
cold-start measurement. ``write_section`` is shared with the edge benchmarks, which write their
own section of the same page."""

import json
import platform
import subprocess
import sys
from pathlib import Path

COLD = """
import time, numpy as np
t = time.perf_counter()
import {mod}
y = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
{call}
print(time.perf_counter() - t)
"""


def cold_start(mod: str, call: str) -> float:
    """Seconds from a fresh interpreter to the first mfcc of 1 s (import + first call)."""
    out = subprocess.run(
        [sys.executable, "-c", COLD.format(mod=mod, call=call)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def write_section(path: Path, name: str, text: str) -> None:
    """Replaces section ``name`` of the page at ``path`` (between ``<!-- name -->`` and
    ``<!-- /name -->``), appending it if the page does not have it yet."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    page = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in page and end in page:
        page = page[: page.index(begin)] + block + page[page.index(end) + len(end) :].lstrip("\n")
    else:
        page = page.rstrip("\n") + "\n\n" + block
    path.write_text(page)


def main(path: str, out: str) -> None:
    data = json.loads(Path(path).read_text())
    t = {b["name"]: b["stats"] for b in data["benchmarks"]}

    def med(name: str) -> float:
        return t[name]["median"]

    rows = []
    for s in (1, 60):
        lib, ours, floor = (
            med(f"test_mfcc_librosa[{s}]"),
            med(f"test_mfcc_ser_edge[{s}]"),
            med(f"test_mfcc_fft_floor[{s}]"),
        )
        rows.append(("mfcc (librosa defaults)", f"{s} s", lib, ours, f"{lib / ours:.1f}x", f"{ours / floor:.2f}x"))
    for s in (1, 60):
        lib, ours = med(f"test_melspectrogram_librosa[{s}]"), med(f"test_melspectrogram_ser_edge[{s}]")
        rows.append(("melspectrogram", f"{s} s", lib, ours, f"{lib / ours:.1f}x", ""))
    for s in (1, 60):
        lib, ours = med(f"test_zcr_librosa[{s}]"), med(f"test_zcr_ser_edge[{s}]")
        rows.append(("zero_crossing_rate", f"{s} s", lib, ours, f"{lib / ours:.1f}x", ""))
    lib, ours = med("test_stream_hop_librosa"), med("test_stream_hop_ser_edge")
    rows.append(("stream: one 10 ms hop, 40 MFCC, n_fft 512", "160 samples", lib, ours, f"{lib / ours:.1f}x", ""))
    one, two = med("test_extract_many[1]"), med("test_extract_many[2]")
    cold_ours = cold_start("ser_edge.features as F", "F.mfcc(y=y, sr=16000)")
    cold_lib = cold_start("librosa", "librosa.feature.mfcc(y=y, sr=16000)")

    def ms(v: float) -> str:
        return f"{v * 1e3:.3f} ms" if v >= 1e-3 else f"{v * 1e6:.1f} µs"

    lines = [
        "## Rust DSP core vs librosa (issue 2)",
        "",
        "Produced by `scripts/bench` (pytest-benchmark over `benches/`, then `benches/report.py`).",
        "Every ratio compares two timings taken in the same run on the same machine and signals:",
        "real speech (RAVDESS actors 01-04, 16 kHz). Medians; librosa "
        + data.get("machine_info", {}).get("python_version", "")
        and f"librosa {__import__('librosa').__version__}, numpy {__import__('numpy').__version__}, "
        f"Python {platform.python_version()}, "
        f"{data['machine_info'].get('cpu', {}).get('brand_raw', platform.processor())}, "
        f"{data['machine_info'].get('cpu', {}).get('count', '?')} cores; run {data['datetime'][:19]}.",
        "",
        "| function | input | librosa | ser-edge | speed-up | ser-edge / FFT floor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {a} | {b} | {ms(c)} | {ms(d)} | {e} | {f} |" for a, b, c, d, e, f in rows]
    lib1, our1, fl1 = med("test_mfcc_librosa[1]"), med("test_mfcc_ser_edge[1]"), med("test_mfcc_fft_floor[1]")
    lib60, our60, fl60 = med("test_mfcc_librosa[60]"), med("test_mfcc_ser_edge[60]"), med("test_mfcc_fft_floor[60]")
    hop = med("test_stream_hop_ser_edge")
    targets = [
        ("mfcc, 1 s, single thread: >= 20x librosa", f"{lib1 / our1:.1f}x", lib1 / our1 >= 20),
        ("mfcc, 60 s, single thread: >= 3x librosa", f"{lib60 / our60:.1f}x", lib60 / our60 >= 3),
        ("mfcc within 1.5x of the FFT-only floor (1 s)", f"{our1 / fl1:.2f}x", our1 / fl1 <= 1.5),
        ("mfcc within 1.5x of the FFT-only floor (60 s)", f"{our60 / fl60:.2f}x", our60 / fl60 <= 1.5),
        ("stream: <= 20 µs per 10 ms hop (40 MFCC, n_fft 512)", ms(hop), hop <= 20e-6),
        ("extract_many: 2 cores >= 1.8x one core (500 clips)", f"{one / two:.2f}x", one / two >= 1.8),
        ("no compile step on first call (cold start)", f"{cold_ours:.3f} s", cold_ours < 0.5),
    ]
    lines += [
        "",
        "### Targets of issue 2, in this run",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
    ]
    lines += [f"| {a} | {b} | {'yes' if ok else '**no**'} |" for a, b, ok in targets]
    lines += [
        "",
        "This machine is a 2-vCPU VM whose speed drifts between runs (librosa's own 1 s mfcc has",
        "measured 2.4 to 4.6 ms here); compare ratios within one run, not absolute times across runs.",
        "",
        "*FFT floor*: `_dsp.fft_floor`, the real FFTs alone of the same frames (n_fft 2048, hop 512);",
        "the mfcc column says how much the whole pipeline (padding, window, power, mel, dB with the",
        "80 dB clip, DCT, output arrays, Python call) costs on top of the transforms.",
        "",
        "### Parallel batch (`extract_many`, 500 clips of 1 s, 40 MFCC)",
        "",
        "| threads | time | speed-up |",
        "|---:|---:|---:|",
        f"| 1 | {ms(one)} | 1.00x |",
        f"| 2 | {ms(two)} | {one / two:.2f}x |",
        "",
        "### Cold start (fresh interpreter: import, then the first mfcc of 1 s)",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| librosa (numba compiles on first use) | {cold_lib:.2f} |",
        f"| ser-edge | {cold_ours:.3f} |",
        "",
    ]
    write_section(Path(out), "dsp", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
