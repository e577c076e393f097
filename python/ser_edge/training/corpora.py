"""Corpora: the clips of a corpus with canonical label, speaker and gender from its file names.

=========  ==================================================================================
name       layout (``data_dir``)
=========  ==================================================================================
emodb      ``SSTTTEV.wav`` anywhere below (e.g. ``wav/03a01Fa.wav``): speaker ``SS``, emotion
           letter ``E`` (W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral)
ravdess    ``MM-VV-EE-II-SS-RR-AA.(wav|flac)`` (e.g. ``Actor_01/03-01-05-02-01-01-01.flac``):
           speech files only (``VV`` = 01), emotion ``EE`` 01-08, actor ``AA`` (odd male)
tess       ``SPK_word_emotion.(wav|flac)`` (e.g. ``OAF_back_angry.wav``, ``YAF_dog_ps.wav``), two
           female speakers OAF and YAF; ``ps`` = pleasant surprise (-> ``surprised``); the
           distribution's one ``OA_bite_neutral`` is speaker OAF
turev      ``<Emotion>/<speaker>_<code>_<word>.flac`` (TurEV-DB, e.g. ``Calm/1234_sk_acik.flac``):
           speaker = the number before the first underscore; folders Angry, Calm, Happy, Sad.
           ``Calm`` is the corpus's neutral class (it has no other) -> ``neutral``; gender unknown
cremad     ``AAAA_SSS_EEE_II.wav`` (e.g. ``1001_DFA_ANG_XX.wav``): actor, sentence, emotion
           ANG/DIS/FEA/HAP/NEU/SAD; gender from ``VideoDemographics.csv`` (ActorID, Sex) in
           ``data_dir`` or its parent when present, else unknown
savee      ``SPK_eNN.wav`` (Kaggle layout) or ``SPK/eNN.wav`` (original ``AudioData/``), speakers
           DC, JE, JK, KL (male); e = a, d, f, h, n, sa, su
folder     ``data_dir/<emotion>/[<speaker>/]*.wav``: one sub-folder per emotion, its name matched
           with :func:`ser_edge.labels.canonical` (Anger/Angry, Happiness/Happy, ...)
csv        a CSV file ``path,label[,speaker[,gender]]`` (header row optional); relative paths
           are relative to the CSV file's folder
=========  ==================================================================================

Audio files: ``.wav``, ``.flac``, ``.ogg`` of any rate, bit depth and channel count (read by
:func:`ser_edge.audio.load`). Files whose names do not follow a corpus's convention raise
``ValueError`` naming the file; an empty corpus raises ``ValueError``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

from ser_edge.labels import canonical, group

PathLike = Union[str, "os.PathLike[str]"]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
CORPORA = ("emodb", "ravdess", "tess", "turev", "cremad", "savee", "folder", "csv")


@dataclass(frozen=True)
class Clip:
    """One labelled recording. ``label`` is canonical (or a group name after :func:`grouped`);
    ``speaker`` is the corpus's own speaker id (``""`` when unknown); ``gender`` is ``"f"``,
    ``"m"`` or ``None``."""

    path: str
    label: str
    speaker: str
    gender: str | None
    corpus: str

    @property
    def speaker_key(self) -> str:
        """``corpus/speaker``: unique across corpora (speaker statistics are kept per key)."""
        return f"{self.corpus}/{self.speaker}"


def load_corpus(name: str, data_dir: PathLike) -> list[Clip]:
    """The clips of corpus ``name`` (one of :data:`CORPORA`) under ``data_dir``, sorted by path."""
    if name not in _LOADERS:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    root = Path(os.fspath(data_dir))
    if not root.exists():
        raise ValueError(f"{root}: no such {'file' if name == 'csv' else 'directory'} for corpus {name!r}")
    if name != "csv" and not root.is_dir():
        raise ValueError(f"{root}: corpus {name!r} needs a directory")
    clips = _LOADERS[name](root)
    if not clips:
        raise ValueError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) for corpus {name!r}")
    return sorted(clips, key=lambda c: c.path)


def grouped(clips: Iterable[Clip], grouping: str) -> list[Clip]:
    """Clips relabelled with their group in ``grouping`` (:data:`ser_edge.labels.GROUPINGS`);
    clips whose label the grouping leaves out are dropped."""
    out = []
    for c in clips:
        g = group(c.label, grouping)
        if g is not None:
            out.append(replace(c, label=g))
    return out


def _audio_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def _bad(path: Path, corpus: str, rule: str) -> ValueError:
    return ValueError(f"{path}: not a {corpus} file name ({rule})")


EMODB_EMOTIONS = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
EMODB_GENDER = {
    "03": "m",
    "08": "f",
    "09": "f",
    "10": "m",
    "11": "m",
    "12": "m",
    "13": "f",
    "14": "f",
    "15": "m",
    "16": "f",
}


def _emodb(root: Path) -> list[Clip]:
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"(\d\d)([ab]\d\d)([WLEAFTN])([a-z])", p.stem)
        if not m:
            raise _bad(p, "EMO-DB", "SSTTTEV, e.g. 03a01Fa.wav")
        spk = m.group(1)
        out.append(Clip(str(p), EMODB_EMOTIONS[m.group(3)], spk, EMODB_GENDER.get(spk), "emodb"))
    return out


RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def _ravdess(root: Path) -> list[Clip]:
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)", p.stem)
        if not m:
            raise _bad(p, "RAVDESS", "MM-VV-EE-II-SS-RR-AA, e.g. 03-01-05-02-01-01-12.flac")
        if m.group(2) != "01":  # song
            continue
        actor = m.group(7)
        out.append(
            Clip(str(p), RAVDESS_EMOTIONS[int(m.group(3)) - 1], actor, "m" if int(actor) % 2 else "f", "ravdess")
        )
    return out


TESS_SPEAKERS = ("OAF", "YAF")


def _tess(root: Path) -> list[Clip]:
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"([A-Za-z]{2,3})_([A-Za-z']+)_([A-Za-z_]+)", p.stem)
        spk = m.group(1).upper() if m else ""
        spk = spk + "F" if spk + "F" in TESS_SPEAKERS else spk  # "OA_bite_neutral" in the distribution
        if not m or spk not in TESS_SPEAKERS:
            raise _bad(p, "TESS", "SPK_word_emotion with SPK OAF or YAF, e.g. OAF_back_angry.wav")
        out.append(Clip(str(p), _label(m.group(3), p), spk, "f", "tess"))
    return out


#: TurEV-DB's folders; it has no neutral class other than Calm, which is read as neutral.
TUREV_EMOTIONS = {"angry": "angry", "calm": "neutral", "happy": "happy", "sad": "sad"}


def _turev(root: Path) -> list[Clip]:
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"(\d+)_([^_]+)_(.+)", p.stem)
        emotion = TUREV_EMOTIONS.get(p.parent.name.lower())
        if not m or emotion is None:
            raise _bad(p, "TurEV-DB", "<Angry|Calm|Happy|Sad>/<speaker>_<code>_<word>, e.g. Calm/1234_sk_acik.flac")
        out.append(Clip(str(p), emotion, m.group(1), None, "turev"))
    return out


CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def _cremad(root: Path) -> list[Clip]:
    genders = _cremad_genders(root)
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})", p.stem)
        if not m or m.group(3) not in CREMAD_EMOTIONS:
            raise _bad(p, "CREMA-D", "AAAA_SSS_EEE_II with EEE in ANG/DIS/FEA/HAP/NEU/SAD, e.g. 1001_DFA_ANG_XX.wav")
        out.append(Clip(str(p), CREMAD_EMOTIONS[m.group(3)], m.group(1), genders.get(m.group(1)), "cremad"))
    return out


def _cremad_genders(root: Path) -> dict[str, str]:
    for f in (root / "VideoDemographics.csv", root.parent / "VideoDemographics.csv"):
        if f.is_file():
            with open(f, newline="", encoding="utf-8-sig") as fh:
                rows = csv.DictReader(fh)
                return {
                    str(r.get("ActorID", "")).strip(): str(r.get("Sex", "")).strip()[:1].lower()
                    for r in rows
                    if r.get("Sex")
                }
    return {}


SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")


def _savee(root: Path) -> list[Clip]:
    out = []
    for p in _audio_files(root):
        m = re.fullmatch(r"(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d\d)", p.stem)
        spk = (m.group(1) or p.parent.name) if m else ""
        if not m or spk not in SAVEE_SPEAKERS:
            raise _bad(p, "SAVEE", "DC_a01.wav or DC/a01.wav; speakers DC, JE, JK, KL; emotions a d f h n sa su")
        out.append(Clip(str(p), SAVEE_EMOTIONS[m.group(2)], spk, "m", "savee"))
    return out


def _folder(root: Path) -> list[Clip]:
    out = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        try:
            label = canonical(sub.name)
        except ValueError as e:
            raise ValueError(f"{sub}: the folder name is not an emotion ({e})") from None
        for p in _audio_files(sub):
            rel = p.relative_to(sub).parts
            out.append(Clip(str(p), label, rel[0] if len(rel) > 1 else "", None, "folder"))
    return out


def _csv(path: Path) -> list[Clip]:
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise ValueError(f"{path}: give the CSV file (the folder holds {len(found)} .csv files)")
        path = found[0]
    out = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if n == 1 and row[0].lower() in ("path", "file", "filename"):
                continue
            if len(row) < 2 or len(row) > 4 or not row[0]:
                raise ValueError(f"{path}:{n}: expected path,label[,speaker[,gender]]; got {row}")
            p = Path(row[0]) if Path(row[0]).is_absolute() else path.parent / row[0]
            if not p.is_file():
                raise ValueError(f"{path}:{n}: no such audio file {p}")
            try:
                label = canonical(row[1])
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
            gender = row[3].lower()[:1] if len(row) > 3 and row[3] else None
            if gender not in (None, "f", "m"):
                raise ValueError(f"{path}:{n}: gender {row[3]!r} must be f/female or m/male")
            out.append(Clip(str(p), label, row[2] if len(row) > 2 else "", gender, "csv"))
    return out


def _label(name: str, path: Path) -> str:
    try:
        return canonical(name)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


_LOADERS: dict[str, Callable[[Path], list[Clip]]] = {
    "emodb": _emodb,
    "ravdess": _ravdess,
    "tess": _tess,
    "turev": _turev,
    "cremad": _cremad,
    "savee": _savee,
    "folder": _folder,
    "csv": _csv,
}

__all__ = ["AUDIO_EXTENSIONS", "CORPORA", "Clip", "grouped", "load_corpus"]
