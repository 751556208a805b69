"""The comparison as text: an aligned table, CSV, Markdown and JSON. Functions here return strings; only the CLI
prints. Every string that came from a file goes through display.clean (terminal) or html.escape (Markdown)."""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
from typing import Any

from bench.analysis.compare import STAGES, Comparison, Row
from bench.core.text import clean
from bench.present.text import table

HEADER = ["#", "kind", "source", "model", "GPUs x class", "settings", "n", "s/video", "video-min/GPU-h [95% CI]",
          "Wh/video-min", "$/video-min owned", "$/video-min rented", "MFU", "peak mem"]
FLAT = [f.name for f in dataclasses.fields(Row) if f.name not in ("stages_s", "paths", "labels", "warnings")]
CSV_FIELDS = FLAT + [f"{k}_mean_s" for k in STAGES] + ["paths"]


def _g(value: float | None, digits: int = 3) -> str:
    """digits significant figures, without an exponent up to a billion ('2,264', not '2.26e+03')."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if 10**digits <= abs(value) < 1e9 else f"{value:.{digits}g}"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.3g}"


def kind_cell(row: Row) -> str:
    sampled = row.measure == "step-sampled"
    if row.toy:
        return f"TOY ({row.toy}{', step-sampled' if sampled else ''})"
    if sampled:
        return "step-sampled"
    return "ESTIMATE" if row.kind == "estimate" else row.kind


def throughput_cell(row: Row) -> str:
    if row.video_min_per_gpu_hour is None:
        return "n/a"
    if row.interval_low is None:
        return _g(row.video_min_per_gpu_hour)
    high = "inf" if math.isinf(row.interval_high) else _g(row.interval_high)
    return f"{_g(row.video_min_per_gpu_hour)} [{_g(row.interval_low)}, {high}]"


def ratio_cell(row: Row) -> str:
    if row.ratio is None:
        return "-"
    if row.ratio_note == "baseline":
        return "baseline"
    note = "" if row.ratio_note == "significant" else f" ({row.ratio_note})"
    return f"{row.ratio:.2f}x{note}"


def source_cell(row: Row) -> str:
    """The source, and for a published figure of a multi-GPU system the system it was divided out of."""
    return f"{row.source} ({row.system})" if row.system else row.source


def cells(row: Row, index: int) -> list[str]:
    """The row's cells as every text output shows them (untrusted strings not yet escaped)."""
    memory = "n/a" if row.peak_memory_bytes is None else f"{row.peak_memory_bytes / 2**30:.1f} GiB"
    return [str(index), kind_cell(row), source_cell(row), row.model, f"{row.gpus}x {row.hardware}", row.settings_key,
            "-" if row.generations is None else str(row.generations), _g(row.seconds_per_video, 4),
            throughput_cell(row), _g(row.energy_wh_per_video_minute), _usd(row.owned_usd_per_video_minute),
            _usd(row.rented_usd_per_video_minute), "n/a" if row.mfu is None else f"{row.mfu:.1%}", memory,
            ratio_cell(row)]


def header(c: Comparison) -> list[str]:
    return HEADER + [f"vs {c.baseline}"]


def notes(c: Comparison) -> list[str]:
    """What the columns mean and what was left out, one sentence each."""
    s = c.scenario
    out = [
        "n: timed generations pooled from the row's records; 95% CI: Student t over their per-generation latencies. "
        "Published rows are the source's own figures (no spread), never merged with measurements; an ESTIMATE is "
        "analytic, not measured. Video minutes use each row's own fps (in its settings).",
        "A published figure of a multi-GPU system or rack (its system named in brackets after the source) is the "
        "system's, spread over all its GPUs: video-min per GPU-hour divides by every GPU it holds.",
        f"cost (scenario {s.name}): owned = unit price over {s.gpu_lifetime_years:g} years busy "
        f"{s.utilization:.0%} of the time + board power x PUE {s.pue:g} x ${s.electricity_usd_per_kwh:g}/kWh; rented "
        "= the catalogue's dated on-demand $ per GPU-hour; n/a where the class has no price.",
        "MFU: counted FLOPs per video / (GPU-seconds per video x the class's peak dense FLOP/s for the dtype; FP8 "
        "where a source ran FP8); published rows at the source's settings with the spec's canonical guidance where "
        "the source gives none; n/a where the spec or class is unknown.",
        f"vs {c.baseline}: video-min per GPU-hour over the {c.baseline} row of the same model and settings (published "
        "rows: of the same source); 'not significant' where the two 95% intervals overlap.",
    ]
    if any(r.measure == "step-sampled" for r in c.rows):
        out.append("step-sampled: each generation computed every expert's first step and K more (settings key "
                   "'sampled=K') and its other steps' time and energy are extrapolated from the K; such rows are "
                   "never pooled with measured (full) runs, and each record says its basis and spread (t2vbench show)")
    if c.hidden_toy_records:
        out.append(f"{c.hidden_toy_records} toy or CPU record(s) hidden: they say nothing about what video costs on "
                   "GPUs; --allow-toy shows them")
    elif c.allow_toy and any(r.toy for r in c.rows):
        out.append("TOY rows shown (--allow-toy): they prove the harness and say nothing about what video costs")
    return out


def format_table(c: Comparison) -> str:
    """The aligned table, its notes and the skipped files (display.table cleans every cell)."""
    rows = [cells(r, i) for i, r in enumerate(c.rows, 1)]
    lines = [table(rows, header(c)), ""] + [f"note: {n}" for n in notes(c)]
    lines += [f"warning: #{i} {clean(w)}" for i, r in enumerate(c.rows, 1) for w in r.warnings]  # as the report lists
    lines += [f"skipped: {clean(s)}" for s in c.skipped]
    return "\n".join(lines)


def _md(text: str) -> str:
    return html.escape(clean(text)).replace("|", "\\|")


def format_markdown(c: Comparison) -> str:
    head = header(c)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md(x) for x in cells(r, i)) + " |" for i, r in enumerate(c.rows, 1)]
    lines += [""] + [f"- {_md(n)}" for n in notes(c)] + [f"- skipped: {_md(s)}" for s in c.skipped]
    return "\n".join(lines)


def row_dict(row: Row) -> dict[str, Any]:
    """A row as plain data; an unbounded interval end (inf) becomes None, as JSON has no infinity."""
    data = dataclasses.asdict(row)
    if data["interval_high"] is not None and math.isinf(data["interval_high"]):
        data["interval_high"] = None
    data["paths"], data["labels"], data["warnings"] = list(row.paths), list(row.labels), list(row.warnings)
    return data


def to_json(c: Comparison) -> str:
    doc = {"baseline": c.baseline, "scenario": c.scenario.name, "rows": [row_dict(r) for r in c.rows],
           "notes": notes(c), "skipped": list(c.skipped), "hidden_toy_records": c.hidden_toy_records}
    # ensure_ascii: every character outside ASCII (a bidi override, a zero-width joiner) is written as \\uNNNN, so the
    # document shown in a terminal is inert; json already escapes the C0 controls
    return json.dumps(doc, sort_keys=True, allow_nan=False, ensure_ascii=True)


def to_csv(c: Comparison) -> str:
    """One line per row, numbers unformatted (empty for n/a), stage means flattened, paths joined by '; '."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in c.rows:
        data = row_dict(row)
        flat = {k: data[k] for k in FLAT}
        flat.update({f"{k}_mean_s": (row.stages_s or {}).get(k) for k in STAGES})
        flat["paths"] = "; ".join(row.paths)
        writer.writerow({k: "" if v is None else _inert(v) for k, v in flat.items()})
    return buf.getvalue()


def _inert(value: object) -> object:
    """A text cell made inert: its control and bidi characters written as visible escapes (a tab or carriage return
    included, so no cell can begin with one), and a cell a spreadsheet would run as a formula (it begins with = + - @)
    given a leading apostrophe, the convention spreadsheets honour (OWASP's CSV injection advice); numbers stay
    numbers."""
    if not isinstance(value, str):
        return value
    value = clean(value)  # escape sequences, newlines, bidi overrides: shown as escapes, never acted on
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value
