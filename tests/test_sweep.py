"""Sweeps: the file is strict and every cell is checked before anything runs; cells have stable ids; a cell with a
complete record is skipped on a rerun, an incomplete one is not; Ctrl-C reaches the running cell, which keeps its
record, and the sweep stops; the Slurm path runs through submitit's local executor."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import cli
from bench.run import sweep
from bench.run import sweep_launch
from bench.records.schema import load_record
from bench.run.sweep_plan import KEYS, load_sweep, make_cell, run_config

DATA = Path(__file__).parent / "data"
TWO_CELLS = """
models = ["tiny-wan"]
[run]
device = "cpu"
repeats = 1
warmup = 0
[matrix]
steps = [2, 3]
"""


def _file(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def no_runs(monkeypatch):
    """Fail the test if a sweep starts any cell."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a cell was started: {args}")

    monkeypatch.setattr(sweep_launch.subprocess, "Popen", refuse)


@pytest.mark.parametrize("text,expected", [
    ("colour = 1\n" + TWO_CELLS, "unknown top-level key 'colour'"),
    (TWO_CELLS.replace("warmup = 0", "warmup = 0\nstep = 2\nrepats = 1"), "unknown keys 'step', 'repats'"),
    (TWO_CELLS + "hieght = [32]\n", "unknown key 'hieght' (did you mean 'height'?)"),
    (TWO_CELLS + "options = [{compile = true, turbo = true}]\n", "matrix.options[0]: unknown option 'turbo'"),
    (TWO_CELLS + "height = [32, 40]\n", "--height 40 does not fit tiny-wan: it must be a positive multiple of 16"),
    (TWO_CELLS.replace("tiny-wan", "tiny-wam"), "unknown model 'tiny-wam'"),
    (TWO_CELLS.replace("steps = [2, 3]", "steps = 2"), "matrix.steps = 2: give a list of values, e.g. steps = [2]"),
    (TWO_CELLS.replace("steps = [2, 3]", "steps = []"), "matrix.steps is empty: give at least one value"),
    (TWO_CELLS.replace("[2, 3]", "[2, \"3\"]"), "matrix.steps[1] = '3': give an integer"),
    (TWO_CELLS.replace("repeats = 1", "repeats = 1\nsteps = 2"), "steps is set in both [run] and matrix.steps"),
    (TWO_CELLS + "options = [{}, {compile = false}]\n", "are the same run"),
    (TWO_CELLS + "options = [{compile = true}]\n", "--compile with --warmup 0 would time the compilation"),
    (TWO_CELLS + "height = [16, 32, 48, 64, 80, 96, 112, 128]\nframes = [1, 5, 9, 13, 17, 21, 25, 29, 33]\n"
     "seed = [1, 2, 3, 4]\n", "576 cells is more than 512"),
    (TWO_CELLS.replace("models = [\"tiny-wan\"]", "models = \"tiny-wan\""), "models = 'tiny-wan': give a list"),
    (TWO_CELLS + "[slurm]\npartition = \"gpu\"\nnodes = 2\n", "[slurm]: unknown key 'nodes'"),
    (TWO_CELLS + "[slurm]\ntime_min = -5\n", "slurm.time_min = -5: give a positive integer"),
    ("name = \"a b\"\n" + TWO_CELLS, "name 'a b' must be 1-64 letters"),
    (TWO_CELLS + "[matrix", "not valid TOML"),
    ("#" * 70000, "larger than 65536 bytes"),
])
def test_bad_sweep_files_are_refused_in_one_line_before_anything_runs(tmp_path, run_cli, no_runs, text, expected):
    out = tmp_path / "out"
    code, stdout, err = run_cli("sweep", _file(tmp_path, text), "--out", out)
    assert code == 2 and stdout == ""
    assert expected in err and err.startswith("t2vbench: error: sweep ") and err.count("\n") == 1, err
    assert not out.exists()


def _cells(text, tmp_path):
    """The cells of a sweep text, as if it were the file s.toml (the name in every label)."""
    folder = tmp_path / "plan"
    folder.mkdir(exist_ok=True)
    return load_sweep(_file(folder, text), tmp_path / "out").cells


def test_the_documented_example_is_a_valid_sweep(tmp_path):
    block = sweep.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    s = load_sweep(_file(tmp_path, textwrap.dedent(block), "attention.toml"), tmp_path / "out")
    assert len(s.cells) == 12 and s.slurm == {"partition": "gpu", "time_min": 120}
    assert {c.describe() for c in s.cells if c.model == "tiny-ltx"} == {
        "height=32 steps=2", "height=32 steps=4", "height=32 steps=2 compile", "height=32 steps=4 compile",
        "height=32 steps=2 attention_backend=_native_math", "height=32 steps=4 attention_backend=_native_math"}


def test_an_impossible_cell_is_named(tmp_path, run_cli, no_runs):
    out = tmp_path / "out"
    code, _, err = run_cli("sweep", _file(tmp_path, TWO_CELLS + "height = [32, 40]\n"), "--out", out)
    bad = make_cell("s", "tiny-wan", {"device": "cpu", "repeats": 1, "warmup": 0, "steps": 2, "height": 40},
                    ("steps", "height"), out)
    assert code == 2 and f"cell {bad.id} (tiny-wan height=40 steps=2): --height 40 does not fit" in err


def test_cell_ids_are_stable_short_hashes_of_their_arguments(tmp_path):
    a = _cells(TWO_CELLS, tmp_path)
    reordered = _cells('models = ["tiny-wan"]\n[matrix]\nsteps = [3, 2]\n[run]\nwarmup = 0\nrepeats = 1\n'
                       'device = "cpu"\ncompile = false\ngpus = 1\n', tmp_path)
    assert [c.id for c in a] == [c.id for c in reversed(reordered)]  # order, false flags and gpus = 1 change nothing
    assert all(len(c.id) == 10 and int(c.id, 16) >= 0 for c in a) and a[0].id != a[1].id
    assert a[0].label == f"sweep:s:{a[0].id}"
    other = _cells(TWO_CELLS.replace("repeats = 1", "repeats = 2"), tmp_path)
    assert not {c.id for c in a} & {c.id for c in other}  # a common setting is part of every cell's identity
    assert _cells(TWO_CELLS.replace("steps = [2, 3]", "steps = [2, 3]\nguidance = [5]"), tmp_path)[0].id == \
        _cells(TWO_CELLS.replace("steps = [2, 3]", "steps = [2, 3]\nguidance = [5.0]"), tmp_path)[0].id


# One value for every sweep key: a key added to KEYS without one here fails the test below.
EVERY_KEY = {"height": 32, "width": 48, "frames": 5, "fps": 8.0, "steps": 2, "guidance": 3.5, "guidance_2": 2.0,
             "preset": "fast", "weights": "random", "device": "cpu", "dtype": "float32", "repeats": 2,
             "time_budget": 30.0, "warmup": 1, "seed": 7, "prompt": "-a prompt that starts with a dash",
             "telemetry": "none", "sample_period": 0.5, "save_video": True, "gpus": 2, "parallel": "ulysses=2",
             "compile": True, "attention_backend": "native", "offload": "model", "vae_tiling": True, "quantize": "fp8",
             "cache": "pab", "memory_cap": 24.0, "fidelity": True}


@pytest.mark.parametrize("values", [EVERY_KEY, {"steps": 3, "compile": False, "gpus": 1}, {}])
def test_the_cells_flags_make_the_same_run_config_as_the_run_command(tmp_path, monkeypatch, values):
    """sweep_plan maps each key to a flag and to a RunConfig field: both must agree with what `t2vbench run`
    builds from those flags (the run's checks are left out here: this is about the mapping)."""
    assert set(EVERY_KEY) == set(KEYS)
    cell = make_cell("s", "tiny-wan", values, tuple(values), tmp_path / "out")
    seen = []

    class Captured(Exception):
        pass

    def capture(config, progress=True):
        seen.append(config)
        raise Captured

    monkeypatch.setattr("bench.run.runner.run", capture)
    with pytest.raises(Captured):
        cli.main(["run", *cell.argv])
    ours = run_config(cell, tmp_path / "out")
    assert dataclasses.replace(seen[0], command=()) == dataclasses.replace(ours, command=())
    assert ours.out_dir == (tmp_path / "out").resolve() and ours.label == cell.label
    if values is EVERY_KEY:
        assert ours.workers == 2 and ours.options.memory_cap_gib == 24.0 and ours.overrides["num_frames"] == 5


def _record_file(folder, label, complete=True, name="r.json"):
    data = json.loads((DATA / "record-v2-tiny-wan.json").read_text())
    data.update(label=label, complete=complete, incomplete_reason=None if complete else "interrupted by SIGINT")
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(data))
    return folder / name


class FakeCell:
    """subprocess.Popen for a cell: records its command and exits with `code`."""

    started: list = []
    code = 0

    def __init__(self, argv, **kwargs):
        FakeCell.started.append(argv)

    def wait(self):
        return FakeCell.code

    def poll(self):
        return FakeCell.code


def test_only_cells_without_a_complete_record_run(tmp_path, monkeypatch, run_cli):
    out = tmp_path / "out"
    first, second = _cells(TWO_CELLS, tmp_path)
    done = _record_file(out, first.label, name="done.json")
    _record_file(out, second.label, complete=False, name="evidence.json")
    _record_file(out, "someone else's run", name="other.json")
    (out / "not-a-record.json").write_text("{}")
    monkeypatch.setattr(sweep_launch.subprocess, "Popen", FakeCell)
    monkeypatch.setattr("bench.present.sweep.compare_text", lambda result: None)  # tested below; it imports torch
    FakeCell.started, FakeCell.code = [], 1
    code, stdout, _ = run_cli("sweep", _file(tmp_path, TWO_CELLS), "--out", out)
    assert [argv[4:] for argv in FakeCell.started] == [list(second.argv)]  # after python -m bench.cli run
    assert code == 1  # the cell that ran failed and wrote nothing
    rows = {line.split()[0]: line for line in stdout.splitlines() if line[:10] in (first.id, second.id)}
    rate = load_record(done).summary["video_minutes_per_gpu_hour"]
    assert rows[first.id].split()[3:7] == ["done", "earlier", f"{rate:.4g}", str(done)]
    assert rows[second.id].split()[3:] == ["failed", "(exit", "1)", "-", "-"]  # the earlier attempt is not its result
    assert "1 done earlier, 1 to run" in stdout


def test_the_compare_table_covers_the_complete_records_only(tmp_path):
    from bench.present.sweep import compare_text

    out = tmp_path / "out"
    first, second = _cells(TWO_CELLS, tmp_path)
    done = _record_file(out, first.label, name="done.json")
    _record_file(out, second.label, complete=False, name="evidence.json")
    result = sweep.run_sweep(_file(tmp_path, TWO_CELLS), out, dry_run=True)
    text = compare_text(result)
    rows = [line for line in text.splitlines() if "tiny-wan" in line]
    assert len(rows) == 1, text  # the complete record; the incomplete evidence is not compared
    rate = load_record(done).summary["video_minutes_per_gpu_hour"]
    assert f"{rate:,.0f}" in rows[0]


def test_dry_run_checks_and_shows_the_plan_and_writes_nothing(tmp_path, run_cli, no_runs):
    out = tmp_path / "out"
    code, stdout, err = run_cli("sweep", _file(tmp_path, TWO_CELLS), "--out", out, "--dry-run")
    cells = _cells(TWO_CELLS, tmp_path)
    assert code == 0 and err == "" and not out.exists()
    assert stdout.count("to run") == 2
    assert f"-m bench.cli run tiny-wan --steps=2 --device=cpu --repeats=1 --warmup=0 --out={out.resolve()} " \
           f"--label=sweep:s:{cells[0].id}" in stdout


def test_slurm_without_submitit_is_refused_with_how_to_install(tmp_path, run_cli, no_runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)
    code, _, err = run_cli("sweep", _file(tmp_path, TWO_CELLS), "--out", tmp_path / "o", "--launcher", "slurm")
    assert code == 2 and "pip install 't2vbench[slurm]'" in err and not (tmp_path / "o").exists()


def test_slurm_parameters_reach_the_sbatch_script(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")  # submitit looks for srun
    text = TWO_CELLS.replace('device = "cpu"', 'device = "cuda"') + \
        '[slurm]\npartition = "h100"\naccount = "video"\nsetup = ["module load cuda/12.4"]\nmem_gb = 64\n'
    s = load_sweep(_file(tmp_path, text), tmp_path / "o")
    executor = submitit.AutoExecutor(folder=tmp_path / "slurm", cluster="slurm")
    executor.update_parameters(**sweep_launch.slurm_parameters(s, 2))
    script = executor._executor._make_submission_file_text("CMD", "uid")
    for line in ("--partition=h100", "--account=video", "--gpus-per-node=2", "--time=60", "--mem=64GB",
                 "--job-name=t2vbench-s", "--nodes=1", "module load cuda/12.4"):
        assert line in script


@pytest.mark.slow
def test_a_two_cell_sweep_writes_a_record_per_cell_and_a_rerun_redoes_nothing(tmp_path, run_cli):
    out = tmp_path / "out"
    path = _file(tmp_path, TWO_CELLS)
    code, stdout, _ = run_cli("sweep", path, "--out", out)
    assert code == 0, stdout
    records = {p: load_record(p) for p in out.glob("*.json")}
    cells = _cells(TWO_CELLS, tmp_path)
    assert sorted(r.label for r in records.values()) == sorted(c.label for c in cells)
    assert sorted(r.settings.steps for r in records.values()) == [2, 3]
    assert all(r.complete and len(r.generations) == 1 and not r.warmup_latency_s for r in records.values())
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = run_cli("sweep", path, "--out", out)
    assert code == 0 and "2 done earlier, 0 to run" in stdout and stdout.count("done earlier") == 3
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def _interrupt_when(proc, ready, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C
    return proc.communicate(timeout=120)


@pytest.mark.slow
def test_ctrl_c_keeps_the_running_cells_record_and_a_rerun_skips_the_finished_cell(tmp_path):
    # The second cell never ends on its own, so the interrupt lands inside it, whatever the machine's speed.
    text = 'models = ["tiny-wan"]\n[run]\ndevice = "cpu"\nwarmup = 0\nsteps = 2\n[matrix]\nrepeats = [1, 100000]\n'
    first, second = _cells(text, tmp_path)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "bench.cli", "sweep", str(_file(tmp_path, text)), "--out", str(out)]

    def second_cell_measuring():
        """The first cell's record is written and the second cell's journal holds a finished generation."""
        journals = [p for p in out.glob("*.journal.jsonl")
                    if not p.with_name(p.name.removesuffix(".journal.jsonl") + ".json").exists()]
        return any(r[1].complete for found in sweep.records_by_label(out).values() for r in found) and \
            sum(p.read_text().count('"kind": "generation"') for p in journals) >= 1

    def by_label():
        return {lb: [(p, r.complete) for p, r in found] for lb, found in sweep.records_by_label(out).items()}

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True)
    stdout, err = _interrupt_when(proc, second_cell_measuring)
    assert proc.returncode == 130, err[-800:]
    found = by_label()
    assert [c for _, c in found[first.label]] == [True] and [c for _, c in found[second.label]] == [False]
    assert load_record(found[second.label][0][0]).incomplete_reason.startswith("interrupted by SIGINT")
    assert _row(stdout, first).split()[3] == "done" and _row(stdout, second).split()[3] == "incomplete"
    finished = found[first.label][0][0]
    mtime = finished.stat().st_mtime_ns

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True)
    stdout, err = _interrupt_when(proc, lambda: second_cell_measuring() and len(list(out.glob("*.json"))) == 2)
    assert proc.returncode == 130 and "1 done earlier, 1 to run" in stdout, err[-800:]
    again = by_label()
    assert again[first.label] == [(finished, True)] and finished.stat().st_mtime_ns == mtime
    assert [c for _, c in again[second.label]] == [False, False]  # redone, and the earlier attempt kept
    assert not list(out.glob("*.journal.jsonl"))
    assert "done earlier" in _row(stdout, first) and "incomplete" in _row(stdout, second)


def _row(stdout, cell):
    return next(line for line in stdout.splitlines() if line.startswith(cell.id))


@pytest.mark.slow
def test_slurm_launcher_runs_cells_through_submitits_local_executor(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    path = _file(tmp_path, TWO_CELLS)
    lines = []
    result = sweep.run_sweep(path, out, "slurm", report=lines.append, cluster="local")
    assert result.exit_code == 0 and [r.status for r in result.cells] == ["done", "done"]
    assert sum("job " in line for line in lines) == 2
    assert sorted(load_record(r.record).label for r in result.cells) == sorted(c.label for c in result.sweep.cells)
    again = sweep.run_sweep(path, out, "slurm", report=lines.append, cluster="local")
    assert [r.status for r in again.cells] == ["done earlier", "done earlier"] and len(lines) == 4
