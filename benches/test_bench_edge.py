"""The edge path's figures (issue 4), written to the edge section of docs/benchmarks.md at the
end of the run:

- ``ser-edge predict`` on 100 corpus files against the same int8 model through TensorFlow's
  TFLite interpreter with librosa features (the reference; same run, same files);
- one int8 inference per window (LiteRT) against TensorFlow's interpreter;
- ``ser-edge listen --realtime`` on continuous speech, and on the same speech with held-out
  household noise (UrbanSound8K fold 2) at 10 dB SNR running throughout, so the speech gate's
  model runs all the time: CPU % of one core, peak RSS, start-up time, end of utterance -> event
  latency.

Run: ``.venv/bin/python -m pytest benches/test_bench_edge.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import dataclasses
import json
import platform
import resource
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_edge.features import extract

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if FIGURES:
        write_report(ROOT / "docs" / "benchmarks.md")


@pytest.fixture(scope="module")
def files() -> list[Path]:
    """100 real recordings: 50 EMO-DB WAV (22.05 kHz) and 50 RAVDESS FLAC (16 kHz), spread over
    speakers and emotions (every k-th file in name order)."""
    emodb = sorted((DATA / "emodb" / "wav").glob("*.wav"))
    ravdess = sorted((DATA / "ravdess").glob("Actor_*/*.flac"))
    out = emodb[:: len(emodb) // 50][:50] + ravdess[:: len(ravdess) // 50][:50]
    assert len(out) == 100
    return out


@pytest.fixture(scope="module")
def bundle():
    from ser_edge.bundle import load_bundle

    return load_bundle()


# -- the TensorFlow + librosa reference (test-time only) -------------------------------------------
class Reference:
    """The bundle's model through ``tf.lite.Interpreter`` on librosa features of the same
    definition (spectral flux/entropy in numpy, as their docstrings define them; the prosody rows,
    which librosa has not, from the Rust core, so the reference is faster than a pure one); pooling
    and normalisation are the shared numpy code of :class:`ser_edge.runtime.Recognizer`."""

    def __init__(self, bundle: Any) -> None:
        import tensorflow as tf

        from ser_edge.runtime import Recognizer

        self.bundle = bundle
        self.cfg = bundle.input
        self.recognizer = Recognizer(bundle, adapt=False)
        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it is the reference here
            warnings.simplefilter("ignore")
            self.interp = tf.lite.Interpreter(model_path=str(bundle.model_path), num_threads=1)
        self.interp.allocate_tensors()
        (self.inp,), (self.out,) = self.interp.get_input_details(), self.interp.get_output_details()

    def frames(self, y: np.ndarray) -> np.ndarray:
        import librosa

        f = self.cfg.features
        kw = dict(n_fft=f.n_fft, hop_length=f.hop_length, win_length=f.win_length, center=f.center, pad_mode=f.pad_mode)
        X = librosa.stft(y, **kw)
        mag = np.abs(X)
        power = mag**2
        mel = librosa.feature.melspectrogram(S=power, sr=f.sr, n_mels=f.n_mels, fmin=f.fmin, fmax=f.fmax)
        logmel = librosa.power_to_db(mel, ref=f.ref, amin=f.amin, top_db=None)
        rows = {
            "log_melspectrogram": logmel,
            "mfcc": librosa.feature.mfcc(S=logmel, n_mfcc=f.n_mfcc),
            "rms": librosa.feature.rms(
                y=y, frame_length=f.n_fft, hop_length=f.hop_length, center=f.center, pad_mode=f.pad_mode
            ),
            "zero_crossing_rate": librosa.feature.zero_crossing_rate(
                y, frame_length=f.n_fft, hop_length=f.hop_length, center=f.center
            ),
            "spectral_centroid": librosa.feature.spectral_centroid(S=mag, sr=f.sr),
            "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=mag, sr=f.sr),
            "spectral_rolloff": librosa.feature.spectral_rolloff(S=mag, sr=f.sr),
            "spectral_flatness": librosa.feature.spectral_flatness(S=mag),
            "spectral_contrast": librosa.feature.spectral_contrast(
                S=mag, sr=f.sr, fmin=f.contrast_fmin, n_bands=f.contrast_bands
            ),
            "chroma_stft": librosa.feature.chroma_stft(S=power, sr=f.sr, tuning=0.0, n_chroma=f.n_chroma),
        }
        p = mag / np.maximum(mag.sum(0, keepdims=True), np.finfo(np.float32).tiny)
        flux = np.zeros((1, mag.shape[1]))
        flux[0, 1:] = ((p[:, 1:] - p[:, :-1]) ** 2).sum(0)
        rows["spectral_flux"] = flux
        nb = power.shape[0] // 10
        e = power[: nb * 10].reshape(10, nb, -1).sum(1)
        e = e / np.maximum(e.sum(0, keepdims=True), 1e-30)
        rows["spectral_entropy"] = -(e * np.log2(np.where(e > 0, e, 1.0))).sum(0, keepdims=True)
        for name in f.features:  # the prosody rows have no librosa equivalent: the Rust core's, in both
            if name not in rows:
                rows[name] = extract(y, dataclasses.replace(f, features=(name,)))
        t = min(r.shape[1] for r in rows.values())
        x = np.vstack([rows[name][:, :t] for name in f.features]).astype(np.float32)
        for name in ("rms", "spectral_flatness", "spectral_flux"):
            if name in f.features:
                a = self.cfg.row(name)
                x[a] = np.log(x[a] + 1e-8)
        if self.cfg.deltas:
            a = self.cfg.row("mfcc")
            m = x[a : a + f.n_mfcc]
            x = np.vstack(
                [x]
                + [librosa.feature.delta(m, width=self.cfg.delta_width, order=k) for k in range(1, self.cfg.deltas + 1)]
            )
        return np.ascontiguousarray(x.T)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        d, o = self.inp, self.out
        v = x[None].astype(np.float32)
        if d["dtype"] != np.float32:
            scale, zero = d["quantization"]
            v = np.clip(np.round(v / scale + zero), -128, 127).astype(d["dtype"])
        self.interp.set_tensor(d["index"], v)
        self.interp.invoke()
        y = self.interp.get_tensor(o["index"])[0]
        if o["dtype"] != np.float32:
            scale, zero = o["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

    def predict_file(self, path: Path) -> str:
        import librosa
        import soundfile as sf

        data, sr = sf.read(path, dtype="float32", always_2d=True)  # what librosa.load does for WAV/FLAC
        y = librosa.resample(data.mean(1), orig_sr=sr, target_sr=self.cfg.sr)
        x = self.recognizer.inputs(self.frames(y), new_frames=0)
        return self.bundle.labels[int(np.argmax(self.probabilities(x)))]


@pytest.fixture(scope="module")
def reference(bundle):
    return Reference(bundle)


@pytest.mark.benchmark(group="predict-100")
def test_predict_100_files_ser_edge(benchmark, files, bundle):
    from ser_edge.predict import predict_files

    out = benchmark.pedantic(lambda: list(predict_files(map(str, files))), rounds=3, iterations=1, warmup_rounds=1)
    assert len(out) == 100 and all("label" in r for r in out)
    FIGURES["predict_ser_edge_s"] = benchmark.stats.stats.median
    FIGURES["labels_ser_edge"] = [r["label"] for r in out]


@pytest.mark.benchmark(group="predict-100")
def test_predict_100_files_tensorflow_librosa(benchmark, files, reference):
    out = benchmark.pedantic(
        lambda: [reference.predict_file(f) for f in files], rounds=3, iterations=1, warmup_rounds=1
    )
    assert len(out) == 100
    FIGURES["predict_reference_s"] = benchmark.stats.stats.median
    FIGURES["labels_reference"] = out


@pytest.fixture(scope="module")
def native(files):
    import soundfile as sf

    out = []
    for f in files:
        data, sr = sf.read(f, dtype="float32", always_2d=True)
        out.append((data.mean(1), sr))
    return out


@pytest.mark.benchmark(group="stage-resample")
@pytest.mark.parametrize("impl", ["ser_edge", "soxr_hq"])
def test_stage_resample_100_files(benchmark, native, impl):
    """Resampling to 16 kHz (the 50 EMO-DB files at 22.05 kHz; RAVDESS is already 16 kHz)."""
    import librosa

    from ser_edge.audio import resample

    fn = (
        (lambda y, sr: resample(y, orig_sr=sr, target_sr=16000))
        if impl == "ser_edge"
        else (lambda y, sr: librosa.resample(y, orig_sr=sr, target_sr=16000, res_type="soxr_hq"))
    )
    benchmark.pedantic(lambda: [fn(y, sr) for y, sr in native if sr != 16000], rounds=3, iterations=1, warmup_rounds=1)
    FIGURES[f"resample_{impl}_s"] = benchmark.stats.stats.median


@pytest.mark.benchmark(group="stage-frames")
@pytest.mark.parametrize("impl", ["ser_edge", "librosa"])
def test_stage_frames_100_files(benchmark, native, bundle, reference, impl):
    """The model's frame features (211 per 10 ms frame) of the 100 files at 16 kHz."""
    from ser_edge.audio import resample

    clips = [y if sr == 16000 else resample(y, orig_sr=sr, target_sr=16000) for y, sr in native]
    fn = bundle.input.frames if impl == "ser_edge" else reference.frames
    benchmark.pedantic(lambda: [fn(y) for y in clips], rounds=3, iterations=1, warmup_rounds=1)
    FIGURES[f"frames_{impl}_s"] = benchmark.stats.stats.median


@pytest.mark.benchmark(group="inference")
def test_inference_per_window_litert(benchmark, bundle):
    from ser_edge.runtime import Classifier

    c = Classifier(bundle)
    x = np.random.default_rng(0).standard_normal((1, *bundle.input_shape)).astype(np.float32)
    benchmark(c.probabilities, x)
    FIGURES["inference_litert_s"] = benchmark.stats.stats.median


@pytest.mark.benchmark(group="inference")
def test_inference_per_window_tensorflow(benchmark, bundle, reference):
    x = np.random.default_rng(0).standard_normal(bundle.input_shape).astype(np.float32)
    benchmark(reference.probabilities, x)
    FIGURES["inference_tensorflow_s"] = benchmark.stats.stats.median


def _continuous_speech(path: Path, seconds: float = 60.0) -> float:
    """EMO-DB utterances (10 speakers) joined with 0.4-0.8 s pauses: continuous conversation."""
    import soundfile as sf

    from ser_edge.audio import load

    rng = np.random.default_rng(0)
    clips, total = [], 0.0
    for f in sorted((DATA / "emodb" / "wav").glob("*.wav"))[::7]:
        y, _ = load(f, sr=16000)
        pause = np.zeros(int(rng.uniform(0.4, 0.8) * 16000), np.float32)
        clips += [y, pause]
        total += (len(y) + len(pause)) / 16000
        if total >= seconds:
            break
    sf.write(path, np.concatenate(clips), 16000, subtype="PCM_16")
    return total


def _with_household_noise(path: Path, snr_db: float = 10.0) -> None:
    """The file's speech with fold-2 UrbanSound8K clips (held out from the speech gate's
    training) joined end to end underneath, ``snr_db`` below the speech's RMS."""
    import soundfile as sf

    from ser_edge.audio import load

    y, _ = load(path, sr=16000)
    clips = sorted((DATA / "noise" / "urbansound8k" / "fold2").glob("*.ogg"))[::40]
    n = np.resize(np.concatenate([load(c, sr=16000)[0] for c in clips]), len(y))
    rms = lambda v: float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))  # noqa: E731
    sf.write(path, np.clip(y + n * (rms(y) / rms(n) / 10 ** (snr_db / 20)), -1, 1), 16000, subtype="PCM_16")


@pytest.mark.benchmark(group="listen")
@pytest.mark.parametrize("scene", ["speech", "speech_in_noise"])
def test_listen_realtime_continuous_speech(benchmark, tmp_path, scene):
    """One run of the daemon paced in real time; CPU from the child's rusage."""
    wav = tmp_path / "speech.wav"
    seconds = _continuous_speech(wav)
    if scene == "speech_in_noise":
        _with_household_noise(wav)

    def run() -> dict[str, Any]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.Popen(
            [sys.executable, "-m", "ser_edge", "listen", "--source", str(wav), "--realtime"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = [0.0]

        def watch() -> None:  # the daemon's own high-water mark (rusage would count the fork of pytest)
            while p.poll() is None:
                try:
                    status = Path(f"/proc/{p.pid}/status").read_text()
                    peak[0] = max(peak[0], int(status.split("VmHWM:")[1].split()[0]) / 1024)
                except (OSError, IndexError, ValueError):
                    pass
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        ready = None
        for line in p.stderr:
            if '"source open"' in line:
                ready = time.monotonic() - t0
                break
        out, err = p.communicate(timeout=seconds + 60)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        watcher.join()
        assert p.returncode == 0, err
        events = [json.loads(x) for x in out.splitlines()]
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {
            "wall": wall,
            "cpu": cpu,
            "ready": ready,
            "rss_mb": peak[0],
            "delays": [e["delay_ms"] for e in events if e["type"] == "utterance"],
        }

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    assert r["delays"], "no utterance events"
    steady_cpu = r["cpu"]  # includes start-up (imports, model load): an upper bound for the steady state
    FIGURES["listen" if scene == "speech" else "listen_noise"] = {
        "seconds": seconds,
        "cpu_pct": 100 * steady_cpu / r["wall"],
        "rss_mb": r["rss_mb"],
        "startup_s": r["ready"],
        "utterances": len(r["delays"]),
        "delay_median_ms": float(np.median(r["delays"])),
        "delay_p95_ms": float(np.percentile(r["delays"], 95)),
        "delay_max_ms": float(np.max(r["delays"])),
    }


def test_startup_time_cold_process():
    """Process start -> the daemon's "source open" log (imports, bundle validation, model load and
    a probe inference), median of 5."""
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        p = subprocess.Popen(
            [sys.executable, "-m", "ser_edge", "listen", "--source", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in p.stderr:
            if '"source open"' in line:
                times.append(time.monotonic() - t0)
                break
        p.communicate(input="", timeout=30)
    FIGURES["startup_median_s"] = float(np.median(times))


def write_report(path: Path) -> None:
    f = FIGURES
    lines = [
        "## The edge path: `predict` and `listen` (issue 4)",
        "",
        "Produced by `.venv/bin/python -m pytest benches/test_bench_edge.py -p no:cacheprovider -q`",
        f"(writes this section; `scripts/bench` runs it too). Python {platform.python_version()}, "
        f"{platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores shared with other jobs; "
        f"run {time.strftime('%Y-%m-%d %H:%M')}. Ratios compare timings from the same run.",
        "",
    ]
    if "predict_ser_edge_s" in f and "predict_reference_s" in f:
        agree = np.mean([a == b for a, b in zip(f["labels_ser_edge"], f["labels_reference"])])
        lines += [
            "### `ser-edge predict` on 100 files",
            "",
            "| | 100 files | per file |",
            "|---|---|---|",
            f"| ser-edge (Rust features + LiteRT) | {f['predict_ser_edge_s']:.2f} s "
            f"| {f['predict_ser_edge_s'] * 10:.1f} ms |",
            f"| TensorFlow `tf.lite` + librosa features | {f['predict_reference_s']:.2f} s "
            f"| {f['predict_reference_s'] * 10:.1f} ms |",
            f"| ser-edge speed-up | **{f['predict_reference_s'] / f['predict_ser_edge_s']:.2f}x** (>1: faster) | |",
            "",
            f"Same int8 model, same files (50 EMO-DB, 50 RAVDESS), file reading included, warm (median of 3). "
            f"Labels agree on {agree:.0%} of the files (librosa's spectral contrast clips at 80 dB and "
            f"its features differ by float rounding). ser-edge's time includes its voice gate (the "
            f"speech model on every 0.1 s); the reference has none, and takes the ten prosody rows, "
            f"which librosa has not, from the Rust core: both make the ratio smaller than the work "
            f"done.",
            "",
        ]
    if "resample_ser_edge_s" in f and "frames_ser_edge_s" in f:
        lines += [
            "Where the time goes (same 100 files, same run):",
            "",
            "| stage | ser-edge | reference | ratio |",
            "|---|---|---|---|",
            f"| resample 22.05 -> 16 kHz (50 EMO-DB files) "
            f"| {f['resample_ser_edge_s']:.2f} s (`ser_edge.audio.resample`) "
            f"| {f['resample_soxr_hq_s']:.2f} s (soxr_hq, librosa's default) "
            f"| {f['resample_soxr_hq_s'] / f['resample_ser_edge_s']:.2f}x |",
            f"| frame features (100 files) | {f['frames_ser_edge_s']:.2f} s (Rust core) "
            f"| {f['frames_librosa_s']:.2f} s (librosa) "
            f"| {f['frames_librosa_s'] / f['frames_ser_edge_s']:.1f}x |",
            "",
            "Of ser-edge's predict time, resampling (polyphase Kaiser sinc in the Rust core) takes "
            f"{f['resample_ser_edge_s'] / f.get('predict_ser_edge_s', float('nan')):.0%} and the frame features "
            f"{f['frames_ser_edge_s'] / f.get('predict_ser_edge_s', float('nan')):.0%}.",
            "",
        ]
    if "inference_litert_s" in f:
        lines += [
            "### int8 inference per window",
            "",
            f"LiteRT {f['inference_litert_s'] * 1e3:.3f} ms per window (1 thread), TensorFlow's interpreter "
            f"{f.get('inference_tensorflow_s', float('nan')) * 1e3:.3f} ms (target <= 1 ms).",
            "",
        ]
    if "listen" in f:
        li = f["listen"]
        lines += [
            "### `ser-edge listen --realtime` on continuous speech",
            "",
            f"{li['seconds']:.0f} s of EMO-DB utterances with 0.4-0.8 s pauses ({li['utterances']} utterance events), "
            "paced like a microphone, default settings, stdout output.",
            "",
            "| figure | measured | target |",
            "|---|---|---|",
            f"| CPU, % of one core (whole run incl. start-up) | {li['cpu_pct']:.1f} % | <= 3 % |",
            f"| peak RSS | {li['rss_mb']:.0f} MB | <= 120 MB |",
            f"| start-up (process start -> listening) | {f.get('startup_median_s', li['startup_s']):.2f} s | <= 1 s |",
            f"| end of utterance -> event, median / p95 / max "
            f"| {li['delay_median_ms']:.0f} / {li['delay_p95_ms']:.0f} / "
            f"{li['delay_max_ms']:.0f} ms | <= 300 ms |",
            "",
        ]
        if "listen_noise" in f:
            ln = f["listen_noise"]
            lines += [
                f"With held-out household noise (UrbanSound8K fold 2) at 10 dB SNR under the same speech, so "
                f"that the speech gate's model runs throughout ({ln['utterances']} utterance events): "
                f"**{ln['cpu_pct']:.1f} %** of one core, peak RSS **{ln['rss_mb']:.0f} MB**, "
                f"end of utterance -> event median {ln['delay_median_ms']:.0f} ms.",
                "",
            ]
        lines += [
            "End of utterance = capture time of the last voiced sample; the latency includes the gate's "
            "hangover (0.2 s of silence that closes an utterance), the chunk size (50 ms) and the "
            "final window's features and inference. The voice gate includes the speech model "
            "(`python -m ser_edge.listen.gatebench`; [raspberry-pi.md](raspberry-pi.md#speech-not-sound)).",
            "",
        ]
    from report import write_section

    write_section(path, "edge", "\n".join(lines))
