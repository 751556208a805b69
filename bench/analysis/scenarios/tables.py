"""The parts of a scenario file beyond its plain numbers: texts, the hardware class, [[platforms]], [publication],
[video] and [ranges], each checked field by field; a refusal is one UsageError naming the table and field."""

from __future__ import annotations

import difflib
from typing import Any

from bench.analysis.scenarios.fields import (
    FACTOR_RANGED,
    MAX_FACTOR,
    MAX_PLATFORMS,
    RANGED,
    Platform,
    Publication,
    Range,
    Video,
    check_number,
)
from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.specs import spec_names
from bench.core.text import shown


def text(data: dict[str, Any], key: str, where: str, limit: int) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: field '{key}' must be a non-empty string, not {shown(value)}")
    if len(value) > limit or not value.isprintable():
        raise UsageError(f"{where}: field '{key}' must be one printable line of at most {limit} characters")
    return value


def unknown(data: dict[str, Any], known: Any, where: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; fields: {', '.join(known)}"
        raise UsageError(f"{where}: unknown field {shown(unknown[0])}{hint}")


def hardware_class(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: field 'hardware' must be a hardware class name, not {shown(value)}")
    try:
        return hardware.get(value).id
    except UsageError as exc:
        raise UsageError(f"{where}: field 'hardware': {exc}") from None


def platforms(value: Any, where: str) -> tuple[Platform, ...]:
    form = "an array of tables: [[platforms]] with name, minutes_uploaded_per_day and ai_share"
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value) or len(value) > MAX_PLATFORMS:
        raise UsageError(f"{where}: field 'platforms' must be {form} (at most {MAX_PLATFORMS}), not {shown(value)}")
    out = []
    for i, p in enumerate(value):
        at = f"{where} platforms[{i}]"
        unknown(p, ("name", "minutes_uploaded_per_day", "ai_share"), at)
        for key in ("name", "minutes_uploaded_per_day", "ai_share"):
            if key not in p:
                raise UsageError(f"{at}: missing field '{key}'")
        out.append(Platform(text(p, "name", at, 100),
                            check_number(p["minutes_uploaded_per_day"], "minutes_uploaded_per_day",
                                         f"{at}: field 'minutes_uploaded_per_day'"),
                            check_number(p["ai_share"], "ai_share", f"{at}: field 'ai_share'")))
    return tuple(out)


def publication(value: Any, where: str) -> Publication:
    keys = ("peak_gpus", "unit_price_usd", "board_power_w")
    if not isinstance(value, dict):
        raise UsageError(f"{where}: field 'publication' must be a table [publication] with {', '.join(keys)}")
    at = f"{where} [publication]"
    unknown(value, keys, at)
    for key in keys:
        if key not in value:
            raise UsageError(f"{at}: missing field '{key}'")
    return Publication(*(check_number(value[k], k, f"{at}: field '{k}'") for k in keys))


def video(value: Any, where: str) -> Video:
    keys = ("description", "width", "height", "models", "seconds")
    if not isinstance(value, dict):
        raise UsageError(f"{where}: field 'video' must be a table [video] with {', '.join(keys)}")
    at = f"{where} [video]"
    unknown(value, keys, at)
    for key in keys[:4]:
        if key not in value:
            raise UsageError(f"{at}: missing field '{key}'")
    for key in ("width", "height"):
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= 8192:
            raise UsageError(f"{at}: field '{key}' must be a whole number of pixels in [16, 8192], not {shown(v)}")
    models, known = value["models"], spec_names()
    if not isinstance(models, list) or not 1 <= len(models) <= 8 or not all(isinstance(m, str) for m in models):
        raise UsageError(f"{at}: field 'models' must be a list of 1 to 8 model names from `t2vbench models`")
    for m in models:
        if m not in known:
            close = difflib.get_close_matches(m, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else "; see `t2vbench models`"
            raise UsageError(f"{at}: model {shown(m)} is not in models/{hint}")
    seconds = value.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not 0 < seconds <= 3600):
        raise UsageError(f"{at}: field 'seconds' must be a clip length in (0, 3600] seconds, not {shown(seconds)}")
    return Video(text(value, "description", at, 200), value["width"], value["height"], tuple(models),
                 None if seconds is None else float(seconds))


def ranges(value: Any, where: str, point: dict[str, float | None], overridden: set[str]) -> tuple[Range, ...]:
    """[ranges]: FIELD = [low, high] per input; each inside the field's own bounds and around its value. A field
    set on the command line keeps no range (the user named its value)."""
    if not isinstance(value, dict):
        raise UsageError(f"{where}: field 'ranges' must be a table [ranges] of FIELD = [low, high]")
    at = f"{where} [ranges]"
    unknown(value, RANGED + FACTOR_RANGED, at)
    out = []
    for key, pair in value.items():
        if not (isinstance(pair, list) and len(pair) == 2):
            raise UsageError(f"{at}: field '{key}' must be [low, high], not {shown(pair)}")
        if key in overridden:
            continue
        if key in FACTOR_RANGED:
            low, high = (factor(v, f"{at}: field '{key}'") for v in pair)
            base = 1.0
        else:
            low, high = (check_number(v, key, f"{at}: field '{key}'") for v in pair)
            base = point.get(key)
            if base is None:
                raise UsageError(f"{at}: field '{key}' has a range but the scenario gives no {key}")
        if not low <= base <= high:
            what = "the factor 1 (the figure itself)" if key in FACTOR_RANGED else f"its value {base:g}"
            raise UsageError(f"{at}: field '{key}' = [{low:g}, {high:g}] must contain {what}")
        out.append(Range(key, low, high))
    return tuple(out)


def factor(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_FACTOR:
        raise UsageError(f"{where} must hold factors in (0, {MAX_FACTOR:g}] on the figure used, e.g. [0.8, 1.3]")
    return float(value)
