"""Fleet output: the text the CLI prints, the JSON it prints, and the tornado and per-class plots (matplotlib).

One vocabulary everywhere (screen, JSON, README): kept-video GPUs, busy GPUs, average fleet, peak fleet
(JSON: kept_video_gpus, busy_gpus, average_fleet_gpus, peak_fleet_gpus).

matplotlib is imported only when a plot is asked for.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from bench.analysis import fleet
from bench.analysis.fleet_estimate import Estimate
from bench.analysis.scenarios import file_format
from bench.core.errors import UsageError
from bench.core.files import nearest_existing, writable_ancestor, write_atomic
from bench.core.text import shown
from bench.present.text import table


def _money(x: float | None) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1e9:
        return f"${x / 1e9:.2f}B"
    if abs(x) >= 1e6:
        return f"${x / 1e6:.2f}M"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:.3g}"


def _n(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:,.2f}M"
    return f"{x / 1e3:,.1f}k" if x >= 1e4 else f"{x:,.0f}"


def _span(est: Estimate, key: str, fmt) -> str:
    """'  [low .. high]' for an output with a range wider than its value, else ''."""
    r = est.ranges.get(key)
    if r is None or r[0] == r[1]:
        return ""
    return f"  [{fmt(r[0])} .. {fmt(r[1])}]"


def _figure_lines(est: Estimate) -> list[str]:
    price, power, rental = (est.figures[n] for n in fleet.FIGURES)
    return [f"unit price  {_money(price.value)} per GPU ({price.source})",
            f"power       {'n/a' if power.value is None else f'{power.value:.0f} W'} per GPU ({power.source})",
            f"rental      {'n/a' if rental.value is None else f'${rental.value:.4g}'} per GPU-hour ({rental.source})"]


def _demand_line(est: Estimate) -> str:
    s, out = est.scenario, est.fleet
    demand = f"AI video-minutes per day {out['ai_video_minutes_per_day'] / 1e6:.2f}M"
    if s.platforms:
        shares = " + ".join(f"{p.ai_share:g} x {p.minutes_uploaded_per_day / 1e6:g}M ({p.name})" for p in s.platforms)
        demand += f"  (platform shares: {shares} = {s.platform_ai_minutes_per_day / 1e6:.2f}M"
        demand += "; the scenario's own figure is used)" if s.ai_video_minutes_per_day is not None else ")"
    return demand


def _money_lines(est: Estimate) -> list[str]:
    s, out = est.scenario, est.fleet
    price, power = est.figures["unit_price_usd"].value, est.figures["board_power_w"].value
    mw = lambda x: f"{x / 1e3:,.2f} GW" if x >= 1e3 else f"{x:.1f} MW"  # noqa: E731
    return [
        f"capex at peak         {_money(out['capex_usd'])}" + (f"  ({_n(out['peak_fleet_gpus'])} x {_money(price)})"
                                                                 if price is not None else "")
        + _span(est, "capex_usd", _money),
        "power at peak         " + ("n/a" if out["power_at_peak_mw"] is None else
                                     f"{mw(out['power_at_peak_mw'])} ({power:.0f} W per GPU, PUE {s.pue:g})"
                                     + _span(est, "power_at_peak_mw", mw)),
        "energy per year       " + ("n/a" if out["energy_per_year_mwh"] is None else
                                     f"{out['energy_per_year_mwh'] / 1e3:,.1f} GWh"
                                     f"{_span(est, 'energy_per_year_mwh', lambda x: f'{x / 1e3:,.1f} GWh')}, "
                                     f"{_money(out['energy_cost_per_year_usd'])} at "
                                     f"${s.electricity_usd_per_kwh:g}/kWh"),
        f"$ per kept video-min  owned {_money(out['owned_usd_per_kept_video_minute'])}"
        f"{_span(est, 'owned_usd_per_kept_video_minute', _money)} (capex over {s.gpu_lifetime_years:g} years + energy), "
        f"rented {_money(out['rented_usd_per_kept_video_minute'])}{_span(est, 'rented_usd_per_kept_video_minute', _money)}",
    ]


def _range_lines(est: Estimate) -> list[str]:
    if not est.inputs:
        return ["ranges: none (no measured interval and no [ranges] in the scenario): each figure is a point"]
    names = ", ".join(f"{i.name} {i.low:.4g}..{i.high:.4g} ({i.basis})" for i in est.inputs)
    return [f"ranges [low .. high]: every ranged input off at once, the worst case (interval arithmetic at the "
            f"corners); from {names}",
            f"moves the peak fleet most: {est.moves_most} (the tornado below moves one input at a time)"]


def _context_lines(est: Estimate) -> list[str]:
    c, pub = est.fleet["context"], est.scenario.publication
    lines = [
        f"context  peak fleet = {c['peak_fleet_vs_h100_shipped_2023']:.2f}x the ~550k H100 shipped in 2023, "
        f"{c['peak_fleet_vs_h100_held_by_top12']:.2f}x the ~650k held by the 12 largest customers, "
        f"{c['peak_fleet_vs_h100_held_by_meta_microsoft']:.2f}x the ~300k of Meta and Microsoft",
    ]
    if c["capex_vs_ai_token_market_cap"] is not None:
        lines.append(f"         capex = {c['capex_vs_ai_token_market_cap']:.2f}x the ~$25B AI-token market cap")
    if pub is not None:
        lines.append(f"         as published: {pub.peak_gpus / 1e3:.0f}k GPUs x {_money(pub.unit_price_usd)} = "
                     f"{_money(pub.peak_gpus * pub.unit_price_usd)}, x {pub.board_power_w:.0f} W = "
                     f"{pub.peak_gpus * pub.board_power_w / 1e6:.0f} MW (the report rounded its peak fleet first)")
    return lines


def format_fleet(est: Estimate, explain: bool) -> str:
    s, tp, out = est.scenario, est.throughput, est.fleet
    lines = [fleet.__doc__.strip(), "", file_format(), ""] if explain else []
    measured = "measured" if tp.measured else "not measured"
    named = f"scenario    {s.name}" + (f": {s.description}" if s.description else "")
    lines += [est.mismatch] if est.mismatch else []
    interval = "" if tp.interval is None else f" [{tp.interval[0]:.4g} .. {tp.interval[1]:.4g}: {tp.interval_basis}]"
    tags = ", ".join(dict.fromkeys((tp.kind, tp.evidence, measured)))  # each word once: not "measured, measured"
    lines += [named, f"throughput  [{tags}] {tp.source}{interval}",
              *_figure_lines(est), _demand_line(est), ""]
    lines += [
        f"kept-video GPUs (demand / 24 h / throughput)   {_n(out['kept_video_gpus'])}{_span(est, 'kept_video_gpus', _n)}",
        f"busy GPUs (x {s.candidates_per_kept_video:g} candidates per kept video)      {_n(out['busy_gpus'])}"
        f"{_span(est, 'busy_gpus', _n)}",
        f"average fleet (/ {s.utilization:g} utilization)              {_n(out['average_fleet_gpus'])}"
        f"{_span(est, 'average_fleet_gpus', _n)}",
        f"peak fleet (x {s.peak_to_average:g} peak-to-average)               {_n(out['peak_fleet_gpus'])}"
        f"{_span(est, 'peak_fleet_gpus', _n)}",
        "",
    ] + _money_lines(est) + [""] + _range_lines(est) + [""] + _context_lines(est)
    if est.sensitivity:
        rows = [[r["assumption"], f"{r['low_value']:.4g}", f"{r['high_value']:.4g}", _n(r["peak_fleet_gpus_at_low"]),
                 _n(r["peak_fleet_gpus_at_high"]), r["basis"]] for r in est.sensitivity]
        lines += ["", "sensitivity of the peak fleet (one input at a time, largest swing first):",
                  table(rows, ["input", "low", "high", "peak fleet at low", "peak fleet at high", "range from"])]
    return "\n".join(lines)


def fleet_json(est: Estimate, plots: list[str]) -> dict[str, Any]:
    """The --json document: the same figures as the text, under the same names."""
    tp = est.throughput
    return {
        "scenario": est.scenario.name,
        "mismatch": est.mismatch,
        "throughput": {"video_min_per_gpu_hour": tp.video_min_per_gpu_hour, "kind": tp.kind, "evidence": tp.evidence,
                       "measured": tp.measured, "source": tp.source, "interval": tp.interval,
                       "interval_basis": tp.interval_basis, "made": tp.made.describe() if tp.made else None,
                       "hardware": tp.hardware.id if tp.hardware else None, "settings_key": tp.settings_key},
        "ranges": {k: None if v is None else {"low": v[0], "high": v[1]} for k, v in est.ranges.items()},
        "ranged_inputs": [dataclasses.asdict(i) for i in est.inputs], "moves_most": est.moves_most,
        "gpu_figures": {n: {"value": f.value, "source": f.source} for n, f in est.figures.items()},
        **est.fleet,
        "sensitivity": est.sensitivity, "per_class": est.per_class, "plots": plots,
        "warnings": list(tp.warnings),
    }


def check_plot_path(path: Path) -> None:
    """Refuse a --plot target that cannot be written, before anything is computed (nothing is written then)."""

    where = f"--plot {shown(str(path))}"
    if path.suffix.lower() not in ("", ".png", ".svg"):
        raise UsageError(f"{where}: give a name ending in .png or .svg (both are written)")
    if path.is_dir():
        raise UsageError(f"{where}: is a folder; give a file name such as {path / 'fleet.png'}")
    if writable_ancestor(path.parent) is None:
        raise UsageError(f"{where}: cannot write in {shown(str(nearest_existing(path.parent)))}; choose a writable "
                         "folder")
    for target in (path.with_suffix(".png"), path.with_suffix(".svg")):
        if target.exists() or target.is_symlink():  # a dangling link too: writing through it would land elsewhere
            raise UsageError(f"{where}: {shown(str(target))} exists; t2vbench never writes over a file (or through a "
                             "link): choose another name or remove it")


def _count(x: float, _pos: object = None) -> str:
    """A count as an axis writes it: 713k, 1.43M, 10M, 0; never an exponent or a 1e6 offset."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.3g}"


def _tornado(ax, est: Estimate) -> None:
    """One bar per assumption from the scenario's peak fleet to the fleet with the assumption at its low value, and
    another to the fleet at its high value, each end labelled with the assumption's value there."""
    from bench.present.palette import LOW_HIGH

    sens, base = est.sensitivity, est.fleet["peak_fleet_gpus"]
    for i, r in enumerate(sens):
        for end, color in zip(("low", "high"), LOW_HIGH):
            fleet_gpus = r[f"peak_fleet_gpus_at_{end}"]
            ax.barh(i, fleet_gpus - base, left=base, color=color, height=0.7,
                    label=f"assumption at {end}" if i == 0 else None)
            outward = fleet_gpus >= base
            ax.text(fleet_gpus, i, f" {_count(r[f'{end}_value'])} " if outward else f"{_count(r[f'{end}_value'])} ",
                    ha="left" if outward else "right", va="center", fontsize=8)
    ax.axvline(base, color="black", lw=1, label=f"scenario: {_count(base)} GPUs")
    ax.set_yticks(range(len(sens)), [r["assumption"] for r in sens])
    ax.set_ylim(-0.6, len(sens) + 0.3)  # a free row on top for the legend: the bars fill the width
    ax.margins(x=0.12)
    ax.set_ylabel("assumption moved (text: its value)")
    ax.set_xlabel("peak fleet (GPUs; k = thousand, M = million)")
    ax.set_title(f"{est.scenario.name}: peak fleet when one assumption moves")
    ax.legend(loc="upper center", ncols=3, fontsize=8)


def _per_class(ax, classes: list[dict[str, Any]]) -> None:
    from matplotlib.patches import Patch
    from matplotlib.ticker import LogLocator, NullFormatter

    from bench.present.palette import OWN_CLASS, SCALED_CLASS

    names = [c["hardware"] for c in classes]
    ax.bar(names, [c["peak_fleet_gpus"] for c in classes],
           color=[SCALED_CLASS if c["scaled"] else OWN_CLASS for c in classes])
    lines = [ax.axhline(fleet.H100_SHIPPED_2023, ls="--", color="black", lw=1,
                        label=f"H100 shipped in 2023 ({_count(fleet.H100_SHIPPED_2023)})"),
             ax.axhline(fleet.H100_HELD_TOP12, ls=":", color="black", lw=1.2,
                        label=f"H100 held by the top 12 ({_count(fleet.H100_HELD_TOP12)})")]
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("peak fleet (GPUs, log scale; k = thousand, M = million)")
    ax.set_xlabel("hardware class")
    ax.set_title("peak fleet per class")
    for label in ax.get_xticklabels():  # anchored at the tick's end so long class names do not run into each other
        label.set(rotation=45, ha="right", rotation_mode="anchor")
    ax.legend(handles=[Patch(color=OWN_CLASS, label="the throughput's own class"),
                       Patch(color=SCALED_CLASS, label="scaled by peak bf16 FLOP/s"), *lines],
              loc="upper left", fontsize=8)


def figure(est: Estimate):
    """The tornado of the sensitivity beside the peak fleet per hardware class, as a matplotlib Figure (no pyplot):
    every count axis in k and M, never an exponent or an offset."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(14, 5.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    _tornado(left, est)
    if est.per_class:
        _per_class(right, est.per_class)
    else:
        right.text(0.5, 0.5, "no hardware class for the throughput source", ha="center", transform=right.transAxes)
        right.set_axis_off()
    for axis in (left.xaxis, right.yaxis):
        axis.set_major_formatter(FuncFormatter(_count))
    return fig


def plot(path: Path, est: Estimate) -> list[Path]:
    """A tornado of the sensitivity and the peak fleet per hardware class; writes PNG and SVG. Returns the paths."""
    fig = figure(est)
    paths = [path.with_suffix(".png"), path.with_suffix(".svg")]
    for p in paths:  # drawn in memory, then written as every output is: atomically, never over a file or a link
        buffer = io.BytesIO()
        fig.savefig(buffer, format=p.suffix[1:], dpi=120)
        write_atomic(p, buffer.getvalue())
    return paths
