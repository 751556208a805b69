"""The fleet extrapolator: how many GPUs, dollars and megawatts a demand scenario needs at a given throughput.

The model (printed by `t2vbench fleet --explain`):
    naive GPUs        = AI video-minutes per day / (24 h x throughput in video-minutes per GPU-hour)
    busy GPUs         = naive x candidates generated per kept video
    average fleet     = busy / utilization
    peak fleet        = average x peak-to-average ratio
    capex             = peak fleet x unit price
    power at peak     = peak fleet x power per GPU x PUE
    energy per year   = busy GPUs x power per GPU x PUE x 8,760 h   (idle draw of provisioned GPUs ignored)
    $ per video-minute, owned  = (capex / lifetime + energy cost per year) / (365 x AI video-minutes per day)
    $ per video-minute, rented = rental $ per GPU-hour x candidates / (throughput x utilization)
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

from bench.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS = Path(__file__).parent / "scenarios"
# Context the estimate is usually set against (CoinDesk / Omdia / Statista / CoinGecko, 2024).
H100_SHIPPED_2023 = 550_000
H100_HELD_TOP12 = 650_000
H100_HELD_META_MICROSOFT = 300_000
AI_TOKEN_MARKET_CAP_USD = 25e9
PUBLISHED_PEAK = 720_000  # Factorial Funds' "~720k", which the $21.6B and 504 MW were computed from
HOURS_PER_YEAR = 8760


@dataclasses.dataclass(frozen=True)
class Platform:
    name: str
    minutes_uploaded_per_day: float
    ai_share: float


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    candidates_per_kept_video: float
    utilization: float
    peak_to_average: float
    gpu_lifetime_years: float
    pue: float
    electricity_usd_per_kwh: float
    ai_video_minutes_per_day: float | None = None
    platforms: tuple[Platform, ...] = ()
    throughput_video_min_per_gpu_hour: float | None = None
    hardware: str | None = None
    unit_price_usd: float | None = None
    board_power_w: float | None = None
    rental_usd_per_gpu_hour: float | None = None

    @property
    def platform_ai_minutes_per_day(self) -> float:
        return sum(p.minutes_uploaded_per_day * p.ai_share for p in self.platforms)

    @property
    def demand_minutes_per_day(self) -> float:
        return self.ai_video_minutes_per_day if self.ai_video_minutes_per_day is not None \
            else self.platform_ai_minutes_per_day


FIELDS = {f.name: f for f in dataclasses.fields(Scenario)}
NUMERIC_SETTABLE = sorted(n for n, f in FIELDS.items() if "float" in str(f.type))


def load_scenario(name_or_path: str, overrides: dict[str, str] | None = None) -> Scenario:
    """A preset by name or a TOML file, with --set overrides. Raises UsageError naming the field at fault."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS / f"{name_or_path}.toml"
    if not path.is_file():
        presets = sorted(p.stem for p in PRESETS.glob("*.toml"))
        raise UsageError(f"scenario '{name_or_path}': no such preset or file (presets: {', '.join(presets)})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"scenario {path}: not valid TOML ({exc})") from None
    for key, value in (overrides or {}).items():
        data[key] = _parse_override(key, value)
    return validate(data, str(path))


def _parse_override(key: str, value: str) -> float:
    if key not in NUMERIC_SETTABLE:
        close = difflib.get_close_matches(key, NUMERIC_SETTABLE, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"--set {key}: not a numeric scenario field{hint}; fields: {', '.join(NUMERIC_SETTABLE)}")
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"--set {key}={value}: not a number") from None


def _number(data: dict[str, Any], key: str, origin: str, low: float, high: float, low_open: bool = False) -> None:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"scenario {origin}: field '{key}' must be a number, not {value!r}")
    if value != value or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise UsageError(f"scenario {origin}: field '{key}' = {value} is outside {bracket}{low:g}, {high:g}]")


def validate(data: dict[str, Any], origin: str) -> Scenario:
    unknown = set(data) - set(FIELDS)
    if unknown:
        key = sorted(unknown)[0]
        close = difflib.get_close_matches(key, list(FIELDS), n=1)
        raise UsageError(f"scenario {origin}: unknown field '{key}'" + (f" (did you mean {close[0]}?)" if close else ""))
    required = [n for n, f in FIELDS.items() if f.default is dataclasses.MISSING]
    for key in required:
        if key not in data:
            raise UsageError(f"scenario {origin}: missing field '{key}'")
    inf = float("inf")
    _number(data, "candidates_per_kept_video", origin, 0, inf, low_open=True)
    _number(data, "utilization", origin, 0, 1, low_open=True)
    _number(data, "peak_to_average", origin, 1, inf)
    _number(data, "gpu_lifetime_years", origin, 0, 100, low_open=True)
    _number(data, "pue", origin, 1, 10)
    _number(data, "electricity_usd_per_kwh", origin, 0, 100)
    for key in ("ai_video_minutes_per_day", "throughput_video_min_per_gpu_hour", "unit_price_usd", "board_power_w",
                "rental_usd_per_gpu_hour"):
        if data.get(key) is not None:
            _number(data, key, origin, 0, inf, low_open=key != "ai_video_minutes_per_day")
    platforms = []
    for i, p in enumerate(data.get("platforms", [])):
        where = f"{origin} platforms[{i}]"
        for key in ("name", "minutes_uploaded_per_day", "ai_share"):
            if key not in p:
                raise UsageError(f"scenario {where}: missing field '{key}'")
        _number(p, "minutes_uploaded_per_day", where, 0, float("inf"))
        _number(p, "ai_share", where, 0, 1)
        platforms.append(Platform(str(p["name"]), float(p["minutes_uploaded_per_day"]), float(p["ai_share"])))
    if data.get("ai_video_minutes_per_day") is None and not platforms:
        raise UsageError(f"scenario {origin}: give 'ai_video_minutes_per_day' or a [[platforms]] table")
    return Scenario(**{**data, "platforms": tuple(platforms)})


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Video minutes per GPU-hour, where it came from, and the GPU's figures where known."""

    value: float
    source: str
    hardware: Any = None  # HardwareClass or None
    power_w: float | None = None
    power_source: str | None = None


def unit_price(s: Scenario, tp: Throughput, overridden: bool) -> float | None:
    """The price per GPU: a --set override; the scenario's for its own hardware; else the catalogue's for the
    throughput's hardware; None for a GPU the catalogue does not know (capex is then n/a, never a wrong guess)."""
    if overridden:
        return s.unit_price_usd
    if tp.hardware is None:
        return None
    if tp.hardware.id == s.hardware and s.unit_price_usd is not None:
        return s.unit_price_usd
    return tp.hardware.price_usd


def size(s: Scenario, tp: Throughput, unit_price_usd: float | None, power_w: float | None) -> dict[str, Any]:
    """The fleet for scenario s at throughput tp. Every output the module docstring defines."""
    if not tp.value > 0:
        raise UsageError(f"throughput {tp.value} video-min per GPU-hour is impossible: give a positive number")
    demand = s.demand_minutes_per_day
    naive = demand / (24 * tp.value)
    busy = naive * s.candidates_per_kept_video
    average = busy / s.utilization
    peak = average * s.peak_to_average
    out: dict[str, Any] = {
        "ai_video_minutes_per_day": demand,
        "naive_gpus": naive, "busy_gpus": busy, "average_gpus": average, "peak_gpus": peak,
        "capex_usd": None if unit_price_usd is None else peak * unit_price_usd,
        "power_at_peak_mw": None if power_w is None else peak * power_w * s.pue / 1e6,
        "energy_per_year_mwh": None if power_w is None else busy * power_w * s.pue * HOURS_PER_YEAR / 1e6,
    }
    out["energy_cost_per_year_usd"] = (None if out["energy_per_year_mwh"] is None
                                       else out["energy_per_year_mwh"] * 1000 * s.electricity_usd_per_kwh)
    if out["capex_usd"] is not None and out["energy_cost_per_year_usd"] is not None:
        yearly = out["capex_usd"] / s.gpu_lifetime_years + out["energy_cost_per_year_usd"]
        out["usd_per_video_minute_owned"] = yearly / (365 * demand) if demand else None
    else:
        out["usd_per_video_minute_owned"] = None
    out["usd_per_video_minute_rented"] = (None if s.rental_usd_per_gpu_hour is None else
                                          s.rental_usd_per_gpu_hour * s.candidates_per_kept_video
                                          / (tp.value * s.utilization))
    out["context"] = {
        "peak_vs_h100_shipped_2023": peak / H100_SHIPPED_2023,
        "peak_vs_h100_held_by_top12": peak / H100_HELD_TOP12,
        "peak_vs_h100_held_by_meta_microsoft": peak / H100_HELD_META_MICROSOFT,
        "capex_vs_ai_token_market_cap": None if out["capex_usd"] is None else out["capex_usd"] / AI_TOKEN_MARKET_CAP_USD,
    }
    return out


SENSITIVE = ("throughput", "ai_video_minutes_per_day", "candidates_per_kept_video", "utilization", "peak_to_average")


def sensitivity(s: Scenario, tp: Throughput, spread: float = 0.5) -> list[dict[str, float | str]]:
    """Peak fleet when each assumption alone moves by -spread and +spread (utilization capped at 1)."""
    rows = []
    for name in SENSITIVE:
        base = tp.value if name == "throughput" else (s.demand_minutes_per_day if name == "ai_video_minutes_per_day"
                                                      else getattr(s, name))
        values = [base * (1 - spread), base * (1 + spread)]
        if name == "utilization":
            values = [min(v, 1.0) for v in values]
        if name == "peak_to_average":
            values = [max(v, 1.0) for v in values]
        peaks = []
        for v in values:
            if name == "throughput":
                peaks.append(size(s, dataclasses.replace(tp, value=v), None, None)["peak_gpus"])
            else:
                peaks.append(size(dataclasses.replace(s, **{name: v}), tp, None, None)["peak_gpus"])
        rows.append({"assumption": name, "low_value": values[0], "high_value": values[1],
                     "peak_at_low": peaks[0], "peak_at_high": peaks[1]})
    return rows


def per_class(s: Scenario, tp: Throughput) -> list[dict[str, Any]]:
    """Peak fleet per catalogue class, scaling the throughput by peak bf16 FLOP/s (assumes equal utilization)."""
    from bench.hardware import catalogue

    if tp.hardware is None:
        return []
    rows = []
    for hw in catalogue().values():
        scaled = tp.value * hw.bf16_tflops / tp.hardware.bf16_tflops
        peak = size(s, dataclasses.replace(tp, value=scaled), None, None)["peak_gpus"]
        rows.append({"hardware": hw.id, "throughput": scaled, "peak_gpus": peak, "measured": hw.id == tp.hardware.id})
    return rows
