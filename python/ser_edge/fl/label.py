"""Labelling clips recorded on the device (``ser-edge listen --record-dir DIR``) into a CSV in
the ``csv`` corpus format (``path,label,speaker``), the data a SuperNode trains on.

Each recording ``<time>-<predicted>.wav`` has its event ``.json`` beside it; the predicted label
is offered as the default answer. Rows already in the CSV are kept and their files skipped, and
the CSV is rewritten (atomically) after every answer, so quitting loses nothing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from ser_edge.labels import CANONICAL, canonical

AUDIO = (".wav", ".flac", ".ogg")
HEADER = ("path", "label", "speaker")


def read_rows(path: Path) -> list[tuple[str, str, str]]:
    """Rows of an existing labels CSV (header skipped)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [tuple((r + ["", "", ""])[:3]) for r in csv.reader(fh) if r and any(r)]
    return [r for r in rows if r[0].lower() != "path"]  # type: ignore[misc]


def write_rows(path: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    os.replace(tmp, path)


def predicted(audio: Path) -> str | None:
    """The label the daemon predicted for a recording (its event JSON), if any."""
    try:
        label = json.loads(audio.with_suffix(".json").read_text(encoding="utf-8")).get("label")
        return canonical(label) if label else None
    except (OSError, ValueError, AttributeError):
        return None


def parse_answer(answer: str, default: str | None) -> str | None:
    """A canonical label from an answer: a label name or synonym, its number in
    :data:`CANONICAL` (1-based), or empty for ``default``. ``None`` = skip. Raises ValueError."""
    a = answer.strip()
    if not a:
        if default is None:
            raise ValueError("no predicted label to accept: type a label")
        return default
    if a.lower() in ("s", "skip"):
        return None
    if a.isdigit() and 1 <= int(a) <= len(CANONICAL):
        return CANONICAL[int(a) - 1]
    return canonical(a)


def label_dir(
    directory: Path,
    *,
    csv_path: Path | None = None,
    speaker: str = "device",
    label: str | None = None,
    ask: Callable[[str], str] | None = None,
    out: TextIO | None = None,
) -> dict[str, int]:
    """Labels the unlabelled recordings of ``directory``: all with ``label``, else one by one
    through ``ask(prompt) -> answer`` (``q`` stops). Returns counts of labelled/skipped/total."""
    if not directory.is_dir():
        raise ValueError(f"{directory}: no such directory")
    csv_path = csv_path or directory / "labels.csv"
    fixed = canonical(label) if label else None
    rows = read_rows(csv_path)
    done = {str((csv_path.parent / r[0]).resolve()) for r in rows}
    files = sorted(
        p for p in directory.rglob("*") if p.suffix.lower() in AUDIO and p.is_file() and str(p.resolve()) not in done
    )
    menu = "  ".join(f"{i}={c}" for i, c in enumerate(CANONICAL, 1))
    labelled = skipped = 0
    for n, f in enumerate(files, 1):
        guess = predicted(f)
        if fixed is not None:
            answer: str | None = fixed
        else:
            if ask is None:
                raise ValueError("give --label, or answer on stdin")
            while True:
                reply = ask(f"[{n}/{len(files)}] {f.name} ({menu}; Enter={guess or '-'}, s=skip, q=quit): ")
                if reply.strip().lower() in ("q", "quit"):
                    return {"labelled": labelled, "skipped": skipped, "total": len(files)}
                try:
                    answer = parse_answer(reply, guess)
                    break
                except ValueError as e:
                    if out is not None:
                        print(f"  {e}", file=out)
        if answer is None:
            skipped += 1
            continue
        try:
            rel = os.path.relpath(f.resolve(), csv_path.parent.resolve())
        except ValueError:
            rel = str(f.resolve())
        rows.append((rel, answer, speaker))
        write_rows(csv_path, rows)
        labelled += 1
    return {"labelled": labelled, "skipped": skipped, "total": len(files)}
