"""Sweeps: the file is strict and every cell is checked before anything runs; cells have stable ids; a cell's flags
make the run it stands for; a cell with a complete record is skipped on a rerun, an incomplete one is not; Ctrl-C
reaches the running cell, which keeps its record, and the sweep stops; the Slurm path runs through submitit's local
executor. Cells that run, run for real: the real runner on tiny models on the CPU (no faked runner or process).
Figures are read from the records' JSON."""

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

from bench.records.io import load_record
from bench.run import runner, sweep, sweep_launch
from bench.run.sweep_plan import KEYS, load_sweep, make_cell, run_config
from tests.fakes import fake_memory

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
             "cache": "pab", "memory_cap": 24.0, "fidelity": True, "sample_steps": 1}


# A cell that runs on the CPU in seconds, setting every key a CPU run can take: a real run of it shows each flag
# reaches the record. compile = false and gpus = 1 are what run does without the flag: the cell drops them.
RUNNABLE = {"height": 32, "width": 48, "frames": 5, "fps": 8.0, "steps": 2, "guidance": 3.5, "weights": "random",
            "device": "cpu", "dtype": "float32", "repeats": 1, "warmup": 0, "seed": 7,
            "prompt": "-a prompt that starts with a dash", "telemetry": "none", "sample_period": 0.5,
            "compile": False, "gpus": 1}


@pytest.fixture
def configs(monkeypatch):
    """The RunConfig of every `t2vbench run` in this process, as the real runner's first step (its checks) gets it,
    passed on unchanged: the run goes on (or is refused) as it would."""
    seen = []
    real = runner.prepare

    def spy(config):
        seen.append(config)
        return real(config)

    monkeypatch.setattr(runner, "prepare", spy)
    return seen


def _same_config(seen, cell, out):
    """The config `t2vbench run` built from the cell's flags is the one sweep_plan says (command lines aside)."""
    ours = run_config(cell, out)
    assert len(seen) == 1
    assert dataclasses.replace(seen[0], command=()) == dataclasses.replace(ours, command=())
    assert ours.out_dir == out.resolve() and ours.label == cell.label
    return ours


def test_every_keys_flag_makes_the_run_config_sweep_plan_expects(tmp_path, configs, run_cli):
    """sweep_plan maps each key to a flag and to a RunConfig field: both must agree with what `t2vbench run` builds
    from those flags. These values cannot run together (nor on this host): the real runner refuses them, after
    the config was built."""
    assert set(EVERY_KEY) == set(KEYS)
    out = tmp_path / "out"
    cell = make_cell("s", "tiny-wan", EVERY_KEY, tuple(EVERY_KEY), out)
    code, _, err = run_cli("run", *cell.argv)
    assert code == 2 and err.startswith("t2vbench: error: ") and not out.exists(), err
    ours = _same_config(configs, cell, out)
    assert ours.workers == 2 and ours.options.memory_cap_gib == 24.0 and ours.overrides["num_frames"] == 5
    assert ours.time_budget_s == 30.0 and ours.sample_period_s == 0.5 and ours.parallel == "ulysses=2"


@pytest.mark.slow  # an end-to-end run: CI's slow pass runs it (the default run stays under 2 min)
def test_a_cells_flags_reach_the_record_of_its_real_run(tmp_path, configs, run_cli):
    out = tmp_path / "out"
    cell = make_cell("s", "tiny-wan", RUNNABLE, ("steps",), out)
    assert "compile" not in cell.values and "gpus" not in cell.values
    code, stdout, err = run_cli("run", *cell.argv, "--json")
    assert code == 0, err
    _same_config(configs, cell, out)
    path = Path(json.loads(stdout)["record"])
    data = json.loads(path.read_text())
    assert path.parent == out.resolve() and data["label"] == cell.label and data["complete"]
    assert {k: data["settings"][k] for k in ("height", "width", "num_frames", "fps", "steps", "guidance_scale",
                                             "device", "dtype", "repeats", "warmup", "seed", "prompt",
                                             "gpus_used", "options")} == {
        "height": 32, "width": 48, "num_frames": 5, "fps": 8.0, "steps": 2, "guidance_scale": 3.5, "device": "cpu",
        "dtype": "float32", "repeats": 1, "warmup": 0, "seed": 7, "prompt": "-a prompt that starts with a dash",
        "gpus_used": 1, "options": {}}
    assert data["weights"]["source"] == "random" and data["warmup_latency_s"] == []
    assert data["telemetry"]["backend"] == "none" and data["telemetry"]["sample_period_s"] == 0.5
    assert len(data["generations"]) == 1 and len(data["generations"][0]["step_s"]) == 2
    assert data["summary"]["video_seconds_per_generation"] == pytest.approx(5 / 8)  # frames / fps


@pytest.mark.slow
def test_a_cell_of_no_values_runs_what_a_plain_run_runs(tmp_path, configs, run_cli):
    out = tmp_path / "out"
    cell = make_cell("s", "tiny-wan", {"compile": False, "gpus": 1}, (), out)
    assert cell.values == {} and cell.argv == ("tiny-wan", f"--out={out}", f"--label={cell.label}")
    code, stdout, err = run_cli("run", *cell.argv, "--json")
    assert code == 0, err
    _same_config(configs, cell, out)
    data = json.loads(Path(json.loads(stdout)["record"]).read_text())
    assert data["label"] == cell.label and data["settings"]["options"] == {}


def _record_file(folder, label, complete=True, name="r.json"):
    data = json.loads((DATA / "record-v2-tiny-wan.json").read_text())
    data.update(label=label, complete=complete, incomplete_reason=None if complete else "interrupted by SIGINT")
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(data))
    return folder / name


def _rate(path) -> float:
    """A record file's video minutes per GPU-hour, from its JSON."""
    return json.loads(Path(path).read_text())["summary"]["video_minutes_per_gpu_hour"]


@pytest.mark.slow  # an end-to-end run: CI's slow pass runs it (the default run stays under 2 min)
def test_only_cells_without_a_complete_record_run(tmp_path, monkeypatch, run_cli):
    """The second cell's earlier attempt is incomplete: it runs again, for real (tiny-wan on the CPU, 1 generation
    of 3 steps), and its row is the new record, not the earlier attempt. The first cell is done: it does not run."""
    out = tmp_path / "out"
    first, second = _cells(TWO_CELLS, tmp_path)
    done = _record_file(out, first.label, name="done.json")
    evidence = _record_file(out, second.label, complete=False, name="evidence.json")
    _record_file(out, "someone else's run", name="other.json")
    (out / "not-a-record.json").write_text("{}")
    before, done_text = set(out.iterdir()), done.read_text()
    # compare's table is tested below and in the slow sweep tests; left out here, it would count the FLOPs of a
    # new setting (seconds)
    monkeypatch.setattr("bench.present.sweep.compare_text", lambda result: None)
    code, stdout, _ = run_cli("sweep", _file(tmp_path, TWO_CELLS), "--out", out)
    assert code == 0, stdout
    assert "1 done earlier, 1 to run" in stdout and f"cell {first.id}" not in stdout  # no "[1/1] cell <first>" line
    new = sorted(set(out.iterdir()) - before)
    assert len(new) == 1 and new[0].suffix == ".json", new  # one record; its journal is gone
    data = json.loads(new[0].read_text())
    assert data["label"] == second.label and data["complete"] and data["settings"]["steps"] == 3
    assert len(data["generations"]) == 1 and data["warmup_latency_s"] == []
    rows = {line.split()[0]: line for line in stdout.splitlines() if line[:10] in (first.id, second.id)}
    assert rows[first.id].split()[3:7] == ["done", "earlier", f"{_rate(done):.4g}", str(done)]
    assert rows[second.id].split()[3:] == ["done", f"{_rate(new[0]):.4g}", str(new[0])]
    assert str(evidence) not in stdout  # the earlier attempt is not the cell's result
    assert done.read_text() == done_text and evidence.exists()  # earlier records are kept as they were


@pytest.mark.slow
def test_a_cell_that_fails_is_failed_and_its_earlier_attempt_is_not_its_result(tmp_path, run_cli):
    """A real failure: a weights folder that passes the checks before the run (it has a model_index.json) but that
    diffusers cannot load, so the cell's run exits 1 having written nothing."""
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "model_index.json").write_text("{}")
    text = TWO_CELLS.replace("warmup = 0", f"warmup = 0\nweights = \"{bogus}\"").replace("[2, 3]", "[2]")
    out = tmp_path / "out"
    (cell,) = _cells(text, tmp_path)
    evidence = _record_file(out, cell.label, complete=False, name="evidence.json")
    code, stdout, _ = run_cli("sweep", _file(tmp_path, text), "--out", out)
    assert code == 1 and "0 done earlier, 1 to run" in stdout, stdout
    row = next(line for line in stdout.splitlines() if line.startswith(cell.id))
    assert row.split()[3:] == ["failed", "(exit", "1)", "-", "-"]  # not "incomplete", not evidence.json
    assert str(evidence) not in stdout and sorted(p.name for p in out.iterdir()) == ["evidence.json"]


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
    assert f"{_rate(done):,.0f}" in rows[0]


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


def test_a_sweep_predicted_to_overrun_its_budget_is_refused_before_it_starts(tmp_path, no_runs):
    path = _file(tmp_path, TWO_CELLS)
    with pytest.raises(sweep.UsageError, match=r"predicted to take 17 s, 7 s over the budget of 10 s"):
        sweep.run_sweep(path, tmp_path / "out", budget_s=10, predict=lambda cell: 8.5)  # 2 x 8.5 = 17 = 10 + 7
    assert not (tmp_path / "out").exists()
    fits = sweep.run_sweep(path, tmp_path / "out", budget_s=10, predict=lambda cell: 4.0, dry_run=True)
    assert [r.predicted_s for r in fits.cells] == [4.0, 4.0] and fits.exit_code == 0


def test_dry_run_shows_each_cells_prediction_and_the_total(tmp_path, no_runs):
    from bench.present.sweep import format_sweep

    result = sweep.run_sweep(_file(tmp_path, "budget_s = 60\n" + TWO_CELLS), tmp_path / "out", dry_run=True,
                             predict=lambda cell: 12.0 if cell.values["steps"] == 2 else None)
    text = format_sweep(result)
    assert "budget 60 s" in text and "predicted s" in text
    assert "predicted for the cells to run: 12 s" in text  # the cell without evidence counts as nothing
    assert result.sweep.budget_s == 60.0


@pytest.mark.parametrize("value", ["0", "-5", "true", '"480"', "1e9"])
def test_a_bad_budget_is_refused_in_one_line(tmp_path, no_runs, value):
    with pytest.raises(sweep.UsageError, match="budget_s = .*give seconds from 1"):
        sweep.run_sweep(_file(tmp_path, f"budget_s = {value}\n" + TWO_CELLS), tmp_path / "out", dry_run=True)


def test_a_spent_budget_interrupts_the_running_cell_and_skips_the_rest(tmp_path, run_cli):
    """A real sweep: a budget of 1 s is spent while the first cell is still starting (a Python process that
    imports torch takes longer), so that cell is interrupted and the second never starts; the sweep exits 0."""
    out = tmp_path / "out"
    code, stdout, _ = run_cli("sweep", _file(tmp_path, TWO_CELLS), "--out", out, "--budget", "1")
    first, second = _cells(TWO_CELLS, tmp_path)
    rows = {line.split()[0]: line for line in stdout.splitlines() if line[:10] in (first.id, second.id)}
    assert code == 0, stdout
    assert "interrupted (budget)" in rows[first.id]  # exit 130: SIGINT before its first generation (no record)
    assert "not run (budget)" in rows[second.id]
    assert "budget of 1 s spent during cell" in stdout


LISTED = """
name = "listed"
[run]
device = "cpu"
repeats = 1
warmup = 0
[[cells]]
model = "tiny-ltx"
steps = 3
[[cells]]
model = "tiny-wan"
warmup = 1
"""


def test_listed_cells_run_in_their_order_and_their_keys_win_over_run(tmp_path, no_runs):
    cells = load_sweep(_file(tmp_path, LISTED), tmp_path / "out").cells
    assert [c.model for c in cells] == ["tiny-ltx", "tiny-wan"]
    assert cells[0].values == {"steps": 3, "device": "cpu", "repeats": 1, "warmup": 0}
    assert cells[1].values["warmup"] == 1 and cells[1].describe() == "warmup=1"
    assert "--warmup=1" in cells[1].argv and "--warmup=0" not in cells[1].argv


@pytest.mark.parametrize("edit,fragment", [
    (LISTED + 'models = ["tiny-wan"]\n', None),  # TOML: a key after a table belongs to it; see the next case
    ('models = ["tiny-wan"]\n' + LISTED, "either models and [matrix], or a [[cells]] list"),
    (LISTED.replace('model = "tiny-ltx"\n', ""), "cells[0]: no model: give a model name"),
    (LISTED.replace("steps = 3", "stepz = 3"), "cells[0]: unknown key 'stepz' (did you mean 'steps'?)"),
    (LISTED.replace("steps = 3", "warmup = 1").replace('"tiny-ltx"', '"tiny-wan"'), "the same run"),
])
def test_bad_cell_lists_are_refused_in_one_line(tmp_path, no_runs, edit, fragment):
    if fragment is None:  # 'models' lands inside the last [[cells]] table, as a key no run has
        fragment = "cells[1]: unknown key 'models'"
    with pytest.raises(sweep.UsageError, match=re_escape(fragment)):
        load_sweep(_file(tmp_path, edit), tmp_path / "out")


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_dry_run_says_per_cell_what_run_would_refuse(tmp_path, run_cli, no_runs):
    text = TWO_CELLS.replace("steps = [2, 3]", 'attention_backend = ["native", "_native_cudnn"]')
    code, stdout, _ = run_cli("sweep", _file(tmp_path, text), "--out", tmp_path / "out", "--dry-run")
    rows = [line for line in stdout.splitlines() if line.startswith(("1", "2", "3", "4", "5", "6", "7", "8", "9", "0",
                                                                    *"abcdef"))]
    refused = [r for r in rows if "refused: --attention-backend _native_cudnn has no CPU kernel" in r]
    assert code == 2 and len(refused) == 1, stdout
    assert any("attention_backend=native" in r and "to run" in r for r in rows), stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_dry_run_predicts_each_cell_from_the_committed_h100_records(tmp_path, run_cli, monkeypatch, no_runs):
    """The plain Wan2.1-1.3B cell is the measured rung: its predicted seconds are the committed plain record's mean
    latency times its 1 warm-up + 2 timed generations (hand arithmetic on the record's own JSON)."""
    root = Path(__file__).resolve().parent.parent
    plain = next((root / "results" / "nvidia-h100-80gb-hbm3").rglob("*-1gpu/*.json"))
    latencies = [g["latency_s"] for g in json.loads(plain.read_text())["generations"]]
    text = 'name = "p"\n[run]\nweights = "random"\nrepeats = 2\nwarmup = 1\n[[cells]]\nmodel = "wan2.1-t2v-1.3b"\n'
    monkeypatch.chdir(root)  # the evidence is ./results
    fake_memory(monkeypatch, host_free_bytes=64 * 2**30, gpu_free_bytes=79 * 2**30)  # judged as on a GPU host
    code, stdout, _ = run_cli("sweep", _file(tmp_path, text), "--out", tmp_path / "out", "--dry-run",
                              "--hardware", "h100-sxm")
    expected = 3 * sum(latencies) / len(latencies)
    assert code == 0 and f"predicted for the cells to run: {expected:.0f} s" in stdout, stdout


def test_the_shipped_gpu_campaign_is_a_valid_sweep_most_valuable_first(tmp_path, run_cli, no_runs, monkeypatch):
    """On a host with one GPU of 79 GiB free (faked at torch.cuda), every cell passes the run's own checks, the
    worker's included: the two-expert A14B is the largest: 2 x 14.3e9 + 5.7e9 + 0.1e9 parameters (counted on the meta device), 64 GiB
    in bf16."""
    fake_memory(monkeypatch, host_free_bytes=64 * 2**30, gpu_free_bytes=79 * 2**30)
    campaign = Path(__file__).resolve().parent.parent / "models" / "campaigns" / "gpu-window.toml"
    plan = load_sweep(campaign, tmp_path / "out")
    assert [c.model for c in plan.cells] == ["wan2.1-t2v-14b", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b", "wan2.1-t2v-1.3b",
                                             "wan2.1-t2v-1.3b"]
    assert plan.budget_s == 420 and all(c.values["sample_steps"] == 5 for c in plan.cells)
    assert plan.cells[-1].values["compile"] is True and plan.cells[-1].values["warmup"] == 1
    code, stdout, _ = run_cli("sweep", campaign, "--out", tmp_path / "out", "--dry-run")
    assert code == 0 and stdout.count("to run") == 5, stdout  # every cell passes the run's own checks


def test_a_step_sampled_cells_throughput_is_labelled_so(tmp_path, no_runs):
    from bench.present.sweep import format_sweep

    plan = load_sweep(_file(tmp_path, TWO_CELLS), tmp_path / "out")
    first, second = plan.cells
    rows = (sweep.CellResult(first, "done", tmp_path / "a.json", 4.5, sampled=True),
            sweep.CellResult(second, "done", tmp_path / "b.json", 4.6))
    lines = format_sweep(sweep.SweepResult(plan, rows, 0)).splitlines()
    assert "4.5 step-sampled" in next(line for line in lines if line.startswith(first.id))
    assert "step-sampled" not in next(line for line in lines if line.startswith(second.id))
