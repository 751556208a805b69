"""The fleet extrapolator: how many GPUs, dollars and megawatts a demand scenario needs at a given throughput.

The model (printed by `t2vbench fleet --explain`):
    kept-video GPUs  = AI video-minutes per day / (24 h x throughput in video-minutes per GPU-hour)
                       (the GPUs that would generate the kept videos, busy around the clock; Factorial Funds
                       called this figure the "average fleet")
    busy GPUs        = kept-video GPUs x candidates generated per kept video
    average fleet    = busy GPUs / utilization
    peak fleet       = average fleet x peak-to-average ratio
    capex            = peak fleet x unit price
    power at peak    = peak fleet x power per GPU x PUE
    energy per year  = busy GPUs x power per GPU x PUE x 8,760 h   (idle draw of provisioned GPUs ignored)
    $ per kept video-minute, owned  = candidates x (unit price / (lifetime x 8,760 h x utilization / peak-to-average)
                                      + power per GPU x PUE x electricity price) / throughput
                                      (the peak fleet is bought, so each GPU is busy utilization / peak-to-average)
    $ per kept video-minute, rented = candidates x rental $ per GPU-hour / (throughput x utilization)
                                      (the average fleet is rented around the clock; renting is elastic, no peak)

Where each per-GPU figure (unit price, power per GPU, rental $ per GPU-hour) comes from, the first that applies:
    1. the command line: --set FIELD=VALUE; for power also --measured-power (the measured record's average power)
    2. the scenario file, when it names no hardware class or names the throughput's class (its figures describe
       its own GPU: a file that prices an H100 does not price a B200)
    3. the hardware catalogue entry of the throughput's class (--hardware, the scenario's hardware, the record's GPU)
    otherwise n/a, and so is everything that needs it: never a guess.
A record's measured average power is used only when asked (--measured-power): power at peak is what a datacenter
must provision, which is the board power, and a run's average (an H100 draws 620-690 W of its 700 W generating
video) describes that one run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from bench.analysis.scenarios import Scenario, load_scenario  # noqa: F401  (load_scenario: the public entry point)
from bench.core.errors import UsageError

if TYPE_CHECKING:
    from bench.analysis.throughput import Throughput

# Context the estimate is usually set against (CoinDesk / Omdia / Statista / CoinGecko, 2024).
H100_SHIPPED_2023 = 550_000
H100_HELD_TOP12 = 650_000
H100_HELD_META_MICROSOFT = 300_000
AI_TOKEN_MARKET_CAP_USD = 25e9
HOURS_PER_YEAR = 8760
FIGURES = ("unit_price_usd", "board_power_w", "rental_usd_per_gpu_hour")
CATALOGUE_FIELD = {"unit_price_usd": "price_usd", "board_power_w": "board_power_w",
                   "rental_usd_per_gpu_hour": "rental_usd_per_gpu_hour"}


@dataclasses.dataclass(frozen=True)
class Figure:
    """One per-GPU figure and where it came from (see the module docstring's precedence)."""

    value: float | None
    source: str


def gpu_figures(s: Scenario, tp: Throughput, overridden: set[str], measured_power: bool) -> dict[str, Figure]:
    """Unit price, power per GPU and rental $ per GPU-hour, each by the precedence in the module docstring.
    Raises UsageError where --measured-power cannot be honoured."""
    hw = tp.hardware
    file_applies = s.hardware is None or (hw is not None and hw.id == s.hardware)
    out = {}
    for name in FIGURES:
        value = getattr(s, name)
        if name == "board_power_w" and measured_power:
            out[name] = _measured_power(tp, "board_power_w" in overridden)
        elif name in overridden:
            out[name] = Figure(value, "--set")
        elif value is not None and file_applies:
            out[name] = Figure(value, f"scenario {s.name}")
        elif hw is not None and getattr(hw, CATALOGUE_FIELD[name]) is not None:
            date = f", {hw.rental_date}" if name == "rental_usd_per_gpu_hour" else ""
            note = f"; the scenario's figure is for {s.hardware}" if value is not None else ""
            out[name] = Figure(getattr(hw, CATALOGUE_FIELD[name]), f"catalogue {hw.id}{date}{note}")
        else:
            gpu = f"{hw.id} in the catalogue" if hw else "this throughput's GPU"
            note = f" (the scenario's is for {s.hardware})" if value is not None else ""
            out[name] = Figure(None, f"none for {gpu}{note}: --set {name}=...")
    return out


def _measured_power(tp: Throughput, also_set: bool) -> Figure:
    if also_set:
        raise UsageError("--measured-power and --set board_power_w name two powers; give one")
    if not tp.measured:
        raise UsageError("--measured-power needs a measured throughput: --record or --results")
    if tp.measured_power_w is None:
        raise UsageError("--measured-power: the record(s) have no measured average power per GPU (telemetry "
                         "unavailable, or a multi-GPU run); drop it or --set board_power_w=...")
    return Figure(tp.measured_power_w, "measured average board power of the record(s)")


def usd_per_video_minute(throughput_video_min_per_gpu_hour: float, *, busy_share: float,
                         unit_price_usd: float | None, board_power_w: float | None, gpu_lifetime_years: float,
                         pue: float, electricity_usd_per_kwh: float,
                         rental_usd_per_gpu_hour: float | None) -> dict[str, float | None]:
    """Dollars per generated video-minute on one GPU that is busy `busy_share` of the hours paid for.

        owned_capital_usd_per_video_minute = unit_price_usd / (gpu_lifetime_years x 8,760 h x busy_share) / throughput
        owned_energy_usd_per_video_minute  = board_power_w / 1,000 x pue x electricity_usd_per_kwh / throughput
                                             (energy is drawn in busy hours only; idle draw is ignored)
        owned_usd_per_video_minute         = capital + energy
        rented_usd_per_video_minute        = rental_usd_per_gpu_hour / (throughput x busy_share)

    throughput is in video-minutes per GPU-hour. A figure that needs a missing input is None.
    """
    tp = throughput_video_min_per_gpu_hour
    capital = None if unit_price_usd is None else \
        unit_price_usd / (gpu_lifetime_years * HOURS_PER_YEAR * busy_share) / tp
    energy = None if board_power_w is None else board_power_w / 1000 * pue * electricity_usd_per_kwh / tp
    return {
        "owned_capital_usd_per_video_minute": capital,
        "owned_energy_usd_per_video_minute": energy,
        "owned_usd_per_video_minute": None if capital is None or energy is None else capital + energy,
        "rented_usd_per_video_minute": None if rental_usd_per_gpu_hour is None else
        rental_usd_per_gpu_hour / (tp * busy_share),
    }


def cost_per_video_minute(s: Scenario, throughput_video_min_per_gpu_hour: float, unit_price_usd: float | None,
                          board_power_w: float | None,
                          rental_usd_per_gpu_hour: float | None) -> dict[str, float | None]:
    """Dollars per generated video-minute on one GPU class, for comparing classes (not a fleet):

        owned:  the unit price amortized over the scenario's gpu_lifetime_years with the GPU busy the scenario's
                utilization of the time, plus energy at its PUE and electricity price (usd_per_video_minute).
        rented: rental_usd_per_gpu_hour / throughput: on-demand GPUs are paid only for the hours they generate.

    Returns owned_capital_usd_per_video_minute, owned_energy_usd_per_video_minute, owned_usd_per_video_minute and
    rented_usd_per_video_minute; None where an input is None. Raises UsageError for a throughput that is not a
    positive finite number.
    """
    tp = _positive(throughput_video_min_per_gpu_hour)
    common = dict(unit_price_usd=unit_price_usd, board_power_w=board_power_w, gpu_lifetime_years=s.gpu_lifetime_years,
                  pue=s.pue, electricity_usd_per_kwh=s.electricity_usd_per_kwh)
    owned = usd_per_video_minute(tp, busy_share=s.utilization, rental_usd_per_gpu_hour=None, **common)
    rented = usd_per_video_minute(tp, busy_share=1.0, rental_usd_per_gpu_hour=rental_usd_per_gpu_hour, **common)
    return {**owned, "rented_usd_per_video_minute": rented["rented_usd_per_video_minute"]}


def _positive(throughput: float) -> float:
    if isinstance(throughput, bool) or not isinstance(throughput, (int, float)) or not math.isfinite(throughput) \
            or throughput <= 0:
        raise UsageError(f"throughput {throughput!r} video-min per GPU-hour is impossible: give a positive number")
    return float(throughput)


def size(s: Scenario, throughput_video_min_per_gpu_hour: float, figures: dict[str, Figure]) -> dict[str, Any]:
    """The fleet for scenario s at a throughput (video-min per GPU-hour): every output the module docstring defines.
    Raises UsageError where the inputs multiply past what a float holds."""
    tp = _positive(throughput_video_min_per_gpu_hour)
    price, power, rental = (figures[n].value for n in FIGURES)
    demand = s.demand_minutes_per_day
    kept = demand / (24 * tp)
    busy = kept * s.candidates_per_kept_video
    average = busy / s.utilization
    peak = average * s.peak_to_average
    energy_mwh = None if power is None else busy * power * s.pue * HOURS_PER_YEAR / 1e6
    common = dict(unit_price_usd=price, board_power_w=power, gpu_lifetime_years=s.gpu_lifetime_years, pue=s.pue,
                  electricity_usd_per_kwh=s.electricity_usd_per_kwh, rental_usd_per_gpu_hour=rental)
    owned = usd_per_video_minute(tp, busy_share=s.utilization / s.peak_to_average, **common)
    rented = usd_per_video_minute(tp, busy_share=s.utilization, **common)
    per_kept = lambda v: None if v is None else v * s.candidates_per_kept_video  # noqa: E731
    out: dict[str, Any] = {
        "ai_video_minutes_per_day": demand,
        "kept_video_gpus": kept, "busy_gpus": busy, "average_fleet_gpus": average, "peak_fleet_gpus": peak,
        "capex_usd": None if price is None else peak * price,
        "power_at_peak_mw": None if power is None else peak * power * s.pue / 1e6,
        "energy_per_year_mwh": energy_mwh,
        "energy_cost_per_year_usd": None if energy_mwh is None else energy_mwh * 1000 * s.electricity_usd_per_kwh,
        "owned_usd_per_kept_video_minute": per_kept(owned["owned_usd_per_video_minute"]),
        "rented_usd_per_kept_video_minute": per_kept(rented["rented_usd_per_video_minute"]),
    }
    out["context"] = {
        "peak_fleet_vs_h100_shipped_2023": peak / H100_SHIPPED_2023,
        "peak_fleet_vs_h100_held_by_top12": peak / H100_HELD_TOP12,
        "peak_fleet_vs_h100_held_by_meta_microsoft": peak / H100_HELD_META_MICROSOFT,
        "capex_vs_ai_token_market_cap": None if price is None else out["capex_usd"] / AI_TOKEN_MARKET_CAP_USD,
    }
    if not all(math.isfinite(v) for v in _numbers(out)):
        raise UsageError(f"scenario {s.name} at {tp:g} video-min per GPU-hour gives a fleet too large for a number: "
                         "check utilization, throughput and the demand")
    return out


def _numbers(d: dict[str, Any]) -> list[float]:
    return [x for v in d.values() for x in (_numbers(v) if isinstance(v, dict) else [v]) if isinstance(x, float)]


NO_FIGURES = {n: Figure(None, "") for n in FIGURES}
