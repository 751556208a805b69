"""What one worker process is asked to do: built by the runner, read by the worker. It crosses the process
boundary through multiprocessing's spawn, between processes of our own (it is never read from a file)."""

from __future__ import annotations

import dataclasses

from bench.core.specs import Settings
from bench.run.options import Options
from bench.run.parallel import Layout


@dataclasses.dataclass(frozen=True)
class Job:
    spec_path: str
    settings: Settings
    weights: str  # 'random', 'hub' or a local directory
    dtype: str  # auto | float32 | bfloat16 | float16
    seed: int
    prompt: str
    warmup: int
    repeats: int  # with a time budget, the most
    time_budget_s: float | None
    options: Options
    telemetry: str  # --telemetry
    sample_period_s: float
    layout: Layout
    worker: int = 0  # this worker's index (its rank under context parallelism)
    device: str = "auto"  # auto | cpu | cuda:N, this worker's
    video_path: str | None = None  # worker 0 of a --save-video run
    rendezvous: str | None = None  # the process group's address under context parallelism
    sample_steps: int | None = None  # --sample-steps K: compute each expert's first step and K more, skip the rest

    @property
    def world(self) -> int:
        """How many workers the run has."""
        return self.layout.workers
