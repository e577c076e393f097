"""The daemon's parts with known answers: ring buffer, streaming resampler, voice gate,
smoothing, configuration, rotating file output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ser_edge.audio import Resampler, load, resample
from ser_edge.listen.config import ListenConfig, load_config, read_toml
from ser_edge.listen.outputs import FileOutput
from ser_edge.listen.sources import FileSource, StdinSource
from ser_edge.pipeline.gate import GateConfig, VoiceGate
from ser_edge.pipeline.ring import RingBuffer
from ser_edge.pipeline.smoothing import ScoreAverage

SR = 16000


def test_ring_buffer_keeps_the_last_samples_by_absolute_index() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(10_000).astype(np.float32)
    r = RingBuffer(1000)
    pos = 0
    for n in rng.integers(1, 700, 40):
        r.write(x[pos : pos + n])
        pos = min(pos + n, len(x))
        a = max(0, r.total - 1000)
        assert np.array_equal(r.read(a, r.total), x[a : r.total])
    r.write(x[:2500])  # longer than the buffer
    assert np.array_equal(r.read(r.total - 1000, r.total), x[1500:2500])
    with pytest.raises(ValueError, match="not held"):
        r.read(r.total - 1001, r.total)


@pytest.mark.parametrize("orig", [8000, 22050, 44100, 48000])
def test_stream_resampler_equals_the_batch_resampler(orig: int) -> None:
    y, _ = load(Path(__file__).resolve().parents[2].parent / "shared/data/emodb/wav/03a01Fa.wav", sr=orig)
    r = Resampler(orig, SR)
    chunks = np.array_split(y, 53)
    out = np.concatenate([r.push(c) for c in chunks] + [r.flush()])
    want = resample(y, orig_sr=orig, target_sr=SR)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, atol=1e-6)


def tone(seconds: float, db: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def gate_run(x: np.ndarray, config: GateConfig = GateConfig(), chunk: int = 800) -> list[tuple[str, int]]:
    g = VoiceGate(SR, config)
    out = [b for i in range(0, len(x), chunk) for b in g.push(x[i : i + chunk])] + g.flush()
    return [(b.kind, b.sample) for b in out]


def test_gate_finds_a_voiced_burst_with_pre_roll_and_hangover() -> None:
    noise = (np.random.default_rng(0).standard_normal(SR) * 10 ** (-70 / 20)).astype(np.float32)
    x = np.concatenate([noise, tone(1.0, -20) + noise, noise])
    b = gate_run(x)
    assert [k for k, _ in b] == ["start", "end"]
    cfg = GateConfig()
    assert abs(b[0][1] - (SR - cfg.pre_roll * SR)) <= 0.03 * SR
    assert abs(b[1][1] - 2 * SR) <= 0.03 * SR


def test_gate_ignores_quiet_sound_and_loud_broadband_noise() -> None:
    quiet = tone(1.0, -60)
    hiss = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)  # zcr ~ 0.5
    assert gate_run(np.concatenate([np.zeros(SR, np.float32), quiet, np.zeros(SR, np.float32)])) == []
    assert gate_run(np.concatenate([np.zeros(SR, np.float32), hiss, np.zeros(SR, np.float32)])) == []


def test_gate_hangover_bridges_short_pauses_and_splits_long_ones() -> None:
    z = np.zeros(SR, np.float32)
    short = np.concatenate([z, tone(0.5, -20), np.zeros(int(0.1 * SR), np.float32), tone(0.5, -20), z])
    long = np.concatenate([z, tone(0.5, -20), np.zeros(int(0.5 * SR), np.float32), tone(0.5, -20), z])
    assert [k for k, _ in gate_run(short)] == ["start", "end"]
    assert [k for k, _ in gate_run(long)] == ["start", "end", "start", "end"]


def test_gate_splits_at_max_utterance_and_is_independent_of_chunking() -> None:
    x = np.concatenate([np.zeros(SR, np.float32), tone(5.0, -20), np.zeros(SR, np.float32)])
    cfg = GateConfig(max_utterance=2.0)
    b = gate_run(x, cfg)
    assert [k for k, _ in b] == ["start", "end", "start", "end", "start", "end"]
    assert all(e - s <= 2.0 * SR for (_, s), (_, e) in zip(b[::2], b[1::2]))
    assert gate_run(x, cfg, chunk=37) == b


def test_gate_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="hangover"):
        GateConfig(hangover=-1)
    with pytest.raises(ValueError, match="zcr_max"):
        GateConfig(zcr_max=0)


def test_score_average_weights_windows() -> None:
    s = ScoreAverage(["a", "b"])
    s.add({"a": 1.0, "b": 0.0}, 1)
    s.add({"a": 0.0, "b": 1.0}, 3)
    assert s.scores() == pytest.approx({"a": 0.25, "b": 0.75})
    assert s.best() == ("b", pytest.approx(0.75))
    with pytest.raises(ValueError):
        ScoreAverage(["a"]).scores()


def test_config_layers_defaults_file_and_command_line(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        'model = "/m"\n[source]\nkind = "-"\nrate = 48000\n[gate]\nhangover = 0.3\n'
        '[mqtt]\nhost = "broker"\nqueue = 5\n[windows]\nevents = true\n'
    )
    c = load_config(str(f), {"rate": 44100})
    assert (c.model, c.source, c.rate, c.gate.hangover, c.mqtt.host, c.mqtt.queue, c.windows.events) == (
        "/m",
        "-",
        44100,
        0.3,
        "broker",
        5,
        True,
    )
    assert c.mqtt_output() == dataclasses.replace(c.mqtt, username=None, password=None, tls_ca=None)
    assert load_config(str(f), {"gate.hangover": 0.5, "mqtt.host": "b2"}).gate.hangover == 0.5
    assert load_config(None, {}) == ListenConfig() or Path("/etc/ser-edge/config.toml").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[gate]\nhangoverr = 1\n", "unknown setting 'gate.hangoverr'"),
        ("[gate]\nhangover = 'long'\n", "gate.hangover: must be a number"),
        ("[source]\nrate = 1.5\n", "source.rate: must be an integer"),
        ("[output]\nstdout = 1\n", "output.stdout: must be true or false"),
        ("model = [\n", "not valid TOML"),
        ("[windows]\nwindow = 1.0\nhop = 2.0\n", "hop <= window"),
        ("[source]\nformat = 'u8'\n", "source.format"),
    ],
)
def test_config_errors_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(str(f), {})


def test_config_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the configuration"):
        read_toml(tmp_path / "nope.toml")


def test_file_output_rotates(tmp_path: Path) -> None:
    out = FileOutput(str(tmp_path / "ev" / "events.jsonl"), max_bytes=300, backups=2)
    for i in range(30):
        out.emit({"type": "utterance", "i": i, "pad": "x" * 40})
    out.close(0.1)
    files = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    lines = [
        json.loads(x)
        for p in ["events.jsonl.2", "events.jsonl.1", "events.jsonl"]
        for x in (tmp_path / "ev" / p).read_text().splitlines()
    ]
    assert [x["i"] for x in lines] == list(range(30 - len(lines), 30))  # newest kept, in order
    assert all((tmp_path / "ev" / p).stat().st_size <= 300 for p in files)


def test_file_source_paces_realtime_and_resamples(speech: dict) -> None:
    import time

    src = FileSource(str(speech["one"]), SR, chunk=0.1, realtime=True)
    src.open()
    t0, got = time.monotonic(), []
    while True:
        try:
            c = src.read(0.5)
        except EOFError:
            break
        if c is not None:
            got.append(c)
    elapsed = time.monotonic() - t0
    y = np.concatenate(got)
    want, _ = load(speech["one"], sr=SR)
    assert np.array_equal(y, want)
    assert elapsed >= 0.95 * len(y) / SR  # paced like a microphone


def test_file_source_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ValueError, match="bad.wav"):
        FileSource(str(bad), SR).open()


def test_stdin_source_converts_rate_channels_and_format(speech: dict) -> None:
    import io

    y, _ = load(speech["one"], sr=48000)
    stereo = np.stack([y, y], 1)
    raw = io.BytesIO((stereo * 32767).astype("<i2").tobytes())
    src = StdinSource(SR, rate=48000, channels=2, sample_format="s16le", stream=raw)
    src.open()
    got = []
    while True:
        try:
            c = src.read(2.0)
        except EOFError:
            break
        assert c is not None
        got.append(c)
    out = np.concatenate(got)
    want = resample((y * 32767).astype("<i2").astype(np.float32) / 32768, orig_sr=48000, target_sr=SR)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_deployment_files_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    c = load_config(str(root / "deploy" / "config.toml"), {})
    assert c.source == "mic" and c.record_dir is None and c.mqtt_output() is None  # private by default
    unit = (root / "deploy" / "ser-edge.service").read_text().splitlines()
    for line in ("Restart=always", "SupplementaryGroups=audio", "User=ser-edge", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit
    assert any(x.startswith("ExecStart=") and "listen --config /etc/ser-edge/config.toml" in x for x in unit)


def test_the_config_docstring_lists_every_setting() -> None:
    """The module docstring is the configuration's reference: every TOML key is in it, under its table."""
    import re

    from ser_edge.listen import config as C

    doc = C.__doc__ or ""
    tables = {"": doc.split("[source]")[0]}
    for m in re.finditer(r"^    \[(\w+)\](.*?)(?=^    \[|\n\n)", doc, re.S | re.M):
        tables[m.group(1)] = m.group(2)
    missing = [f"{t}.{k}" if t else k for t, k in C.settings() if not re.search(rf"\b{k} = ", tables.get(t, ""))]
    assert not missing, missing
