"""The report's plots, each returned as a matplotlib Figure (the Figure API: no pyplot, no global state); to_svg
makes the page's SVG text.

Text is drawn as paths (svg.fonttype 'path'), so a plot needs no font at view time; the page embeds each SVG as a
data: image, where no script can run. Labels that came from files are cut short and have '$' escaped, so that
matplotlib never reads them as mathtext, and show control and bidi characters as escapes (as the page does).
Colours mean what bench.present.palette says, on every figure; each figure's legend names those it uses. Each bar
carries the gid "row<N>" (N: the table's #), so a test can find it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from bench.analysis.compare import Row
from bench.present.palette import BOUND, EVIDENCE, RENTED_HATCH, STAGES, evidence
from bench.present.report.characters import visible

MAX_POINTS = 3000  # a timeline of a long run is thinned to about this many points per line
LABEL_CHARS = 60


def text(value: object, limit: int = LABEL_CHARS) -> str:
    """A string from a file, safe as matplotlib text: bounded, '$' escaped (no mathtext), control and bidi
    characters shown as escapes (bench.present.report.characters)."""
    s = str(visible(value))
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")  # every '$' escaped: matplotlib finds no mathtext (a backslash alone is literal)


def row_label(row: Row, index: int) -> str:
    kind = evidence(row)
    return text(f"#{index} {row.model} · {row.gpus}x {row.hardware} · {'TOY' if kind == 'toy' else kind}")


def new_figure(width_in: float, height_in: float, nrows: int = 1, ncols: int = 1, **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def to_svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "t2vbench"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def number(x: float, _pos: object = None) -> str:
    """A tick as a reader writes it: 0.1, 2.5, 500, 2,500; never an exponent or an offset."""
    if x == 0:
        return "0"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def plain_ticks(axis) -> None:
    """Ticks written by `number` on a value axis (a log axis too: 0.1, 1, 10, not 10^-1); minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(number))
    axis.set_minor_formatter(NullFormatter())


def legend(fig, handles: Sequence) -> None:
    """One legend per figure, above its axes, naming every colour, fill and marker the figure uses."""
    fig.legend(handles=list(handles), loc="outside upper center", ncols=min(len(handles), 6), fontsize=8,
               frameon=False)


def _kinds(rows: Sequence[Row]) -> list:
    from matplotlib.patches import Patch

    present = {evidence(r) for r in rows}
    return [Patch(color=c, label=k) for k, c in EVIDENCE.items() if k in present]


def _rows_axis(ax, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def _logscale_if_wide(ax, values: Sequence[float]) -> None:
    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    if positive and max(positive) / min(positive) > 30:
        ax.set_xscale("log")


CHIP_FRACTION = 0.09  # a bar shorter than this share of the axis carries its MFU chip past its end, not inside


def _mfu_chips(ax, rows: Sequence[tuple[int, Row]]) -> None:
    """'MFU 43%' on each bar, on a white chip readable on any fill: inside the bar's end, or just past the end (and
    its whisker) of a bar too short to hold it. Call once the axis's scale and limits are final."""
    to_axes = ax.transData + ax.transAxes.inverted()
    for y, (i, r) in enumerate(rows):
        value = r.video_min_per_gpu_hour
        inside = to_axes.transform((value, y))[0] >= CHIP_FRACTION
        high = r.interval_high if r.interval_high is not None and math.isfinite(r.interval_high) else value
        x, ha, shift = (r.interval_low or value, "right", -4) if inside else (high, "left", 4)
        ax.annotate("MFU n/a" if r.mfu is None else f"MFU {r.mfu:.0%}", (x, y), xytext=(shift, 0),
                    textcoords="offset points", ha=ha, va="center", fontsize=7, gid=f"row{i}-mfu",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})


def throughput(rows: Sequence[tuple[int, Row]]):
    """Video-min per GPU-hour per row with its 95% interval and MFU, and the roofline bound (100% of peak) beside
    it. None where no row has a throughput."""
    from matplotlib.lines import Line2D

    rows = [(i, r) for i, r in rows if r.video_min_per_gpu_hour]
    if not rows:
        return None
    fig, ax = new_figure(11, 1.5 + 0.32 * len(rows))
    ax = ax[0][0]
    for y, (i, r) in enumerate(rows):
        err = None
        if r.interval_low is not None and math.isfinite(r.interval_high):
            err = [[r.video_min_per_gpu_hour - r.interval_low], [r.interval_high - r.video_min_per_gpu_hour]]
        ax.barh(y, r.video_min_per_gpu_hour, color=EVIDENCE[evidence(r)], xerr=err, capsize=3, gid=f"row{i}")
        if r.bound_video_min_per_gpu_hour:
            ax.plot(r.bound_video_min_per_gpu_hour, y, marker="D", color=BOUND, markersize=5, linestyle="none")
    _rows_axis(ax, [row_label(r, i) for i, r in rows])
    _logscale_if_wide(ax, [r.video_min_per_gpu_hour for _, r in rows] +
                      [r.bound_video_min_per_gpu_hour for _, r in rows if r.bound_video_min_per_gpu_hour])
    if ax.get_xscale() == "linear":
        ax.set_xlim(0, ax.get_xlim()[1])
    plain_ticks(ax.xaxis)
    _mfu_chips(ax, rows)
    scale = " (log scale)" if ax.get_xscale() == "log" else ""
    ax.set_xlabel(f"video minutes per GPU-hour{scale}")
    legend(fig, _kinds([r for _, r in rows]) + [
        Line2D([], [], color="black", marker="|", markersize=8, lw=1, label="95% interval (measured rows)"),
        Line2D([], [], color=BOUND, marker="D", markersize=5, linestyle="none",
               label="bound: 100% of peak FLOP/s (MFU = bar / bound)")])
    return fig


def energy_cost(rows: Sequence[tuple[int, Row]]):
    """Wh per video-minute, and $ per video-minute owned (solid) and rented (hatched), per row, in the row's
    evidence colour. None where no row has an energy or a price."""
    from matplotlib.patches import Patch

    rows = [(i, r) for i, r in rows if r.energy_wh_per_video_minute or r.owned_usd_per_video_minute
            or r.rented_usd_per_video_minute]
    if not rows:
        return None
    fig, axes = new_figure(11, 1.6 + 0.32 * len(rows), 1, 2, sharey=True)
    energy, cost = axes[0]
    for y, (i, r) in enumerate(rows):
        color = EVIDENCE[evidence(r)]
        _bar_or_na(energy, y, r.energy_wh_per_video_minute, 0.8, color, "", f"row{i}-energy")
        _bar_or_na(cost, y - 0.2, r.owned_usd_per_video_minute, 0.4, color, "", f"row{i}-owned")
        _bar_or_na(cost, y + 0.2, r.rented_usd_per_video_minute, 0.4, color, RENTED_HATCH, f"row{i}-rented")
    energy.set_xlabel("Wh per video-minute (n/a: not measured)")
    cost.set_xlabel("$ per video-minute (n/a: no price for the class)")
    _rows_axis(energy, [row_label(r, i) for i, r in rows])
    for ax in (energy, cost):
        ax.set_xlim(0, None)
        plain_ticks(ax.xaxis)
        ax.grid(axis="x", alpha=0.3)
    legend(fig, _kinds([r for _, r in rows]) + [
        Patch(facecolor="white", edgecolor="black", label="owned $ (solid)"),
        Patch(facecolor="white", edgecolor="black", hatch=RENTED_HATCH, label="rented $ (hatched)")])
    return fig


def _bar_or_na(ax, y: float, value: float | None, height: float, color: str, hatch: str, gid: str) -> None:
    if not value:
        ax.text(0, y, " n/a", va="center", fontsize=6, color="#666666", gid=gid)
        return
    ax.barh(y, value, height=height, color=color, hatch=hatch or None, edgecolor="white", linewidth=0, gid=gid)


def stages(rows: Sequence[tuple[int, Row]]):
    """Each measured row's mean latency split into text encode, denoise, VAE decode and the rest (100% bars).
    None where no row has a stage split."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    rows = [(i, r) for i, r in rows if r.stages_s and r.seconds_per_video]
    if not rows:
        return None
    fig, ax = new_figure(11, 1.5 + 0.32 * len(rows))
    ax = ax[0][0]
    for y, (i, r) in enumerate(rows):
        left = 0.0
        for stage, color in STAGES.items():
            share = max(r.stages_s[stage], 0.0) / r.seconds_per_video
            ax.barh(y, share, left=left, color=color, gid=f"row{i}-{stage}")
            left += share
        ax.annotate(f" {r.seconds_per_video:.3g} s", (left, y), va="center", fontsize=7)
    _rows_axis(ax, [row_label(r, i) for i, r in rows])
    ax.set_xlim(0, 1.12)  # room for the seconds right of the bars
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of the mean seconds per video (%; right of each bar: the mean seconds)")
    legend(fig, [Patch(color=c, label=s.replace("_", " ")) for s, c in STAGES.items()])
    return fig
