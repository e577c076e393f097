"""Corpus loaders on the real corpora and on small trees of real speech with other corpora's
file-name conventions, sample rates, bit depths and channel counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from training_data import EMODB, RAVDESS, TESS, TUREV, emodb_files, write_as

from ser_edge.audio import load
from ser_edge.labels import CANONICAL, group_labels
from ser_edge.training.corpora import CORPORA, grouped, load_corpus


def test_emodb_labels_speakers_gender() -> None:
    clips = load_corpus("emodb", EMODB)
    assert len(clips) == 535
    assert Counter(c.label for c in clips) == {
        "angry": 127,
        "boredom": 81,
        "neutral": 79,
        "happy": 71,
        "fearful": 69,
        "sad": 62,
        "disgust": 46,
    }
    assert sorted({c.speaker for c in clips}) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert {c.gender for c in clips if c.speaker == "08"} == {"f"} and {
        c.gender for c in clips if c.speaker == "03"
    } == {"m"}
    c = next(c for c in clips if c.path.endswith("03a01Wa.wav"))
    assert (c.label, c.speaker, c.corpus, c.speaker_key) == ("angry", "03", "emodb", "emodb/03")


def test_ravdess_labels_speakers_gender() -> None:
    clips = load_corpus("ravdess", RAVDESS)
    assert len(clips) == 1200
    counts = Counter(c.label for c in clips)
    assert counts["neutral"] == 80 and all(counts[k] == 160 for k in CANONICAL[1:8])
    assert len({c.speaker for c in clips}) == 20
    c = next(c for c in clips if c.path.endswith("03-01-05-02-01-01-12.flac"))
    assert (c.label, c.speaker, c.gender) == ("angry", "12", "f")
    assert {c.gender for c in clips if c.speaker == "17"} == {"m"}


def test_tess_real_names() -> None:
    clips = load_corpus("tess", TESS)
    assert len(clips) == 1399
    assert {c.speaker for c in clips} == {"OAF", "YAF"} and {c.gender for c in clips} == {"f"}
    counts = Counter((c.speaker, c.label) for c in clips)
    assert set(counts) == {
        (s, e) for s in ("OAF", "YAF") for e in ("angry", "disgust", "fearful", "happy", "neutral", "surprised", "sad")
    }
    odd = next(c for c in clips if c.path.endswith("OA_bite_neutral.flac"))  # the distribution's quirk
    assert (odd.speaker, odd.label) == ("OAF", "neutral")
    ps = next(c for c in clips if c.path.endswith("YAF_dog_ps.flac"))
    assert ps.label == "surprised"
    # Each folder <SPK>_<emotion> holds only its own speaker and emotion.
    for c in clips:
        folder = Path(c.path).parent.name
        assert folder.startswith(c.speaker + "_")
        assert c.label == (
            "surprised"
            if folder.endswith("pleasant_surprise")
            else {"fear": "fearful"}.get(folder.split("_", 1)[1], folder.split("_", 1)[1])
        )


def test_turev_speakers_and_calm_as_neutral() -> None:
    clips = load_corpus("turev", TUREV)
    assert len(clips) == 1735
    assert Counter(c.label for c in clips) == {"angry": 487, "neutral": 408, "happy": 357, "sad": 483}
    assert sorted({c.speaker for c in clips}) == ["1157", "1234", "1358", "1984", "6783", "7895"]
    assert {c.gender for c in clips} == {None} and {c.corpus for c in clips} == {"turev"}
    c = next(c for c in clips if c.path.endswith("Calm/1234_sk_acik.flac"))
    assert (c.label, c.speaker, c.speaker_key) == ("neutral", "1234", "turev/1234")
    assert set(grouped(clips, "4class")) == set(clips)  # all four classes are in the 4-class grouping


def test_tess_and_turev_reject_other_names(tmp_path: Path, speech: list[Path]) -> None:
    write_as(speech[0], tmp_path / "t" / "XYZ_back_angry.wav")
    with pytest.raises(ValueError, match="XYZ_back_angry.wav: not a TESS file name"):
        load_corpus("tess", tmp_path / "t")
    write_as(speech[0], tmp_path / "u" / "Bored" / "1234_sk_acik.wav")
    with pytest.raises(ValueError, match="1234_sk_acik.wav: not a TurEV-DB file name"):
        load_corpus("turev", tmp_path / "u")
    write_as(speech[0], tmp_path / "v" / "Angry" / "abc.wav")
    with pytest.raises(ValueError, match="abc.wav: not a TurEV-DB file name"):
        load_corpus("turev", tmp_path / "v")


@pytest.fixture(scope="module")
def speech() -> list[Path]:
    return emodb_files(("03", "08"), 4)


def test_tess_tree(tmp_path: Path, speech: list[Path]) -> None:
    names = ["OAF_back_angry.wav", "OAF_dog_ps.wav", "YAF_back_Fear.wav", "YAF_road_neutral.wav"]
    for src, name in zip(speech, names):
        write_as(src, tmp_path / f"{name.split('_')[0]}_x" / name, sr=24414, subtype="PCM_16")
    clips = load_corpus("tess", tmp_path)
    assert [(c.speaker, c.label, c.gender) for c in clips] == [
        ("OAF", "angry", "f"),
        ("OAF", "surprised", "f"),
        ("YAF", "fearful", "f"),
        ("YAF", "neutral", "f"),
    ]
    y, sr = load(clips[0].path, sr=16000)
    assert sr == 16000 and y.ndim == 1 and len(y) > 16000


def test_cremad_tree_with_demographics(tmp_path: Path, speech: list[Path]) -> None:
    names = ["1001_DFA_ANG_XX.wav", "1001_IEO_HAP_HI.wav", "1002_TIE_SAD_LO.wav", "1002_DFA_NEU_XX.wav"]
    for src, name in zip(speech, names):
        write_as(src, tmp_path / "AudioWAV" / name, sr=16000, subtype="PCM_24")
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,C,N\n1002,21,Female,C,N\n"
    )
    clips = load_corpus("cremad", tmp_path)
    assert [(c.speaker, c.label, c.gender) for c in clips] == [
        ("1001", "angry", "m"),
        ("1001", "happy", "m"),
        ("1002", "neutral", "f"),
        ("1002", "sad", "f"),
    ]
    # Without the demographics file the gender is unknown, not guessed.
    clips = load_corpus("cremad", tmp_path / "AudioWAV")
    assert {c.gender for c in clips} == {"m", "f"}  # found in the parent folder
    (tmp_path / "VideoDemographics.csv").unlink()
    assert {c.gender for c in load_corpus("cremad", tmp_path)} == {None}


def test_savee_both_layouts(tmp_path: Path, speech: list[Path]) -> None:
    write_as(speech[0], tmp_path / "ALL" / "DC_a01.wav", sr=44100, channels=2)
    write_as(speech[1], tmp_path / "ALL" / "JK_su15.wav", sr=44100, subtype="FLOAT")
    write_as(speech[2], tmp_path / "AudioData" / "KL" / "sa03.wav", sr=8000, subtype="PCM_U8")
    clips = load_corpus("savee", tmp_path)
    assert sorted((c.speaker, c.label) for c in clips) == [("DC", "angry"), ("JK", "surprised"), ("KL", "sad")]
    for c in clips:
        y, sr = load(c.path, sr=16000)
        assert y.ndim == 1 and sr == 16000 and np.isfinite(y).all() and np.abs(y).max() > 0.01


def test_folder_synonyms_and_speakers(tmp_path: Path, speech: list[Path]) -> None:
    write_as(speech[0], tmp_path / "Anger" / "a.wav")
    write_as(speech[1], tmp_path / "Happiness" / "spk1" / "b.flac")
    write_as(speech[2], tmp_path / "SAD" / "spk2" / "c.wav", sr=48000, channels=2)
    (tmp_path / "Happiness" / "notes.txt").write_text("not audio")
    clips = load_corpus("folder", tmp_path)
    assert [(c.label, c.speaker) for c in clips] == [("angry", ""), ("happy", "spk1"), ("sad", "spk2")]
    (tmp_path / "Misc").mkdir()
    with pytest.raises(ValueError, match="Misc.*not an emotion"):
        load_corpus("folder", tmp_path)


def test_csv_with_and_without_header(tmp_path: Path, speech: list[Path]) -> None:
    a = write_as(speech[0], tmp_path / "audio" / "a.wav")
    b = write_as(speech[1], tmp_path / "audio" / "b.wav")
    (tmp_path / "list.csv").write_text(f"path,label,speaker\naudio/a.wav,Anger,s1\n{b},joy,s2\n")
    clips = load_corpus("csv", tmp_path / "list.csv")
    assert [(Path(c.path).name, c.label, c.speaker) for c in clips] == [
        ("a.wav", "angry", "s1"),
        ("b.wav", "happy", "s2"),
    ]
    (tmp_path / "two.csv").write_text("audio/a.wav,sad\n")
    assert [(c.label, c.speaker, c.gender) for c in load_corpus("csv", tmp_path / "two.csv")] == [("sad", "", None)]
    assert a.exists()


@pytest.mark.parametrize(
    "content, match",
    [
        ("audio/missing.wav,angry\n", "no such audio file"),
        ("audio/a.wav,grumpy\n", "unknown emotion label 'grumpy'"),
        ("audio/a.wav\n", "expected path,label"),
        ("audio/a.wav,angry,s1,x\n", "gender 'x'"),
    ],
)
def test_csv_errors(tmp_path: Path, speech: list[Path], content: str, match: str) -> None:
    write_as(speech[0], tmp_path / "audio" / "a.wav")
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        load_corpus("csv", tmp_path / "bad.csv")


def test_bad_names_and_paths(tmp_path: Path, speech: list[Path]) -> None:
    with pytest.raises(ValueError, match="unknown corpus 'timit'"):
        load_corpus("timit", tmp_path)
    with pytest.raises(ValueError, match="no such directory"):
        load_corpus("emodb", tmp_path / "nope")
    with pytest.raises(ValueError, match="no audio files"):
        load_corpus("emodb", tmp_path)
    write_as(speech[0], tmp_path / "e" / "hello.wav")
    for name in ("emodb", "ravdess", "tess", "cremad", "savee"):
        with pytest.raises(ValueError, match="hello.wav: not a"):
            load_corpus(name, tmp_path / "e")
    assert set(CORPORA) == {"emodb", "ravdess", "tess", "turev", "cremad", "savee", "folder", "csv"}


@pytest.mark.parametrize("grouping", ["4class", "3class", "2class", "quadrants"])
def test_groupings(grouping: str) -> None:
    clips = load_corpus("emodb", EMODB)
    g = grouped(clips, grouping)
    assert {c.label for c in g} <= set(group_labels(grouping))
    if grouping == "4class":
        assert len(g) == 127 + 79 + 71 + 62  # angry, neutral, happy, sad
    else:
        assert len(g) == len(clips)
    if grouping == "3class":
        assert Counter(c.label for c in g)["positive"] == 71
