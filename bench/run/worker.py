"""The benchmark worker: runs in its own process (as pyperf does), so a crash or an interrupt loses no finished
generation. It sends typed messages (bench.records.journal) as JSON over a pipe, each as soon as it is known: the device
before the model is built, every generation as it finishes, the telemetry series in chunks while it is sampled.

torch, diffusers and transformers are imported inside the functions the worker process runs: the parent
imports this module to start workers and must stay without torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import telemetry
from bench.core.errors import UsageError
from bench.core.specs import load_spec_file
from bench.records.journal import encode, message
from bench.run import environment, parallel, preflight
from bench.run.job import Job
from bench.run.timing import StageClock, call_kwargs, generate  # timing imports no torch
from bench.telemetry import rapl
from bench.telemetry.sampler import Sampler

Send = Callable[..., None]
SERIES_CHUNK_S = 2.0  # how often the sampled series is streamed to the parent


class PeakMemory:
    """Peak memory of one generation: torch's allocator peak on a GPU; on the CPU the process's peak resident set,
    reset before each generation through /proc/self/clear_refs where Linux allows, else the peak since start."""

    def __init__(self, device: str):
        self.device = device
        self.method = "cuda_max_allocated" if device != "cpu" else (
            "process_peak_rss" if _can_reset_rss() else "process_max_rss")

    def reset(self) -> None:
        if self.device != "cpu":
            import torch

            torch.cuda.reset_peak_memory_stats(torch.device(self.device))
        elif self.method == "process_peak_rss":
            Path("/proc/self/clear_refs").write_text("5")

    def peak_bytes(self) -> int:
        if self.device != "cpu":
            import torch

            return torch.cuda.max_memory_allocated(torch.device(self.device))
        if self.method == "process_peak_rss":
            return _vm_hwm_bytes()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _vm_hwm_bytes() -> int:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    if match is None:
        raise OSError("no VmHWM in /proc/self/status")
    return int(match.group(1)) * 1024


def _can_reset_rss() -> bool:
    try:
        _vm_hwm_bytes()
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _open_telemetry(job: Job, device: str) -> Any:
    """The telemetry backend for this device; an explicitly named backend that cannot measure is a user error."""
    import torch

    uuid = bdf = None
    if device != "cpu":
        props = torch.cuda.get_device_properties(torch.device(device))
        uuid = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
        if getattr(props, "pci_bus_id", None) is not None:
            bdf = f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    try:
        return telemetry.open_backend(job.telemetry, device, uuid, bdf, is_rocm=bool(torch.version.hip))
    except telemetry.TelemetryUnavailable as exc:
        raise UsageError(f"--telemetry {job.telemetry}: {exc}") from None


@contextlib.contextmanager
def _streamed_telemetry(backend: Any, period_s: float, send: Send) -> Iterator[Any]:
    """Sample the backend for the duration of the block, sending the series in chunks as it grows; the sampler
    stops and the last chunk is sent however the block ends."""

    if backend.name == "none":
        yield None
        return
    sampler = Sampler(backend, period_s).start()
    stop = threading.Event()

    def stream() -> None:
        while not stop.wait(SERIES_CHUNK_S):
            send("series", columns=sampler.drain())

    thread = threading.Thread(target=stream, daemon=True, name="t2vbench-series")
    thread.start()
    try:
        yield sampler
    finally:
        stop.set()
        thread.join()
        send("series", columns=sampler.stop())  # stop() hands over what no drain() has, closing sample included
        errors = dict(backend.read_errors)
        if sampler.failures:
            errors["sampler"] = f"{sampler.failures} sample(s) lost, first: {sampler.first_failure}"
        send("telemetry", read_errors=errors)


def _run(job: Job, send: Send, wait_go: Callable[[], None], where: dict[str, str]) -> None:
    import torch

    from bench.run import serving
    from bench.run.build import DTYPES, build_pipeline

    spec = load_spec_file(job.spec_path)
    options, lay = job.options, job.layout
    device, dtype_name = preflight.check(spec, job.device, job.dtype, options, lay)  # as sweep --dry-run asks
    if device == "cpu" and job.world > 1:  # workers share the cores instead of fighting over them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.world))
    dtype = DTYPES[dtype_name]
    where["dtype"] = dtype_name
    if lay.mode == "context":
        parallel.start_group(job, device)
    env = environment.describe(device)
    backend = _open_telemetry(job, device)
    try:
        info = telemetry.describe(backend, job.sample_period_s)
        name = (info["device"] or {}).get("name") or env["device_name"]
        send("device", device=device, dtype=dtype_name, environment=env,
             hardware_class=environment.hardware_class(name, "cpu" if device == "cpu" else "gpu"))
        send("telemetry", **info)
        sync = (lambda: torch.cuda.synchronize(device)) if device != "cpu" else (lambda: None)

        where["stage"] = "building the model"
        start = time.perf_counter()
        torch.manual_seed(0)  # random weights alike on every rank of a context-parallel group
        # Offloaded weights live in host RAM; random ones are drawn on the GPU (seconds, not minutes) and parked
        # there one component at a time, before the memory cap applies.
        pipe = build_pipeline(spec, job.weights, device, dtype, park="cpu" if options.offload else None)
        applied = serving.cap_memory(options, device)
        applied.update(serving.place(pipe, options, device))
        if lay.mode == "context":
            applied.update(parallel.enable_context_parallel(pipe, spec.denoiser, lay))
        sync()
        load_s = time.perf_counter() - start
        clock = StageClock(pipe, sync, backend.energy_j, lambda step: send("step", step=step))
        kwargs = call_kwargs(pipe, job.settings, job.prompt)
        reference = None
        if options.needs_reference():
            where["stage"] = "the plain reference generation"
            _, reference = generate(pipe, clock, kwargs, lay.seeds(job.seed, job.worker, 0), device)
        applied.update(serving.apply(pipe, spec.denoiser, options, dtype))
        step_sampler, plan = _step_sampler(job, pipe, spec.denoiser, clock)  # outermost: installed over every option
        send("loaded", load_s=load_s, options=applied, sampling=plan)

        for k in range(job.warmup):
            where["stage"] = f"warm-up {k + 1}"
            timing, _ = generate(pipe, clock, kwargs, lay.warmup_seed(job.seed, job.worker, k), device)
            _check_steps(step_sampler, job)
            send("warmup", index=k, seed=timing["seed"], latency_s=timing["latency_s"])
        if reference is not None and step_sampler is not None:  # step-sampled frames are not the model's output
            where["stage"] = "the fidelity generation (whole, untimed)"
            with step_sampler.full():
                timing, frames = generate(pipe, clock, kwargs, lay.seeds(job.seed, job.worker, 0), device)
            send("fidelity", **serving.fidelity(reference, frames), seed=timing["seed"])
            reference = None
        if job.world > 1:  # every worker starts timing on the same signal: one window for the server figures
            where["stage"] = "waiting for the other workers"
            send("ready")
            wait_go()
        graphs = serving.compiled_graphs()
        rapl_before, rapl_reason = rapl.read_packages_uj()
        with _streamed_telemetry(backend, job.sample_period_s, send) as sampler:
            t0 = sampler.t0 if sampler else time.perf_counter()
            frames = time_generations(pipe, clock, kwargs, job, device, send, where, t0, reference, step_sampler)
        rapl_after, _ = rapl.read_packages_uj()
        send("cpu_energy", **_cpu_energy(rapl, rapl_before, rapl_after, rapl_reason))
    finally:
        backend.close()
    if job.video_path is not None and frames is not None:
        from diffusers.utils import export_to_video

        export_to_video(list(frames), job.video_path, fps=job.settings.fps)
        send("video", path=job.video_path)
    send("done", recompiles=serving.compiled_graphs() - graphs)


def _step_sampler(job: Job, pipe: Any, denoiser: str, clock: StageClock) -> tuple[Any, dict[str, Any] | None]:
    """A step-sampled run's sampler over the built pipeline and its plan (the record's `sampling`); (None, None)
    for a full run."""
    if job.sample_steps is None:
        return None, None
    from bench.run import sampling

    plan = sampling.plan(pipe, denoiser, job.settings.steps, job.sample_steps)
    return sampling.StepSampler(pipe, plan, clock), plan


def _check_steps(step_sampler: Any, job: Job) -> None:
    """After a generation of a step-sampled run: exactly the planned steps ran (bench.run.sampling.StepSampler)."""
    if step_sampler is not None:
        step_sampler.check(job.settings.steps)


def time_generations(pipe: Any, clock: Any, kwargs: dict[str, Any], job: Job, device: str, send: Send,
                     where: dict[str, str], t0: float, reference: Any = None, step_sampler: Any = None) -> Any:
    """The timed generations: until `repeats` are done or the time budget is spent. Each is sent as it finishes,
    with its own peak memory. Returns the last generation's frames. With a step_sampler (bench.run.sampling), each
    generation is checked to have computed exactly the planned steps."""
    from bench.run import serving

    lay, worker = job.layout, job.worker
    memory = PeakMemory(device)
    frames, index, budget = None, 0, job.time_budget_s
    while index < job.repeats and (budget is None or time.perf_counter() - t0 < budget):
        where["stage"] = f"timed generation {index + 1}"
        memory.reset()
        timing, frames = generate(pipe, clock, kwargs, lay.seeds(job.seed, worker, index), device, t0)
        _check_steps(step_sampler, job)
        send("generation", index=index, **timing, peak_memory_bytes=memory.peak_bytes(),
             peak_memory_method=memory.method)
        if index == 0 and reference is not None:
            send("fidelity", **serving.fidelity(reference, frames), seed=timing["seed"])
        index += 1
    return frames


def _cpu_energy(rapl: Any, before: Any, after: Any, reason: str | None) -> dict[str, Any]:
    if before and after:
        return {"package_energy_j": rapl.package_energy_j(before, after), "reason": None}
    return {"package_energy_j": None, "reason": reason}


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("diffusers", "transformers", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    warnings.filterwarnings("ignore")
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def _exit_with_parent() -> None:
    """A worker whose parent died (killed, crashed) has no one to report to: stop instead of burning the GPU."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="t2vbench-parent-watch").start()


def out_of_memory(exc: BaseException) -> bool:
    """torch's GPU OutOfMemoryError, its host allocator's failure, or Python's MemoryError."""
    return (type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)
            or "can't allocate memory" in str(exc))


def _failure(exc: BaseException, job: Job, where: dict[str, str]) -> dict[str, str]:
    if isinstance(exc, UsageError):
        return {"reason": "user", "message": str(exc)}
    if out_of_memory(exc):
        s = job.settings
        return {"reason": "oom", "message": (
            f"out of memory during {where['stage']} at {s.width}x{s.height}, {s.num_frames} frames, "
            f"{where.get('dtype', job.dtype)} ({str(exc).strip().splitlines()[0][:160]}): lower --width, --height or --frames, "
            "use --offload group, or a machine with more memory")}
    return {"reason": "crash", "message": traceback.format_exc()}


def _exit_on_term(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the clean exit short
    raise SystemExit(128 + signum)


def worker_main(job: Job, conn: Any) -> None:
    """Entry point of the worker process. Interrupts are the parent's to handle: it stops us and keeps our results.
    The parent starts us with SIGINT and SIGTERM blocked, so no signal lands before we ignore SIGINT here; the
    parent's SIGTERM ends us through SystemExit, which no `except Exception` below swallows."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)  # a clean exit: multiprocessing's finalizers release our semaphores
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _exit_with_parent()
    lock = threading.Lock()

    def send(kind: str, **fields: Any) -> None:
        data = encode(message(kind, **fields))
        with lock:
            conn.send_bytes(data)

    def wait_go() -> None:
        conn.recv_bytes()  # the parent's start signal; EOFError (parent gone) ends us like any failure

    where = {"stage": "starting"}
    try:
        _quiet_libraries()
        _run(job, send, wait_go, where)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        send("failed", **_failure(exc, job, where))
    finally:
        conn.close()
