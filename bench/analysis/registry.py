"""The results registry: the file system is the database (as asv's is).

    results/<hardware-class>/<model>/<settings-key>/<created>-<run-id>.json   accepted measurements
    results/toy/<hardware-class>/<model>/<settings-key>/...                    CPU or tiny runs, with --allow-toy
    results/reference/...                                                      published figures (bench.analysis.reference)

`submit` is the gate: a record from a stranger is filed only if it loads strictly (schema, summaries recomputed from
raw timings, telemetry recomputed from its series), physics allows it (bench.analysis.physics: no stage faster than its
counted FLOPs at the class's peak, every energy between the class's idle floor and its board power, the GPU its
environment and telemetry name that of its class), it is complete, it can be checked (a model from models/, a
hardware class from the catalogue), and it is not already filed (same run id or same content).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

from bench.analysis.collect import expand
from bench.analysis.physics import load_checked
from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.specs import load_spec
from bench.records.fingerprint import content_hash, step_shape
from bench.records.io import record_json, write_new
from bench.records.key import settings_key
from bench.records.schema import ResultRecord

TOY_DIR = "toy"
REFERENCE_DIR = "reference"


@dataclasses.dataclass(frozen=True)
class Filed:
    source: Path
    path: Path | None  # None when refused
    reason: str | None = None  # why it was refused
    note: str | None = None  # accepted, but worth saying (e.g. a toy filed apart)


def place(record: ResultRecord, root: Path) -> Path:
    """Where a record belongs in the registry."""
    base = root / TOY_DIR if record.is_toy else root
    stamp = record.created_utc.replace("-", "").replace(":", "")
    return base / record.hardware_class.replace(":", "-") / record.spec.name / settings_key(record) / \
        f"{stamp}-{record.run_id}.json"


def check(record: ResultRecord, allow_toy: bool) -> str | None:
    """Why the registry must refuse this (strictly loaded) record, or None."""

    if not record.complete:
        return f"incomplete ({record.incomplete_reason}): only complete runs are filed"
    if (short := record.generations_short()) is not None:  # the rule recover and the run apply too
        return f"complete with {short}: the record contradicts itself"
    if record.is_toy and not allow_toy:
        what = "a CPU run" if record.is_cpu else f"the tiny spec '{record.spec.name}'"
        return f"made with {what}: it says nothing about GPU cost; measure a real model on a GPU (or --allow-toy)"
    if not record.environment or record.hardware_class == "unknown":
        return "no environment or hardware class: a record must say what it ran on"
    try:
        spec = load_spec(record.spec.name)
    except UsageError:
        return f"model '{record.spec.name}' is not in models/: its FLOPs cannot be counted to check the record"
    if spec.sha256 != record.spec.sha256:
        return (f"made with a spec of '{record.spec.name}' that differs from models/{record.spec.name}.toml (another "
                "architecture under the same name, or an older spec): rerun with the spec in models/")
    if spec.tiny != record.spec.tiny:
        return f"spec.tiny is {record.spec.tiny} but models/{spec.name}.toml says {spec.tiny}: the record was edited"
    if not record.is_toy and hardware.match_gpu(record.hardware_class) is None:
        return (f"hardware class '{record.hardware_class}' is not in the catalogue, so the record cannot be checked "
                "against the physical bound: add the class with its source to bench/core/data/hardware.toml")
    return None


def step_shapes(record: ResultRecord) -> set[tuple[int, ...]]:
    """The step shapes of a record's generations (bench.records.fingerprint.step_shape): what a copy of a filed run
    keeps, however its times were scaled, nudged or cut."""
    return {shape for g in record.generations if (shape := step_shape(g)) is not None}


def filed(root: Path) -> tuple[set[str], dict[str, str], dict[tuple[int, ...], str]]:
    """Run ids, content hashes and step shapes (each with the run it came from) of every record in the registry."""
    ids, hashes, shapes = set(), {}, {}
    for _, record in scan(root, include_toy=True)[0]:
        ids.add(record.run_id)
        hashes[content_hash(record)] = record.run_id
        shapes.update(dict.fromkeys(step_shapes(record), record.run_id))
    return ids, hashes, shapes


def submit(paths: list[Path], root: Path, allow_toy: bool = False) -> list[Filed]:
    """Check and file each record; one Filed per path, in order. Never raises for a bad record: it is refused.
    Raises OSError (ENOTDIR, naming root) for a registry that is a file: no record could be filed there."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root))
    ids, hashes, shapes = filed(root) if root.exists() else (set(), {}, {})
    out = []
    for source in paths:
        try:
            record = load_checked(source)
        except UsageError as exc:
            out.append(Filed(source, None, str(exc).removeprefix(f"{source}: ")))
            continue
        reason = check(record, allow_toy)
        digest = content_hash(record)
        own_shapes = step_shapes(record)
        repeated = [shapes[x] for x in own_shapes if x in shapes]
        if reason is None and record.run_id in ids:
            reason = f"already filed (run {record.run_id})"
        elif reason is None and digest in hashes:
            reason = f"already filed: the same measurement as run {hashes[digest]}"
        elif reason is None and repeated:
            reason = (f"its step times repeat those of run {repeated[0]}, already filed, up to a scale: a rerun never "
                      "does; it is a copy of that measurement")
        if reason is not None:
            out.append(Filed(source, None, reason))
            continue
        target = place(record, root)
        link = _link_between(root, target)
        if link is not None:
            out.append(Filed(source, None, f"{link} is a symbolic link: t2vbench files records only inside "
                                           f"{root}; replace the link with a folder"))
            continue
        try:
            path = write_new(target, record_json(record))
        except OSError as exc:  # this record's place cannot be written (a file where a folder must be, no room):
            # refused with the reason, and the records after it are still judged and filed
            where = exc.filename or target
            out.append(Filed(source, None, f"could not be written to {where}: {exc.strerror or exc}"))
            continue
        ids.add(record.run_id)
        hashes[digest] = record.run_id
        shapes.update(dict.fromkeys(own_shapes, record.run_id))
        out.append(Filed(source, path, note="filed under toy/: not used by fleet or compare" if record.is_toy
                         else None))
    return out


def _link_between(root: Path, target: Path) -> Path | None:
    """The first existing folder from root (excluded) down to target's folder that is a symbolic link, or None:
    a link inside the registry would make a write land outside it."""
    folder = root
    for part in target.parent.relative_to(root).parts:
        folder = folder / part
        if folder.is_symlink():
            return folder
        if not folder.exists():
            return None
    return None


def scan(root: Path, include_toy: bool = False) -> tuple[list[tuple[Path, ResultRecord]], list[str]]:
    """Every loadable measured record under root (a folder or one file): the references folder and journals are
    skipped, toys only when asked. Returns the records and one line per file that failed to load."""

    if not root.exists():
        raise UsageError(f"{root}: no such file or folder")
    paths = [p for p in expand([root]) if root.is_file() or _measured_path(p, root, include_toy)]
    records, bad = [], []
    for path in paths:
        try:
            records.append((path, load_checked(path)))
        except UsageError as exc:
            bad.append(str(exc))
    return records, bad


def _measured_path(path: Path, root: Path, include_toy: bool) -> bool:
    parts = path.relative_to(root).parts
    return REFERENCE_DIR not in parts[:1] and (include_toy or TOY_DIR not in parts[:1])
