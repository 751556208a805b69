"""`t2vbench report`: a self-contained page (no script, nothing fetched), every string from a file escaped, written
atomically and never over an existing file without --force; rendered in a real headless Chromium where one is
installed (Debian's `chromium`; .ci/run installs it where apt is usable)."""

import html.parser
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.errors import UsageError
from bench.present.report import write_report
from tests import forge

SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=document.title='pwned'>"
TITLE = "t2vbench report"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _hostile_folder(tmp_path: Path, monkeypatch) -> Path:
    """Records and a reference whose free-text strings hold markup, a file named as markup, and a record whose
    model name holds a script (refused by the schema: listed as skipped)."""
    folder = tmp_path / "results"
    honest = forge.with_nvml(forge.record([10.0, 11.0, 12.0], label=f"{SCRIPT}{IMG}"), monkeypatch)
    honest["warnings"] = [f"warning {IMG}"]
    forge.write(folder, "h100.json", honest)
    forge.write(folder, "b200.json", forge.record([5.0, 5.2, 4.8], hardware_class="nvidia-b200"))
    forge.write(folder, "bad-model.json", forge.record(model=SCRIPT))
    forge.write(folder, f"{IMG}.json", {"not": "a record"})
    source = {**forge.REFERENCE["source"], "title": SCRIPT, "url": f'https://example.com/"{SCRIPT}'}
    forge.write(folder, "ref.json", forge.reference(source=source))
    return folder


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


def test_page_is_self_contained_and_escapes_every_string(tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    written = write_report([_hostile_folder(tmp_path, monkeypatch)], out)
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
    assert html.escape(SCRIPT) in page and html.escape(IMG) in page
    assert SCRIPT not in page and "<img src=x" not in page
    assert written.rows == 3 and written.timeline == str(tmp_path / "results" / "h100.json")
    assert sum("bad-model.json" in s for s in written.skipped) == 1
    assert sum(f"{IMG}.json" in s for s in written.skipped) == 1
    assert page.count("<img ") == 4  # throughput, energy and cost, stages, timeline


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
    write_report([_hostile_folder(tmp_path, monkeypatch)], page)
    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    assert f"<title>{TITLE}</title>" in dom.stdout and "pwned</title>" not in dom.stdout
    assert "<table>" in dom.stdout and "testmodel" in dom.stdout
    assert html.escape(SCRIPT, quote=False) in dom.stdout  # shown as text, not run
    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, page, "--hide-scrollbars", "--window-size=1500,4400", f"--screenshot={shot}")
    assert taken.returncode == 0 and _console(taken.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
