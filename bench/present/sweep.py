"""A sweep's outcome as text: one line per cell, the commands a dry run would start, and compare's table of its
complete records."""

from __future__ import annotations

import shlex

from bench.analysis.compare import compare
from bench.core.errors import UsageError
from bench.present.tables import format_table
from bench.present.text import table
from bench.run.sweep import SweepResult


def format_sweep(result: SweepResult) -> str:
    """One line per cell: id, model, the matrix's arguments, status, video-min per GPU-hour, record path."""
    sweep = result.sweep
    common = " ".join(f"{k}={v}" for k, v in sweep.common.items()) or "-"
    predicted = any(r.predicted_s is not None for r in result.cells)
    rows = [[r.cell.id, r.cell.model, r.cell.describe(), r.status, _rate(r),
             *([_seconds(r.predicted_s)] if predicted else []), r.record or "-"] for r in result.cells]
    budget = f"; budget {sweep.budget_s:g} s" if sweep.budget_s else ""
    total = sum(r.predicted_s or 0.0 for r in result.cells if r.status == "to run")
    head = f"sweep {sweep.name} ({sweep.out}){budget}; every cell: {common}\n"
    foot = (f"\npredicted for the cells to run: {total:.0f} s (cost model; '-': no evidence; model builds, weight "
            "initialisation and process starts are not in it: leave room for them in a budget)") if predicted else ""
    return head + table(rows, ["cell", "model", "arguments", "status", "video-min/GPU-h",
                               *(["predicted s"] if predicted else []), "record"]) + foot


def _rate(r) -> str:
    """The cell's video-min per GPU-hour, labelled where its record extrapolated skipped steps."""
    if r.video_minutes_per_gpu_hour is None:
        return "-"
    return f"{r.video_minutes_per_gpu_hour:.4g}" + (" step-sampled" if r.sampled else "")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_commands(result: SweepResult) -> str:
    """The command each cell still to run would start (for --dry-run)."""
    return "\n".join(shlex.join(r.cell.command()) for r in result.cells if r.status == "to run")


def compare_text(result: SweepResult) -> str | None:
    """`t2vbench compare`'s table of the sweep's complete records (toy ones shown, marked); None when none is."""
    paths = [r.record for r in result.cells if r.record is not None and r.status in ("done", "done earlier")]
    if not paths:
        return None
    try:
        return format_table(compare(paths, allow_toy=True))
    except UsageError as exc:
        return f"(no comparison: {exc})"
