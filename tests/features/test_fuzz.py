"""The public DSP API under a hypothesis fuzz session of 10 000 cases (``fuzz_session.py``): no
abort, no hang, no ``PanicException``, no exception other than ``ValueError``/``TypeError``, no
non-finite result. The session runs in a child process so that an abort (rc 134) or a hang
(the timeout) is reported instead of taking the test run down with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CASES = 10_000
SESSION = Path(__file__).with_name("fuzz_session.py")


def test_ten_thousand_hostile_calls_raise_only_value_or_type_errors() -> None:
    seed = int(os.environ.get("SER_EDGE_FUZZ_SEED", "0"))
    p = subprocess.run(
        [sys.executable, str(SESSION), str(CASES), str(seed)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"fuzz session rc={p.returncode}:\n{out[-4000:]}"
    assert "PanicException" not in out and "panicked" not in out, out[-4000:]
    m = re.search(r"cases=(\d+) returned=(\d+) value_or_type_errors=(\d+) failures=(\d+)", out)
    assert m, out[-2000:]
    cases, returned, errors, failures = map(int, m.groups())
    assert cases >= CASES and failures == 0
    # The session reaches the kernels, not only the argument checks.
    assert returned >= CASES // 10, m.group(0)
    assert returned + errors == cases
