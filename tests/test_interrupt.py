"""Finished generations survive Ctrl-C and a crash of the worker: the record is written, marked incomplete."""

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from bench.record import load_record

REPEATS = 100000


def _start(tmp_path):
    cmd = [sys.executable, "-m", "bench.cli", "run", "tiny-ltx", "--repeats", str(REPEATS), "--out", str(tmp_path)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_generations(proc, at_least, timeout_s=90):
    """Read the progress bar on stderr until `at_least` generations (warm-up included) are done."""
    seen, deadline = b"", time.monotonic() + timeout_s
    os.set_blocking(proc.stderr.fileno(), False)
    while time.monotonic() < deadline:
        seen += proc.stderr.read() or b""
        done = [int(n) for n in re.findall(rb"(\d+)/%d" % (REPEATS + 1), seen)]
        if done and max(done) >= at_least:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"no progress to {at_least} generations: {seen[-500:]!r}")


def _record(stdout: bytes):
    path = stdout.decode().strip().splitlines()[-1].removeprefix("record: ")
    return load_record(path)


def test_ctrl_c_keeps_finished_generations(tmp_path):
    proc = _start(tmp_path)
    _wait_for_generations(proc, 4)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    record = _record(out)
    assert not record.complete and "interrupted" in record.incomplete_reason
    assert len(record.generations) >= 3
    assert record.warnings[0].startswith("incomplete:")


def test_worker_stops_when_its_parent_is_killed(tmp_path):
    proc = _start(tmp_path)
    _wait_for_generations(proc, 2)
    worker = psutil.Process(proc.pid).children()[-1]
    proc.kill()
    proc.wait()
    worker.wait(timeout=10)  # raises psutil.TimeoutExpired if the worker lives on


def test_worker_crash_keeps_finished_generations(tmp_path):
    proc = _start(tmp_path)
    _wait_for_generations(proc, 4)
    worker = psutil.Process(proc.pid).children()[-1]
    worker.kill()  # SIGKILL: as a segfault or the OOM killer would end it
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    record = _record(out)
    assert not record.complete and "SIGKILL" in record.incomplete_reason
    assert len(record.generations) >= 3
