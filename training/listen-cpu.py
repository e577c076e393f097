#!/usr/bin/env python
"""CPU of ``ser-edge listen --realtime`` with two bundles in the same run (docs/results.md).

    git show c7e82b7:python/ser_edge/models/default/bundle.json > /tmp/oldbundle/bundle.json   # and model.tflite
    PYTHONPATH=python python training/listen-cpu.py /tmp/oldbundle python/ser_edge/models/default

The speech is the edge bench's (62 s of EMO-DB utterances with pauses, ``benches/test_bench_edge.py``).
"""

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
import test_bench_edge as tb  # noqa: E402

tmp = Path(tempfile.mkdtemp())
wav = tmp / "speech.wav"
seconds = tb._continuous_speech(wav)
for model in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "ser_edge",
            "listen",
            "--source",
            str(wav),
            "--realtime",
            "--model",
            model,
            "--state-dir",
            str(tmp / f"state-{Path(model).name}"),
        ],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    ev = [json.loads(x) for x in p.stdout.splitlines()]
    n = sum(e["type"] == "utterance" for e in ev)
    pct = 100 * cpu / wall
    print(
        f"{model} rc {p.returncode}: audio {seconds:.1f} s, wall {wall:.1f} s, CPU {cpu:.2f} s = "
        f"{pct:.2f} % of a core, {n} utterances"
    )
