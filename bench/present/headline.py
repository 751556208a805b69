"""`t2vbench estimate` output: one table, a row per hardware class with evidence, each figure with its range and
the kinds of its inputs, the published estimate beside it; the text the CLI prints, the JSON it prints, and the
rows the HTML report opens with."""

from __future__ import annotations

from typing import Any

from bench.analysis.fleet import Figure
from bench.analysis.fleet_estimate import Estimate
from bench.analysis.headline import Headline, Row
from bench.present.text import table

HEADER = ["class", "model", "video-min / GPU-hour", "GPUs at peak", "capex", "power at peak", "$ / kept video-min",
          "kinds: throughput; price; power (demand and serving: assumed)"]


def _n(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.3g}M"
    return f"{x / 1e3:.3g}k" if x >= 1e3 else f"{x:.3g}"


def _money(x: float) -> str:
    if x >= 1e12:
        return f"${x / 1e12:.3g}T"
    if x >= 1e9:
        return f"${x / 1e9:.3g}B"
    return f"${x / 1e6:.3g}M" if x >= 1e6 else f"${x:.3g}"


def _mw(x: float) -> str:
    return f"{x / 1e3:.3g} GW" if x >= 1e3 else f"{x:.3g} MW"


def _cell(est: Estimate, key: str, fmt) -> str:
    value, r = est.fleet[key], est.ranges.get(key)
    if value is None:
        return "n/a"
    if r is None or r[0] == r[1]:
        return fmt(value)
    return f"{fmt(value)} [{fmt(r[0])}-{fmt(r[1])}]"


def figure_kind(f: Figure) -> str:
    """The ladder's word for a per-GPU figure by where it came from (bench.analysis.fleet.gpu_figures)."""
    if f.value is None:
        return "unknown"
    if f.source.startswith("catalogue"):
        return "published"
    if f.source.startswith("measured"):
        return "measured"
    return "assumed"  # the scenario's or the command line's


def kinds(est: Estimate) -> dict[str, str]:
    """Per input, its kind: the throughput's, the per-GPU figures', and the scenario's assumptions."""
    return {"throughput": est.throughput.evidence, "unit price": figure_kind(est.figures["unit_price_usd"]),
            "board power": figure_kind(est.figures["board_power_w"]), "demand and serving": "assumed"}


def _inputs(est: Estimate) -> str:
    k = kinds(est)
    return f"{k['throughput']}; price {k['unit price']}; power {k['board power']}"


def _throughput(row: Row) -> str:
    tp = row.estimate.throughput
    span = "" if tp.interval is None else f" [{tp.interval[0]:.3g}-{tp.interval[1]:.3g}]"
    rung = "" if row.rung in ("measured", "step-sampled") else f", {row.rung} rung"
    return f"{tp.video_min_per_gpu_hour:.3g}{span}{rung}"


def cells(est: Estimate, model: str, throughput: str, name: str) -> list[str]:
    return [name, model, throughput, _cell(est, "peak_fleet_gpus", _n), _cell(est, "capex_usd", _money),
            _cell(est, "power_at_peak_mw", _mw), _cell(est, "owned_usd_per_kept_video_minute", _money), _inputs(est)]


def rows(h: Headline) -> list[list[str]]:
    """The table's rows: one per class with evidence, then the publication and its reproduction."""
    out = [cells(r.estimate, r.model, _throughput(r), r.hardware + ("" if r.fits is not False else " (does not fit)"))
           for r in h.rows]
    pub = h.scenario.publication
    if pub is not None:
        out.append([f"{h.scenario.name} as published", "-", "-", _n(pub.peak_gpus), _money(pub.peak_gpus *
                    pub.unit_price_usd), _mw(pub.peak_gpus * pub.board_power_w / 1e6), "-", "published"])
    if h.as_published is not None:
        tp = h.as_published.throughput
        out.append(cells(h.as_published, "-", f"{tp.video_min_per_gpu_hour:.3g} {tp.evidence}",
                         f"{h.scenario.name} inputs, our formulas" + (f" (--set {', '.join(h.overridden)})"
                                                                      if h.overridden else "")))
    return out


def notes(h: Headline) -> list[str]:
    s, lines = h.scenario, []
    first = h.rows[0].estimate if h.rows else h.as_published
    if first is not None and first.inputs:
        assumed = ", ".join(f"{i.name} {i.low:.3g}-{i.high:.3g}" for i in first.inputs if i.basis.startswith("assumed"))
        lines.append(f"[low-high]: every ranged input off at once (the worst case; interval arithmetic at the corners)."
                     f" Assumed ranges: {assumed}.")
        lines.append(f"The input that moves the peak fleet most: {first.moves_most} (`t2vbench fleet --predict "
                     f"{s.video.models[0]} --hardware CLASS` shows the tornado).")
    for r in h.rows:
        tp = r.estimate.throughput
        basis = tp.source if r.rung.startswith("mix") else tp.interval_basis
        mfu = "" if r.mfu is None else f"; implied MFU {r.mfu:.0%}"
        lines.append(f"{r.hardware}: {basis}{mfu}; rests on {_evidence(r.evidence)}")
    lines.append("Read the rows against what they rest on: a rung's error is what it showed where it can be checked "
                 "(the class rung on serving options of one model, the published rung on one source's other models); "
                 "across model sizes and between sources (one class's figures from MLPerf, another's from ML.ENERGY) "
                 "the difference between rows is the sources' as much as the hardware's.")
    if h.missing:
        m = s.video.models[0]
        lines.append(f"No evidence for {m} on: {', '.join(c for c, _ in h.missing)}. Calibrate it there (`t2vbench "
                     f"calibrate {m}`: one block fits any of them) or measure it (`t2vbench run {m} --weights random "
                     "--sample-steps 5`, with --offload group where its weights exceed the GPU), then pass the folder "
                     "with --results.")
    return lines


def _evidence(lines: tuple[str, ...]) -> str:
    """What a row's prediction rests on, counted by kind and source: '4 published (mlenergy-v3), 1 published
    (mlperf-inference-v6.0)' or '1 measured'."""
    counts: dict[str, int] = {}
    for line in lines:
        kind, _, rest = line.partition(": ")
        if kind not in ("measured", "step-sampled", "calibration", "published"):
            continue  # the fit's own summary line ("one scale over totals on 5 run(s)")
        source = rest.split()[0] if rest else ""  # the source of a published figure, the model of a measured one
        key = f"{kind} ({source})" if source else kind
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "its mix's kinds (above)"


def format_headline(h: Headline) -> str:
    s, v = h.scenario, h.scenario.video
    demand = s.demand_minutes_per_day
    lines = [f"What scenario {s.name} needs: {v.description}, {demand / 1e6:.3g}M AI video-minutes a day, costed on "
             f"the nearest open model at {v.width}x{v.height}", "",
             table(rows(h), HEADER), "", *notes(h)]
    return "\n".join(lines)


def headline_json(h: Headline) -> dict[str, Any]:
    def one(est: Estimate) -> dict[str, Any]:
        tp = est.throughput
        return {"throughput": {"video_min_per_gpu_hour": tp.video_min_per_gpu_hour, "evidence": tp.evidence,
                               "interval": tp.interval, "interval_basis": tp.interval_basis, "source": tp.source},
                "fleet": {k: est.fleet[k] for k in ("peak_fleet_gpus", "capex_usd", "power_at_peak_mw",
                                                    "owned_usd_per_kept_video_minute",
                                                    "rented_usd_per_kept_video_minute")},
                "ranges": {k: None if v is None else {"low": v[0], "high": v[1]} for k, v in est.ranges.items()},
                "kinds": kinds(est), "moves_most": est.moves_most, "mismatch": est.mismatch}

    pub = h.scenario.publication
    return {"scenario": h.scenario.name, "video": h.scenario.video.description,
            "rows": [{"hardware": r.hardware, "model": r.model, "rung": r.rung, "fits": r.fits, **one(r.estimate)}
                     for r in h.rows],
            "no_evidence": [{"hardware": c, "reason": why} for c, why in h.missing],
            "published": None if pub is None else {"peak_fleet_gpus": pub.peak_gpus,
                                                   "capex_usd": pub.peak_gpus * pub.unit_price_usd,
                                                   "power_at_peak_mw": pub.peak_gpus * pub.board_power_w / 1e6},
            "published_inputs": None if h.as_published is None else one(h.as_published),
            "skipped": list(h.skipped)}
