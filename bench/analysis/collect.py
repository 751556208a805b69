"""Gather record and reference files from paths given on the command line, for `compare` and `report`.

A PATH is a file or a folder (walked recursively for *.json). A file whose JSON says `"kind": "reference"` is a
published figure (bench.analysis.reference), any other is a result record (bench.records.schema, loaded strictly);
both are physics checked (bench.analysis.physics).
A run's journal (*.journal.jsonl) is skipped: `t2vbench recover` turns it into a record. Anything that cannot be
used is listed once as skipped, with its one-line reason; nothing here raises for a bad file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from bench.analysis.physics import check_reference, load_checked, with_system_precision
from bench.analysis.reference import Reference, parse_reference, published_row
from bench.core.errors import UsageError
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.core.text import shown
from bench.records.fingerprint import content_hash
from bench.records.schema import MAX_RECORD_BYTES, ResultRecord

MAX_FILES = 10_000  # a registry is walked file by file; bound the walk
JOURNAL_SUFFIX = ".journal.jsonl"


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What the paths held: records and references with their paths, and one line per file left out."""

    records: tuple[tuple[Path, ResultRecord], ...]
    references: tuple[tuple[Path, Reference], ...]
    skipped: tuple[str, ...]


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """The files under paths: a file as given, a folder's *.json recursively (sorted). Each file once.
    Raises UsageError for a path that does not exist or a walk past MAX_FILES."""
    out: dict[Path, Path] = {}
    for given in map(Path, paths):
        if given.is_dir():
            # every name that matches, regular file or not: a folder named x.json, a named pipe or a loop of links is
            # skipped by its reader with a line saying what it is, never left out in silence
            found = sorted(given.rglob("*.json"))
        elif given.exists():
            found = [given]
        else:
            # the path as typed, whole (a shortened one could hide the very name that is wrong), escaped
            raise UsageError(f"{shown(str(given), limit=4096)}: no such file or folder; give record files or "
                             "folders (default ./results)")
        for p in found:
            out.setdefault(Path(os.path.realpath(p)), p)  # Path.resolve raises on a loop of links
        if len(out) > MAX_FILES:
            raise UsageError(f"{shown(str(given))}: more than {MAX_FILES} files; give a smaller folder")
    return list(out.values())


def _is_reference(raw: bytes) -> bool:
    """Whether the file claims to be a reference; the loaders judge the rest (and word any error)."""

    try:
        data = loads_strict(raw, "file")
    except UsageError:
        return False  # load_record words the error
    return isinstance(data, dict) and data.get("kind") == "reference"


def load_one(path: Path) -> ResultRecord | Reference:
    """A record or a reference from one file. Raises UsageError naming the file and the reason."""
    if path.name.endswith(JOURNAL_SUFFIX):
        raise UsageError(f"{path}: a run's journal, not a record; 't2vbench recover' turns it into one")
    raw = read_bounded(path, MAX_RECORD_BYTES, "record")  # a FIFO, a folder, a loop of links: said, never read
    if _is_reference(raw):
        return check_reference(parse_reference(raw, str(path)), str(path))
    return load_checked(path)


class Seen:
    """What a reader of many files has counted: a run met twice counts once, by the same run_id (a copy beside the
    registry) or the same measurements under another one (a copy given a new id, label or date:
    bench.records.fingerprint, the registry's own rule), and a published row once (reference.published_row: a copy
    under another source id). Counted twice, a copy would pool its generations or its figure twice and narrow every
    interval or move every median drawn from them."""

    def __init__(self) -> None:
        self._firsts: dict[object, Path] = {}

    def repeat(self, path: Path, item: ResultRecord | Reference) -> str | None:
        """The skip line of an item met before (naming the file it repeats), else None, remembering it."""
        if isinstance(item, Reference):
            keys = [(("row",) + published_row(item), "the same published figures as {} under another name")]
        else:
            keys = [(("run", item.run_id), f"the same run (run_id {item.run_id}) as {{}}"),
                    (("measured", content_hash(item)), "the same measurements as {} under another run_id")]
        for key, what in keys:
            if key in self._firsts:
                return f"{path}: {what.format(self._firsts[key])}; counted once"
        self._firsts.update((key, path) for key, _ in keys)
        return None


def incomplete_note(path: Path, record: ResultRecord) -> str:
    """The skip line of an incomplete run: every reader of many files uses complete runs only, and says so."""
    why = f" ({record.incomplete_reason})" if record.incomplete_reason else ""
    return f"{path}: an incomplete run{why}; only complete runs are used"


def load(paths: Sequence[str | Path]) -> Loaded:
    """Every usable record and reference under paths, each run and published row once (Seen); the rest skipped with
    a reason. Raises UsageError only for a path that does not exist."""
    records, references, skipped = [], [], []
    seen = Seen()
    for path in expand(paths):
        try:
            item = load_one(path)
        except UsageError as exc:
            skipped.append(str(exc))
            continue
        if isinstance(item, ResultRecord) and not item.complete:
            skipped.append(incomplete_note(path, item))
        elif (repeat := seen.repeat(path, item)) is not None:
            skipped.append(repeat)
        elif isinstance(item, Reference):
            references.append((path, item))
        else:
            records.append((path, item))
    return Loaded(tuple(records), with_system_precision(references), tuple(skipped))


def skipped_note(skipped: Sequence[str]) -> str:
    """The end of a 'nothing to show' error: how many files were skipped and the first one's reason (every reader of
    many files says it so), or '' when none was."""
    return f"; {len(skipped)} file(s) skipped, e.g. {skipped[0]}" if skipped else ""
