"""Fleet output: the text the CLI prints, and the tornado and per-class plots (PNG and SVG, matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import fleet
from bench.display import table
from bench.fleet import Scenario, Throughput


def _money(x: float | None) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1e9:
        return f"${x / 1e9:.2f}B"
    if abs(x) >= 1e6:
        return f"${x / 1e6:.2f}M"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:.3g}"


def _n(x: float) -> str:
    return f"{x / 1e3:,.1f}k" if x >= 1e4 else f"{x:,.0f}"


def format_fleet(s: Scenario, tp: Throughput, out: dict[str, Any], price: float | None, power_w: float | None,
                 sens: list[dict], explain: bool) -> str:
    lines = []
    if explain:
        lines += [fleet.__doc__.strip(), ""]
    lines += [f"scenario   {s.name}: {s.description}", f"throughput {tp.source}"]
    demand = f"AI video-minutes per day {out['ai_video_minutes_per_day'] / 1e6:.2f}M"
    if s.platforms:
        shares = " + ".join(f"{p.ai_share:g} x {p.minutes_uploaded_per_day / 1e6:g}M ({p.name})" for p in s.platforms)
        demand += f"  (platform shares: {shares} = {s.platform_ai_minutes_per_day / 1e6:.2f}M"
        demand += "; the scenario's own figure is used)" if s.ai_video_minutes_per_day is not None else ")"
    lines += [demand, ""]
    lines += [
        f"naive GPUs (demand / 24 h / throughput)       {_n(out['naive_gpus'])}",
        f"busy GPUs (x {s.candidates_per_kept_video:g} candidates per kept video)     {_n(out['busy_gpus'])}",
        f"average fleet (/ {s.utilization:g} utilization)             {_n(out['average_gpus'])}",
        f"peak fleet (x {s.peak_to_average:g} peak-to-average)              {_n(out['peak_gpus'])}",
        "",
        f"capex at peak         {_money(out['capex_usd'])}" + (f"  ({_n(out['peak_gpus'])} x {_money(price)})"
                                                                  if price else "  (no unit price: --set unit_price_usd=...)"),
        "power at peak         " + ("n/a (no power figure: --set board_power_w=...)" if out["power_at_peak_mw"] is None
                                     else f"{out['power_at_peak_mw']:.1f} MW ({power_w:.0f} W per GPU, "
                                          f"{tp.power_source}, PUE {s.pue:g})"),
        "energy per year       " + ("n/a" if out["energy_per_year_mwh"] is None else
                                     f"{out['energy_per_year_mwh'] / 1e3:,.1f} GWh, {_money(out['energy_cost_per_year_usd'])}"
                                     f" at ${s.electricity_usd_per_kwh:g}/kWh"),
        f"$ per video-minute    owned {_money(out['usd_per_video_minute_owned'])} "
        f"(capex over {s.gpu_lifetime_years:g} years + energy), rented {_money(out['usd_per_video_minute_rented'])}",
        "",
    ]
    c = out["context"]
    lines += [
        f"context  peak fleet = {c['peak_vs_h100_shipped_2023']:.2f}x the ~550k H100 shipped in 2023, "
        f"{c['peak_vs_h100_held_by_top12']:.2f}x the ~650k held by the 12 largest customers, "
        f"{c['peak_vs_h100_held_by_meta_microsoft']:.2f}x the ~300k of Meta and Microsoft",
    ]
    if c["capex_vs_ai_token_market_cap"] is not None:
        lines.append(f"         capex = {c['capex_vs_ai_token_market_cap']:.2f}x the ~$25B AI-token market cap")
    if price and power_w:
        lines.append(f"         as published: {fleet.PUBLISHED_PEAK / 1e3:.0f}k GPUs x {_money(price)} = "
                     f"{_money(fleet.PUBLISHED_PEAK * price)}, x {power_w:.0f} W = "
                     f"{fleet.PUBLISHED_PEAK * power_w / 1e6:.0f} MW (the report rounded 713k to ~720k first)")
    if sens:
        rows = [[r["assumption"], f"{r['low_value']:.4g}", f"{r['high_value']:.4g}", _n(r["peak_at_low"]),
                 _n(r["peak_at_high"])] for r in sens]
        lines += ["", "sensitivity of the peak fleet:", table(rows, ["assumption", "low", "high", "peak at low",
                                                                      "peak at high"])]
    return "\n".join(lines)


def plot(path: Path, s: Scenario, out: dict[str, Any], sens: list[dict], classes: list[dict]) -> list[Path]:
    """A tornado of the sensitivity and the peak fleet per hardware class; writes PNG and SVG. Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), constrained_layout=True)
    base = out["peak_gpus"]
    for i, r in enumerate(sens):
        lo, hi = sorted((r["peak_at_low"], r["peak_at_high"]))
        left.barh(i, hi - lo, left=lo, color="#4c72b0")
        left.text(hi, i, f" {r['low_value']:.3g} .. {r['high_value']:.3g}", va="center", fontsize=8)
    left.axvline(base, color="black", lw=1, label=f"scenario: {base:,.0f}")
    left.set_yticks(range(len(sens)), [r["assumption"] for r in sens])
    left.set_xlabel("peak fleet (GPUs)")
    left.set_title(f"{s.name}: peak fleet when one assumption moves")
    left.legend(loc="lower right")
    if classes:
        names = [c["hardware"] for c in classes]
        right.bar(names, [c["peak_gpus"] for c in classes],
                  color=["#dd8452" if c["measured"] else "#4c72b0" for c in classes])
        for ref, label in ((fleet.H100_SHIPPED_2023, "H100 shipped 2023 (550k)"),
                           (fleet.H100_HELD_TOP12, "held by top 12 (650k)")):
            right.axhline(ref, ls="--", color="gray")
            right.text(len(names) - 0.5, ref, label, ha="right", va="bottom", fontsize=8)
        right.set_yscale("log")
        right.set_ylabel("peak fleet (GPUs, log)")
        right.set_title("peak fleet per class (throughput scaled by peak bf16 FLOP/s)")
        right.tick_params(axis="x", rotation=45)
    else:
        right.text(0.5, 0.5, "no hardware class for the throughput source", ha="center", transform=right.transAxes)
        right.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = [path.with_suffix(".png"), path.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
