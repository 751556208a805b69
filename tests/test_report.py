"""`t2vbench report`: a self-contained page (no script, nothing fetched), every string from a file escaped, written
atomically and never over an existing file without --force; rendered in a real headless Chromium where one is
installed (Debian's `chromium`; .ci/run installs it where apt is usable)."""

import dataclasses
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import Markup

from bench.analysis.compare import Row
from bench.cli import main
from bench.core.errors import UsageError
from bench.present.report import page as page_module
from bench.present.report import plots, write_report
from bench.present.report.characters import visible
from bench.present.report.page import ENV
from tests import forge

SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=document.title='pwned'>"
TITLE = "t2vbench report"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: shown raw, it would reverse the text after it
REGISTRY = Path(__file__).resolve().parent.parent / "results"  # the committed records and references


def payload(tag: str) -> str:
    """A hostile string naming the field it was put in: markup, both quotes, an ampersand and a bidi override."""
    return f"<script>alert({tag})</script>\"'&{RLO}"


def shown_as(text: str) -> str:
    """How the page must show text from a file: HTML-escaped (markupsafe's spelling), the override a visible escape."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;"),
                        (RLO, "\\u202e")):
        text = text.replace(raw, entity)
    return text


# String fields that cannot hold a payload, left as they are: a pattern refuses one on load (slugs: spec.name,
# settings.dtype, telemetry.backend, a reference's source.id and model; ids, dates and hashes: run_id, created_utc,
# spec.sha256, source.published/data_date/accessed; hardware class names, a reference's also checked against the
# catalogue) or a fixed set of values does (Literal: weights.source, peak_memory_method, telemetry.energy_method, kind;
# and settings.device, which the gate requires to be 'cuda' or 'cuda:N' on a GPU record: any other is a CPU run's).
# Dict keys likewise: settings.options' names (pattern), telemetry.series' names (Literal), and
# telemetry.summary.throttle_share's names (the gate recomputes the shares from the series: refused.json below). Of
# the command line, --baseline must be a hardware class and --scenario's name is a slug too. A reference's url must
# start https:// and hold no whitespace: it gets 'https://example.com/' + payload. Paths as `a.b`, list items `a.*`.
RECORD_FIXED = {"run_id", "created_utc", "spec.name", "spec.sha256", "settings.dtype", "weights.source",
                "hardware_class", "peak_memory_method", "telemetry.backend", "telemetry.energy_method",
                "workers.*.hardware_class", "settings.device",
                "workers.*.device",  # a GPU run's worker holds a GPU device the gate checks (analysis.workers)
                "environment.device_name", "telemetry.device.name",  # the GPU the gate holds to the class (evidence)
                "telemetry.device.compute_capability"}
REFERENCE_FIXED = {"kind", "source.id", "source.published", "source.data_date", "source.accessed", "model",
                   "hardware_class"}
# Every free-text field, so that a field the page starts to show is already under test (the walk finds them; this
# set says it did). The page shows only SHOWN today: each must appear escaped; no other payload may appear raw either.
FREE_TEXT = {"label", "warnings.0", "warnings.1", "settings.prompt", "settings.options.note",
             "spec.family", "spec.pipeline", "spec.repo_id", "command.0", "environment.os", "environment.key",
             "telemetry.device.key", "telemetry.unavailable_reason",
             "telemetry.energy_unsupported_reason", "telemetry.cpu.reason", "weights.location", "fidelity.compared.0",
             "fidelity.reference", "workers.0.failed", "video_path", "incomplete_reason",
             "t2vbench_version", "reference.source.title", "reference.source.publisher", "reference.source.url",
             "reference.basis", "reference.model_id", "reference.notes.0", "reference.settings.precision",
             "reference.settings.framework", "reference.settings.parallelism", "path", "refused"}
SHOWN = {"label", "warnings.0", "warnings.1", "reference.source.title", "reference.source.publisher",
         "reference.source.url", "path"}


def _fill(data, fixed: set[str], where: str = "") -> dict[str, str]:
    """Every string value in data not in `fixed` replaced by payload(its path), in place; {path: payload}."""
    put: dict[str, str] = {}
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in list(items):
        path = f"{where}.{key}" if where else str(key)
        if re.sub(r"\.\d+(?=\.|$)", ".*", path) in fixed:
            continue
        if isinstance(value, str):
            data[key] = put[path] = payload(path) if path != "source.url" else f"https://example.com/{payload(path)}"
        elif isinstance(value, (dict, list)):
            put.update(_fill(value, fixed, path))
    return put


def _hostile_record(monkeypatch) -> tuple[dict, dict[str, str]]:
    """A GPU record with a series (so it is the timeline's) whose every free-text field holds a payload, optional
    sections included (fidelity, a worker, the video path), and payload keys in its free-form dicts."""
    data = forge.with_nvml(forge.record([10.0, 11.0, 12.0], label="x"), monkeypatch)
    data.update(warnings=["x", "x"], video_path="x", weights={"source": "hub", "location": "x"},
                fidelity={"psnr_db": 40.0, "ssim": 0.99, "seed": 1, "compared": ["x"], "reference": "x"},
                workers=[{"index": 0, "device": "cuda:0", "hardware_class": data["hardware_class"], "generations": 3,
                          "failed": "x", "telemetry": None}])
    data["spec"]["repo_id"] = "x"
    data["telemetry"].update(unavailable_reason="x", energy_unsupported_reason="x")
    data["settings"]["options"] = {"note": "x"}  # a value, shown in the settings key only as a slug
    put = _fill(data, RECORD_FIXED)
    for section, entries in (("environment", data["environment"]), ("telemetry.device", data["telemetry"]["device"])):
        entries[payload(f"{section}.key")] = put[f"{section}.key"] = payload(f"{section}.key")  # a key holds one too
    return data, put


def _hostile_reference() -> tuple[dict, dict[str, str]]:
    data = forge.reference(model_id="x", notes=["x", "x"], basis="x")
    data["settings"].update(precision="x", framework="x", parallelism="x")
    return data, _fill(data, REFERENCE_FIXED)


def _hostile_folder(tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, str]]:
    """Inputs under a folder whose path holds a payload (so every path the page shows does): a record and a reference
    with a payload in every string field that can hold one, a plain record beside them, a record refused by the
    schema (its model name holds a script), a file named as markup and a record the physics gate refuses with a
    reason that quotes a payload from the file (all three listed as skipped). Returns the folder and
    {field: the payload put in it}."""
    folder = tmp_path / "in" / payload("path")  # '/' splits it into two folders; the path's text holds it whole
    record, put = _hostile_record(monkeypatch)
    forge.write(folder, "hostile.json", record)
    forge.write(folder, "b200.json", forge.record([5.0, 5.2, 4.8], hardware_class="nvidia-b200"))
    forge.write(folder, "bad-model.json", forge.record(model=SCRIPT))
    forge.write(folder, f"{IMG}.json", {"not": "a record"})
    reference, put_ref = _hostile_reference()
    forge.write(folder, "ref.json", reference)
    refused = forge.with_nvml(forge.record(), monkeypatch)  # the gate's reason quotes the file's forged key
    refused["telemetry"]["summary"]["throttle_share"][payload("refused")] = 0.0
    forge.write(folder, "refused.json", refused)
    # a complete record has no incomplete_reason (the gate refuses one): an incomplete run's, listed as skipped
    forge.write(folder, "incomplete.json", {**record, "run_id": "00000000000000ff", "complete": False,
                                            "incomplete_reason": payload("incomplete_reason")})
    return folder, {**put, **{f"reference.{k}": v for k, v in put_ref.items()}, "path": payload("path"),
                    "refused": payload("refused"), "incomplete_reason": payload("incomplete_reason")}


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


def test_page_is_self_contained_and_escapes_every_string(tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    folder, put = _hostile_folder(tmp_path, monkeypatch)
    assert FREE_TEXT <= put.keys()
    written = write_report([folder], out)
    page = out.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"script", "iframe", "object", "embed", "link", "svg"}
    assert {"table", "img", "figure", "style"} <= parser.tags
    for tag, name, value in parser.attrs:
        assert not name.startswith("on"), (tag, name)
        if name == "src":
            assert value.startswith("data:image/svg+xml;base64,")
        if name == "href":
            assert value.startswith("https://")
    for field, text in put.items():
        assert text not in page, f"{field} reached the page unescaped"
    for field in SHOWN:
        assert shown_as(put[field]) in page, f"{field} is not on the page as escaped text"
    assert "<script" not in page.lower() and "<img src=x" not in page and shown_as(IMG) in page
    assert [c for c in page if not (c.isprintable() or c == "\n")] == []  # no override, isolate or control at all
    assert written.rows == 3 and written.timeline == str(folder / "hostile.json")
    assert sum("bad-model.json" in s for s in written.skipped) == 1
    assert sum(f"{IMG}.json" in s for s in written.skipped) == 1
    assert sum("refused.json" in s for s in written.skipped) == 1
    assert "&lt;script&gt;alert(refused)&lt;/script&gt;" in page  # in the skipped line, escaped
    assert page.count("<img ") == 4  # throughput, energy and cost, stages, timeline


def test_control_and_bidi_characters_are_shown_not_obeyed():
    hostile = "a\u202eb\u2066c\u2069\u200b\u200f\u2028\u2029\x1b[31m\x00\x85\ufeff\U000e0041\ud800\r"
    assert visible(hostile) == ("a\\u202eb\\u2066c\\u2069\\u200b\\u200f\\u2028\\u2029\\x1b[31m\\x00\\x85"
                                "\\ufeff\\U000e0041\\ud800\\x0d")
    assert visible("tab\tnew\nline, no-break\xa0space, 日本語 ×") == "tab\tnew\nline, no-break\xa0space, 日本語 ×"
    assert visible(12) == 12 and isinstance(visible(Markup("<b>\u202e</b>")), Markup)


def test_plot_labels_show_control_characters_and_never_read_as_mathtext():
    from matplotlib import cbook

    for raw in ("a$b$c", "$\\frac{1}{0}$", "\\$$", "x\\\\$y$", "tail\\"):
        assert not cbook.is_math_text(plots.text(raw)), raw
    assert plots.text(f"a{RLO}b\\c\x1b") == "a\\u202eb\\c\\x1b"  # one backslash shows as one


def test_templates_are_autoescaped_and_mark_nothing_safe():
    """Escaping is the Environment's, for every template: no template may opt out of it."""
    assert ENV.autoescape is True and ENV.finalize is visible
    for template in (Path(page_module.__file__).parent / "templates").iterdir():
        text = re.sub(r"{#.*?#}", "", template.read_text(encoding="utf-8"), flags=re.S).replace(" ", "")
        assert "|safe" not in text and "autoescape" not in text and "Markup" not in text, template.name


def test_existing_file_is_kept_unless_forced(tmp_path):
    folder = tmp_path / "results"
    forge.write(folder, "r.json", forge.record())
    out = tmp_path / "report.html"
    out.write_text("mine")
    with pytest.raises(UsageError, match="exists; choose another name or pass --force"):
        write_report([folder], out)
    assert out.read_text() == "mine"
    write_report([folder], out, force=True)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    with pytest.raises(UsageError, match="is a folder"):
        write_report([folder], tmp_path)


def test_timeline_is_the_newest_gpu_run_with_a_series_or_the_one_asked_for(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    old = forge.write(folder, "old.json", forge.with_nvml(forge.record(created="2026-01-01T00:00:00Z"), monkeypatch))
    forge.write(folder, "new.json", forge.with_nvml(forge.record(created="2026-02-01T00:00:00Z"), monkeypatch))
    plain = forge.write(folder, "plain.json", forge.record(created="2026-03-01T00:00:00Z"))
    assert write_report([folder], tmp_path / "a.html").timeline == str(folder / "new.json")
    assert write_report([folder], tmp_path / "b.html", timeline_path=old).timeline == str(old)
    with pytest.raises(UsageError, match="no telemetry series"):
        write_report([folder], tmp_path / "c.html", timeline_path=plain)
    assert not (tmp_path / "c.html").exists()


def test_cli_writes_the_report_and_refuses_with_one_line(tmp_path, capsys):
    folder = tmp_path / "results"
    forge.write(folder, "r.json", forge.record())
    out = tmp_path / "r.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    assert f"report: {out} (1 rows; timeline: none)" in capsys.readouterr().out
    assert main(["report", str(folder), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _console(stderr: str) -> list[str]:
    """Console messages of the page (errors, CSP violations, anything logged by a script)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_chromium_renders_the_page_and_runs_no_script(tmp_path, monkeypatch):
    canary = tmp_path / "canary.html"  # the console check must see what it is there to catch
    canary.write_text(f'<html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
                      f"<title>{TITLE}</title></head><body>{SCRIPT}</body></html>")
    assert _console(_chromium(tmp_path, canary, "--dump-dom").stderr)
    page = tmp_path / "report.html"
    folder, put = _hostile_folder(tmp_path, monkeypatch)
    write_report([folder], page)
    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []  # a blocked script would log a CSP violation (see the canary)
    assert f"<title>{TITLE}</title>" in dom.stdout and "pwned</title>" not in dom.stdout
    assert "<table>" in dom.stdout and "testmodel" in dom.stdout and "<script" not in dom.stdout
    label = html.escape(put["label"], quote=False).replace(RLO, "\\u202e")
    assert label in dom.stdout and RLO not in dom.stdout  # shown as text, the override as a visible escape
    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, page, "--hide-scrollbars", "--window-size=1400,4400", f"--screenshot={shot}")
    assert taken.returncode == 0 and _console(taken.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")



# --- the page reads at a glance: it fits 1,400 px, every figure says what it shows ----------------------------------

# Run in the page once it has loaded (a copy of the page without its CSP, which would block it): what sticks out of
# the viewport, what scrolls sideways inside it, and each image's alt text and caption, written into the DOM as JSON.
PROBE = """<script>window.addEventListener('load', () => {
  const w = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 0.5
    || (getComputedStyle(e).overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 0.5))
    .slice(0, 12).map(e => `${e.tagName}.${e.className}: right ${e.getBoundingClientRect().right}, `
                           + `scrolls ${e.scrollWidth}`);
  const figures = [...document.querySelectorAll('img, svg')].map(e => ({alt: e.getAttribute('alt') || '',
    caption: (e.closest('figure')?.querySelector('figcaption')?.textContent || '').trim()}));
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({client: w, scroll: document.documentElement.scrollWidth, wide, figures});
  document.body.appendChild(out);
});</script>"""


def _probe(tmp_path: Path, page: Path, width_px: int) -> dict:
    probed = tmp_path / "probed.html"
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp_path, probed, f"--window-size={width_px},1000", "--virtual-time-budget=10000", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_chromium_page_fits_1400_px_with_long_names_and_every_figure_is_described(tmp_path, monkeypatch):
    """The committed registry (26 rows, the table that scrolled its 'peak mem' and baseline columns out of view at
    1,400 px) plus a GPU record under a 600-character path with a 200-character label of one word: nothing may
    stick out of the viewport or scroll sideways inside it (scrollbar shown, as a reader has it)."""
    folder = tmp_path.joinpath(*["long" + "x" * 196] * 3)
    forge.write(folder, "r.json", forge.with_nvml(forge.record(label="L" * 200), monkeypatch))
    page = tmp_path / "report.html"
    write_report([REGISTRY, folder], page, timeline_path=folder / "r.json")
    assert ("L" * 200) in page.read_text(encoding="utf-8") and str(folder) in page.read_text(encoding="utf-8")
    seen = _probe(tmp_path, page, 1400)
    assert 1300 < seen["client"] <= 1400
    assert seen["scroll"] == seen["client"] and seen["wide"] == []
    assert len(seen["figures"]) == 4  # throughput, energy and cost, stages, timeline
    for figure in seen["figures"]:
        assert len(figure["alt"]) > 10 and len(figure["caption"]) > 40, figure


def _row(kind: str, vm: float, *, measure: str = "", mfu: float | None = None, bound: float | None = None,
         interval: tuple[float, float] | None = None, energy: float | None = None, owned: float | None = None,
         rented: float | None = None) -> Row:
    low, high = interval or (None, None)
    return Row(kind=kind, source="s", model="m", hardware="h100-sxm", gpus=1, settings_key="k", toy="",
               generations=3 if interval else None, seconds_per_video=60 / vm, video_min_per_gpu_hour=vm,
               interval_low=low, interval_high=high, energy_wh_per_video_minute=energy,
               owned_usd_per_video_minute=owned, rented_usd_per_video_minute=rented, mfu=mfu,
               bound_video_min_per_gpu_hour=bound, peak_memory_bytes=None, stages_s=None, paths=(), measure=measure)


# Four kinds of evidence over a 55x range (a log axis), as the table numbers them.
ROWS = [(1, _row("measured", 4.55, measure="measured", mfu=0.434, bound=10.5, interval=(4.52, 4.57), energy=152,
                 owned=0.39, rented=1.35)),
        (2, _row("measured", 5.0, measure="step-sampled", mfu=0.476, bound=10.5, interval=(4.9, 5.1))),
        (3, _row("published", 0.119, mfu=0.227, bound=0.524, owned=14.9, rented=51.5)),
        (4, _row("estimate", 5.0, energy=None, owned=0.356, rented=1.23)),
        (5, _row("published", 3.4, mfu=0.303, bound=11.2, energy=200, owned=0.525, rented=1.81))]


def _drawn(fig):
    fig.draw_without_rendering()  # ticks, their labels and offset texts are made at draw time
    return fig


def _legend(fig) -> dict[str, object]:
    """{label: handle} of the figure's one legend."""
    (legend,) = fig.legends
    return {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}


def _by_gid(fig, prefix: str = "row") -> dict[str, object]:
    return {a.get_gid(): a for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))}


def _assert_readable_axes(fig) -> None:
    """Every value axis has a label, no axis an offset ('1e6') or an exponent in a tick label."""
    for ax in fig.axes:
        assert ax.get_xlabel(), ax
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == ""
            for label in axis.get_ticklabels():
                assert "e+" not in label.get_text() and "^" not in label.get_text(), label.get_text()


def test_roofline_marks_the_bound_and_puts_each_rows_mfu_on_its_bar():
    fig = _drawn(plots.throughput(ROWS))
    _assert_readable_axes(fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and "log" in ax.get_xlabel()  # 0.119 .. 11.2 is a 94x range
    assert {t.get_text() for t in ax.xaxis.get_ticklabels() if t.get_text()} >= {"0.1", "1", "10"}
    found = _by_gid(fig)
    mfu = {gid: found[gid].get_text() for gid in found if gid.endswith("-mfu")}
    assert mfu == {"row1-mfu": "MFU 43%", "row2-mfu": "MFU 48%", "row3-mfu": "MFU 23%", "row4-mfu": "MFU n/a",
                   "row5-mfu": "MFU 30%"}
    legend = _legend(fig)
    bound = [label for label in legend if "bound" in label]
    assert len(bound) == 1 and legend[bound[0]].get_marker() == "D"
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert sorted(float(d.get_xdata()[0]) for d in diamonds) == [0.524, 10.5, 10.5, 11.2]  # row 4 has no bound
    _assert_one_meaning_per_colour(fig, found)


def _assert_one_meaning_per_colour(fig, bars: dict[str, object]) -> None:
    """Bars of rows of one kind share a colour, bars of other kinds differ, and the legend names each colour once."""
    from matplotlib.colors import to_hex

    kinds = {1: "measured", 2: "step-sampled", 3: "published", 4: "estimate", 5: "published"}
    colour_kinds: dict[str, set[str]] = {}
    for gid, bar in bars.items():
        if hasattr(bar, "get_facecolor") and not gid.endswith("-mfu") and bar.get_width() > 0:
            colour_kinds.setdefault(to_hex(bar.get_facecolor()), set()).add(kinds[int(re.match(r"row(\d+)", gid)[1])])
    assert all(len(k) == 1 for k in colour_kinds.values()), colour_kinds
    named = {to_hex(h.get_facecolor()): label for label, h in _legend(fig).items() if hasattr(h, "get_hatch")
             and not h.get_hatch() and label in kinds.values()}
    assert {c: {named.get(c)} for c in colour_kinds} == colour_kinds  # the legend says what each colour means


def test_energy_and_cost_colour_each_bar_by_its_evidence_and_tell_owned_from_rented_by_fill():
    fig = _drawn(plots.energy_cost(ROWS))
    _assert_readable_axes(fig)
    bars = _by_gid(fig)
    for i in (1, 3, 4, 5):  # a row's owned and rented bars share its colour (before: owned blue, rented orange)
        owned, rented = bars[f"row{i}-owned"], bars[f"row{i}-rented"]
        assert owned.get_facecolor() == rented.get_facecolor()
        assert not owned.get_hatch() and rented.get_hatch()
    assert bars["row1-energy"].get_facecolor() == bars["row1-owned"].get_facecolor()
    assert bars["row4-energy"].get_text().strip() == "n/a"  # said, not an empty gap
    assert not any(gid.startswith("row2-") for gid in bars)  # no energy and no price: not on this figure
    _assert_one_meaning_per_colour(fig, {g: b for g, b in bars.items() if hasattr(b, "get_facecolor")
                                         and not hasattr(b, "get_text")})
    legend = _legend(fig)
    assert not legend["owned $ (solid)"].get_hatch() and legend["rented $ (hatched)"].get_hatch()
    assert {"measured", "published", "estimate"} <= set(legend) and "step-sampled" not in legend


def test_stage_colours_are_none_of_the_evidence_colours():
    """Blue is 'measured' on every figure: the stage split may not take it for 'denoise' (it did)."""
    from matplotlib.colors import to_hex

    rows = [(1, dataclasses.replace(ROWS[0][1], stages_s={"text_encode": 0.6, "denoise": 12.0, "vae_decode": 0.4,
                                                          "other": 0.187}))]
    fig = _drawn(plots.stages(rows))
    evidence = {to_hex(b.get_facecolor()) for b in _by_gid(_drawn(plots.throughput(ROWS))).values()
                if not hasattr(b, "get_text")}
    stage = {to_hex(b.get_facecolor()) for b in _by_gid(fig).values()}
    assert len(stage) == 4 and not stage & evidence
    assert list(_legend(fig)) == ["text encode", "denoise", "vae decode", "other"]
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.xaxis.get_ticklabels()] == ["0%", "25%", "50%", "75%", "100%"]


def test_the_page_opens_with_the_headline_table(tmp_path):
    import html as html_lib
    import re

    out = tmp_path / "report.html"
    write_report(["results"], out)
    page = out.read_text(encoding="utf-8")
    # the first section after the title is estimate's table, before the comparison
    first_h2 = re.search(r"<h2>(.*?)</h2>", page).group(1)
    assert "What scenario factorial-2024 needs" in html_lib.unescape(first_h2)
    assert page.index('class="headline"') < page.index("<h2>Comparison</h2>")
    table = page[page.index('class="headline"'):page.index("</table>", page.index('class="headline"'))]
    cells = [html_lib.unescape(c) for c in re.findall(r"<td>(.*?)</td>", table)]
    # a row per class with evidence, its kinds, and the publication beside it: 720k GPUs, $21.6B, 504 MW
    assert "h100-sxm" in cells and "factorial-2024 as published" in cells
    assert {"720k", "$21.6B", "504 MW"} <= set(cells)
    assert any(c.startswith("predicted;") for c in cells)


def test_a_dangling_link_at_the_output_is_refused_as_existing(tmp_path):
    out = tmp_path / "r.html"
    out.symlink_to(tmp_path / "elsewhere" / "r.html")
    with pytest.raises(UsageError, match="exists \\(a link\\)"):
        write_report(["results"], out)
    assert not (tmp_path / "elsewhere").exists()
