"""Test helpers: the real corpora in ../shared/data and small trees of real speech written
with other corpora's file names, rates, bit depths and channel counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
EMODB = DATA / "emodb"
RAVDESS = DATA / "ravdess"
TESS = DATA / "tess"
TUREV = DATA / "turev"
NOISE = DATA / "noise" / "urbansound8k"
RIR = DATA / "rir"


def emodb_files(speakers: tuple[str, ...], per_speaker: int) -> list[Path]:
    """The first ``per_speaker`` files of each speaker, spread over the emotions."""
    out = []
    for s in speakers:
        files = sorted((EMODB / "wav").glob(f"{s}*.wav"), key=lambda p: (p.stem[5], p.stem))
        by_emotion: dict[str, list[Path]] = {}
        for f in files:
            by_emotion.setdefault(f.stem[5], []).append(f)
        picked: list[Path] = []
        while len(picked) < per_speaker and any(by_emotion.values()):
            for e in sorted(by_emotion):
                if by_emotion[e] and len(picked) < per_speaker:
                    picked.append(by_emotion[e].pop(0))
        out += picked
    return out


def write_as(src: Path, dst: Path, *, sr: int = 16000, subtype: str = "PCM_16", channels: int = 1) -> Path:
    """Writes real speech from ``src`` to ``dst`` at another rate / bit depth / channel count."""
    from ser_edge.audio import load

    y, _ = load(src, sr=sr)
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, data, sr, subtype=subtype)
    return dst
