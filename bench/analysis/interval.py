"""The interval every fleet figure carries, and which input moves it most.

Inputs with a range: the throughput (the 95% interval of its measurement, or the error the cost model showed in
`predict --validate` for a prediction) and each assumption the scenario's [ranges] table names (demand, candidates,
utilization, peak-to-average, lifetime, PUE, electricity price; unit price, board power and rental as factors on
the figure used).

Why interval arithmetic at the corners and not Monte Carlo: every fleet figure is a product and quotient of positive
inputs (bench.analysis.fleet's formulas), so each is monotone in each input alone, and its least and greatest values
over the box of input ranges lie at corners of the box. Evaluating the formulas at every corner (2^k points, k <= 12)
gives the exact range, reproducibly, with no seed and no sampling error. Monte Carlo would also need a distribution
for each input, and nobody knows the distribution of a peak-to-average ratio or a future GPU price: a percentile
drawn from invented distributions would print a precision the inputs do not have. The price of this choice, said on
every output: the range is the worst case of all inputs off at once, wider than any one input's effect, which the
tornado (one input at a time, the others at their values) shows beside it.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from bench.analysis.fleet import Figure, size
from bench.analysis.scenarios import FACTOR_RANGED, Scenario
from bench.core.errors import UsageError

MAX_RANGED_INPUTS = 12  # 4,096 corners: every scenario field plus the throughput fits
OUTPUTS = ("kept_video_gpus", "busy_gpus", "average_fleet_gpus", "peak_fleet_gpus", "capex_usd", "power_at_peak_mw",
           "energy_per_year_mwh", "energy_cost_per_year_usd", "owned_usd_per_kept_video_minute",
           "rented_usd_per_kept_video_minute")
THROUGHPUT = "throughput_video_min_per_gpu_hour"


@dataclasses.dataclass(frozen=True)
class Input:
    """One input that may be off: its value, its low and high, and what the range rests on."""

    name: str
    value: float
    low: float
    high: float
    basis: str  # e.g. "assumed: scenario range", "measured: 95% interval of the mean latency"


def inputs(s: Scenario, throughput: float, throughput_range: tuple[float, float] | None, throughput_basis: str,
           figures: dict[str, Figure]) -> list[Input]:
    """The inputs with a range: the throughput's (where it has one) and the scenario's, a factor range turned into
    one on the figure used (none where that figure is unknown). Raises UsageError past MAX_RANGED_INPUTS."""
    out = []
    if throughput_range is not None:
        low, high = throughput_range
        out.append(Input(THROUGHPUT, throughput, low, high, throughput_basis))
    for r in s.ranges:
        if r.field == THROUGHPUT:
            if throughput_range is None and throughput == s.throughput_video_min_per_gpu_hour:
                out.append(Input(THROUGHPUT, throughput, r.low, r.high, "assumed: scenario range"))
            continue
        if r.field in FACTOR_RANGED:
            value = figures[r.field].value
            if value is not None:
                out.append(Input(r.field, value, value * r.low, value * r.high,
                                 f"assumed: scenario range, x{r.low:g} to x{r.high:g} the figure used"))
            continue
        value = s.demand_minutes_per_day if r.field == "ai_video_minutes_per_day" else getattr(s, r.field)
        out.append(Input(r.field, value, r.low, r.high, "assumed: scenario range"))
    if len(out) > MAX_RANGED_INPUTS:
        raise UsageError(f"{len(out)} inputs have a range; at most {MAX_RANGED_INPUTS} can be combined")
    return out


def evaluate(s: Scenario, throughput: float, figures: dict[str, Figure], values: dict[str, float]) -> dict[str, Any]:
    """The fleet with some inputs moved to `values` (input name -> value), the others as they are."""
    fields = {k: v for k, v in values.items() if k not in FACTOR_RANGED and k != THROUGHPUT}
    moved = dataclasses.replace(s, **fields) if fields else s
    figs = {k: Figure(values[k], f.source) if k in values else f for k, f in figures.items()}
    return size(moved, values.get(THROUGHPUT, throughput), figs)


def ranges(s: Scenario, throughput: float, figures: dict[str, Figure], ranged: list[Input]
           ) -> dict[str, tuple[float, float] | None]:
    """Each output's least and greatest value over every corner of the inputs' ranges (None where the output is
    unknown, e.g. capex without a price). With no ranged input, each output's range is its value."""
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for corner in itertools.product(*[(i.low, i.high) for i in ranged]):
        out = evaluate(s, throughput, figures, {i.name: v for i, v in zip(ranged, corner)})
        for key in OUTPUTS:
            if out[key] is not None:
                lows[key] = min(lows.get(key, out[key]), out[key])
                highs[key] = max(highs.get(key, out[key]), out[key])
    return {key: (lows[key], highs[key]) if key in lows else None for key in OUTPUTS}


def tornado(s: Scenario, throughput: float, figures: dict[str, Figure], ranged: list[Input],
            output: str = "peak_fleet_gpus") -> list[dict[str, Any]]:
    """`output` with each input alone at its low and its high, the others at their values; the input that moves it
    most first."""
    rows = []
    for i in ranged:
        at_low = evaluate(s, throughput, figures, {i.name: i.low})[output]
        at_high = evaluate(s, throughput, figures, {i.name: i.high})[output]
        if at_low is None or at_high is None or at_low == at_high:
            continue  # an input that does not move this output (a price does not move the peak fleet)
        rows.append({"assumption": i.name, "low_value": i.low, "high_value": i.high, "basis": i.basis,
                     f"{output}_at_low": at_low, f"{output}_at_high": at_high, "swing": abs(at_high - at_low)})
    return sorted(rows, key=lambda r: -r["swing"])
