"""What a scenario's demand is made of and when it comes: [[requests]] (a mix of clip kinds, each a share of the AI
video-minutes demanded at its own length, size, steps and guidance) and hourly_profile (the shares of a day's demand
per hour, which set the peak-to-average ratio). Each checked field by field; a refusal is one UsageError naming the
table, the field and the fix. Costing a mix is bench.analysis.demand's.
"""

from __future__ import annotations

import math
from typing import Any

from bench.analysis.scenarios.fields import RequestKind
from bench.analysis.scenarios.tables import text, unknown
from bench.core.errors import UsageError
from bench.core.text import shown

MAX_KINDS = 50
SHARE_TOLERANCE = 1e-6  # shares written as decimals (0.1 + 0.2 + ...) may miss 1 by rounding, not by more
HOURS = 24
# field: (low, high, low excluded, whole number, required, what it is). Bounds as the model specs' own limits
# (bench.core.specs.LIMITS) for pixels, steps and guidance; a clip up to an hour as [video] seconds.
REQUEST_FIELDS: dict[str, tuple[float, float, bool, bool, bool, str]] = {
    "share": (0, 1, True, False, True, "the share of the AI video-minutes demanded, a fraction in (0, 1], e.g. 0.5"),
    "seconds": (0, 3600, True, False, True, "clip length in seconds, e.g. 5"),
    "width": (16, 8192, False, True, True, "pixels, a multiple of the model's spatial multiple, e.g. 1280"),
    "height": (16, 8192, False, True, True, "pixels, e.g. 720"),
    "steps": (1, 1000, False, True, False, "denoising steps (default: the model's), e.g. 4 for a step-distilled "
              "kind"),
    "guidance": (0, 100, False, False, False, "guidance scale of every expert (default: the model's), e.g. 1: no "
                 "guidance pass"),
}
NAME_LIMIT = 100


def requests(value: Any, where: str) -> tuple[RequestKind, ...]:
    """[[requests]]: 1 to MAX_KINDS kinds whose shares sum to 1 (within SHARE_TOLERANCE), names unique.
    Raises UsageError naming the kind and field."""
    form = "an array of tables: [[requests]] with share, seconds, width, height (steps, guidance and name optional)"
    if not isinstance(value, list) or not value or not all(isinstance(r, dict) for r in value) \
            or len(value) > MAX_KINDS:
        raise UsageError(f"{where}: field 'requests' must be {form}, 1 to {MAX_KINDS} of them, not {shown(value)}")
    kinds = [_kind(r, f"{where} requests[{i}]") for i, r in enumerate(value)]
    names = [k.name for k in kinds]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise UsageError(f"{where}: two [[requests]] are named {shown(twice)}: give each kind its own 'name'")
    total = math.fsum(k.share for k in kinds)
    if abs(total - 1) > SHARE_TOLERANCE:
        raise UsageError(f"{where}: the [[requests]] shares add up to {total:.9g}, not 1: each share is a fraction "
                         "of the AI video-minutes demanded; make them sum to 1")
    return tuple(kinds)


def _kind(r: dict[str, Any], at: str) -> RequestKind:
    unknown(r, ("name", *REQUEST_FIELDS), at)
    values: dict[str, Any] = {}
    for key, (low, high, low_open, whole, required, what) in REQUEST_FIELDS.items():
        if key not in r:
            if required:
                raise UsageError(f"{at}: missing field '{key}' ({what})")
            continue
        v = r[key]
        kind_ok = isinstance(v, int) if whole else isinstance(v, (int, float))
        if isinstance(v, bool) or not kind_ok or (isinstance(v, float) and not math.isfinite(v)) \
                or v < low or v > high or (low_open and v == low):
            bracket = "(" if low_open else "["
            number = "a whole number" if whole else "a number"
            raise UsageError(f"{at}: field '{key}' = {shown(v)} must be {number} in {bracket}{low:g}, {high:g}]: "
                             f"give {what}")
        values[key] = int(v) if whole else float(v)
    name = text(r, "name", at, NAME_LIMIT) if "name" in r else _default_name(values)
    return RequestKind(name=name, **values)


def _default_name(v: dict[str, Any]) -> str:
    steps = f" {v['steps']} steps" if "steps" in v else ""
    guidance = f" guidance {v['guidance']:g}" if "guidance" in v else ""
    return f"{v['seconds']:g} s {v['width']}x{v['height']}{steps}{guidance}"


def hourly_profile(value: Any, where: str) -> tuple[float, ...]:
    """hourly_profile: 24 shares of a day's demand (00-01 first), each in [0, 1], summing to 1 (within
    SHARE_TOLERANCE). Raises UsageError naming the entry."""
    at = f"{where}: field 'hourly_profile'"
    if not isinstance(value, list) or len(value) != HOURS:
        count = f"{len(value)} entries" if isinstance(value, list) else shown(value)
        raise UsageError(f"{at} must be a list of {HOURS} shares of a day's demand, one per hour from 00-01, "
                         f"not {count}")
    for hour, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 <= v <= 1):
            raise UsageError(f"{at}: hour {hour:02d} = {shown(v)} must be a share in [0, 1] of the day's demand")
    total = math.fsum(value)
    if abs(total - 1) > SHARE_TOLERANCE:
        raise UsageError(f"{at}: the {HOURS} shares add up to {total:.9g}, not 1: give each hour's share of the "
                         "day's demand, summing to 1")
    return tuple(float(v) for v in value)


def peak_to_average(profile: tuple[float, ...] | list[float]) -> float:
    """The peak hour over the mean hour: 24 x max(share) for shares summing to 1 (divided by their sum, so a
    profile a rounding off 1 gives the same ratio; never below 1, as no hour is below the mean and above the peak)."""
    total = math.fsum(profile)
    if not total > 0:
        raise ValueError("a profile with no demand has no peak")
    return max(1.0, HOURS * max(profile) / total)


def peak_fields(data: dict[str, Any], where: str, overridden: set[str]) -> dict[str, Any]:
    """The Scenario fields a profile adds: the file gives peak_to_average or hourly_profile, not both; a profile
    derives the ratio, unless --set peak_to_average names it (the profile is kept, its ratio overridden). A ratio
    the file gives is checked by the caller as a number. Raises UsageError."""
    has_ratio = data.get("peak_to_average") is not None
    if "hourly_profile" not in data:
        if not has_ratio:
            raise UsageError(f"{where}: missing field 'peak_to_average' (peak demand over average, e.g. 2), or give "
                             "'hourly_profile' (24 hourly shares of a day's demand)")
        return {}
    if has_ratio and "peak_to_average" not in overridden:
        raise UsageError(f"{where}: give 'peak_to_average' or 'hourly_profile', not both (the profile sets the ratio: "
                         "24 x its largest hourly share)")
    profile = hourly_profile(data["hourly_profile"], where)
    return {"hourly_profile": profile} if has_ratio else {"hourly_profile": profile,
                                                          "peak_to_average": peak_to_average(profile)}
