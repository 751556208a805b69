"""The report's HTML: one self-contained page, inline CSS, plots as data: images, no script.

Every string that came from a record, a reference or the command line passes through `esc` (html.escape) where it
is put into the page, attributes included. A Content-Security-Policy allows nothing but inline styles and data:
images, so the page fetches nothing at view time and would run no script even if a string slipped through.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Sequence

from bench.core import metrics
from bench.analysis.compare import Comparison, Row
from bench.present.tables import cells, header, notes
from bench.analysis.reference import Reference

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1500px;
       padding: 0 16px; color: #1d1d1f; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 13px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; white-space: nowrap; }
th, td { padding: 4px 6px; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f3f3f5; position: sticky; top: 0; }
td.t, th.t { text-align: left; }
tr.published td { background: #fff7ec; } tr.estimate td { background: #fdecea; font-style: italic; }
tr.toy td { color: #888; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; color: #fff; }
.b-measured { background: #2f6db5; } .b-published { background: #e08a2c; } .b-estimate { background: #c0392b; }
.b-toy { background: #9a9a9a; }
td.k { white-space: normal; word-break: break-all; min-width: 160px; max-width: 220px; }
figure { margin: 16px 0 28px; } figure img { width: 100%; max-width: 1200px; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; max-width: 1100px; }
ul.notes li, ul.skipped li { font-size: 13px; color: #444; } .empty { color: #888; font-style: italic; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclasses.dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    svg: str | None  # None: nothing to plot; `empty` says why
    empty: str = ""


def _badge(row: Row) -> str:
    kind = "toy" if row.toy else row.kind
    return f'<span class="badge b-{kind}">{esc(cells(row, 0)[1])}</span>'


def _table(c: Comparison) -> str:
    head = "".join(f'<th class="{"t" if i in (1, 2, 3, 4, 5) else ""}">{esc(h)}</th>' for i, h in enumerate(header(c)))
    body = []
    for i, row in enumerate(c.rows, 1):
        values = cells(row, i)
        tds = [f"<td>{esc(values[0])}</td>", f'<td class="t">{_badge(row)}</td>']
        tds += [f'<td class="t">{esc(v)}</td>' for v in values[2:5]] + [f'<td class="t k">{esc(values[5])}</td>']
        tds += [f"<td>{esc(v)}</td>" for v in values[6:]]
        kind = "toy" if row.toy else row.kind
        body.append(f'<tr class="{kind}">{"".join(tds)}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _list(items: Sequence[str], cls: str) -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{esc(x)}</li>" for x in items) + "</ul>" if items else ""


def _warnings(c: Comparison) -> str:
    items = [f"#{i} {w}" for i, r in enumerate(c.rows, 1) for w in r.warnings]
    items += [f"#{i} label: {label}" for i, r in enumerate(c.rows, 1) for label in r.labels]
    return f"<h2>Warnings and labels of the records</h2>{_list(items, 'notes')}" if items else ""


def _figure(p: Plot) -> str:
    if p.svg is None:
        return f'<h2>{esc(p.title)}</h2><p class="empty">{esc(p.empty)}</p>'
    data = base64.b64encode(p.svg.encode("utf-8")).decode("ascii")
    return (f'<h2>{esc(p.title)}</h2><figure><img alt="{esc(p.title)}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{esc(p.caption)}</figcaption></figure>")


def _sources(refs: Sequence[Reference]) -> str:
    seen, items = set(), []
    for ref in refs:
        s = ref.source
        if (s.id, s.url) in seen:
            continue
        seen.add((s.id, s.url))
        date = s.published or s.data_date
        link = f' <a href="{esc(s.url)}">{esc(s.url)}</a>' if s.url.startswith("https://") else ""
        items.append(f"<li><b>{esc(s.id)}</b>: {esc(s.title)}, {esc(s.publisher)}, {esc(date)} "
                     f"(accessed {esc(s.accessed)}).{link}</li>")
    return f'<h2>Published sources</h2><ul class="notes">{"".join(items)}</ul>' if items else ""


def render(c: Comparison, plots: Sequence[Plot], meta: Sequence[str]) -> str:
    """The whole page. `meta` lines (inputs, date, version) are escaped like everything else."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>t2vbench report</title><style>{CSS}</style></head><body>",
        "<h1>t2vbench report: what text-to-video generation costs per GPU</h1>",
        "".join(f'<div class="meta">{esc(m)}</div>' for m in meta),
        "<h2>Comparison</h2>", _table(c), _list(notes(c), "notes"), _warnings(c),
        *(_figure(p) for p in plots),
        _sources([ref for _, ref in c.loaded.references]),
    ]
    if c.skipped:
        parts.append(f"<h2>Skipped files</h2>{_list(c.skipped, 'skipped')}")
    parts.append(f"<h2>Definitions</h2><pre>{esc(metrics.__doc__.strip())}</pre></body></html>")
    return "\n".join(parts)
