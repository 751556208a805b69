"""The report's plots, each returned as SVG text (matplotlib's Figure API: no pyplot, no global state).

Text is drawn as paths (svg.fonttype 'path'), so a plot needs no font at view time; the page embeds each SVG as a
data: image, where no script can run. Labels that came from files are cut short and have '$' escaped, so that
matplotlib never reads them as mathtext, and show control and bidi characters as escapes (as the page does).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from bench.analysis.compare import Row
from bench.present.report.characters import visible

COLORS = {"measured": "#2f6db5", "published": "#e08a2c", "estimate": "#c0392b", "toy": "#9a9a9a"}
STAGE_COLORS = {"text_encode": "#8fb3de", "denoise": "#2f6db5", "vae_decode": "#e08a2c", "other": "#c8c8c8"}
MAX_POINTS = 3000  # a timeline of a long run is thinned to about this many points per line
LABEL_CHARS = 60


def text(value: object, limit: int = LABEL_CHARS) -> str:
    """A string from a file, safe as matplotlib text: bounded, '$' escaped (no mathtext), control and bidi
    characters shown as escapes (bench.present.report.characters)."""
    s = str(visible(value))
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")  # every '$' escaped: matplotlib finds no mathtext (a backslash alone is literal)


def row_label(row: Row, index: int) -> str:
    kind = "TOY" if row.toy else (row.measure or row.kind) if row.kind == "measured" else row.kind
    return text(f"#{index} {row.model} · {row.gpus}x {row.hardware} · {kind}")


def _color(row: Row) -> str:
    return COLORS["toy"] if row.toy else COLORS[row.kind]


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


def _rows_axis(ax, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def _logscale_if_wide(ax, values: Sequence[float]) -> None:
    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    if positive and max(positive) / min(positive) > 30:
        ax.set_xscale("log")


def throughput(rows: Sequence[tuple[int, Row]]) -> str | None:
    """Video-min per GPU-hour per row with its 95% interval, and the roofline bound (100% of peak) beside it."""
    rows = [(i, r) for i, r in rows if r.video_min_per_gpu_hour]
    if not rows:
        return None
    fig, ax = new_figure(11, 1.2 + 0.32 * len(rows))
    ax = ax[0][0]
    for y, (_, r) in enumerate(rows):
        err = None
        if r.interval_low is not None and math.isfinite(r.interval_high):
            err = [[r.video_min_per_gpu_hour - r.interval_low], [r.interval_high - r.video_min_per_gpu_hour]]
        ax.barh(y, r.video_min_per_gpu_hour, color=_color(r), xerr=err, capsize=3,
                hatch="//" if r.kind == "estimate" else None, edgecolor="white")
        if r.bound_video_min_per_gpu_hour:
            ax.plot(r.bound_video_min_per_gpu_hour, y, marker="D", color="black", markersize=5)
            ax.annotate(f" MFU {r.mfu:.0%}", (r.bound_video_min_per_gpu_hour, y), va="center", fontsize=7)
    _rows_axis(ax, [row_label(r, i) for i, r in rows])
    _logscale_if_wide(ax, [r.video_min_per_gpu_hour for _, r in rows] +
                      [r.bound_video_min_per_gpu_hour for _, r in rows if r.bound_video_min_per_gpu_hour])
    if ax.get_xscale() == "linear":
        ax.set_xlim(0, ax.get_xlim()[1] * 1.12)  # room for the MFU labels right of the diamonds
    ax.set_xlabel("video minutes per GPU-hour (whisker: 95% interval; diamond: bound at 100% of peak)")
    _legend(ax, [r for _, r in rows])
    return to_svg(fig)


def _legend(ax, rows: Sequence[Row]) -> None:
    from matplotlib.patches import Patch

    present = {"toy" if r.toy else r.kind for r in rows}
    handles = [Patch(color=c, label=k) for k, c in COLORS.items() if k in present]
    ax.legend(handles=handles, fontsize=7, loc="lower right")


def energy_cost(rows: Sequence[tuple[int, Row]]) -> str | None:
    """Wh per video-minute, and $ per video-minute owned and rented, per row."""
    rows = [(i, r) for i, r in rows if r.energy_wh_per_video_minute or r.owned_usd_per_video_minute
            or r.rented_usd_per_video_minute]
    if not rows:
        return None
    fig, axes = new_figure(11, 1.4 + 0.32 * len(rows), 1, 2, sharey=True)
    energy, cost = axes[0]
    ys = range(len(rows))
    energy.barh(ys, [r.energy_wh_per_video_minute or 0 for _, r in rows], color=[_color(r) for _, r in rows])
    energy.set_xlabel("Wh per video-minute (blank: not measured)")
    for offset, field, color, label in ((-0.2, "owned_usd_per_video_minute", "#2f6db5", "owned"),
                                        (0.2, "rented_usd_per_video_minute", "#e08a2c", "rented")):
        cost.barh([y + offset for y in ys], [getattr(r, field) or 0 for _, r in rows], height=0.4, color=color,
                  label=label)
    cost.set_xlabel("$ per video-minute (blank: no price for the class)")
    cost.legend(fontsize=7, loc="lower right")
    _rows_axis(energy, [row_label(r, i) for i, r in rows])
    cost.grid(axis="x", alpha=0.3)
    return to_svg(fig)


def stages(rows: Sequence[tuple[int, Row]]) -> str | None:
    """Each measured row's mean latency split into text encode, denoise, VAE decode and the rest (100% bars)."""
    rows = [(i, r) for i, r in rows if r.stages_s and r.seconds_per_video]
    if not rows:
        return None
    fig, ax = new_figure(11, 1.2 + 0.32 * len(rows))
    ax = ax[0][0]
    for y, (_, r) in enumerate(rows):
        left = 0.0
        for stage, color in STAGE_COLORS.items():
            share = max(r.stages_s[stage], 0.0) / r.seconds_per_video
            ax.barh(y, share, left=left, color=color, label=stage.replace("_", " ") if y == 0 else None)
            left += share
        ax.annotate(f" {r.seconds_per_video:.3g} s", (left, y), va="center", fontsize=7)
    _rows_axis(ax, [row_label(r, i) for i, r in rows])
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of the mean seconds per video")
    ax.legend(fontsize=7, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return to_svg(fig)
