"""Records in and out: the version steps that migrate old files, strict parsing and loading, and writing.

Loading is strict because records come from strangers: bounded size, strict JSON (bench.core.jsonsafe), each
older version migrated by an explicit update_to_N step, then the schema (bench.records.schema) with every summary
figure recomputed. A file newer than this t2vbench is refused with what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.core import metrics
from bench.core.errors import UsageError
from bench.core.files import write_atomic
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.records.schema import MAX_RECORD_BYTES, SCHEMA_VERSION, ResultRecord

# The fields each version added (dotted paths; 'generations.x': x in every generation), so that a file claiming an
# older version cannot carry them: migrating it would overwrite or drop them (a v4 file relabelled v1 had its serving
# options replaced by none, its compiled run filed as a plain one). Keep in step with bench.records.schema's history.
INTRODUCED = {
    2: ("command", "label", "spec.tiny", "settings.options", "settings.guidance_scale_2", "generations.peak_memory_bytes",
        "fidelity", "warmup_seeds"),
    3: ("workers", "generations.worker", "summary.server_window_s", "summary.server_video_minutes_per_gpu_hour",
        "summary.workers", "summary.per_worker_rel_spread"),
    4: ("sampling", "generations.telemetry.step_energy_j", *(f"summary.{k}" for k in (
        "sample_steps", "extrapolated_steps", "measured_latency_mean_s", "measured_denoise_mean_s",
        "extrapolated_denoise_share", "sample_step_rel_stdev", "extrapolated_energy_per_video_j",
        "extrapolated_denoise_energy_mean_j", "extrapolated_energy_per_video_minute_wh", "extrapolated_avg_power_w"))),
}


def _has(data: Any, path: list[str]) -> bool:
    """Whether plain data holds the dotted path (through every item of a list)."""
    if not path:
        return True
    if isinstance(data, list):
        return any(_has(item, path) for item in data)
    return isinstance(data, dict) and path[0] in data and _has(data[path[0]], path[1:])


def newer_field(data: dict[str, Any], version: int) -> str | None:
    """The first field of `data` that a version after `version` introduced, or None."""
    for since in range(version + 1, SCHEMA_VERSION + 1):
        for field in INTRODUCED[since]:
            if _has(data, field.split(".")):
                return field
    return None


def update_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: no command line or label was kept; options did not exist; tiny specs were named tiny-*. Adds only
    what is missing (parse_record has refused a file that has any of them)."""
    out = {"command": [], "label": None, **data, "schema_version": 2}
    spec = data.get("spec")
    if isinstance(spec, dict):
        out["spec"] = {"tiny": str(spec.get("name", "")).startswith("tiny-"), **spec}
    if isinstance(data.get("settings"), dict):
        out["settings"] = {"options": {}, **data["settings"]}
    return out


def update_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3: single-GPU runs; the summary gains the server figures, recomputed from the raw times. Figures the
    file already has are left as they are, so a forged one is still caught by the validation that follows."""
    out = {**data, "schema_version": 3}
    try:
        s = data["settings"]
        expected = metrics.summarize(data["generations"], s["num_frames"], s["fps"], s["gpus_used"])
        out["summary"] = {**{k: v for k, v in expected.model_dump().items() if k not in data["summary"]}, **data["summary"]}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        pass  # malformed: validation names the field
    return out


def update_to_4(data: dict[str, Any]) -> dict[str, Any]:
    """v3 -> v4: every v3 record is a full run (no sampling, no per-step energy, no sampled summary figures)."""
    return {**data, "schema_version": 4}


MIGRATIONS = {1: update_to_2, 2: update_to_3, 3: update_to_4}  # version N -> the step that makes it N + 1


# t2vbench's other documents, said as what they are where a result record was expected (not "field 'schema_version'
# is missing", which sends the user looking for a corruption)
OTHER_KINDS = {"reference": "a published figure (kind 'reference'), not a result record; compare, report, predict and "
                            "estimate read it",
               "calibration": "a calibration (t2vbench calibrate), not a result record; predict and estimate read it"}


def _is_journal(text: str | bytes) -> bool:
    """Whether text begins as a run's journal does: a header line (bench.records.journal)."""
    first = (text.encode("utf-8", "replace") if isinstance(text, str) else text).split(b"\n", 1)[0]
    try:
        head = loads_strict(first, "journal")
    except UsageError:
        return False
    return isinstance(head, dict) and head.get("kind") == "header" and "journal_version" in head


def parse_record(text: str | bytes, origin: str = "record") -> ResultRecord:
    """Parse, migrate and validate a record. Raises UsageError naming the field and the fix (or, for a reference,
    calibration or journal, what the file is)."""
    try:
        data = loads_strict(text, origin)
    except UsageError:
        if _is_journal(text):
            raise UsageError(f"{origin}: a run's journal, not a record; 't2vbench recover' turns it into one") from None
        raise
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: a record is a JSON object; give the file t2vbench run wrote")
    if data.get("kind") in OTHER_KINDS:
        raise UsageError(f"{origin}: {OTHER_KINDS[data['kind']]}")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"{origin}: field 'schema_version' is missing or not a positive integer")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{origin}: schema_version {version} is newer than this t2vbench reads ({SCHEMA_VERSION}); "
            "upgrade t2vbench"
        )
    newer = newer_field(data, version)
    if newer is not None:
        raise UsageError(f"{origin}: claims schema_version {version} but has field '{newer}' that version {version} "
                         "never had: the version was edited; give the file as t2vbench wrote it")
    while data["schema_version"] < SCHEMA_VERSION:
        data = MIGRATIONS[data["schema_version"]](data)
    return validate(data, origin)


def validate(data: dict[str, Any], origin: str = "record") -> ResultRecord:
    """A current-version record from plain data. Raises UsageError naming the first bad field."""
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc, origin, "record") from None


def field_error(exc: ValidationError, origin: str, what: str) -> UsageError:
    """A pydantic validation error as one line naming the first bad field."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or what
    return UsageError(f"{origin}: field '{field}': {err['msg']}")


def load_record(path: str | Path) -> ResultRecord:
    """Load a record file strictly: bounded size, strict JSON, schema, summaries recomputed from the raw data.
    What physics forbids is the gate's to judge (bench.analysis.physics.load_checked). Raises UsageError."""
    path = Path(path)
    return parse_record(read_bounded(path, MAX_RECORD_BYTES, "record"), str(path))


def record_json(record: ResultRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def write_new(path: Path, text: str) -> Path:
    """Write a record atomically, group-readable, never over an existing file (raises FileExistsError)."""

    return write_atomic(path, text)
