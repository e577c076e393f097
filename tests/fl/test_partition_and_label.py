"""Client data: partitions of a corpus into clients, and the labelling of recorded clips into
the CSV corpus a SuperNode reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fl_support import EMODB

from ser_edge.fl.task import partition


@pytest.fixture(scope="module")
def emodb_clips() -> list:
    from ser_edge.training.corpora import load_corpus

    return load_corpus("emodb", EMODB)


def test_speaker_partition_keeps_speakers_whole(emodb_clips: list) -> None:
    parts = [partition(emodb_clips, i, 4) for i in range(4)]
    speakers = [{c.speaker for c in p} for p in parts]
    assert all(not (a & b) for i, a in enumerate(speakers) for b in speakers[i + 1 :])
    assert sum(map(len, parts)) == len(emodb_clips)


def test_more_clients_than_speakers_split_each_speaker(emodb_clips: list) -> None:
    parts = [partition(emodb_clips, i, 25) for i in range(25)]
    assert all(len({c.speaker for c in p}) == 1 for p in parts)  # still one voice per client
    assert sorted(c.path for p in parts for c in p) == sorted(c.path for c in emodb_clips)


def test_iid_partition_mixes_speakers_and_is_reproducible(emodb_clips: list) -> None:
    parts = [partition(emodb_clips, i, 3, "iid", seed=1) for i in range(3)]
    assert all(len({c.speaker for c in p}) == 10 for p in parts)
    assert sorted(c.path for p in parts for c in p) == sorted(c.path for c in emodb_clips)
    assert partition(emodb_clips, 1, 3, "iid", seed=1) == parts[1]
    with pytest.raises(ValueError, match="partition-id=3"):
        partition(emodb_clips, 3, 3)


def _recordings(tmp_path: Path) -> Path:
    """Three recordings as ``ser-edge listen --record-dir`` leaves them (audio + event JSON)."""
    rec = tmp_path / "rec"
    rec.mkdir()
    for name, src, guess in (
        ("20260101T100000_000001Z-angry", "03a01Wa.wav", "angry"),
        ("20260101T100005_000001Z-sad", "03a01Fa.wav", "sad"),
        ("20260101T100009_000001Z-neutral", "03a01Nc.wav", "neutral"),
    ):
        shutil.copy(EMODB / "wav" / src, rec / f"{name}.wav")
        (rec / f"{name}.json").write_text(json.dumps({"type": "utterance", "label": guess}))
    return rec


def label(rec: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ser_edge", "fl", "label", str(rec), *args],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_label_recordings_interactively_into_a_csv_corpus(tmp_path: Path) -> None:
    from ser_edge.training.corpora import load_corpus

    rec = _recordings(tmp_path)
    # Enter accepts the prediction; "5" is the 5th canonical label (angry); "nonsense" is asked again
    r = label(rec, "--speaker", "me", answers="\nnonsense\n5\nq\n")
    assert r.returncode == 0, r.stderr
    assert "unknown emotion label 'nonsense'" in r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["labelled"] == 2
    clips = load_corpus("csv", rec / "labels.csv")
    assert [(Path(c.path).name[:15], c.label, c.speaker) for c in clips] == [
        ("20260101T100000", "angry", "me"),
        ("20260101T100005", "angry", "me"),
    ]
    # again: the labelled files are skipped, "s" skips, end of input stops
    r = label(rec, "--speaker", "me", answers="s\n")
    assert json.loads(r.stdout.splitlines()[-1]) | {"node_config": ""} == {
        "labelled": 0,
        "skipped": 1,
        "total": 1,
        "csv": str(rec / "labels.csv"),
        "node_config": "",
    }
    r = label(rec, "--label", "calm", "--speaker", "me")
    assert json.loads(r.stdout.splitlines()[-1])["labelled"] == 1
    assert [c.label for c in load_corpus("csv", rec / "labels.csv")] == ["angry", "angry", "calm"]


def test_label_errors_are_clear(tmp_path: Path) -> None:
    r = label(tmp_path / "missing", "--label", "sad")
    assert r.returncode == 2 and "no such directory" in r.stderr
    r = label(_recordings(tmp_path), "--label", "grumpy")
    assert r.returncode == 2 and "unknown emotion label 'grumpy'" in r.stderr


def test_the_fl_commands_import_nothing_heavy() -> None:
    code = (
        "import sys, ser_edge.fl.cli, ser_edge.fl; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flwr', 'tensorflow', 'tf_keras', 'ray', 'numpy'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_cross_validation_folds_hold_out_every_speaker_once(emodb_clips: list) -> None:
    from ser_edge.fl.bench import speaker_folds

    speakers = sorted({c.speaker for c in emodb_clips})
    folds = speaker_folds(speakers, 5)
    assert sorted(s for f in folds for s in f) == speakers
    assert [len(f) for f in folds] == [2] * 5 and folds[-1] == ["15", "16"]
    assert [len(f) for f in speaker_folds(speakers, 3)] == [4, 3, 3]
    with pytest.raises(ValueError, match="--folds 11"):
        speaker_folds(speakers, 11)
