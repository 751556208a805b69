"""Several workers: data parallelism on the CPU (the same code path --gpus takes), the context-parallel launcher with a
degree of 1, and every refusal. Device-specific cases say which host they need."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.core.metrics import video_minutes_per_gpu_hour
from bench.records.schema import load_record, settings_key
from tests.conftest import cuda_available


def _record(run_cli, tmp_path, *argv):
    code, out, err = run_cli("run", "tiny-wan", "--device", "cpu", "--out", tmp_path, "--json", *argv)
    assert code == 0, err
    return load_record(json.loads(out)["record"])


def test_two_cpu_workers_write_one_record_with_both_and_a_server_figure(run_cli, tmp_path):
    r = _record(run_cli, tmp_path, "--workers", 2, "--repeats", 3, "--seed", 100)
    assert r.complete and r.settings.gpus_used == 2 and r.settings.options["parallel"] == "data"
    assert sorted(g.worker for g in r.generations) == [0, 0, 0, 1, 1, 1]
    assert sorted(g.seed for g in r.generations) == [100, 101, 102, 103, 104, 105]  # distinct across workers
    assert [w.index for w in r.workers] == [0, 1] and all(w.generations == 3 and not w.failed for w in r.workers)
    s = r.summary
    spans = [g.telemetry for g in r.generations]
    window = max(t.end_s for t in spans) - min(t.start_s for t in spans)
    video_s = 6 * r.settings.num_frames / r.settings.fps
    assert s["server_window_s"] == pytest.approx(window)
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(video_minutes_per_gpu_hour(video_s, window * 2))
    # each generation held one GPU (worker): GPU-seconds are the sum of latencies, not twice it
    assert s["video_minutes_per_gpu_hour"] == pytest.approx(
        video_minutes_per_gpu_hour(video_s, sum(g.latency_s for g in r.generations)))
    # one start signal: each worker's first generation began before either had finished one
    firsts = [min(g.telemetry.start_s for g in r.generations if g.worker == w) for w in (0, 1)]
    assert max(firsts) < min(g.latency_s for g in r.generations)
    assert "-2gpu-" in settings_key(r) and "parallel=data" in settings_key(r)
    assert not any("a worker timed only" in w for w in r.warnings)  # 3 each: enough for every worker


def test_too_few_generations_per_worker_are_flagged(run_cli, tmp_path):
    r = _record(run_cli, tmp_path, "--workers", 2, "--repeats", 2)
    assert len(r.generations) == 4  # enough in all, too few for each worker's own figure
    assert any("a worker timed only 2 generation(s)" in w for w in r.warnings)


@pytest.mark.slow
def test_context_parallel_launcher_runs_with_degree_one_on_the_cpu(run_cli, tmp_path):
    r = _record(run_cli, tmp_path, "--parallel", "ulysses=1", "--repeats", 2)
    assert r.settings.options["parallel"] == "ulysses=1,ring=1" and r.settings.gpus_used == 1
    assert "launcher and process group only" in r.settings.options["parallel_hooks"]
    assert "parallel_hooks" not in settings_key(r)  # a description, not a choice


@pytest.mark.parametrize("argv,fragment", [
    (["--device", "cpu", "--gpus", "2"], "--gpus needs GPUs"),
    (["--device", "cpu", "--parallel", "ulysses=2"], "needs GPUs"),
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
