"""Several workers: data parallelism on the CPU (the same code path --gpus takes), the context-parallel launcher with a
degree of 1, and every refusal. Device-specific cases say which host they need. Summary figures are read from the
record's JSON and checked by hand arithmetic (or tests/forge.py's summary_of), never by bench.core.metrics."""

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.records.assemble import build_record, replay
from bench.records.io import load_record, record_json
from bench.records.journal import Journal
from bench.records.key import settings_key
from tests import forge
from tests.conftest import cuda_available


def _record(run_cli, tmp_path, *argv):
    """The record of a tiny-wan run on the CPU, and its file's JSON."""
    code, out, err = run_cli("run", "tiny-wan", "--device", "cpu", "--out", tmp_path, "--json", *argv)
    assert code == 0, err
    path = Path(json.loads(out)["record"])
    return load_record(path), json.loads(path.read_text())


def _rate(video_s: float, gpu_s: float) -> float:
    """Video minutes per GPU-hour, from its definition."""
    return (video_s / 60) / (gpu_s / 3600)


@pytest.mark.slow  # an end-to-end run: CI's slow pass runs it (the default run stays under 2 min)
def test_two_cpu_workers_write_one_record_with_both_and_a_server_figure(run_cli, tmp_path):
    r, data = _record(run_cli, tmp_path, "--workers", 2, "--repeats", 3, "--seed", 100)
    assert r.complete and r.settings.gpus_used == 2 and r.settings.options["parallel"] == "data"
    assert sorted(g.worker for g in r.generations) == [0, 0, 0, 1, 1, 1]
    assert sorted(g.seed for g in r.generations) == [100, 101, 102, 103, 104, 105]  # distinct across workers
    assert [w.index for w in r.workers] == [0, 1] and all(w.generations == 3 and not w.failed for w in r.workers)
    s, gens = data["summary"], data["generations"]
    latencies = [g["latency_s"] for g in gens]
    window = max(g["telemetry"]["end_s"] for g in gens) - min(g["telemetry"]["start_s"] for g in gens)
    per_video = r.settings.num_frames / r.settings.fps
    assert s["server_window_s"] == pytest.approx(window)
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(_rate(6 * per_video, window * 2))
    # each generation held one GPU (worker): GPU-seconds are the sum of latencies, not twice it
    assert s["gpu_seconds"] == pytest.approx(sum(latencies))
    assert s["video_minutes_per_gpu_hour"] == pytest.approx(_rate(6 * per_video, sum(latencies)))
    own = [_rate(3 * per_video, sum(g["latency_s"] for g in gens if g["worker"] == w)) for w in (0, 1)]
    assert s["workers"] == 2
    assert s["per_worker_rel_spread"] == pytest.approx(statistics.stdev(own) / statistics.mean(own))
    assert s == pytest.approx(forge.summary_of(gens, r.settings.num_frames, r.settings.fps, 2, "data"))  # the rest
    # one start signal: each worker's first generation began before either had finished one
    firsts = [min(g.telemetry.start_s for g in r.generations if g.worker == w) for w in (0, 1)]
    assert max(firsts) < min(g.latency_s for g in r.generations)
    assert "-2gpu-" in settings_key(r) and "parallel=data" in settings_key(r)
    assert not any("a worker timed only" in w for w in r.warnings)  # 3 each: enough for every worker


def test_unequal_workers_give_the_server_figures_worked_out_by_hand(run_cli, tmp_path):
    """Worker 0 times 3 generations, worker 1 one (forge.UNEQUAL_WORKERS): the journal of such a run, made into its
    record by `t2vbench recover` (the path a run's own record takes: its messages replayed). Equal workers could not
    tell the fewest generations of a worker from the most, nor generations credited to their workers from all to
    worker 0. (The CLI cannot make unequal workers on purpose: --repeats is per worker, --time-budget is timing.)"""
    # worker 0: 2, 3, 4 s at 0-2, 2-5, 5-9 s; worker 1: 10 s at 0.5-10.5 s. tiny-wan: 9 frames at 16 fps = 0.5625 s.
    # a 10 s budget is what lets worker 1 stop after one generation (it ends at 10.5 s) and finish: without one, a
    # worker done short of its 3 repeats leaves an incomplete record (ResultRecord.generations_short)
    journal = Journal(tmp_path / "run.journal.jsonl")
    for msg in forge.run_messages(time_budget_s=10.0):
        journal.append(msg)
    journal.close()
    code, _, err = run_cli("recover", journal.path)
    assert code == 0, err
    data = json.loads((tmp_path / "run.json").read_text())
    s = data["summary"]
    assert data["complete"] and data["settings"]["gpus_used"] == 2 and data["settings"]["options"]["parallel"] == "data"
    assert [g["worker"] for g in data["generations"]] == [0, 1, 0, 0]  # in order of start: 0, 0.5, 2, 5 s
    assert [(w["index"], w["generations"], w["failed"]) for w in data["workers"]] == [(0, 3, None), (1, 1, None)]
    assert s["generations"] == 4 and s["video_seconds_total"] == pytest.approx(2.25)  # 4 x 0.5625
    assert s["timed_wall_s"] == pytest.approx(19.0)  # 2 + 3 + 4 + 10
    assert s["gpu_seconds"] == pytest.approx(19.0)  # x 1: each generation held its worker's GPU only
    assert s["video_minutes_per_gpu_hour"] == pytest.approx(135 / 19)  # (2.25 / 60) / (19 / 3600) = 7.105
    assert s["server_window_s"] == pytest.approx(10.5)  # last end (worker 1's, 10.5) - first start (worker 0's, 0)
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(45 / 7)  # 2.25 x 60 / (10.5 s x 2 GPUs) = 6.43
    assert s["workers"] == 2
    # own figures: worker 0, 3 x 0.5625 x 60 / 9 = 11.25; worker 1, 0.5625 x 60 / 10 = 3.375.
    # mean 7.3125, sample stdev 7.875 / sqrt(2): spread (7.875 / 7.3125) / sqrt(2) = (14 / 13) / sqrt(2) = 0.7615
    assert s["per_worker_rel_spread"] == pytest.approx(14 / 13 / math.sqrt(2))
    # latencies 2, 3, 4, 10: p50 halfway between 3 and 4; p90 at position 2.7, 4 + 0.7 x 6
    assert s["latency_p50_s"] == pytest.approx(3.5) and s["latency_p90_s"] == pytest.approx(8.2)
    # the fewest generations of a worker (1), not the most (3), decides the per-worker warning
    assert any(w.startswith("a worker timed only 1 generation(s)") for w in data["warnings"]), data["warnings"]


def test_equal_workers_with_three_generations_each_are_not_flagged():
    both = {0: [(0.0, 2.0), (2.0, 3.0), (5.0, 4.0)], 1: [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0)]}
    data = json.loads(record_json(build_record(replay(forge.run_messages(both)), None)))
    assert not any("a worker timed only" in w for w in data["warnings"])
    # own figures: 3 x 0.5625 x 60 / 9 = 11.25 for both: no spread
    assert data["summary"]["workers"] == 2 and data["summary"]["per_worker_rel_spread"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_context_parallel_launcher_runs_with_degree_one_on_the_cpu(run_cli, tmp_path):
    r, data = _record(run_cli, tmp_path, "--parallel", "ulysses=1", "--repeats", 2)
    assert r.settings.options["parallel"] == "ulysses=1,ring=1" and r.settings.gpus_used == 1
    # one GPU per generation at degree 1: GPU-seconds are the sum of latencies
    assert data["summary"]["gpu_seconds"] == pytest.approx(sum(g["latency_s"] for g in data["generations"]))
    assert "launcher and process group only" in r.settings.options["parallel_hooks"]
    assert "parallel_hooks" not in settings_key(r)  # a description, not a choice


@pytest.mark.parametrize("argv,fragment", [
    (["--device", "cpu", "--gpus", "2"], "--gpus needs GPUs"),
    (["--device", "cpu", "--parallel", "ulysses=2"], "needs GPUs"),
    (["--parallel", "ulysses=64"], "needs 64 GPUs but torch sees"),  # asked of torch in a child process
    (["--parallel", "ulysses=two"], "write ulysses=N"),
    (["--parallel", "ulysses=0"], "degrees from 1"),
    (["--workers", "2", "--parallel", "ulysses=1"], "cannot be combined"),
    (["--workers", "0"], "--workers 0"),
    (["--workers", "100"], "--workers 100"),
    (["--parallel", "ulysses=1", "--time-budget", "5"], "every rank must make the same generations"),
])
def test_impossible_layouts_are_refused_before_anything_starts(run_cli, tmp_path, argv, fragment):
    code, _, err = run_cli("run", "tiny-wan", *argv, "--out", tmp_path / "out")
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_model_without_a_context_parallel_plan_is_refused_naming_those_with_one(run_cli, tmp_path):
    code, _, err = run_cli("run", "tiny-cogvideox", "--device", "cpu", "--parallel", "ulysses=1",
                           "--out", tmp_path / "out")
    assert code == 2 and "no context-parallel plan" in err and "wan2.1-t2v-1.3b" in err, err
    assert "cogvideox" not in err.split("have one:")[1]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(cuda_available(), reason="device-specific: asserts what a GPU-less host answers")
def test_too_few_gpus_for_a_model_without_a_plan_says_so_before_any_advice_about_gpus(run_cli, tmp_path):
    """Advice about GPUs would send the user to a GPU server, where the model would be refused anyway."""
    code, _, err = run_cli("run", "mochi-1", "--parallel", "ulysses=4", "--out", tmp_path / "out")
    assert code == 2 and "MochiTransformer3DModel has no context-parallel plan" in err and "GPU" not in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(cuda_available(), reason="device-specific: asserts what a GPU-less host answers")
@pytest.mark.parametrize("argv", [["wan2.1-t2v-14b", "--parallel", "ulysses=4"],
                                  ["wan2.1-t2v-14b", "--parallel", "ulysses=2", "--device", "cpu"]])
def test_the_advice_for_context_parallel_on_a_cpu_host_is_a_command_that_runs(run_cli, tmp_path, argv):
    """The 14B model itself would not fit this host's RAM, nor are its weights here: the advice names its tiny
    sibling, and that command, run as given, writes a record."""
    code, _, err = run_cli("run", *argv, "--weights", "random", "--out", tmp_path / "out")
    advice = err.split("`")[1]
    assert code == 2 and advice == "t2vbench run tiny-wan --device cpu --parallel ulysses=1", err
    code, out, err = run_cli(*advice.split()[1:], "--repeats", 1, "--out", tmp_path / "out", "--json")
    assert code == 0 and json.loads(out)["complete"], err


@pytest.mark.skipif(cuda_available(), reason="device-specific: asserts what a GPU-less host answers")
def test_gpus_all_on_a_host_without_gpus_is_refused(run_cli, tmp_path):
    code, _, err = run_cli("run", "tiny-wan", "--gpus", "all", "--out", tmp_path / "out")
    assert code == 2 and "torch sees no GPU" in err


@pytest.mark.slow
def test_a_worker_that_dies_leaves_the_others_generations(tmp_path):
    cmd = [sys.executable, "-m", "bench.cli", "run", "tiny-ltx", "--device", "cpu", "--workers", "2",
           "--repeats", "60", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        journals = list(tmp_path.glob("*.journal.jsonl"))
        lines = journals[0].read_text().splitlines() if journals else []
        if sum('"kind": "generation"' in line and '"worker": 1' in line for line in lines) >= 2:
            break
        time.sleep(0.05)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("worker 1 made no generations")
    workers = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
    victim = next(w for w in workers if w.cmdline() and w.pid == max(x.pid for x in workers))  # started second
    victim.kill()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-800:]
    r = load_record(out.decode().strip().splitlines()[-1].removeprefix("record: "))
    assert not r.complete and "process died (killed by SIGKILL)" in r.incomplete_reason
    assert "the other workers' generations are kept" in r.incomplete_reason
    survivors = {w.index: w for w in r.workers}
    dead = [w for w in r.workers if w.failed]
    assert len(dead) == 1 and 2 <= dead[0].generations < 60
    alive = next(w for w in survivors.values() if not w.failed)
    assert alive.generations == 60 and sum(g.worker == alive.index for g in r.generations) == 60
