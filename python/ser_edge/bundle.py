"""The model bundle: a directory holding ``model.tflite`` and ``bundle.json``.

``bundle.json`` carries everything needed to use the model exactly as it was trained: its labels,
the :class:`~ser_edge.inputs.InputConfig` (feature configuration included), the normalisation
statistics, input shape, quantization, training corpus and metrics, and the sha256 of the
``.tflite``. :func:`load_bundle` validates all of it and raises :class:`BundleError` with a clear
message; nothing is used from a bundle that fails a check.

Version 2 adds ``content_sha256``: the sha256 of ``bundle.json``'s own content (every field but
that one, as canonical JSON), checked after every field's own validation, so an edited or
partly written ``bundle.json`` is refused like a replaced model. Version 1 bundles (no content
hash) still load, with only the model covered; re-save them to upgrade.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from ser_edge._strict import known_keys
from ser_edge.features import FeatureConfig
from ser_edge.features.config import OPTIONAL_FIELDS as FEATURE_OPTIONAL_FIELDS
from ser_edge.inputs import OPTIONAL_FIELDS, InputConfig, normalize
from ser_edge.labels import CANONICAL, GROUPINGS

FORMAT = "ser-edge-bundle"
VERSION = 2
#: Versions :func:`load_bundle` reads (1: without ``content_sha256``).
VERSIONS = (1, 2)
MODEL_FILE = "model.tflite"
META_FILE = "bundle.json"
QUANTIZATIONS = ("int8", "dynamic", "float32")
#: Largest ``model.tflite`` and ``bundle.json`` read (checked on the file's size before reading).
MAX_MODEL_BYTES = 64 << 20
MAX_META_BYTES = 4 << 20
#: Bounds on the normalisation statistics (features are dB, Hz, counts: far inside these).
MAX_STAT = 1e6
MAX_PRIOR_FRAMES = 1e9
#: Sample rates a bundle may declare.
SR_RANGE = (1000, 192000)

PathLike = Union[str, "os.PathLike[str]"]


class BundleError(ValueError):
    """A model bundle is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Normalization:
    """Frame statistics of the training population (the starting point of speaker adaptation,
    worth ``prior_frames`` frames) and the standardisation of the pooled input (stats pooling)."""

    frame_mean: np.ndarray
    frame_std: np.ndarray
    prior_frames: float = 3000.0
    input_mean: np.ndarray | None = None
    input_std: np.ndarray | None = None

    def standardize_input(self, x: np.ndarray) -> np.ndarray:
        """The pooled input ``x`` standardised with ``input_mean``/``input_std`` (the stats pooling)."""
        if self.input_mean is None or self.input_std is None:
            raise BundleError("normalization has no input_mean/input_std, which stats pooling needs")
        return normalize(x, self.input_mean, self.input_std)

    def to_dict(self) -> dict[str, Any]:
        def vec(a: np.ndarray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in np.asarray(a, np.float64)]

        return {
            "frame_mean": vec(self.frame_mean),
            "frame_std": vec(self.frame_std),
            "prior_frames": float(self.prior_frames),
            "input_mean": vec(self.input_mean),
            "input_std": vec(self.input_std),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Normalization:
        known_keys(d, cls, "normalization", BundleError)

        def required(key: str) -> np.ndarray:
            a = vec(key)
            if a is None:
                raise BundleError(f"normalization.{key} is missing")
            return a

        def vec(key: str) -> np.ndarray | None:
            v = d.get(key)
            if v is None:
                return None
            if not isinstance(v, (list, tuple, np.ndarray)) or not all(_is_number(x) for x in v):
                raise BundleError(f"normalization.{key} must be a list of finite numbers")
            a = np.asarray(v, dtype=np.float64)
            if a.ndim != 1 or not np.all(np.isfinite(a)):
                raise BundleError(f"normalization.{key} must be a list of finite numbers")
            if not np.all(np.abs(a) <= MAX_STAT):
                raise BundleError(f"normalization.{key} values must lie within +-{MAX_STAT:g}")
            if key.endswith("_std") and not np.all(a > 0):
                i = int(np.argmin(a > 0))
                raise BundleError(f"normalization.{key}[{i}]={float(a[i])!r}: standard deviations must be > 0")
            return a

        prior = d.get("prior_frames", 3000.0)
        if not _is_number(prior) or not 0 <= prior <= MAX_PRIOR_FRAMES:
            raise BundleError(f"normalization.prior_frames={prior!r} must be a number in [0, {MAX_PRIOR_FRAMES:g}]")
        return cls(
            required("frame_mean"),
            required("frame_std"),
            float(prior),
            vec("input_mean"),
            vec("input_std"),
        )


@dataclass(frozen=True)
class Bundle:
    """A validated model bundle (see :func:`load_bundle`)."""

    path: Path
    name: str
    labels: tuple[str, ...]
    input: InputConfig
    normalization: Normalization
    quantization: str
    input_shape: tuple[int, ...]
    sha256: str
    created: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: The verified model bytes (the runtime loads these, never the file again).
    model: bytes = field(default=b"", repr=False, compare=False)

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def model_id(self) -> str:
        """``name`` plus the first 12 hex digits of the model's sha256: changes with the weights."""
        return f"{self.name}-{self.sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "normalization": self.normalization.to_dict(),
            "quantization": self.quantization,
            "input_shape": list(self.input_shape),
            "sample_rate": self.input.sr,
            "n_fft": self.input.features.n_fft,
            "win_length": self.input.features.win_length or self.input.features.n_fft,
            "hop_length": self.input.features.hop_length,
            "sha256": self.sha256,
            "created": self.created,
            "training": self.training,
            "metrics": self.metrics,
        }


#: The models shipped in the package, by name: ``default`` (trained on clean speech) and ``room``
#: (trained also on copies with household noise, babble and reverberation: a device across a room).
PACKAGED = ("default", "room")


def packaged_bundle_path(name: str) -> Path:
    """A model shipped in the package (:data:`PACKAGED`)."""
    if name not in PACKAGED:
        raise BundleError(f"{name!r} is not a packaged model ({', '.join(PACKAGED)})")
    return Path(__file__).resolve().parent / "models" / name


def default_bundle_path() -> Path:
    """The default model shipped in the package."""
    return packaged_bundle_path("default")


def bundle_path(path: PathLike | None = None) -> Path:
    """Where a model setting points: ``path`` itself, or, when no such file or folder exists and
    it is a packaged model's name (``room``), that model; ``None``: the default model."""
    if path is None:
        return default_bundle_path()
    p = Path(os.fspath(path))
    return packaged_bundle_path(str(p)) if not p.exists() and str(p) in PACKAGED else p


def load_bundle(path: PathLike | None = None) -> Bundle:
    """Reads and validates a bundle: its directory, its ``bundle.json`` or its ``model.tflite``,
    or a packaged model's name (:func:`bundle_path`; default: the bundled default model). Raises
    :class:`BundleError`."""
    directory = _directory(bundle_path(path))
    meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
    if not meta_path.is_file():
        raise BundleError(f"{directory}: not a model bundle (no {META_FILE})")
    if not model_path.is_file():
        raise BundleError(f"{directory}: the bundle has no {MODEL_FILE}")
    try:
        meta = json.loads(read_capped(meta_path, MAX_META_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BundleError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a ser-edge bundle (format must be {FORMAT!r})")
    version = meta.get("version")
    if isinstance(version, bool) or version not in VERSIONS:
        raise BundleError(
            f"{meta_path}: bundle version {version!r} is not supported (this reads {', '.join(map(str, VERSIONS))})"
        )
    try:
        return _validated(directory, meta, read_capped(model_path, MAX_MODEL_BYTES))
    except BundleError as e:
        raise BundleError(f"{directory}: {e}") from None


def content_sha256(meta: dict[str, Any]) -> str:
    """sha256 of a bundle.json's content: every field but ``content_sha256``, as canonical JSON."""
    body = {k: v for k, v in meta.items() if k != "content_sha256"}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise BundleError(f"{META_FILE} cannot be hashed ({e})") from None
    return hashlib.sha256(text.encode()).hexdigest()


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes: a FIFO, device or folder is refused
    without blocking, and the size is checked before anything is read. Raises ``BundleError``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BundleError(f"{path.parent}: the bundle has no {path.name}") from None
    except OSError as e:
        raise BundleError(f"{path}: cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise BundleError(f"{path.name} is {st.st_size} bytes; at most {limit} are read")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise BundleError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > limit:  # grew while being read
        raise BundleError(f"{path.name} is larger than {limit} bytes")
    return data


def _is_number(x: Any) -> bool:
    """A finite JSON number (bools are not numbers here)."""
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) and np.isfinite(x)


def save_bundle(
    out_dir: PathLike,
    *,
    tflite: bytes,
    name: str,
    labels: Sequence[str],
    input: InputConfig,
    normalization: Normalization,
    quantization: str,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Bundle:
    """Writes ``model.tflite`` and ``bundle.json`` into ``out_dir`` (created if needed) and returns
    the bundle as :func:`load_bundle` reads it back. The metadata is written last, through a
    temporary file, so a watcher never sees a bundle.json that does not match its model."""
    directory = Path(os.fspath(out_dir))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "labels": list(labels),
        "input": input.to_dict(),
        "normalization": normalization.to_dict(),
        "quantization": quantization,
        "input_shape": list(input.input_shape),
        "sha256": hashlib.sha256(tflite).hexdigest(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "training": training or {},
        "metrics": metrics or {},
    }
    meta = {**meta, "content_sha256": content_sha256(meta)}
    bundle = _validated(directory, meta, tflite)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / MODEL_FILE, tflite)
    out = bundle.to_dict()
    out["content_sha256"] = content_sha256(out)
    _write_atomic(directory / META_FILE, (json.dumps(out, indent=1) + "\n").encode())
    return load_bundle(directory)


def _validated(directory: Path, meta: dict[str, Any], model: bytes) -> Bundle:
    name = meta.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise BundleError(f"name={name!r} must be 1-64 characters of letters, digits, '.', '_' or '-'")
    labels = meta.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise BundleError(f"labels={labels!r} must be a list of at least two distinct names")
    unknown = [x for x in labels if x not in _model_labels()]
    if unknown:
        raise BundleError(
            f"labels {unknown!r} are not canonical labels or group names "
            f"(ser_edge.labels: {', '.join(CANONICAL)}, or a grouping's names)"
        )
    config = _input_config(meta.get("input"))
    norm = Normalization.from_dict(meta.get("normalization"))
    d = config.n_frame_features
    for key in ("frame_mean", "frame_std"):
        if len(getattr(norm, key)) != d:
            raise BundleError(f"normalization.{key} has {len(getattr(norm, key))} values; the input has {d} per frame")
    if config.pooling == "stats" and config.waveform is None:
        for key in ("input_mean", "input_std"):
            v = getattr(norm, key)
            if v is None or len(v) != config.input_shape[0]:
                raise BundleError(f"normalization.{key} must have {config.input_shape[0]} values for stats pooling")
    quant = meta.get("quantization")
    if quant not in QUANTIZATIONS:
        raise BundleError(f"quantization={quant!r}; choose from {', '.join(QUANTIZATIONS)}")
    shape = meta.get("input_shape")
    if not isinstance(shape, list) or tuple(shape) != config.input_shape:
        raise BundleError(f"input_shape={shape!r} does not match the input configuration {list(config.input_shape)}")
    for key, want in (
        ("sample_rate", config.sr),
        ("hop_length", config.features.hop_length),
        ("n_fft", config.features.n_fft),
    ):
        if key in meta and meta[key] != want:
            raise BundleError(f"{key}={meta[key]!r} does not match the input configuration ({want})")
    if len(model) < 8 or model[4:8] != b"TFL3" or len(model) > MAX_MODEL_BYTES:
        raise BundleError(f"{MODEL_FILE} is not a TFLite flatbuffer")
    digest = hashlib.sha256(model).hexdigest()
    if meta.get("sha256") != digest:
        raise BundleError(f"{MODEL_FILE} does not match the sha256 in {META_FILE} (corrupt or replaced)")
    for key in ("training", "metrics"):
        if not isinstance(meta.get(key, {}), dict):
            raise BundleError(f"{key} must be a mapping")
    if meta.get("version", VERSION) >= 2 and meta.get("content_sha256") != content_sha256(meta):
        raise BundleError(f"{META_FILE} does not match its content_sha256 (edited, corrupt or partly written)")
    return Bundle(
        path=directory,
        name=name,
        labels=tuple(labels),
        input=config,
        normalization=norm,
        quantization=quant,
        input_shape=tuple(shape),
        sha256=digest,
        created=str(meta.get("created", "")),
        training=meta.get("training", {}),
        metrics=meta.get("metrics", {}),
        model=model,
    )


def _model_labels() -> frozenset[str]:
    return frozenset(CANONICAL) | {g for names, _ in GROUPINGS.values() for g in names}


def _input_config(d: Any) -> InputConfig:
    """The bundle's ``input``, every field present (no silent defaults; only the
    :data:`~ser_edge.inputs.OPTIONAL_FIELDS` and the feature configuration's
    :data:`~ser_edge.features.config.OPTIONAL_FIELDS` added later may be left out, meaning their
    default) and every
    number of the right JSON type, then validated by ``InputConfig``/``FeatureConfig`` (the Rust
    core bounds the sizes)."""
    if not isinstance(d, dict):
        raise BundleError("input must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(InputConfig) if f.init}
    missing = sorted(set(fields) - set(d) - set(OPTIONAL_FIELDS))
    if missing:
        raise BundleError(f"input is missing {', '.join(missing)} (a bundle states every field)")
    feats = d["features"]
    if not isinstance(feats, dict):
        raise BundleError("input.features must be a mapping")
    ffields = {f.name: f for f in dataclasses.fields(FeatureConfig) if f.init}
    missing = sorted(set(ffields) - set(feats) - set(FEATURE_OPTIONAL_FIELDS))
    if missing:
        raise BundleError(f"input.features is missing {', '.join(missing)} (a bundle states every field)")
    for prefix, values, spec in (("input", d, fields), ("input.features", feats, ffields)):
        for key, value in values.items():
            f = spec.get(key)
            if f is None or value is None or key in ("sr", "features"):
                continue
            kind = str(f.type).replace("Optional[", "").rstrip("]")
            want = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}.get(
                kind
            )
            ok = {
                "int": isinstance(value, int) and not isinstance(value, bool),
                "float": _is_number(value),
                "bool": isinstance(value, bool),
                "str": isinstance(value, str),
            }.get(kind, True)
            if not ok:
                raise BundleError(f"{prefix}.{key}={value!r} must be {want}")
    sr = feats["sr"]
    if not (_is_number(sr) and SR_RANGE[0] <= sr <= SR_RANGE[1]):
        raise BundleError(f"input.features.sr={sr!r} must be a sample rate in [{SR_RANGE[0]}, {SR_RANGE[1]}] Hz")
    try:
        return InputConfig.from_dict(d)
    except (ValueError, TypeError) as e:
        raise BundleError(f"input: {e}") from None


def _directory(path: Path) -> Path:
    if path.is_dir():
        return path
    if path.name in (META_FILE, MODEL_FILE) or path.suffix == ".tflite":
        return path.parent
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    raise BundleError(f"{path}: not a model bundle (give its directory, {META_FILE} or {MODEL_FILE})")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
