"""The benchmark worker: runs in its own process (as pyperf does) so a crash or Ctrl-C loses no finished generation.

It sends messages to the parent as (kind, payload) tuples on a queue:
  loaded      load_s, device, dtype, environment, hardware_class
  warmup      latency_s
  generation  one timed generation's raw timings and energy, and the peak memory so far
  telemetry   static GPU metadata, the sampled series, CPU package energy
  video       path of the saved mp4
  done        {}
  error       user (bool), message
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

Send = Callable[[str, dict[str, Any]], None]


def resolve_device(requested: str) -> str:
    import torch

    from bench.errors import UsageError

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA or ROCm GPU is visible to torch; use --device cpu")
        index = torch.device(requested).index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
        return f"cuda:{index}"
    if requested == "cpu":
        return "cpu"
    raise UsageError(f"--device {requested}: use auto, cpu, cuda or cuda:N")


def check_memory(spec: Any, device: str, dtype: Any) -> None:
    """Refuse a model whose weights alone cannot fit the device, before building anything."""
    import psutil
    import torch

    from bench.build import count_params_meta
    from bench.errors import UsageError

    need = sum(count_params_meta(spec).values()) * torch.finfo(dtype).bits // 8
    if device == "cpu":
        have, where = psutil.virtual_memory().available, "free host RAM"
    else:
        have, where = torch.cuda.mem_get_info(torch.device(device))[0], f"free memory on {device}"
    if need > have:
        raise UsageError(
            f"{spec.name} needs {need / 2**30:.1f} GiB for its weights in {str(dtype).removeprefix('torch.')} "
            f"but there is {have / 2**30:.1f} GiB {where}: use a GPU with more memory, --dtype bfloat16, "
            "or a smaller model"
        )


def peak_memory(device: str) -> tuple[int, str]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(torch.device(device)), "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"


def _open_telemetry(job: dict[str, Any], device: str) -> Any:
    """The telemetry backend for this device; an explicitly named backend that cannot measure is a user error."""
    import torch

    from bench import telemetry
    from bench.errors import UsageError

    uuid = bdf = None
    if device != "cpu":
        props = torch.cuda.get_device_properties(torch.device(device))
        uuid = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
        if getattr(props, "pci_bus_id", None) is not None:
            bdf = f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    try:
        return telemetry.open_backend(job["telemetry"], device, uuid, bdf, is_rocm=bool(torch.version.hip))
    except telemetry.TelemetryUnavailable as exc:
        raise UsageError(f"--telemetry {job['telemetry']}: {exc}") from None


def _telemetry_info(backend: Any, period_s: float) -> dict[str, Any]:
    return {
        "backend": backend.name,
        "available": backend.name != "none",
        "unavailable_reason": getattr(backend, "reason", None),
        "device": backend.static_info() or None,
        "energy_unsupported_reason": backend.energy_unsupported_reason,
        "throttle_bits": backend.throttle_bits,
        "slowdown_reasons": list(backend.slowdown_reasons),
        "sample_period_s": period_s,
    }


def _run(job: dict[str, Any], send: Send) -> None:
    import torch

    from bench import environment
    from bench.build import DTYPES, build_pipeline
    from bench.specs import load_spec
    from bench.telemetry import rapl
    from bench.telemetry.sampler import Sampler
    from bench.timing import StageClock, call_kwargs, generate

    spec = load_spec(job["spec_name"])
    device = resolve_device(job["device"])
    dtype_name = job["dtype"] if job["dtype"] != "auto" else ("float32" if device == "cpu" else "bfloat16")
    dtype = DTYPES[dtype_name]
    sync = (lambda: torch.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
    backend = _open_telemetry(job, device)
    info = _telemetry_info(backend, job["sample_period_s"])
    check_memory(spec, device, dtype)

    start = time.perf_counter()
    pipe = build_pipeline(spec, job["weights"], device, dtype)
    sync()
    env = environment.describe(device)
    name = (info["device"] or {}).get("name") or env["device_name"]
    send("loaded", {
        "load_s": time.perf_counter() - start,
        "device": device,
        "dtype": dtype_name,
        "environment": env,
        "hardware_class": environment.hardware_class(name, "cpu" if device == "cpu" else "gpu"),
    })

    send("telemetry", info)  # static part first: a crash later still leaves the record its device metadata
    clock = StageClock(pipe, sync, backend.energy_j)
    kwargs = call_kwargs(pipe, job)
    for k in range(job["warmup"]):
        timing, _ = generate(pipe, clock, kwargs, job["seed"] - 1 - k, device)
        send("warmup", {"latency_s": timing["latency_s"]})
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats(torch.device(device))

    rapl_before, rapl_reason = rapl.read_packages_uj()
    sampler = Sampler(backend, job["sample_period_s"]).start() if info["available"] else None
    t0 = sampler.t0 if sampler else time.perf_counter()
    frames, index, budget = None, 0, job["time_budget_s"]
    while index < job["repeats"] and (budget is None or time.perf_counter() - t0 < budget):
        timing, frames = generate(pipe, clock, kwargs, job["seed"] + index, device, t0)
        peak, method = peak_memory(device)
        send("generation", {"index": index, **timing, "peak_memory_bytes": peak, "peak_memory_method": method})
        index += 1
    info["series"] = sampler.stop() if sampler else None
    rapl_after, _ = rapl.read_packages_uj()
    info["cpu"] = ({"package_energy_j": rapl.package_energy_j(rapl_before, rapl_after), "reason": None}
                   if rapl_before and rapl_after else {"package_energy_j": None, "reason": rapl_reason})
    backend.close()
    send("telemetry", {"series": info["series"], "cpu": info["cpu"]})

    if job["video_path"] is not None and frames is not None:
        from diffusers.utils import export_to_video

        export_to_video(list(frames), job["video_path"], fps=job["settings"]["fps"])
        send("video", {"path": job["video_path"]})
    send("done", {})


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("diffusers", "transformers", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import warnings

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


def worker_main(job: dict[str, Any], queue: Any) -> None:
    """Entry point of the worker process. Ctrl-C is the parent's to handle: it stops us and keeps our results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()

    def send(kind: str, payload: dict[str, Any]) -> None:
        queue.put((kind, payload))

    from bench.errors import UsageError

    try:
        _quiet_libraries()
        _run(job, send)
    except UsageError as exc:
        send("error", {"user": True, "message": str(exc)})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        if type(exc).__name__ == "OutOfMemoryError":
            s = job["settings"]
            send("error", {"user": True, "message": (
                f"out of GPU memory at {s['width']}x{s['height']}, {s['num_frames']} frames: lower --width, "
                "--height or --frames, or use a GPU with more memory"
            )})
        else:
            send("error", {"user": False, "message": traceback.format_exc()})
