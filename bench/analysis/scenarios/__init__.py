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
import math
import re
from pathlib import Path
from typing import Any

from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.text import shown
from bench.core.tomlfile import read_toml

PRESETS = Path(__file__).parent
MAX_SCENARIO_BYTES = 64 * 1024  # a scenario is a few hundred bytes; bound what we parse
MAX_PLATFORMS = 100
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # scenario names appear in plot titles and JSON keys

# field: (low, high, low is excluded, what the field is, an example). Upper bounds are far beyond any real case
# and keep every product of them finite.
NUMBERS: dict[str, tuple[float, float, bool, str]] = {
    "ai_video_minutes_per_day": (0, 1e11, True, "AI video-minutes wanted per day, e.g. 10.7e6"),
    "candidates_per_kept_video": (1, 1000, False, "videos generated per video kept, at least 1, e.g. 2"),
    "utilization": (0, 1, True, "the share of time a GPU is busy, a fraction in (0, 1], e.g. 0.5"),
    "peak_to_average": (1, 1000, False, "peak demand over average demand, at least 1, e.g. 2"),
    "gpu_lifetime_years": (0, 50, True, "years a GPU is amortized over, e.g. 4"),
    "pue": (1, 10, False, "datacenter power usage effectiveness, at least 1, e.g. 1.2"),
    "electricity_usd_per_kwh": (0, 100, False, "dollars per kWh, e.g. 0.10"),
    "throughput_video_min_per_gpu_hour": (0, 1e5, True, "video minutes per GPU-hour, e.g. 5"),
    "unit_price_usd": (0, 1e7, False, "dollars per GPU, e.g. 30000"),
    "board_power_w": (0, 1e5, False, "watts per GPU, e.g. 700"),
    "rental_usd_per_gpu_hour": (0, 1e4, False, "dollars per GPU-hour, e.g. 3.99"),
    "minutes_uploaded_per_day": (0, 1e11, False, "video-minutes uploaded per day, e.g. 17e6"),
    "ai_share": (0, 1, False, "the AI-generated share, a fraction in [0, 1], e.g. 0.5"),
    "peak_gpus": (0, 1e9, True, "the published peak fleet in GPUs, e.g. 720000"),
}
SETTABLE = ("ai_video_minutes_per_day", "candidates_per_kept_video", "utilization", "peak_to_average",
            "gpu_lifetime_years", "pue", "electricity_usd_per_kwh", "throughput_video_min_per_gpu_hour",
            "unit_price_usd", "board_power_w", "rental_usd_per_gpu_hour")
TEXTS = {"description": 500, "source": 1000}


@dataclasses.dataclass(frozen=True)
class Platform:
    name: str
    minutes_uploaded_per_day: float
    ai_share: float


@dataclasses.dataclass(frozen=True)
class Publication:
    """The published estimate a preset reproduces, in the publication's own rounded inputs."""

    peak_gpus: float
    unit_price_usd: float
    board_power_w: float


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    candidates_per_kept_video: float
    utilization: float
    peak_to_average: float
    gpu_lifetime_years: float
    pue: float
    electricity_usd_per_kwh: float
    description: str = ""
    source: str = ""
    ai_video_minutes_per_day: float | None = None
    platforms: tuple[Platform, ...] = ()
    throughput_video_min_per_gpu_hour: float | None = None
    hardware: str | None = None
    unit_price_usd: float | None = None
    board_power_w: float | None = None
    rental_usd_per_gpu_hour: float | None = None
    publication: Publication | None = None

    @property
    def platform_ai_minutes_per_day(self) -> float:
        return sum(p.minutes_uploaded_per_day * p.ai_share for p in self.platforms)

    @property
    def demand_minutes_per_day(self) -> float:
        return self.ai_video_minutes_per_day if self.ai_video_minutes_per_day is not None \
            else self.platform_ai_minutes_per_day


FIELDS = {f.name: f for f in dataclasses.fields(Scenario)}
REQUIRED = [n for n, f in FIELDS.items() if f.default is dataclasses.MISSING]



def check_number(value: Any, field: str, where: str) -> float:
    """value as a float if it is a finite number in the range of `field` (see NUMBERS); else UsageError naming
    `where` (e.g. "scenario x.toml: field 'utilization'" or "--throughput") and what to give instead."""
    low, high, low_open, what = NUMBERS[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{where} must be a number, not {shown(value)}: give {what}")
    # ints are compared before float(): a 400-digit TOML integer must be refused, not overflow
    if (isinstance(value, float) and not math.isfinite(value)) or value < low or value > high \
            or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise UsageError(f"{where} = {shown(value)} is outside {bracket}{low:g}, {high:g}]: give {what}")
    return float(value)


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
        out[key] = check_number(value, key, f"--set {key}")
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


def _text(data: dict[str, Any], key: str, where: str, limit: int) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: field '{key}' must be a non-empty string, not {shown(value)}")
    if len(value) > limit or not value.isprintable():
        raise UsageError(f"{where}: field '{key}' must be one printable line of at most {limit} characters")
    return value


def _unknown(data: dict[str, Any], known: Any, where: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; fields: {', '.join(known)}"
        raise UsageError(f"{where}: unknown field {shown(unknown[0])}{hint}")


def _hardware(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: field 'hardware' must be a hardware class name, not {shown(value)}")
    try:
        return hardware.get(value).id
    except UsageError as exc:
        raise UsageError(f"{where}: field 'hardware': {exc}") from None


def _platforms(value: Any, where: str) -> tuple[Platform, ...]:
    form = "an array of tables: [[platforms]] with name, minutes_uploaded_per_day and ai_share"
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value) or len(value) > MAX_PLATFORMS:
        raise UsageError(f"{where}: field 'platforms' must be {form} (at most {MAX_PLATFORMS}), not {shown(value)}")
    out = []
    for i, p in enumerate(value):
        at = f"{where} platforms[{i}]"
        _unknown(p, ("name", "minutes_uploaded_per_day", "ai_share"), at)
        for key in ("name", "minutes_uploaded_per_day", "ai_share"):
            if key not in p:
                raise UsageError(f"{at}: missing field '{key}'")
        out.append(Platform(_text(p, "name", at, 100),
                            check_number(p["minutes_uploaded_per_day"], "minutes_uploaded_per_day",
                                         f"{at}: field 'minutes_uploaded_per_day'"),
                            check_number(p["ai_share"], "ai_share", f"{at}: field 'ai_share'")))
    return tuple(out)


def _publication(value: Any, where: str) -> Publication:
    keys = ("peak_gpus", "unit_price_usd", "board_power_w")
    if not isinstance(value, dict):
        raise UsageError(f"{where}: field 'publication' must be a table [publication] with {', '.join(keys)}")
    at = f"{where} [publication]"
    _unknown(value, keys, at)
    for key in keys:
        if key not in value:
            raise UsageError(f"{at}: missing field '{key}'")
    return Publication(*(check_number(value[k], k, f"{at}: field '{k}'") for k in keys))


def file_format() -> str:
    """The scenario file's format, from the fields' own checks (printed by `t2vbench fleet --explain`)."""
    lines = ["A scenario file is TOML (at most 64 KiB). Required: name (a slug such as my-scenario), and "
             + ", ".join(k for k in REQUIRED if k != "name") + "; and either ai_video_minutes_per_day or one or "
             "more [[platforms]] tables (name, minutes_uploaded_per_day, ai_share).",
             "Optional: description and source (one printable line each), hardware (a catalogue class), "
             "throughput_video_min_per_gpu_hour, unit_price_usd, board_power_w, rental_usd_per_gpu_hour, and "
             "[publication] (peak_gpus, unit_price_usd, board_power_w: a published estimate printed beside ours).",
             "Numbers (any can be overridden with --set FIELD=VALUE where marked *):"]
    for key, (low, high, open_low, meaning) in NUMBERS.items():
        bracket = "(" if open_low else "["
        star = "*" if key in SETTABLE else " "
        lines.append(f"  {star} {key:36} {bracket}{low:g}, {high:g}]  {meaning}")
    return "\n".join(lines)


def validate(data: dict[str, Any], where: str, overridden: set[str] = frozenset()) -> Scenario:
    """A Scenario from parsed TOML (plus overrides), every field checked. Raises UsageError naming the field."""
    _unknown(data, FIELDS, where)
    for key in REQUIRED:
        if key not in data:
            raise UsageError(f"{where}: missing field '{key}'")
    out: dict[str, Any] = {}
    name = data["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise UsageError(f"{where}: field 'name' = {shown(name)} must be a short slug of a-z, 0-9, '.', '_' or '-', "
                         "e.g. my-scenario")
    out["name"] = name
    for key, limit in TEXTS.items():
        if key in data:
            out[key] = _text(data, key, where, limit)
    for key in SETTABLE:
        if data.get(key) is not None:
            label = f"--set {key}" if key in overridden else f"{where}: field '{key}'"
            out[key] = check_number(data[key], key, label)
    if data.get("hardware") is not None:
        out["hardware"] = _hardware(data["hardware"], where)
    if "platforms" in data:
        out["platforms"] = _platforms(data["platforms"], where)
    if "publication" in data:
        out["publication"] = _publication(data["publication"], where)
    if out.get("ai_video_minutes_per_day") is None and not out.get("platforms"):
        raise UsageError(f"{where}: give 'ai_video_minutes_per_day' or a [[platforms]] table")
    if out.get("ai_video_minutes_per_day") is None and not sum(p.minutes_uploaded_per_day * p.ai_share
                                                               for p in out["platforms"]) > 0:
        raise UsageError(f"{where}: the platforms' AI minutes add up to 0; give 'ai_video_minutes_per_day' > 0")
    return Scenario(**out)
