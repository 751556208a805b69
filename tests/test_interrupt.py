"""Finished generations survive whatever ends a run, each caused for real: Ctrl-C, SIGTERM (timeout, Slurm,
docker), SIGKILL of the worker, SIGKILL of the parent (then `t2vbench recover`), and running out of memory."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from bench.records.io import load_record

REPEATS = 100000
pytestmark = pytest.mark.slow


def _start(tmp_path, *extra, env=None):
    cmd = [sys.executable, "-m", "bench.cli", "run", "tiny-ltx", "--device", "cpu", "--repeats", str(REPEATS),
           "--out", str(tmp_path), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})})


def _wait_for_generations(proc, tmp_path, at_least, timeout_s=120):
    """Watch the run's journal until `at_least` timed generations are in it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        journals = list(tmp_path.glob("*.journal.jsonl"))
        if journals and journals[0].read_text().count('"kind": "generation"') >= at_least:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"no progress to {at_least} generations: {proc.stderr.read()[-500:]!r}")


def _record(stdout: bytes):
    path = stdout.decode().strip().splitlines()[-1].removeprefix("record: ")
    return load_record(path)


def _worker(proc):
    """The benchmark worker among the children (multiprocessing also starts a resource tracker)."""
    return next(c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline()))


@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupt_keeps_finished_generations(tmp_path, sig, code, name):
    proc = _start(tmp_path)
    _wait_for_generations(proc, tmp_path, 3)
    os.killpg(proc.pid, sig)  # to the whole group, as a terminal's Ctrl-C or `timeout` would
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-800:]
    record = _record(out)
    assert not record.complete and f"interrupted by {name}" in record.incomplete_reason
    assert len(record.generations) >= 3 and record.environment["torch"]
    assert record.warnings[0].startswith("incomplete:")
    assert b"Traceback" not in err and b"leaked semaphore" not in err


@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "SIGINT (Ctrl-C)"), (signal.SIGTERM, 143, "SIGTERM"),
                                          (signal.SIGHUP, 129, "SIGHUP")])  # 128 + the signal, as a shell says
def test_interrupt_while_the_model_is_built_exits_with_the_signals_code_and_leaves_nothing(tmp_path, sig, code, name):
    """The worker has said which device it builds on and has not finished loading: nothing was measured, and the
    exit says it was a signal (not 2, a user error)."""
    proc = _start(tmp_path)
    deadline = time.monotonic() + 120
    while not any('"kind": "device"' in j.read_text() for j in tmp_path.glob("*.journal.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-500:]
        time.sleep(0.005)
    journal = next(tmp_path.glob("*.journal.jsonl")).read_text()
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert '"kind": "loaded"' not in journal  # it was still building when the signal came
    assert proc.returncode == code, err[-800:]
    assert err.decode().strip().splitlines()[-1] == (f"t2vbench: interrupted by {name} before any generation "
                                                     "finished: nothing was recorded")
    assert list(tmp_path.iterdir()) == []  # no record, and the journal of nothing is gone


def test_worker_crash_keeps_finished_generations(tmp_path):
    proc = _start(tmp_path)
    _wait_for_generations(proc, tmp_path, 3)
    _worker(proc).kill()  # SIGKILL: as a segfault or the OOM killer would end it
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    record = _record(out)
    assert not record.complete and "SIGKILL" in record.incomplete_reason
    assert len(record.generations) >= 3


def test_killed_parent_leaves_a_journal_that_recover_turns_into_the_record(tmp_path):
    proc = _start(tmp_path, "--label", "killed")
    _wait_for_generations(proc, tmp_path, 3)
    worker = _worker(proc)
    proc.kill()  # SIGKILL of t2vbench itself: no handler runs
    proc.wait()
    worker.wait(timeout=15)  # the worker stops too: it has no one to report to (psutil raises if it lives on)
    journals = list(tmp_path.glob("*.journal.jsonl"))
    assert len(journals) == 1 and not list(tmp_path.glob("*.json"))
    out = subprocess.run([sys.executable, "-m", "bench.cli", "recover", str(journals[0])], capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    record = _record(out.stdout)
    assert not record.complete and "recovered from its journal" in record.incomplete_reason
    assert len(record.generations) >= 3 and record.label == "killed" and record.hardware_class.startswith("cpu:")


def test_running_out_of_memory_keeps_the_generations_before_it(tmp_path):
    """A real allocation failure: after some generations the worker's address space is capped below what it uses.
    glibc is told to map every block over 128 kB afresh (and unmap it when freed), so the next generation needs
    new address space and cannot reuse a warm heap."""
    proc = _start(tmp_path, env={"MALLOC_MMAP_THRESHOLD_": "131072"})
    _wait_for_generations(proc, tmp_path, 3)
    worker = _worker(proc)
    cap = worker.memory_info().vms - 2**28  # below what it has mapped: its next large allocation must fail
    worker.rlimit(psutil.RLIMIT_AS, (cap, cap))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-800:]
    record = _record(out)
    assert not record.complete and record.incomplete_reason.startswith("out of memory during timed generation")
    assert "32x32, 9 frames, float32" in record.incomplete_reason
    assert len(record.generations) >= 3

