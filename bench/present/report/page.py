"""The report's HTML: one self-contained page, inline CSS, plots as data: images, no script.

The page is the jinja2 template templates/page.html (CSS in templates/page.css), rendered by one Environment with
autoescape on, so escaping is by construction, not by remembering a call per field:

- every `{{ value }}` the template outputs, in text and in (always quoted) attributes alike, is HTML-escaped unless it
  is markupsafe.Markup, and this module makes no Markup: nothing on the page needs it (a plot is a base64 data: URI,
  which escaping leaves as it is; the lists the template's macro builds are Markup of values already escaped);
- every output value first passes through bench.present.report.characters.visible (the Environment's finalize):
  control characters, bidi embeddings, overrides and isolates, zero-width characters, line and paragraph separators
  and every other character Python does not count printable (spaces, tabs and newlines aside) are shown as \\xNN,
  \\uNNNN or \\UNNNNNNNN text, never acted on, so a name from a file cannot reorder what the page appears to say.

Strings reach the template raw: a record's label as it is, a reference's publisher as it is. A Content-Security-Policy
allows nothing but inline styles and data: images, so the page fetches nothing at view time and would run no script
even if a string slipped through.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence

import jinja2

from bench.analysis.compare import Comparison
from bench.analysis.headline import Headline
from bench.analysis.reference import Reference
from bench.core import metrics
from bench.present import headline as headline_view
from bench.present.palette import EVIDENCE, evidence
from bench.present.report.characters import visible
from bench.present.tables import HEADER, cells, header, notes

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# The table's columns by their CSS class: "t" text (left, wraps, even inside a word), "k" the settings key (narrow),
# "w" a number that may wrap at its spaces (a value and its interval, a ratio and its note); the rest are numbers
# kept on one line. So the table wraps to the page's width instead of scrolling its last columns out of view.
COLUMNS = {1: "t", 2: "t", 3: "t", 4: "t", 5: "t k", 8: "w", len(HEADER): "w"}


@dataclasses.dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    svg: str | None  # None: nothing to plot; `empty` says why
    empty: str = ""


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bench.present.report", "templates"),
    autoescape=True,  # every template, whatever its name: no value reaches the page unescaped
    finalize=visible,
    undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not an empty cell
    keep_trailing_newline=True,  # page.css ends the <style> with its own last newline, as before
)


def _rows(c: Comparison) -> list[dict[str, object]]:
    return [{"kind": "toy" if row.toy else row.kind, "evidence": evidence(row), "cells": cells(row, i)}
            for i, row in enumerate(c.rows, 1)]


def _warnings(c: Comparison) -> list[str]:
    items = [f"#{i} {w}" for i, r in enumerate(c.rows, 1) for w in r.warnings]
    return items + [f"#{i} label: {label}" for i, r in enumerate(c.rows, 1) for label in r.labels]


def _plot(p: Plot) -> dict[str, str | None]:
    # base64's alphabet (A-Z a-z 0-9 + / =) needs no escaping: the URI goes through autoescape like any value
    src = None if p.svg is None else \
        "data:image/svg+xml;base64," + base64.b64encode(p.svg.encode("utf-8")).decode("ascii")
    return {"title": p.title, "caption": p.caption, "empty": p.empty, "src": src}


def _sources(refs: Sequence[Reference]) -> list[dict[str, str | None]]:
    seen, out = set(), []
    for ref in refs:
        s = ref.source
        if (s.id, s.url) in seen:
            continue
        seen.add((s.id, s.url))
        out.append({"id": s.id, "title": s.title, "publisher": s.publisher, "date": s.published or s.data_date,
                    "accessed": s.accessed, "link": s.url if s.url.startswith("https://") else None})
    return out


def _headline(h: Headline | None, why_not: str) -> dict[str, object]:
    """The table the page opens with: estimate's rows and notes, or why there is none."""
    if h is None:
        return {"title": "", "head": [], "rows": [], "notes": [why_not] if why_not else []}
    v = h.scenario.video
    title = (f"What scenario {h.scenario.name} needs: {v.description}, {h.scenario.demand_minutes_per_day / 1e6:.3g}M AI "
             f"video-minutes a day, on the nearest open model at {v.width}x{v.height} (t2vbench estimate)")
    return {"title": title, "head": headline_view.HEADER, "rows": headline_view.rows(h), "notes": headline_view.notes(h)}


def render(c: Comparison, plots: Sequence[Plot], meta: Sequence[str], headline: Headline | None = None,
           why_no_headline: str = "") -> str:
    """The whole page. `meta` lines (inputs, date, version) are escaped like everything else."""
    return ENV.get_template("page.html").render(
        headline=_headline(headline, why_no_headline),
        csp=CSP, meta=list(meta), head=header(c), columns=COLUMNS, evidence=EVIDENCE, rows=_rows(c), notes=notes(c),
        warnings=_warnings(c), plots=[_plot(p) for p in plots],
        sources=_sources([ref for _, ref in c.loaded.references]), skipped=list(c.skipped),
        definitions=metrics.__doc__.strip(),
    )

