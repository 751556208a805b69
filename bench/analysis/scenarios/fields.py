"""A scenario's fields: its types, the range each number can physically take, and the check that holds a number
to it (used for scenario files, --set and --throughput alike)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.text import shown

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
# Inputs a [ranges] table may give a range for: the scenario's own numbers in their unit, the per-GPU figures as
# factors on the figure used (it differs per hardware class).
RANGED = ("ai_video_minutes_per_day", "candidates_per_kept_video", "utilization", "peak_to_average",
          "gpu_lifetime_years", "pue", "electricity_usd_per_kwh", "throughput_video_min_per_gpu_hour")
FACTOR_RANGED = ("unit_price_usd", "board_power_w", "rental_usd_per_gpu_hour")
MAX_FACTOR = 100.0


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
class Video:
    """What video the demand is made of, so that a throughput measured on something else is said to be so, and
    the open models nearest to it (in models/, best first) that a fleet can be sized from instead."""

    description: str  # e.g. "Sora-class: a ~20B DiT, up to 60 s at 1080p"
    width: int
    height: int
    models: tuple[str, ...]  # spec names, e.g. ("wan2.2-t2v-a14b", "hunyuanvideo")
    seconds: float | None = None  # the clip length the demand assumes, where it assumes one


@dataclasses.dataclass(frozen=True)
class Range:
    """How far an input the scenario assumes may be off: [low, high] around its value. For the per-GPU figures
    (unit price, board power, rental) a pair of factors on whichever figure is used (their value comes from the
    command line, the scenario or the catalogue, per class); for every other field the field's own unit."""

    field: str
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class RequestKind:
    """One kind of clip in the demand's mix ([[requests]]): its share of the AI video-minutes demanded and the
    setting it is generated at; steps and guidance None: the model's own (a step-distilled kind gives its own)."""

    name: str
    share: float  # of the AI video-minutes demanded, a fraction in (0, 1]
    seconds: float  # clip length
    width: int
    height: int
    steps: int | None = None
    guidance: float | None = None


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
    video: Video | None = None
    ranges: tuple[Range, ...] = ()
    hourly_profile: tuple[float, ...] | None = None  # shares of a day's demand per hour (00-01 first); sets the peak
    requests: tuple[RequestKind, ...] = ()  # the demand's mix of clip kinds; () : one kind, the [video] clip

    @property
    def platform_ai_minutes_per_day(self) -> float:
        return sum(p.minutes_uploaded_per_day * p.ai_share for p in self.platforms)

    @property
    def demand_minutes_per_day(self) -> float:
        return self.ai_video_minutes_per_day if self.ai_video_minutes_per_day is not None \
            else self.platform_ai_minutes_per_day


FIELDS = {f.name: f for f in dataclasses.fields(Scenario)}
# peak_to_average is always set on a Scenario, but a file may give an hourly_profile instead, which derives it
DERIVED = {"peak_to_average": "hourly_profile"}
REQUIRED = [n for n, f in FIELDS.items() if f.default is dataclasses.MISSING and n not in DERIVED]


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
