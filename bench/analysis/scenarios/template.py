"""`t2vbench fleet --template [FILE.toml]`: a commented scenario file to start from, with every field, its unit and
the range its check allows (from the same tables the checks use, so the two cannot drift apart).

Its numbers are the factorial-2024 preset's, so it sizes the published fleet until edited; its [[requests]] mix and
hourly_profile show the form only and say so. It is written to stdout, or to a new file (never over one, atomically).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.analysis.scenarios import NUMBERS, REQUEST_FIELDS, TEXTS, load_scenario
from bench.analysis.scenarios.mix import HOURS, MAX_KINDS, SHARE_TOLERANCE
from bench.core.errors import UsageError
from bench.core.files import write_atomic
from bench.core.text import shown

PRESET = "factorial-2024"
# The form of a mix and of a day, not data: the kinds are settings the preset's first [video] model takes (a
# 4-step guidance-free kind as step-distilled variants of Wan run, e.g. LightX2V's), the shares and the hours
# are placeholders to replace.
EXAMPLE_REQUESTS = (
    {"name": "5 s 720p", "share": 0.5, "seconds": 5, "width": 1280, "height": 720},
    {"name": "10 s 720p", "share": 0.2, "seconds": 10, "width": 1280, "height": 720},
    {"name": "5 s 480p", "share": 0.2, "seconds": 5, "width": 832, "height": 480},
    {"name": "5 s 720p, step-distilled", "share": 0.1, "seconds": 5, "width": 1280, "height": 720, "steps": 4,
     "guidance": 1},
)
EXAMPLE_PROFILE = (0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.035, 0.04, 0.045, 0.045, 0.045,
                   0.045, 0.045, 0.045, 0.045, 0.045, 0.06, 0.07, 0.075, 0.07, 0.06, 0.045, 0.035)
TOP_NUMBERS = ("ai_video_minutes_per_day", "candidates_per_kept_video", "utilization", "peak_to_average",
               "gpu_lifetime_years", "pue", "electricity_usd_per_kwh", "throughput_video_min_per_gpu_hour",
               "unit_price_usd", "board_power_w", "rental_usd_per_gpu_hour")


def _value(v: Any) -> str:
    """A TOML literal: numbers as Python writes them (valid TOML), strings and lists as JSON writes them."""
    return repr(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else json.dumps(v)


def _allowed(key: str) -> str:
    low, high, low_open, meaning = NUMBERS[key]
    return f"{meaning}; allowed {'(' if low_open else '['}{low:g}, {high:g}]"


def _numbers(s: Any) -> list[str]:
    lines = []
    for key in TOP_NUMBERS:
        value = getattr(s, key)
        lines.append(f"# {key}: {_allowed(key)}")
        if key == "peak_to_average":
            lines += [f"# give it OR hourly_profile below, not both (the preset's {value:g}, so the file sizes the "
                      "preset's fleet as written)", f"peak_to_average = {_value(value)}", "", *_profile()]
        elif value is None:
            lines.append(f"# {key} = ...   (optional: left out, the catalogue's figure for the class is used)")
        else:
            lines.append(f"{key} = {_value(value)}")
        lines.append("")
    return lines


def _profile() -> list[str]:
    peak = HOURS * max(EXAMPLE_PROFILE)
    return [f"# hourly_profile: {HOURS} shares of a day's demand, one per hour from 00-01, each in [0, 1], summing",
            f"# to 1 (within {SHARE_TOLERANCE:g}); then peak_to_average = {HOURS} x the largest share.",
            f"# EXAMPLE of the form, not data: a quiet night and an evening peak ({HOURS} x {max(EXAMPLE_PROFILE):g} "
            f"= {peak:g} peak-to-average). To use a day of your own, delete peak_to_average above and uncomment:",
            "# hourly_profile = [", "#   " + ", ".join(f"{v:g}" for v in EXAMPLE_PROFILE[:12]) + ",   # 00-12",
            "#   " + ", ".join(f"{v:g}" for v in EXAMPLE_PROFILE[12:]) + ",   # 12-24", "# ]"]


def _tables(s: Any) -> list[str]:
    v, p = s.video, s.publication
    lines = ["# [video]: what the demand's video is. models: the open models nearest to it (`t2vbench models`), best",
             "# first; the [[requests]] below are costed on the first, and a throughput of another model or size is",
             "# said to be so. width and height in pixels, [16, 8192]; seconds (optional): the clip length, (0, 3600].",
             "[video]", f"description = {_value(v.description)}", f"width = {v.width}", f"height = {v.height}",
             f"models = {_value(list(v.models))}", "# seconds = 10", "",
             "# [ranges]: how far each assumed input may be off, FIELD = [low, high] around its value, in its own",
             "# unit; for unit_price_usd, board_power_w and rental_usd_per_gpu_hour, factors on the figure used",
             "# (e.g. [0.8, 1.3]). Every fleet figure carries the interval these give.", "[ranges]"]
    lines += [f"{r.field} = [{_value(r.low)}, {_value(r.high)}]" for r in s.ranges]
    lines += ["", "# [publication] (optional): a published estimate printed beside ours, in its own rounded inputs",
              "# [publication]", f"# peak_gpus = {_value(p.peak_gpus)}", f"# unit_price_usd = {_value(p.unit_price_usd)}",
              f"# board_power_w = {_value(p.board_power_w)}", "",
              "# [[platforms]] (optional, repeatable): name (one line), and",
              f"#   minutes_uploaded_per_day: {_allowed('minutes_uploaded_per_day')}",
              f"#   ai_share: {_allowed('ai_share')}",
              "# Without ai_video_minutes_per_day, the demand is the sum of minutes_uploaded_per_day x ai_share."]
    for pl in s.platforms:
        lines += ["[[platforms]]", f"name = {_value(pl.name)}",
                  f"minutes_uploaded_per_day = {_value(pl.minutes_uploaded_per_day)}", f"ai_share = {_value(pl.ai_share)}",
                  ""]
    return lines


def _requests() -> list[str]:
    lines = [f"# [[requests]] (optional, 1 to {MAX_KINDS}): the demand as a mix of clip kinds, each costed on the "
             "first [video]", "# model at its own setting (frames = seconds x the model's fps, rounded to a length "
             "the model takes).", "# name: one line, unique (default: the setting). Fields:"]
    for key, (low, high, low_open, whole, required, meaning) in REQUEST_FIELDS.items():
        kind = "required" if required else "optional"
        lines.append(f"#   {key} ({kind}, {'whole, ' if whole else ''}{'(' if low_open else '['}{low:g}, {high:g}]): "
                     f"{meaning}")
    lines.append("# EXAMPLE of the form, not data (commented out, so the file sizes the preset's fleet everywhere):")
    lines.append("# uncomment and replace the kinds and shares with your own (shares sum to 1).")
    for kind in EXAMPLE_REQUESTS:
        lines += ["# [[requests]]", *(f"# {k} = {_value(v)}" for k, v in kind.items()), "#"]
    return lines


def template_text() -> str:
    """The commented scenario file (it loads with load_scenario as written)."""
    s = load_scenario(PRESET)
    head = [
        "# A t2vbench demand scenario. Size a fleet from it: t2vbench fleet --scenario THIS-FILE.toml",
        "# (`t2vbench fleet --explain` prints the model and every field's check).",
        f"# The numbers are the {PRESET} preset's (source below), so as written it sizes that published fleet; the",
        "# commented [[requests]] mix (costed only by `estimate` and `fleet --predict`) and hourly_profile are",
        "# examples of the form only. Lines starting '#' are comments.",
        "",
        "# name: a slug of a-z, 0-9, '.', '_' or '-' (at most 64 characters)",
        'name = "my-scenario"',
        f"# description: one printable line, at most {TEXTS['description']} characters",
        f'description = "My demand (edit me), from the {PRESET} preset\'s numbers"',
        f"# source: where the numbers come from (here the preset's), one printable line, at most {TEXTS['source']}",
        f"source = {_value(s.source)}",
        "# hardware: the catalogue class the per-GPU figures below are for (`t2vbench hardware`)",
        f"hardware = {_value(s.hardware)}",
        "",
    ]
    return "\n".join([*head, *_numbers(s), *_tables(s), *_requests()]).rstrip() + "\n"


def write_template(path: str | None) -> Path | None:
    """The template to stdout's caller (None: path is '-' or absent) or to a new FILE.toml, atomically. Raises
    UsageError for a folder, an existing file or a name that is not .toml (a bare name is read as a preset)."""
    if path is None or path == "-":
        return None
    where = f"--template {shown(path)}"
    target = Path(path)
    if target.suffix != ".toml":
        raise UsageError(f"{where}: give a file name ending in .toml (a bare name is read back as a preset name)")
    if target.is_dir():
        raise UsageError(f"{where}: is a folder; give a file name such as {shown(str(target / 'my-scenario.toml'))}")
    if target.exists() or target.is_symlink():  # a dangling link too: writing through it would land elsewhere
        raise UsageError(f"{where}: exists; choose another name (a template never replaces a file)")
    try:
        return write_atomic(target, template_text())
    except FileExistsError:
        raise UsageError(f"{where}: appeared while the template was written; choose another name") from None
