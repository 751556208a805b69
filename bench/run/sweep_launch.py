"""Launchers of a sweep's cells: one after another in this process's care (local), or as Slurm jobs through
submitit. Either way a cell is its own `t2vbench run` process; see bench.run.sweep.

submitit is an optional extra, imported only for --launcher slurm.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from bench.core.errors import UsageError
from bench.run.parallel import parse_parallel
from bench.run.supervise import HANDLED_SIGNALS
from bench.run.sweep_plan import Cell, Sweep

DEFAULT_TIME_MIN = 60  # submitit's own default (5 min) would kill most GPU cells
STOPPED_WAIT_S = 300.0  # after Ctrl-C, how long to wait for cancelled Slurm jobs to write their records


class _Stop:
    """Remembers the first SIGINT, SIGTERM or SIGHUP and passes each on to the running cell. Cells start in their
    own session, so a terminal's Ctrl-C reaches them once, through here, and the sweep stops only after the cell
    has written its record."""

    def __init__(self) -> None:
        self.signals, self.received, self.child, self._old = HANDLED_SIGNALS, None, None, {}

    def __enter__(self) -> _Stop:
        self._old = {s: signal.signal(s, self._take) for s in self.signals}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def _take(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self, argv: list[str], deadline: float | None = None) -> tuple[int, bool]:
        """Run one cell to its end; at the deadline (time.monotonic()) it gets SIGINT, as for Ctrl-C, so it keeps
        what it measured. Returns its exit code and whether the deadline cut it."""
        child = subprocess.Popen(argv, start_new_session=True)
        self.child, cut = child, False
        if self.received:  # it came while the cell was starting
            child.send_signal(self.received)
        try:
            while True:
                try:
                    timeout = None if deadline is None or cut else max(0.0, deadline - time.monotonic())
                    return child.wait(timeout), cut
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGINT)
                    cut = True
        finally:
            self.child = None


@dataclasses.dataclass(frozen=True)
class Launched:
    codes: dict[str, int]  # each started cell's exit code, by id
    stopped: int | None  # the signal that stopped the sweep, or None
    out_of_time: bool = False  # the budget ran out: cells not started were skipped
    cut: str | None = None  # the cell the budget interrupted (it kept its record, marked incomplete)


def run_local(todo: list[Cell], report: Callable[[str], None], budget_s: float | None = None) -> Launched:
    """Run the cells one after another here, within budget_s seconds of wall time if given: no cell starts after
    it is spent, and a running cell is interrupted (keeping its record) when it runs out."""
    codes: dict[str, int] = {}
    deadline = None if budget_s is None else time.monotonic() + budget_s
    with _Stop() as stop:
        for i, cell in enumerate(todo, 1):
            if stop.received:
                break
            if deadline is not None and time.monotonic() >= deadline:
                report(f"budget of {budget_s:g} s spent: {len(todo) - i + 1} cell(s) not run")
                return Launched(codes, None, out_of_time=True)
            report(f"[{i}/{len(todo)}] cell {cell.id}: {cell.model} {cell.describe()}")
            codes[cell.id], cut = stop.run(cell.command(), deadline)
            if cut:
                report(f"budget of {budget_s:g} s spent during cell {cell.id}: it kept what it measured")
                return Launched(codes, None, out_of_time=True, cut=cell.id)
    return Launched(codes, stop.received)


def check_slurm(cluster: str) -> None:
    """Refuse --launcher slurm where it cannot work, before anything runs. Raises UsageError."""
    _submitit()
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm: no Slurm here (sbatch not found); run the sweep on a login node of the "
                         "cluster, or use --launcher local")


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("--launcher slurm needs submitit: pip install 't2vbench[slurm]' "
                         "(or pip install 'submitit>=1.5')") from None
    return submitit


def run_command(argv: list[str]) -> int:
    """A Slurm job's body: one cell's process; its exit code is the job's result."""
    return subprocess.run(argv, check=False).returncode


def slurm_parameters(sweep: Sweep, gpus: int) -> dict[str, Any]:
    """submitit's AutoExecutor parameters for the sweep's cells of `gpus` GPUs: generic ones, and [slurm]'s own
    prefixed slurm_ (which other executors ignore)."""
    s = sweep.slurm
    generic = {"timeout_min": s.get("time_min", DEFAULT_TIME_MIN), "mem_gb": s.get("mem_gb"),
               "cpus_per_task": s.get("cpus_per_task"), "gpus_per_node": gpus, "nodes": 1, "tasks_per_node": 1,
               "name": f"t2vbench-{sweep.name}"}
    specific = {f"slurm_{k}": v for k, v in s.items() if k not in ("time_min", "mem_gb", "cpus_per_task")}
    return {**{k: v for k, v in generic.items() if v is not None}, **specific}


def run_slurm(sweep: Sweep, todo: list[Cell], report: Callable[[str], None], cluster: str
              ) -> tuple[dict[str, int], int | None]:
    """Submit each cell as a job (a job array per GPU count) and wait for them all; as run_local returns. cluster
    is submitit's executor: 'slurm', or 'local' to run the same path without a cluster."""
    executor = _submitit().AutoExecutor(folder=sweep.out / "slurm", cluster=cluster)
    jobs = []
    for gpus in sorted({_gpus_per_node(c) for c in todo}):
        cells = [c for c in todo if _gpus_per_node(c) == gpus]
        executor.update_parameters(**slurm_parameters(sweep, gpus))
        with executor.batch():
            submitted = [executor.submit(run_command, c.command()) for c in cells]
        jobs += list(zip(cells, submitted))
    for cell, job in jobs:
        report(f"cell {cell.id}: {cell.model} {cell.describe()}: job {job.job_id}")
    with _Stop() as stop:
        _wait(jobs, stop)
    return Launched({c.id: _job_code(j) for c, j in jobs if j.done()}, stop.received)


def _wait(jobs: list[tuple[Cell, Any]], stop: _Stop) -> None:
    deadline = None
    while not all(job.done() for _, job in jobs):
        if stop.received and deadline is None:
            for _, job in jobs:
                if not job.done():
                    job.cancel(check=False)
            deadline = time.monotonic() + STOPPED_WAIT_S
        if deadline is not None and time.monotonic() > deadline:
            return
        time.sleep(1.0)


def _gpus_per_node(cell: Cell) -> int:
    """GPUs to ask Slurm for: none for a CPU cell, the world size of a context-parallel one, else its workers."""

    if cell.values.get("device") == "cpu":
        return 0
    return parse_parallel(cell.values["parallel"]).workers if "parallel" in cell.values else cell.values.get("gpus", 1)


def _job_code(job: Any) -> int:
    try:
        return int(job.result())
    except Exception:  # the job itself failed (cancelled, node lost): the cell's status says so
        return 1
