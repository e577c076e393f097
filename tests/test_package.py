"""The package as a user meets it: a light import, the CLI, the typed stub of the native module."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ser_edge
import ser_edge.features as F
from ser_edge import _dsp
from ser_edge.audio import load

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPEECH = DATA / "emodb" / "wav" / "03a01Fa.wav"
HEAVY = ("tensorflow", "keras", "librosa", "flwr", "numba", "scipy", "sklearn")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_import_is_light():
    out = run(
        "-c",
        f"import sys, ser_edge, ser_edge.features, ser_edge.audio; print([m for m in {HEAVY!r} if m in sys.modules])",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_features_matches_the_api(tmp_path):
    assert SPEECH.exists(), f"corpus missing: {SPEECH}"
    npy = tmp_path / "mfcc.npy"
    out = run("-m", "ser_edge", "features", str(SPEECH), "--kind", "mfcc", "--sr", "16000", "--out", str(npy))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    y, sr = load(SPEECH, sr=16000)
    want = F.extract(y, F.FeatureConfig.from_dict(summary["config"]))
    assert summary["shape"] == list(want.shape) == [40, 201]
    np.testing.assert_array_equal(np.load(npy), want)


def test_console_script_runs():
    script = Path(sys.executable).with_name("ser-edge")
    assert script.exists(), "the ser-edge console script is not installed next to this interpreter"
    out = subprocess.run(
        [str(script), "features", str(SPEECH), "--kind", "zcr"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["kind"] == "zero_crossing_rate"


@pytest.mark.parametrize("content", [b"", b"not audio at all\n", b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_cli_reports_bad_files(tmp_path, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    out = run("-m", "ser_edge", "features", str(bad))
    assert out.returncode == 1
    assert str(bad) in out.stderr and "Traceback" not in out.stderr


def test_cli_rejects_unknown_kind():
    out = run("-m", "ser_edge", "features", str(SPEECH), "--kind", "mfccs")
    assert out.returncode == 2
    assert "mfccs" in out.stderr


def test_stub_declares_exactly_the_native_module():
    stub = Path(ser_edge.__file__).with_name("_dsp.pyi")
    tree = ast.parse(stub.read_text())
    declared = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    native = {n for n in dir(_dsp) if not n.startswith("_")}
    assert declared == native
    assert (stub.parent / "py.typed").exists()


def _stub_signatures() -> dict[str, list[tuple[str, str, bool]]]:
    """``name -> [(parameter, kind, has_default)]`` for every function and method in the stub."""
    tree = ast.parse(Path(ser_edge.__file__).with_name("_dsp.pyi").read_text())

    def params(f: ast.FunctionDef) -> list[tuple[str, str, bool]]:
        a = f.args
        positional = a.posonlyargs + a.args
        first_default = len(positional) - len(a.defaults)
        out = [(p.arg, "positional", i >= first_default) for i, p in enumerate(positional)]
        out += [(p.arg, "keyword", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
        return [p for p in out if p[0] != "self"]

    sigs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            sigs[node.name] = params(node)
        elif isinstance(node, ast.ClassDef):
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and (f.name == "__init__" or not f.name.startswith("_")):
                    if any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list):
                        continue
                    sigs[f"{node.name}.{f.name}"] = params(f)
    return sigs


def _native_signature(obj: object) -> list[tuple[str, str, bool]]:
    import inspect

    sig = inspect.signature(obj)  # PyO3 fills __text_signature__
    kinds = {inspect.Parameter.KEYWORD_ONLY: "keyword"}
    return [
        (p.name, kinds.get(p.kind, "positional"), p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name != "self"
    ]


def test_stub_signatures_equal_the_native_module():
    """Every function's and method's parameters in ``_dsp.pyi`` (names, order, keyword-only,
    which have defaults) are the native module's, read from PyO3's text signatures."""
    mismatched = {}
    for name, stub in _stub_signatures().items():
        owner, _, attr = name.rpartition(".")
        if not owner:
            obj = getattr(_dsp, name)
        elif attr == "__init__":
            obj = getattr(_dsp, owner)  # a class's text signature is its constructor's
        else:
            obj = getattr(getattr(_dsp, owner), attr)
        native = _native_signature(obj)
        if native != stub:
            mismatched[name] = {"stub": stub, "native": native}
    assert not mismatched, mismatched
