"""`t2vbench report`: one static, self-contained HTML page with the comparison table and plots.

bench.present.report.plots and bench.present.report.timeline draw (matplotlib -> SVG text); bench.present.report.page renders
the HTML from templates/ with jinja2, autoescaped, every value's control and bidi characters made visible
(bench.present.report.characters); this module picks what to show and writes the file. The file is written atomically
(temporary file, then link or rename) and an existing one is never replaced unless --force: a report is cheap to
make again, but a mistyped -o must not destroy a file.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from pathlib import Path

from bench.analysis.compare import DEFAULT_BASELINE, DEFAULT_SCENARIO, Comparison, compare
from bench.analysis.headline import Headline, headline
from bench.analysis.scenarios import load_scenario
from bench.core.errors import UsageError
from bench.core.files import nearest_existing, writable_ancestor, write_atomic
from bench.core.text import shown
from bench.present.report import plots, timeline
from bench.present.report.page import Plot, render


@dataclasses.dataclass(frozen=True)
class Written:
    path: Path
    rows: int
    timeline: str | None  # the record whose timeline is shown
    skipped: tuple[str, ...]


def check_out(out: Path, force: bool) -> None:
    """Refuse an --out that cannot or must not be written, before anything is computed."""
    where = f"-o {shown(str(out))}"
    if out.is_dir():
        raise UsageError(f"{where}: is a folder; give a file name such as {shown(str(out / 'report.html'))}")
    if (out.exists() or out.is_symlink()) and not force:  # a dangling link too: it names a file elsewhere
        raise UsageError(f"{where}: exists{' (a link)' if out.is_symlink() else ''}; choose another name or pass "
                         "--force to replace it")
    if writable_ancestor(out.parent) is None:
        raise UsageError(f"{where}: cannot write in {shown(str(nearest_existing(out.parent)))}; choose a writable "
                         "folder")


def write(path: Path, text: str, force: bool) -> None:
    try:
        write_atomic(path, text, replace=force)
    except FileExistsError:
        raise UsageError(f"-o {shown(str(path))}: appeared while the report was made; pass --force to replace it")\
            from None


def _svg(fig) -> str | None:
    return None if fig is None else plots.to_svg(fig)


def figures(c: Comparison, chosen: tuple[Path, object] | None) -> list[Plot]:
    indexed = list(enumerate(c.rows, 1))
    out = [
        Plot("Throughput against the roofline bound", "Video minutes per GPU-hour per row (numbers as in the table), "
             "coloured by the kind of evidence, with the 95% interval of measured rows and the row's MFU on its bar; "
             "the diamond is the bound, the throughput at 100% of the class's peak dense FLOP/s for the counted "
             "FLOPs.", _svg(plots.throughput(indexed)), "no row has a throughput"),
        Plot("Energy and cost per video-minute", "Energy as measured (records) or published; dollars owned "
             f"(solid: scenario {c.scenario.name}) and rented (hatched: the catalogue's dated on-demand price), "
             "each bar in its row's evidence colour.", _svg(plots.energy_cost(indexed)),
             "no row has an energy or a price"),
        Plot("Where the time goes", "Mean seconds per video of each measured row, split into text encoding, "
             "denoising, VAE decode and the rest (scheduler, transfers, Python).", _svg(plots.stages(indexed)),
             "no measured row: the stage split comes from the records' stage clocks"),
    ]
    if chosen is None:
        out.append(Plot("Power, clocks and throttling of one run", "", None,
                        "no GPU record with a telemetry series; give one with --timeline RECORD"))
    else:
        path, record = chosen
        out.append(Plot("Power, clocks and throttling of one run", f"{path}: board power, SM clock and the reasons "
                        "the driver held clocks down, sampled through the run.", _svg(timeline.plot(record))))
    return out


def _pick_timeline(c: Comparison, path: Path | None) -> tuple[Path, object] | None:
    """--timeline's record, else the newest GPU record with a series among those shown (toys only with
    --allow-toy)."""
    if path is not None:
        return timeline.chosen(path)
    return timeline.newest([(p, r) for p, r in c.loaded.records if c.allow_toy or not r.is_tiny])


def _headline(paths: Sequence[str | Path], scenario: str) -> tuple[Headline | None, str]:
    """`t2vbench estimate` of the report's scenario from the report's inputs, or why there is none."""
    try:
        return headline(load_scenario(scenario), set(), [str(p) for p in paths]), ""
    except UsageError as exc:
        return None, f"no headline table: {exc}"


def write_report(paths: Sequence[str | Path], out: Path, timeline_path: Path | None = None,
                 baseline: str = DEFAULT_BASELINE, scenario: str = DEFAULT_SCENARIO, allow_toy: bool = False,
                 force: bool = False) -> Written:
    """Compare paths, plot, and write the page to out. Raises UsageError (nothing written)."""
    from bench import __version__

    check_out(out, force)
    c = compare(paths, baseline, scenario, allow_toy, verb="report")  # its refusal of nothing usable, word for word
    chosen = _pick_timeline(c, timeline_path)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = [f"generated {now} by t2vbench {__version__}; inputs: {', '.join(map(str, paths))}",
            f"baseline {baseline}; scenario {c.scenario.name}"]
    answer, why_not = _headline(paths, scenario)
    write(out, render(c, figures(c, chosen), meta, answer, why_not), force)
    return Written(out, len(c.rows), str(chosen[0]) if chosen else None, c.skipped)
