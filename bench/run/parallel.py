"""Several GPUs: data parallelism (one worker per GPU, each making its own videos) and context parallelism (all
GPUs making one video, through diffusers' ContextParallelConfig). t2vbench starts the workers itself on one node,
with the rendezvous torchrun would set up (a TCP store on localhost), so the user types one command.

    --gpus N|all / --workers N   data parallel: worker i on cuda:i (or the CPU), distinct seeds, one start signal
    --parallel ulysses=U[,ring=R] context parallel over U x R GPUs; rank 0's timings are the run's

Parsing and refusals here need no torch; the worker-side functions import it.

torch.distributed, diffusers and bench.run.build are imported in the worker-side functions only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from bench.core.errors import UsageError
from bench.core.specs import Spec, all_specs

if TYPE_CHECKING:  # job.py imports this module for Layout
    from bench.run.job import Job

MAX_WORKERS = 64
_PARALLEL = re.compile(r"^ulysses=(\d{1,3})(?:,ring=(\d{1,3}))?$")


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a run uses GPUs: `mode` None (one worker), 'data' or 'context'."""

    mode: str | None = None
    workers: int = 1
    ulysses: int = 1
    ring: int = 1

    @property
    def label(self) -> str | None:
        """The record's options.parallel (and so part of the settings key)."""
        if self.mode == "context":
            return f"ulysses={self.ulysses},ring={self.ring}"
        return self.mode

    def seeds(self, seed: int, worker: int, index: int) -> int:
        """The seed of timed generation `index` of `worker`: distinct across data-parallel workers."""
        return seed + index * self.workers + worker if self.mode == "data" else seed + index

    def warmup_seed(self, seed: int, worker: int, k: int) -> int:
        """Warm-up seeds count down from seed - 1: never a timed one."""
        return seed - 1 - (k * self.workers + worker if self.mode == "data" else k)


def parse_parallel(text: str) -> Layout:
    """'ulysses=2,ring=2' -> Layout. Raises UsageError."""
    match = _PARALLEL.match(text.strip())
    if match is None:
        raise UsageError(f"--parallel {text[:40]}: write ulysses=N or ulysses=N,ring=M (e.g. ulysses=2)")
    ulysses, ring = int(match.group(1)), int(match.group(2) or 1)
    if not (1 <= ulysses and 1 <= ring and ulysses * ring <= MAX_WORKERS):
        raise UsageError(f"--parallel {text}: degrees from 1, at most {MAX_WORKERS} GPUs in all")
    return Layout("context", ulysses * ring, ulysses, ring)


def layout(workers: int | None, gpus: str | None, parallel: str | None, device: str,
           spec: Spec | None = None) -> tuple[Layout, str]:
    """The run's layout and the device request to use. spec: the model, whose denoiser must have a context-parallel
    plan before any advice about GPUs is given (advice must lead somewhere that runs). Raises UsageError for
    impossible combinations."""
    chosen = [flag for flag, value in (("--workers", workers), ("--gpus", gpus), ("--parallel", parallel)) if value]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be combined: pick one way to use several devices")
    if parallel:
        result = parse_parallel(parallel)
        if result.workers > 1:
            _check_context_devices(parallel, result, device, spec)
        return result, device
    if gpus:
        if device == "cpu":
            raise UsageError("--gpus needs GPUs: on the CPU use --device cpu --workers N (the same code path)")
        count = visible_gpus() if gpus == "all" else _count(gpus, "--gpus")
        if count < 1:
            raise UsageError("--gpus: torch sees no GPU here; on the CPU use --device cpu --workers N")
        return Layout("data" if count > 1 else None, count), "cuda"
    if workers is not None:
        count = _count(str(workers), "--workers")
        return Layout("data" if count > 1 else None, count), device
    return Layout(), device


def _check_context_devices(text: str, result: Layout, device: str, spec: Spec | None) -> None:
    """Context parallelism over several devices: the model must have a plan, and there must be enough GPUs; the
    launcher alone is tested on the CPU with the model's tiny sibling at degree 1. Raises UsageError."""
    seen, able = _probe([spec] if spec else [])
    if spec is not None and able is not None and _denoiser_class(spec) not in able:
        raise no_plan(_denoiser_class(spec), sorted(s.name for s in all_specs() if not s.tiny and
                                                   _denoiser_class(s) in able))
    tiny = _tiny_sibling(spec)
    launcher = f"`t2vbench run {tiny} --device cpu --parallel ulysses=1` tests the launcher here"
    if device == "cpu":
        raise UsageError(f"--parallel {text} over {result.workers} devices needs GPUs: diffusers runs context "
                         f"parallelism on accelerators only; {launcher}")
    if seen < result.workers:
        fix = f"ask for at most {seen} (ulysses={seen})" if seen > 1 else f"run it on a GPU server ({launcher})"
        raise UsageError(f"--parallel {text} needs {result.workers} GPUs but torch sees {seen} here: {fix}")


def no_plan(class_name: str, able: list[str]) -> UsageError:
    """The refusal of a denoiser without a context-parallel plan, naming the models that have one."""
    return UsageError(f"--parallel: {class_name} has no context-parallel plan in this diffusers; models that have "
                      f"one: {', '.join(able) or 'none'}")


def _denoiser_class(spec: Spec) -> str:
    return spec.components[spec.denoiser]["class"].rpartition(".")[2]


def _tiny_sibling(spec: Spec | None) -> str:
    """A tiny model of the same family and denoiser (the model itself when it is tiny), else tiny-wan."""
    if spec is None:
        return "tiny-wan"
    if spec.tiny:
        return spec.name
    return next((s.name for s in all_specs() if s.tiny and s.family == spec.family
                 and _denoiser_class(s) == _denoiser_class(spec)), "tiny-wan")


# The child's answer: GPUs torch sees, and which of the named diffusers classes have a context-parallel plan.
_PROBE = ("import json, sys, diffusers, torch\n"
          "print(json.dumps([torch.cuda.device_count(), "
          "[n for n in sys.argv[1:] if getattr(getattr(diffusers, n, None), '_cp_plan', None)]]))")


def _probe(specs: list[Spec]) -> tuple[int, frozenset[str] | None]:
    """GPUs torch sees and the denoiser classes (of every spec) with a context-parallel plan, asked of one short
    child process (the parent never imports torch). The plans are None when the child cannot answer (then the worker
    checks them) and the GPUs are counted alone."""
    return _ask(tuple(sorted({_denoiser_class(s) for s in [*specs, *all_specs()]})))


@functools.cache  # once per process: a sweep checks many cells, and neither answer changes while it plans
def _ask(names: tuple[str, ...]) -> tuple[int, frozenset[str] | None]:
    out = subprocess.run([sys.executable, "-c", _PROBE, *names], capture_output=True, text=True, timeout=180)
    try:
        gpus, able = json.loads(out.stdout.strip().splitlines()[-1])
        return int(gpus), frozenset(able)
    except (ValueError, IndexError, TypeError):
        return visible_gpus(), None


def _count(text: str, flag: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise UsageError(f"{flag} {text[:20]}: give a number from 1 to {MAX_WORKERS}" +
                         (" or all" if flag == "--gpus" else ""))
    return int(text)


def visible_gpus() -> int:
    """How many GPUs torch would see, asked of a short child process (the parent never imports torch)."""

    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                         capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_device(requested: str, worker: int, lay: Layout) -> str:
    """Worker i's device: cuda:i under any multi-GPU layout, else what was asked."""
    if lay.workers > 1 and requested in ("cuda", "auto"):
        return f"cuda:{worker}"
    return requested


# --- inside the worker (torch imported) -------------------------------------------------------------------------


def start_group(job: Job, device: str) -> None:
    """Join the context-parallel process group (nccl on GPUs, gloo on the CPU) through the parent's TCP store."""
    import torch.distributed as dist

    dist.init_process_group("gloo" if device == "cpu" else "nccl", init_method=job.rendezvous,
                            rank=job.worker, world_size=job.world)


def check_context_parallel(denoiser_cls: type, lay: Layout) -> None:
    """Refuse context parallelism for a denoiser diffusers has no plan for, naming the models that have one."""
    if lay.mode != "context" or getattr(denoiser_cls, "_cp_plan", None):
        return
    from bench.run.build import resolve_class

    raise no_plan(denoiser_cls.__name__, sorted(s.name for s in all_specs() if not s.tiny and
                                                getattr(resolve_class(s.components[s.denoiser]["class"]), "_cp_plan",
                                                        None)))


def enable_context_parallel(pipe: Any, denoiser: str, lay: Layout) -> dict[str, Any]:
    """Shard the denoiser's attention over the group. diffusers refuses degree 1, so ulysses=1 runs the launcher
    and process group alone: what the machinery costs."""
    if lay.workers == 1:
        return {"parallel_hooks": "none (degree 1: launcher and process group only)"}
    from diffusers import ContextParallelConfig

    getattr(pipe, denoiser).enable_parallelism(
        config=ContextParallelConfig(ulysses_degree=lay.ulysses, ring_degree=lay.ring))
    return {}
