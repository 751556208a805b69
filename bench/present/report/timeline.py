"""One run's power, SM clock and clock-event (throttle) reasons over time, with its timed generations shaded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.analysis.physics import load_checked
from bench.core.errors import UsageError
from bench.core.text import shown
from bench.present.palette import TIMELINE
from bench.present.report.plots import MAX_POINTS, legend, new_figure, plain_ticks, text
from bench.records.schema import ResultRecord
from bench.telemetry.amd import THROTTLE_BITS as AMD_BITS
from bench.telemetry.nvml import SLOWDOWNS as NVML_SLOWDOWNS
from bench.telemetry.nvml import THROTTLE_BITS as NVML_BITS


def has_series(record: ResultRecord) -> bool:
    series = record.telemetry.series
    return bool(series and series.get("t_s") and record.settings.device != "cpu")


def newest(records: Sequence[tuple[Path, ResultRecord]]) -> tuple[Path, ResultRecord] | None:
    """The newest GPU record (by created_utc) that carries a telemetry series, or None."""
    candidates = [(p, r) for p, r in records if has_series(r)]
    return max(candidates, key=lambda pr: (pr[1].created_utc, str(pr[0])), default=None)


def chosen(path: Path) -> tuple[Path, ResultRecord]:
    """The --timeline record. Raises UsageError where it cannot be loaded or has no series to plot."""
    record = load_checked(path)
    if not has_series(record):
        why = record.telemetry.unavailable_reason or "no sampled series"
        raise UsageError(f"--timeline {shown(str(path))}: no telemetry series to plot ({shown(why)}); choose a GPU "
                         "record made with telemetry on")
    return path, record


def _thin(values: Sequence[float | int | None], step: int) -> list[float]:
    return [math.nan if v is None else float(v) for v in values[::step]]


def _bits(record: ResultRecord) -> dict[str, int]:
    """Slowdown reasons worth a lane: NVML's slowdowns, AMD's throttle flag."""
    backend = record.telemetry.backend
    if backend == "nvml":
        return {name: NVML_BITS[name] for name in NVML_SLOWDOWNS}
    return dict(AMD_BITS) if backend == "amdsmi" else {}


def _runs(t: Sequence[float], flags: Sequence[bool]) -> list[tuple[float, float]]:
    """(start, width) of each stretch of consecutive samples where the flag is set."""
    out, start = [], None
    for i, on in enumerate(flags):
        if on and start is None:
            start = t[i]
        if start is not None and (not on or i == len(flags) - 1):
            out.append((start, t[i] - start))
            start = None
    return out


def plot(record: ResultRecord):
    """Power (W), SM clock (MHz) and throttle lanes against seconds since the sampler started (a Figure)."""
    series = record.telemetry.series
    step = max(1, math.ceil(len(series["t_s"]) / MAX_POINTS))
    t = _thin(series["t_s"], step)
    fig, axes = new_figure(11, 6.2, 3, 1, sharex=True, height_ratios=[3, 2, 1.4])
    power, clock, lanes = (a[0] for a in axes)
    power.plot(t, _thin(series["power_w"], step), color=TIMELINE["power"], lw=0.8)
    limit = record.telemetry.summary.power_limit_w
    if limit:
        power.axhline(limit, color="black", ls="--", lw=0.8)
    power.set_ylabel("board power (W)")
    clock.plot(t, _thin(series["sm_clock_mhz"], step), color=TIMELINE["clock"], lw=0.8)
    clock.set_ylabel("SM clock (MHz)")
    _lanes(lanes, record, t, series["throttle_mask"][::step])
    for g in record.generations:
        if g.telemetry is not None:
            for ax in (power, clock, lanes):
                ax.axvspan(g.telemetry.start_s, g.telemetry.end_s, color=TIMELINE["timed"], alpha=0.08, lw=0)
    lanes.set_xlabel("seconds since telemetry started")
    for ax in (power, clock, lanes):
        plain_ticks(ax.xaxis)
    plain_ticks(power.yaxis)
    plain_ticks(clock.yaxis)
    legend(fig, _handles(limit))
    label = f" [{record.label}]" if record.label else ""
    power.set_title(text(f"{record.spec.name} on {record.hardware_class}, {record.created_utc}{label}", 100),
                    fontsize=10)
    return fig


def _handles(limit_w: float | None) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    out = [Line2D([], [], color=TIMELINE["power"], label="board power"),
           Line2D([], [], color=TIMELINE["clock"], label="SM clock"),
           Patch(color=TIMELINE["throttle"], label="clocks held down"),
           Patch(color=TIMELINE["timed"], alpha=0.08, label="timed generations")]
    if limit_w:
        out.insert(1, Line2D([], [], color="black", ls="--", lw=0.8, label=f"power limit {limit_w:.0f} W"))
    return out


def _lanes(ax, record: ResultRecord, t: Sequence[float], masks: Sequence[int | float | None]) -> None:
    bits = _bits(record)
    names = list(bits)
    for y, name in enumerate(names):
        flags = [m is not None and (int(m) & bits[name]) != 0 for m in masks]
        ax.broken_barh(_runs(t, flags), (y - 0.4, 0.8), color=TIMELINE["throttle"])
    ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=7)
    ax.set_ylim(-0.6, max(len(names), 1) - 0.4)
    ax.set_ylabel("clocks held\ndown by", fontsize=8)
