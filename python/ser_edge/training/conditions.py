"""Acoustic conditions: what a room does to speech, for evaluation (named, seeded conditions) and
for multi-condition training (:class:`RoomAugmentation`). Mixing and convolution are
``augment.mix_at_snr`` and ``augment.reverberate``; this module only chooses what to mix.

A condition is one step or several joined by ``+`` (applied left to right)::

    clean                      the clip as recorded
    noise:<folder>@<snr>       a random stretch of a random sound file from <folder>, at <snr> dB
                               (<folder> may be several, joined by commas)
    white@<snr>                white Gaussian noise at <snr> dB
    babble:<n>@<snr>           <n> other talkers summed (each at the same level), at <snr> dB
    reverb:<folder>            convolved with a random room impulse response from <folder>
    reverb:<folder>~<t60>      the same with the response's tail shortened to <t60> seconds
                               (``augment.retime_rir``; never lengthened)
    reverb:<folder>+noise:<folder>@10    a far microphone in a noisy room

SNRs are relative to the clip's active speech level (:func:`~ser_edge.training.augment.active_rms`).
Every random choice comes from ``seed`` and the clip's key (its path), never from the order in
which clips are processed, so a condition degrades a clip the same way in every run.
Babble talkers come from a pool of clips (:class:`Degrader` ``babble_pool``): never the clip's own
speaker.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_edge._strict import known_keys
from ser_edge.audio import load
from ser_edge.training.augment import active_rms, mix_at_snr, retime_rir, reverberate, trim_silence
from ser_edge.training.corpora import AUDIO_EXTENSIONS, Clip

KINDS = ("clean", "noise", "white", "babble", "reverb")


@dataclass(frozen=True)
class Step:
    """One degradation: ``kind`` (:data:`KINDS`), its ``folder`` (noise, reverb), talkers ``n``
    (babble), ``snr`` in dB (noise, white, babble) and the reverberation time ``t60`` (reverb;
    None: as measured)."""

    kind: str
    folder: str | None = None
    n: int = 0
    snr: float | None = None
    t60: float | None = None


def parse_condition(spec: str) -> tuple[Step, ...]:
    """``"reverb:rir/house+noise:noise/fold2@10"`` -> its steps (see the module docstring).
    ``"clean"`` is the empty tuple. Raises ``ValueError`` naming the bad part."""
    spec = str(spec).strip()
    if spec == "clean":
        return ()
    steps = []
    for part in (p.strip() for p in spec.split("+")):
        m = re.fullmatch(r"(noise:(?P<folder>.+)|white|babble:(?P<n>[1-9]\d*))@(?P<snr>-?\d+(\.\d*)?)", part)
        if m:
            kind = part.split("@")[0].split(":")[0]
            steps.append(Step(kind, folder=m["folder"], n=int(m["n"] or 0), snr=float(m["snr"])))
        elif r := re.fullmatch(r"reverb:(?P<folder>[^@~]+)(~(?P<t60>\d+(\.\d*)?))?", part):
            t60 = float(r["t60"]) if r["t60"] else None
            if t60 is not None and not t60 > 0:
                raise ValueError(f"condition {spec!r}: {part!r} needs a reverberation time > 0 s")
            steps.append(Step("reverb", folder=r["folder"], t60=t60))
        else:
            raise ValueError(
                f"condition {spec!r}: {part!r} is not clean, noise:<folder>@<snr>, white@<snr>, "
                "babble:<n>@<snr> or reverb:<folder>[~<t60>]"
            )
    return tuple(steps)


def audio_files(folder: str) -> list[str]:
    """The audio files below ``folder`` (sorted); ``ValueError`` if there are none."""
    root = Path(os.fspath(folder))
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder of sounds")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return files


class Degrader:
    """Applies conditions to clips at ``sr``. ``babble_pool``: clips the babble talkers come from
    (a clip's own speaker, by ``speaker_key``, is never among its talkers)."""

    def __init__(self, sr: int, *, seed: int = 0, babble_pool: Sequence[Clip] = ()) -> None:
        self.sr, self.seed = int(sr), int(seed)
        self.pool = list(babble_pool)
        self._files: dict[str, list[str]] = {}
        self._audio: dict[str, np.ndarray] = {}

    def rng(self, key: str, spec: str) -> np.random.Generator:
        """The generator of one clip under one condition."""
        return np.random.default_rng([self.seed, zlib.crc32(key.encode()), zlib.crc32(spec.encode())])

    def __call__(
        self, y: np.ndarray, steps: Sequence[Step], rng: np.random.Generator, speaker: str | None = None
    ) -> np.ndarray:
        """``y`` under ``steps`` (``speaker``: the clip's ``speaker_key``, kept out of babble)."""
        y = np.asarray(y, np.float32)
        for s in steps:
            if s.kind == "reverb":
                rir = self._pick(s.folder, rng)
                y = reverberate(y, rir if s.t60 is None else retime_rir(rir, self.sr, s.t60))
            elif s.kind == "white":
                y = mix_at_snr(y, rng.standard_normal(len(y)), float(s.snr), sr=self.sr)  # type: ignore[arg-type]
            elif s.kind == "noise":
                y = mix_at_snr(
                    y,
                    self._stretch(self._pick(s.folder, rng), len(y), rng),
                    float(s.snr),  # type: ignore[arg-type]
                    sr=self.sr,
                )
            elif s.kind == "babble":
                y = mix_at_snr(y, self.babble(len(y), s.n, rng, speaker), float(s.snr), sr=self.sr)  # type: ignore[arg-type]
        return y

    def clip(self, clip: Clip, spec: str) -> np.ndarray:
        """The audio of ``clip`` at ``sr`` under condition ``spec``."""
        y, _ = load(clip.path, sr=self.sr)
        steps = parse_condition(spec)
        return self(y, steps, self.rng(clip.path, spec), clip.speaker_key) if steps else y

    def babble(self, length: int, n: int, rng: np.random.Generator, speaker: str | None = None) -> np.ndarray:
        """``n`` talkers (distinct speakers while the pool has enough) from the pool, each trimmed,
        at the same active level, looped from a random start, summed."""
        pool = [c for c in self.pool if c.speaker_key != speaker]
        if not pool:
            raise ValueError("babble needs a pool of other speakers' clips (babble_pool)")
        speakers = sorted({c.speaker_key for c in pool})
        chosen = [speakers[i % len(speakers)] for i in rng.permutation(max(n, len(speakers)))[:n]]
        out = np.zeros(length)
        for spk in chosen:
            mine = [c for c in pool if c.speaker_key == spk]
            talk = trim_silence(self._load(mine[int(rng.integers(len(mine)))].path))
            level = active_rms(talk, self.sr)
            if level > 0:
                out += self._stretch(talk / level, length, rng)
        return out

    def _pick(self, folder: str | None, rng: np.random.Generator) -> np.ndarray:
        assert folder is not None
        if folder not in self._files:
            self._files[folder] = [f for part in folder.split(",") for f in audio_files(part)]
        files = self._files[folder]
        return self._load(files[int(rng.integers(len(files)))])

    def _load(self, path: str) -> np.ndarray:
        if path not in self._audio:
            self._audio[path] = load(path, sr=self.sr)[0]
        return self._audio[path]

    @staticmethod
    def _stretch(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """``length`` samples of ``x`` looped, from a random start."""
        reps = -(-(length + len(x)) // len(x))
        start = int(rng.integers(len(x)))
        return np.tile(x, reps)[start : start + length]


@dataclass(frozen=True)
class RoomAugmentation:
    """Train-only multi-condition augmentation: each copy of a clip is, with equal chance, clean
    (only ``base``; offered only with a ``base``), noisy (a sound from ``noise``), babble (``babble_n`` talkers from
    ``babble_pool``), reverberant (a RIR from ``rir``) or reverberant and noisy; SNRs uniform in
    ``snr``. ``base`` (an ``augment.Augmentation``) is applied first. The folders must never
    hold the evaluation's sounds or rooms. ``t60 = (low, high)``: each response's tail is shortened
    to a reverberation time uniform in that range (seconds; ``augment.retime_rir``), so a few large
    measured rooms also stand in for the smaller, deader rooms a device lives in."""

    noise: str | None = None
    rir: str | None = None
    babble_n: int = 3
    snr: tuple[float, float] = (0.0, 20.0)
    copies: int = 1
    seed: int = 0
    base: Any = None
    babble_pool: tuple[Clip, ...] = ()
    t60: tuple[float, float] | None = None

    def key(self) -> str:
        """What the augmented frames depend on (their cache key)."""
        import hashlib

        pool = hashlib.sha256("|".join(c.path for c in self.babble_pool).encode()).hexdigest()[:12]
        base = self.base.key() if hasattr(self.base, "key") else repr(self.base)
        t60 = "" if self.t60 is None else f"|t60={self.t60}"
        return f"room|{self.noise}|{self.rir}|{self.babble_n}|{self.snr}|{pool}|{base}{t60}"

    def choices(self) -> list[str]:
        """The conditions a copy is drawn from (``clean`` only when ``base`` changes the clip)."""
        out = ["clean"] if self.base is not None else []
        if self.noise:
            out.append(f"noise:{self.noise}@{{snr}}")
        if self.babble_pool:
            out.append(f"babble:{self.babble_n}@{{snr}}")
        if self.rir:
            out.append(f"reverb:{self.rir}{{t60}}")
        if self.rir and self.noise:
            out.append(f"reverb:{self.rir}{{t60}}+noise:{self.noise}@{{snr}}")
        return out

    def __call__(self, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        if self.base is not None:
            y = self.base(y, sr, rng)
        spec = self.choices()[int(rng.integers(len(self.choices())))]
        snr = round(float(rng.uniform(*self.snr)), 1)
        t60 = "" if self.t60 is None else f"~{round(float(rng.uniform(*self.t60)), 2)}"
        spec = spec.format(snr=snr, t60=t60)
        return _degrader(sr, self.babble_pool)(y, parse_condition(spec), rng)

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], *, base: Any = None, babble_pool: Sequence[Clip] = (), seed: int = 0
    ) -> RoomAugmentation:
        """From a recipe's ``[room]`` table: ``noise``, ``rir`` (folders, or lists of folders), ``babble`` (talkers;
        0: none), ``snr = [low, high]``, ``copies``, ``t60 = [low, high]`` (seconds; optional)."""
        known_keys(d, ("noise", "rir", "babble", "snr", "copies", "t60"), "[room]")
        d = {k: ",".join(v) if k in ("noise", "rir") and isinstance(v, list) else v for k, v in d.items()}
        for k in ("noise", "rir"):
            for folder in (d.get(k) or "").split(","):
                if folder:
                    audio_files(folder)
        low, high = (float(v) for v in d.get("snr", (0.0, 20.0)))
        if not low <= high:
            raise ValueError(f"[room] snr = [{low}, {high}] needs low <= high")
        t60 = None
        if "t60" in d:
            times = [float(v) for v in d["t60"]]
            if len(times) != 2 or not 0 < times[0] <= times[1]:
                raise ValueError(f"[room] t60 = {list(d['t60'])} needs 0 < low <= high (seconds)")
            t60 = (times[0], times[1])
        n = int(d.get("babble", 3))
        if int(d.get("copies", 1)) < 1 or n < 0:
            raise ValueError("[room] needs copies >= 1 and babble >= 0")
        return cls(
            d.get("noise"),
            d.get("rir"),
            max(n, 1),
            (low, high),
            int(d.get("copies", 1)),
            seed,
            base,
            tuple(babble_pool) if n else (),
            t60,
        )


_DEGRADERS: dict[tuple[int, int], Degrader] = {}


def _degrader(sr: int, pool: tuple[Clip, ...]) -> Degrader:
    """One Degrader (and its loaded sounds) per rate and pool, for the augmentation's calls."""
    key = (int(sr), id(pool))
    if key not in _DEGRADERS:
        _DEGRADERS[key] = Degrader(sr, babble_pool=pool)
    return _DEGRADERS[key]


__all__ = ["KINDS", "Degrader", "RoomAugmentation", "Step", "audio_files", "parse_condition"]
