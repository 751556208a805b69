"""Start the workers, pass on what they report, stop them: the parent's side of a run, without torch.

Each worker is a spawned process with a duplex pipe: JSON messages come up (bench.records.journal), and one start signal
goes down once every worker has warmed up (multi-worker runs), so all time the same window. Signals (SIGINT,
SIGTERM, SIGHUP) become a flag the loop checks, so an interrupt never lands in the middle of a journal write.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from bench.records.journal import Message, decode
from bench.run.job import Job
from bench.run.worker import worker_main

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GO = b"go"


class Signals:
    """The first SIGINT, SIGTERM or SIGHUP received while inside the block."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        for s in HANDLED_SIGNALS:
            self._old[s] = signal.signal(s, self._take)
        return self

    def _take(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def reason(self) -> str | None:
        if self.received is None:
            return None
        name = signal.Signals(self.received).name
        return f"interrupted by {name}" + (" (Ctrl-C)" if name == "SIGINT" else "")


def supervise(jobs: list[Job], on_message: Callable[[Message], None], signals: Signals,
              all_or_none: bool) -> str | None:
    """Run one worker per job to its end. Messages are tagged with their worker's index and passed on. Returns None
    when every worker finished, 'failed' when one reported a failure, else why the run stopped (an interrupt, a
    dead worker). all_or_none: one worker's end dooms the rest (context parallelism: they would wait forever)."""

    ctx = multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe(duplex=True) for _ in jobs]  # pipes, not Queues: no semaphores left behind
    procs = [ctx.Process(target=worker_main, args=(job, child), daemon=True, name=f"t2vbench-worker-{i}")
             for i, (job, (_, child)) in enumerate(zip(jobs, pipes))]
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(HANDLED_SIGNALS))  # workers start with them blocked
    try:
        for proc in procs:
            proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    for _, child in pipes:
        child.close()
    conns = [parent for parent, _ in pipes]
    ended: dict[int, str | None] = {}
    try:
        return _pump(procs, conns, on_message, signals, all_or_none, ended)
    finally:
        _stop(procs, conns, on_message, ended)


def _pump(procs: list[Any], conns: list[Any], on_message: Callable[[Message], None], signals: Signals,
          all_or_none: bool, ended: dict[int, str | None]) -> str | None:
    live, ready, go_sent = dict(enumerate(conns)), set(), len(procs) == 1
    while live:
        if signals.received is not None:
            return signals.reason()
        for conn in wait(list(live.values()), timeout=0.2):
            index = conns.index(conn)
            msg = _receive(conn)
            if msg is None:  # the pipe closed: the worker is gone
                live.pop(index)
                continue
            on_message(msg.model_copy(update={"worker": index}))
            if msg.kind == "ready":
                ready.add(index)
            if msg.kind in ("done", "failed"):
                ended[index] = None if msg.kind == "done" else "failed"
                live.pop(index)
        for index in [i for i in live if not procs[i].is_alive()]:
            _drain(index, conns[index], on_message)
            live.pop(index)
        for index, proc in enumerate(procs):
            if index not in live and index not in ended:
                proc.join(5)
                ended[index] = f"process died ({_describe_exit(proc.exitcode)})"
        if all_or_none and any(r is not None for r in ended.values()):
            break
        if not go_sent and all(i in ready or i in ended for i in range(len(procs))):
            for i in ready - set(ended):
                conns[i].send_bytes(GO)
            go_sent = True
    # A signal sent to the whole process group (a terminal, `timeout`, Slurm) also ends the workers, sometimes
    # before our own handler has run: their exit says so.
    return signals.reason() or _interrupted(procs) or _outcome(ended, len(procs))


def _interrupted(procs: list[Any]) -> str | None:
    for proc in procs:
        code = proc.exitcode
        if code in (128 + signal.SIGTERM, 128 + signal.SIGHUP, -signal.SIGTERM, -signal.SIGHUP):
            return f"interrupted by {signal.Signals(abs(code) % 128).name}"
    return None


def _outcome(ended: dict[int, str | None], count: int) -> str | None:
    problems = {i: r for i, r in ended.items() if r is not None}
    if not problems:
        return None
    if any(r == "failed" for r in problems.values()):
        return "failed"
    index, why = min(problems.items())
    return f"worker {why}" if count == 1 else f"worker {index}: {why}; the other workers' generations are kept"


def _receive(conn: Any) -> Message | None:
    try:
        return decode(conn.recv_bytes())
    except (EOFError, OSError):
        return None


def _drain(index: int, conn: Any, on_message: Callable[[Message], None]) -> None:
    try:
        while conn.poll(0.05):
            msg = decode(conn.recv_bytes())
            on_message(msg.model_copy(update={"worker": index}))
    except (EOFError, OSError):
        return


def _stop(procs: list[Any], conns: list[Any], on_message: Callable[[Message], None],
          ended: dict[int, str | None]) -> None:
    """Let finished workers exit on their own (a terminated one leaves its semaphores to the resource tracker), end
    the rest, and keep whatever they had sent."""
    for index, proc in enumerate(procs):
        if ended.get(index, "x") in (None, "failed"):
            proc.join(30)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for index, proc in enumerate(procs):
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        _drain(index, conns[index], on_message)
        conns[index].close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
