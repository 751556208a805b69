"""Demand scenarios: the presets in this folder, or a user's TOML file, checked field by field before any use.

A scenario says how much AI video is wanted and how a fleet serves it (candidates per kept video, utilization,
peak-to-average, lifetime, PUE, electricity price), and may carry its own per-GPU figures (hardware class, unit
price, board power, rental $ per GPU-hour) and a throughput. Every number must be finite and in the range its
field can physically take; every string printable and bounded. A refusal is one UsageError naming the field and
the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from bench.analysis.scenarios.fields import (  # noqa: F401  (the package's public names)
    FACTOR_RANGED,
    FIELDS,
    MAX_SCENARIO_BYTES,
    NAME,
    NUMBERS,
    PRESETS,
    RANGED,
    REQUIRED,
    SETTABLE,
    TEXTS,
    Platform,
    Publication,
    Range,
    RequestKind,
    Scenario,
    Video,
    check_number,
)
from bench.analysis.scenarios.mix import HOURS, MAX_KINDS, REQUEST_FIELDS, SHARE_TOLERANCE, peak_fields, requests
from bench.analysis.scenarios.tables import hardware_class, platforms, publication, ranges, text, unknown, video
from bench.core.errors import UsageError
from bench.core.text import shown
from bench.core.tomlfile import read_toml


def parse_overrides(items: list[str]) -> dict[str, float]:
    """--set FIELD=VALUE items as checked numbers. Raises UsageError naming the item."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep:
            raise UsageError(f"--set {shown(item)}: write FIELD=VALUE, e.g. --set utilization=0.7")
        if key not in SETTABLE:
            close = difflib.get_close_matches(key, SETTABLE, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"--set {shown(key)}: not a numeric scenario field{hint}; fields: {', '.join(SETTABLE)}")
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--set {key}={shown(text)}: not a number; give {NUMBERS[key][3]}") from None
        value = check_number(value, key, f"--set {key}")
        if key in out and out[key] != value:  # which one was meant? the last silently won
            raise UsageError(f"--set {key} is given twice ({out[key]:g} and {value:g}); give it once")
        out[key] = value
    return out


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def _path(name_or_path: str) -> Path:
    """A path when it looks like one (a separator or a .toml suffix), else a preset name."""
    if "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".toml"):
        return Path(name_or_path)
    names = preset_names()
    if name_or_path not in names:
        close = difflib.get_close_matches(name_or_path, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"--scenario {shown(name_or_path)}: no such preset; {hint}presets: {', '.join(names)}; "
                         "for your own file give its path, e.g. ./my-scenario.toml")
    return PRESETS / f"{name_or_path}.toml"


def _read(path: Path) -> dict[str, Any]:
    where = f"--scenario {shown(str(path))}"
    if path.is_dir():
        raise UsageError(f"{where}: is a folder; give a scenario TOML file or a preset name")
    return read_toml(path, MAX_SCENARIO_BYTES, where, "a scenario")[0]


def load_scenario(name_or_path: str, overrides: dict[str, float] | None = None) -> Scenario:
    """A preset by name or a TOML file by path, then --set overrides (already checked by parse_overrides).
    Raises UsageError naming the file or option and the field at fault."""
    path = _path(name_or_path)
    data = _read(path)
    origin = path.stem if path.parent == PRESETS else shown(str(path))
    return validate({**data, **(overrides or {})}, f"scenario {origin}", set(overrides or ()))


def file_format() -> str:
    """The scenario file's format, from the fields' own checks (printed by `t2vbench fleet --explain`)."""
    lines = ["A scenario file is TOML (at most 64 KiB). Required: name (a slug such as my-scenario), and "
             + ", ".join(k for k in REQUIRED if k != "name") + "; either ai_video_minutes_per_day or one or "
             "more [[platforms]] tables (name, minutes_uploaded_per_day, ai_share); and either peak_to_average or "
             f"hourly_profile = [{HOURS} shares of a day's demand, one per hour from 00-01, each in [0, 1], summing "
             f"to 1 within {SHARE_TOLERANCE:g}] (then peak_to_average = {HOURS} x the largest share: the peak hour "
             "over the mean hour), not both.",
             "Optional: description and source (one printable line each), hardware (a catalogue class), "
             "throughput_video_min_per_gpu_hour, unit_price_usd, board_power_w, rental_usd_per_gpu_hour, and "
             "[publication] (peak_gpus, unit_price_usd, board_power_w: a published estimate printed beside ours), "
             "[video] (description, width, height, models: the open models nearest to the demand's video, best "
             "first, seconds: the clip length; a throughput of another model or resolution is then said to be so), "
             "and [ranges] (FIELD = [low, high] for " + ", ".join(RANGED) + "; factors on the figure used for "
             + ", ".join(FACTOR_RANGED) + ": the interval every fleet figure carries).",
             "Numbers (any can be overridden with --set FIELD=VALUE where marked *):"]
    for key, (low, high, open_low, meaning) in NUMBERS.items():
        bracket = "(" if open_low else "["
        star = "*" if key in SETTABLE else " "
        lines.append(f"  {star} {key:36} {bracket}{low:g}, {high:g}]  {meaning}")
    lines.append(f"Optional [[requests]] tables, 1 to {MAX_KINDS}: the demand as a mix of clip kinds, each costed "
                 "on the first [video] model at its own setting (frames = seconds x the model's fps, rounded to a "
                 "length the model takes); shares sum to 1 within " f"{SHARE_TOLERANCE:g}; "
                 "name: one printable line, unique (default: the kind's setting). Fields (* required):")
    for key, (low, high, open_low, whole, required, meaning) in REQUEST_FIELDS.items():
        bracket = "(" if open_low else "["
        star = "*" if required else " "
        lines.append(f"  {star} {key:36} {bracket}{low:g}, {high:g}]{' whole' if whole else ''}  {meaning}")
    lines.append("`t2vbench fleet --template FILE.toml` writes a commented file with every field to start from.")
    return "\n".join(lines)


def validate(data: dict[str, Any], where: str, overridden: set[str] = frozenset()) -> Scenario:
    """A Scenario from parsed TOML (plus overrides), every field checked. Raises UsageError naming the field."""
    unknown(data, FIELDS, where)
    for key in REQUIRED:
        if key not in data:
            raise UsageError(f"{where}: missing field '{key}' (`t2vbench fleet --template FILE` writes a complete, "
                             "commented scenario to start from)")
    out: dict[str, Any] = {}
    name = data["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise UsageError(f"{where}: field 'name' = {shown(name)} must be a short slug of a-z, 0-9, '.', '_' or '-', "
                         "e.g. my-scenario")
    out["name"] = name
    for key, limit in TEXTS.items():
        if key in data:
            out[key] = text(data, key, where, limit)
    for key in SETTABLE:
        if data.get(key) is not None:
            label = f"--set {key}" if key in overridden else f"{where}: field '{key}'"
            out[key] = check_number(data[key], key, label)
    out.update(peak_fields(data, where, overridden))
    if data.get("hardware") is not None:
        out["hardware"] = hardware_class(data["hardware"], where)
    if "platforms" in data:
        out["platforms"] = platforms(data["platforms"], where)
    if "publication" in data:
        out["publication"] = publication(data["publication"], where)
    if out.get("ai_video_minutes_per_day") is None and not out.get("platforms"):
        raise UsageError(f"{where}: give 'ai_video_minutes_per_day' or a [[platforms]] table")
    if out.get("ai_video_minutes_per_day") is None and not sum(p.minutes_uploaded_per_day * p.ai_share
                                                               for p in out["platforms"]) > 0:
        raise UsageError(f"{where}: the platforms' AI minutes add up to 0; give 'ai_video_minutes_per_day' > 0")
    if "video" in data:
        out["video"] = video(data["video"], where)
    if "requests" in data:
        out["requests"] = requests(data["requests"], where)
    scenario = Scenario(**out)
    if "ranges" in data:
        point = {k: getattr(scenario, k) for k in RANGED}
        point["ai_video_minutes_per_day"] = scenario.demand_minutes_per_day
        scenario = dataclasses.replace(scenario, ranges=ranges(data["ranges"], where, point, overridden))
    return scenario
