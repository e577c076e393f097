"""``ser-edge listen`` under faults: every kind of bad bundle dropped into the watched folder, a
change of ``bundle.json`` alone, a model at another rate, SIGHUP mid-utterance, NaN/Inf/huge
float samples on stdin, utterances close together. A real daemon subprocess and real files."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from _listen_support import SR, speech_bounds

from ser_edge.audio import load
from ser_edge.bundle import content_sha256, load_bundle, save_bundle
from ser_edge.inputs import InputConfig
from ser_edge.pipeline.utterances import Utterances
from ser_edge.runtime import Recognizer

REFUSED = "model refused; keeping the running model"


def _sentence(path: Path, pad: float = 0.5) -> np.ndarray:
    y, _ = load(path, sr=SR)
    a, b = speech_bounds(y)
    return np.concatenate([y[a:b], np.zeros(int(pad * SR), np.float32)])


def _copy(src: Any, out: Path, **changes: Any) -> Any:
    kw = dict(
        tflite=src.model_path.read_bytes(),
        name=src.name,
        labels=src.labels,
        input=src.input,
        normalization=src.normalization,
        quantization=src.quantization,
        training=src.training,
        metrics=src.metrics,
    )
    kw.update(changes)
    return save_bundle(out, **kw)


def _point(link: Path, target: Path) -> None:
    """Switches the watched folder (a symlink) to ``target`` atomically: both files at once."""
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _meta(src_dir: Path) -> dict[str, Any]:
    return json.loads((src_dir / "bundle.json").read_text())


def _sealed(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with its ``content_sha256`` recomputed: an edit as the bundle's author makes it, so
    the bundle is judged on the edited values, not refused for a stale content hash."""
    return {**meta, "content_sha256": content_sha256(meta)}


def _write(d: Path, meta: Any = None, model: bytes | None = None, raw_meta: bytes | None = None) -> None:
    d.mkdir()
    if raw_meta is not None:
        (d / "bundle.json").write_bytes(raw_meta)
    elif meta is not None:
        (d / "bundle.json").write_text(json.dumps(_sealed(meta) if isinstance(meta, dict) else meta))
    if model is not None:
        (d / "model.tflite").write_bytes(model)


def _sha(model: bytes) -> str:
    import hashlib

    return hashlib.sha256(model).hexdigest()


def _features(**kw: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["input"]["features"].update(kw)
        for key, top in (("n_fft", "n_fft"), ("hop_length", "hop_length"), ("sr", "sample_rate")):
            if key in kw:
                m[top] = kw[key]

    return change


def _bad_bundles(good: Path) -> list[tuple[str, Callable[[Path], None], str]]:
    """(kind, writer into a new folder, a fragment the refusal must name; "" = any reason)."""
    model = (good / "model.tflite").read_bytes()

    def edited(change: Callable[[dict[str, Any]], None], new_model: bytes | None = None) -> Callable[[Path], None]:
        def write(d: Path) -> None:
            m = _meta(good)
            change(m)
            if new_model is not None:
                m["sha256"] = _sha(new_model)
            _write(d, m, new_model if new_model is not None else model)

        return write

    def sparse(name: str) -> Callable[[Path], None]:
        def write(d: Path) -> None:
            _write(d, _meta(good), model)
            with open(d / name, "r+b") as f:
                f.truncate(1 << 30)  # 1 GiB (sparse): refused by its size, never read

        return write

    def fifo(d: Path) -> None:
        _write(d, None, model)
        os.mkfifo(d / "bundle.json")

    def dev_zero(d: Path) -> None:
        _write(d, None, model)
        (d / "bundle.json").symlink_to("/dev/zero")

    rng = np.random.default_rng(7)
    garbage = b"\x1c\x00\x00\x00TFL3" + rng.integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    return [
        ("bad JSON", lambda d: _write(d, raw_meta=b"{ not json", model=model), "JSON"),
        ("empty files", lambda d: _write(d, raw_meta=b"", model=b""), "JSON"),
        ("not a bundle", lambda d: _write(d, raw_meta=b"[1, 2]", model=model), "not a ser-edge bundle"),
        ("missing labels", edited(lambda m: m.pop("labels")), "labels"),
        ("missing input", edited(lambda m: m.pop("input")), "input"),
        ("missing normalization", edited(lambda m: m.pop("normalization")), "normalization"),
        ("missing model", lambda d: _write(d, _meta(good)), "model.tflite"),
        ("labels not the model's outputs", edited(lambda m: m.update(labels=m["labels"][:3])), ""),
        ("n_fft 2**40", edited(_features(n_fft=2**40)), ""),
        ("n_fft 2**63", edited(_features(n_fft=2**63)), ""),
        ("n_mels 2**40", edited(_features(n_mels=2**40)), ""),
        ("hop_length 0", edited(_features(hop_length=0)), ""),
        ("sr 1 Hz", edited(_features(sr=1, fmax=0.5)), ""),
        ("wrong sha256", edited(lambda m: m.update(sha256="0" * 64)), "sha256"),
        ("truncated model (sha matches)", edited(lambda m: None, model[: len(model) // 2]), ""),
        ("garbage model (sha matches)", edited(lambda m: None, garbage), ""),
        ("1 GiB model.tflite", sparse("model.tflite"), "bytes"),
        ("1 GiB bundle.json", sparse("bundle.json"), "bytes"),
        ("bundle.json is a FIFO", fifo, "not a regular file"),
        ("bundle.json is /dev/zero", dev_zero, "not a regular file"),
    ]


def test_bad_bundles_in_the_watched_folder_never_kill_the_daemon(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    src = load_bundle(bundle_dir)
    good = _copy(src, tmp_path / "good")
    live = tmp_path / "live"
    live.symlink_to(good.path)
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{live}"\n[source]\nkind = "-"\n[watch]\ninterval = 0.2\n')
    tmp = tmp_path / "tmp"  # where the snapshots go
    tmp.mkdir()
    d = daemons("--config", str(conf), stdin=True, env={"TMPDIR": str(tmp)})
    d.wait_for(lambda: d.log("listening"), message="start")
    y = _sentence(speech["two"])
    kinds = _bad_bundles(good.path)
    for i, (kind, write, fragment) in enumerate(kinds):
        target = tmp_path / f"bad{i}"
        write(target)
        _point(live, target)
        refusals = d.wait_for(
            lambda i=i: len(d.log(REFUSED)) == i + 1 and d.log(REFUSED), timeout=90, message=f"refusal of {kind}"
        )
        assert fragment in refusals[-1]["error"], (kind, refusals[-1])
        assert refusals[-1]["model_id"] == good.model_id
        d.write(y)  # and it keeps listening with the old model
        events = d.wait_for(lambda i=i: len(d.utterances()) == i + 1 and d.utterances(), message=f"event after {kind}")
        assert events[-1]["model_id"] == good.model_id, kind
    assert not d.log("model loaded")

    recovered = _copy(src, tmp_path / "recovered", name="recovered")  # and a good one is still taken
    _point(live, recovered.path)
    d.wait_for(
        lambda: [x for x in d.log("model loaded") if x["model_id"] == recovered.model_id], timeout=90, message="swap"
    )
    d.write(y)
    d.wait_for(lambda: len(d.utterances()) == len(kinds) + 1, message="event with the new model")
    assert d.utterances()[-1]["model_id"] == recovered.model_id
    assert d.stop() == 0
    assert d.raw_err == [], d.raw_err  # nothing but structured log lines on stderr
    assert len(d.log(REFUSED)) == len(kinds)
    assert list(tmp.iterdir()) == []  # every snapshot removed


def test_a_bad_bundle_found_at_start_falls_back_to_the_last_good_one(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    """With a state folder (systemd's StateDirectory=) the bundle that last ran is kept; a bad
    bundle left in the folder (refused while running) is refused again at the next start, which
    runs the kept one instead of dying in a restart loop."""
    src = load_bundle(bundle_dir)
    good = _copy(src, tmp_path / "good")
    live, state = tmp_path / "live", tmp_path / "state"
    live.symlink_to(good.path)
    state.mkdir()
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{live}"\n[source]\nkind = "-"\n[watch]\ninterval = 0.2\n')
    env = {"STATE_DIRECTORY": str(state)}
    y = _sentence(speech["one"])

    d = daemons("--config", str(conf), stdin=True, env=env)
    d.wait_for(lambda: d.log("listening"), message="first start")
    kept = state / "last-good-model"
    assert json.loads((kept / "bundle.json").read_text())["name"] == good.name
    assert (kept / "model.tflite").read_bytes() == (good.path / "model.tflite").read_bytes()
    assert d.stop() == 0

    bad = tmp_path / "bad"
    {kind: write for kind, write, _ in _bad_bundles(good.path)}["n_fft 2**40"](bad)  # aborts main's core
    _point(live, bad)
    d = daemons("--config", str(conf), stdin=True, env=env)
    d.wait_for(lambda: d.log("listening"), message="start with a bad bundle in the folder")
    assert d.log("model refused at start; running the last good model")
    d.write(y)
    assert d.wait_for(lambda: d.utterances(), message="event")[0]["model_id"] == good.model_id

    recovered = _copy(src, tmp_path / "recovered", name="recovered")  # a good swap is kept too
    _point(live, recovered.path)
    d.wait_for(lambda: d.log("model loaded"), timeout=90, message="swap")
    assert json.loads((kept / "bundle.json").read_text())["name"] == "recovered"
    assert d.stop() == 0
    assert sorted(p.name for p in state.iterdir() if p.name != "adapter.json") == ["last-good-model"]


def test_a_change_of_bundle_json_alone_is_swapped_in(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    src = load_bundle(bundle_dir)
    live = _copy(src, tmp_path / "model")
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{live.path}"\n[source]\nkind = "-"\n[watch]\ninterval = 0.2\n')
    d = daemons("--config", str(conf), stdin=True)
    d.wait_for(lambda: d.log("listening"), message="start")
    model_stat = (live.path / "model.tflite").stat()
    meta = _meta(live.path)
    meta["normalization"]["frame_mean"] = [v + 0.5 for v in meta["normalization"]["frame_mean"]]
    tmp = live.path / ".bundle.json.tmp"
    tmp.write_text(json.dumps(_sealed(meta)))
    os.replace(tmp, live.path / "bundle.json")
    loaded = d.wait_for(lambda: d.log("model loaded"), timeout=90, message="swap after a bundle.json change")
    assert loaded[0]["reason"] == "file changed" and loaded[0]["model_id"] == live.model_id
    assert (live.path / "model.tflite").stat().st_mtime_ns == model_stat.st_mtime_ns
    d.write(_sentence(speech["one"]))
    d.wait_for(lambda: d.utterances(), message="event")
    assert d.stop() == 0


def test_a_model_at_another_rate_continues_a_file_where_it_was(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    src = load_bundle(bundle_dir)
    live = tmp_path / "live"
    live.symlink_to(_copy(src, tmp_path / "m16").path)
    d8 = src.input.to_dict()
    d8["features"].update(sr=8000, fmax=4000.0)
    m8 = _copy(src, tmp_path / "m8", name="rate8k", input=InputConfig.from_dict(d8))
    # utterance one, 6 s of silence (the swap happens there), utterance two
    (a1, b1), (a2, b2) = speech["truth"]
    audio = speech["audio"]
    gap = 6 * SR
    y = np.concatenate([audio[:b1], np.zeros(gap, np.float32), audio[a2:]])
    path = tmp_path / "talk.wav"
    sf.write(path, y, SR, subtype="PCM_16")
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{live}"\n[source]\nkind = "{path}"\nrealtime = true\n[watch]\ninterval = 0.2\n')
    d = daemons("--config", str(conf))
    d.wait_for(lambda: d.utterances(), timeout=30, message="first utterance")
    _point(live, m8.path)
    d.wait_for(lambda: d.log("model loaded"), timeout=90, message="swap to the 8 kHz model")
    assert d.proc.wait(timeout=30) == 0
    d.stop()
    utts = d.utterances()
    assert [u["model_id"] for u in utts] == [src.model_id, m8.model_id], utts  # not rewound: 2 utterances
    start2 = (b1 + gap) / SR
    assert start2 - 0.4 <= utts[1]["start"] <= start2 + 0.1
    assert abs(utts[1]["end"] - len(y) / SR + (len(audio) - b2) / SR) <= 0.15


def test_sighup_neither_cuts_the_open_utterance_nor_restarts_the_clock(
    speech: dict, bundle_dir: Path, tmp_path: Path, daemons: Any
) -> None:
    conf = tmp_path / "listen.toml"
    conf.write_text(f'model = "{bundle_dir}"\n[source]\nkind = "-"\n')
    d = daemons("--config", str(conf), stdin=True)
    y = _sentence(speech["one"], pad=0.0)
    half = len(y) // 2
    d.write(np.concatenate([np.zeros(SR, np.float32), y[:half]]))
    time.sleep(1.5)
    assert d.utterances() == []
    conf.write_text(f'model = "{bundle_dir}"\n[source]\nkind = "-"\n[gate]\nhangover = 0.3\n')
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: d.log("configuration reloaded"), message="reload")
    d.write(np.concatenate([y[half:], np.zeros(SR, np.float32), y, np.zeros(SR, np.float32)]))
    d.wait_for(lambda: len(d.utterances()) == 2, message="two utterances")
    time.sleep(0.5)
    first, second = d.utterances()[:2]
    assert len(d.utterances()) == 2
    assert 0.75 <= first["start"] <= 1.05 and abs(first["end"] - (1 + len(y) / SR)) <= 0.35
    want = 2 + len(y) / SR
    assert want - 0.35 <= second["start"] <= want + 0.05 and second["start"] >= first["end"]
    assert d.stop() == 0


def test_nan_inf_and_huge_float_samples_on_stdin_are_one_log_line(speech: dict, bundle_dir: Path, daemons: Any) -> None:
    y = _sentence(speech["one"])
    x = np.stack([y, y], 1).astype("<f4")  # 2 channels, interleaved
    nonfinite = [(100, 0, np.nan), (200, 1, np.inf), (SR + 300, 0, -np.inf), (len(x) // 2, 1, np.nan)]
    huge = [(400, 0, 1e30), (400, 1, 3e38), (SR + 500, 1, -3e38), (len(x) // 2 + 7, 0, 2.0)]
    for i, c, v in nonfinite + huge:
        x[i, c] = v
    d = daemons("--source", "-", "--format", "f32le", "--channels", "2", "--model", str(bundle_dir), stdin=True)
    d.proc.stdin.write(np.concatenate([np.zeros((SR // 2, 2), "<f4"), x]).tobytes())
    d.proc.stdin.close()
    assert d.proc.wait(timeout=30) == 0
    d.stop()
    assert d.raw_err == [], d.raw_err  # no Python warnings
    lines = d.log("invalid input samples replaced")
    assert len(lines) == 1 and lines[0]["level"] == "warning"  # the first; then at most one per 10 s
    stopped = d.log("stopped")[0]
    assert stopped["nonfinite_set_to_0"] == len(nonfinite) and stopped["clipped_to_full_scale"] == len(huge)
    assert len(d.utterances()) == 1 and np.isfinite(d.utterances()[0]["confidence"])


def test_consecutive_utterances_never_overlap(speech: dict, bundle_dir: Path) -> None:
    from ser_edge.pipeline.gate import GateConfig

    one, two = _sentence(speech["one"], pad=0.0), _sentence(speech["two"], pad=0.0)
    u = Utterances(Recognizer(bundle_dir), GateConfig(pre_roll=0.5))
    events = []
    for gap in (0.25, 0.3, 0.4):  # pauses longer than the hangover, shorter than the pre-roll
        audio = np.concatenate([one, np.zeros(int(gap * SR), np.float32), two, np.zeros(SR, np.float32)])
        for chunk in np.array_split(audio, 40):
            events += u.push(chunk)
    events += u.flush()
    utts = [e for e in events if e["type"] == "utterance"]
    assert len(utts) >= 6
    for a, b in zip(utts, utts[1:]):
        assert b["start"] >= a["end"], (a, b)


def test_split_long_utterances_do_not_overlap(speech: dict, bundle_dir: Path) -> None:
    from ser_edge.pipeline.gate import GateConfig

    y = _sentence(speech["one"], pad=0.0)
    u = Utterances(Recognizer(bundle_dir), GateConfig(max_utterance=1.0))
    events = u.push(np.concatenate([np.zeros(SR // 2, np.float32), y, np.zeros(SR, np.float32)])) + u.flush()
    utts = [e for e in events if e["type"] == "utterance"]
    assert len(utts) >= 2
    for a, b in zip(utts, utts[1:]):
        assert b["start"] >= a["end"]


EXTREMES: list[Any] = [0, -1, 2**31, 2**40, 2**63, 1e308, -1e308, 0.5, 1e-300, "x", None, [], True]
TOP_LEVEL = {"n_fft": "n_fft", "hop_length": "hop_length", "sr": "sample_rate", "win_length": "win_length"}


def _input_shape(config: dict[str, Any]) -> Any:
    import subprocess
    import sys

    code = (
        "import json, sys; from ser_edge.inputs import InputConfig; "
        "print(json.dumps(list(InputConfig.from_dict(json.loads(sys.argv[1])).input_shape)))"
    )
    r = subprocess.run([sys.executable, "-c", code, json.dumps(config)], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else None


def test_extreme_values_in_every_input_setting_are_refused_or_run(bundle_dir: Path, tmp_path: Path) -> None:
    """The daemon's two-stage check (a child process, then the same snapshot in the daemon's
    process) on one extreme value in each number of ``bundle.json``'s ``input`` (a fixed random
    sample): each candidate is refused with a reason or, if taken, gives finite scores; this
    process (the daemon's side) is never killed."""
    import random

    from ser_edge.bundle import BundleError
    from ser_edge.listen.swap import Probe, load_verified

    good = _copy(load_bundle(bundle_dir), tmp_path / "good")
    meta = _meta(good.path)
    leaves = [("features", k) for k, v in meta["input"]["features"].items() if isinstance(v, (int, float))]
    leaves += [(None, k) for k, v in meta["input"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rng = random.Random(14)
    noise = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)
    outcomes = {"refused": 0, "taken": 0}
    for i, (table, key) in enumerate(leaves):
        value = rng.choice(EXTREMES)
        m = _meta(good.path)
        (m["input"]["features"] if table else m["input"])[key] = value
        if table and key in TOP_LEVEL:
            m[TOP_LEVEL[key]] = value
        shape = _input_shape(m["input"])  # in a child: the test process is the daemon's side
        if shape is not None:
            m["input_shape"] = shape
        d = tmp_path / f"m{i}"
        _write(d, m, (good.path / "model.tflite").read_bytes())
        probe = Probe(d, "test", adapt=True, labels=None)
        while (verdict := probe.poll()) is None:
            time.sleep(0.05)
        try:
            if verdict.error is not None:
                assert verdict.error.strip(), (key, value)
                outcomes["refused"] += 1
                continue
            try:
                r = load_verified(verdict, adapt=True, labels=None)
            except BundleError as e:  # the daemon's side may refuse too, never crash
                assert str(e), (key, value)
                outcomes["refused"] += 1
                continue
            p = r.predict(noise)
            assert all(np.isfinite(v) for v in p.scores.values()), (key, value, p.scores)
            outcomes["taken"] += 1
        finally:
            verdict.discard()
    assert sum(outcomes.values()) == len(leaves) >= 15, outcomes
    assert outcomes["refused"] and outcomes["taken"], outcomes  # seed 14: 17 refused, 5 taken
