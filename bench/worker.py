"""The benchmark worker: runs in its own process (as pyperf does) so a crash or Ctrl-C loses no finished generation.

It sends messages to the parent as (kind, payload) tuples on a queue:
  loaded      load_s, device, dtype, environment, hardware_class
  warmup      latency_s
  generation  one timed generation's raw timings, and the peak memory so far
  video       path of the saved mp4
  done        {}
  error       user (bool), message
"""

from __future__ import annotations

import inspect
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


class StageClock:
    """Times the stages of one generation by wrapping encode_prompt and vae.decode and a step-end callback.

    Each mark is taken after synchronizing the device, so queued GPU work is counted in the stage it belongs to.
    Step 0 runs from the end of text encoding, so it includes preparing latents and timesteps.
    """

    def __init__(self, pipe: Any, sync: Callable[[], None]):
        self.sync = sync
        self.reset()
        pipe.encode_prompt = self._timed(pipe.encode_prompt, "text_encode_s")
        pipe.vae.decode = self._timed(pipe.vae.decode, "vae_decode_s")

    def reset(self) -> None:
        self.spent = {"text_encode_s": 0.0, "vae_decode_s": 0.0}
        self.encode_end = None
        self.step_marks: list[float] = []

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            self.sync()
            end = time.perf_counter()
            self.spent[stage] += end - start
            if stage == "text_encode_s":
                self.encode_end = end
            return result

        return wrapper

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        self.step_marks.append(time.perf_counter())
        return callback_kwargs

    def stages(self, start: float) -> dict[str, Any]:
        marks = [self.encode_end if self.encode_end is not None else start] + self.step_marks
        step_s = [b - a for a, b in zip(marks, marks[1:])]
        return {
            "text_encode_s": self.spent["text_encode_s"],
            "denoise_s": sum(step_s),
            "vae_decode_s": self.spent["vae_decode_s"],
            "step_s": step_s,
        }


def call_kwargs(pipe: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Arguments of one pipeline call at the job's settings."""
    s = job["settings"]
    kwargs = {
        "prompt": job["prompt"],
        "height": s["height"],
        "width": s["width"],
        "num_frames": s["num_frames"],
        "num_inference_steps": s["steps"],
        "guidance_scale": s["guidance_scale"],
        "max_sequence_length": s["max_sequence_length"],
        "output_type": "np",
    }
    if "frame_rate" in inspect.signature(pipe.__call__).parameters:  # LTX conditions on playback rate
        kwargs["frame_rate"] = s["fps"]
    return kwargs


def generate(pipe: Any, clock: StageClock, kwargs: dict[str, Any], seed: int, device: str) -> tuple[dict, Any]:
    """One generation timed end to end; returns its timings and the frames (frames, H, W, 3) in [0, 1]."""
    import torch

    generator = torch.Generator(device="cpu" if device == "cpu" else device).manual_seed(seed)
    clock.reset()
    clock.sync()
    start = time.perf_counter()
    out = pipe(**kwargs, generator=generator, callback_on_step_end=clock.on_step_end)
    clock.sync()
    latency_s = time.perf_counter() - start
    frames = out.frames[0]
    if len(frames) != kwargs["num_frames"]:  # video seconds would be wrong: never record them
        from bench.errors import UsageError

        raise UsageError(
            f"the pipeline returned {len(frames)} frames for --frames {kwargs['num_frames']}; "
            "choose a frame count this model's VAE reproduces"
        )
    return {"seed": seed, "latency_s": latency_s, **clock.stages(start)}, frames


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


def _run(job: dict[str, Any], send: Send) -> None:
    import torch

    from bench import environment
    from bench.build import DTYPES, build_pipeline
    from bench.specs import load_spec

    spec = load_spec(job["spec_name"])
    device = resolve_device(job["device"])
    dtype_name = job["dtype"] if job["dtype"] != "auto" else ("float32" if device == "cpu" else "bfloat16")
    dtype = DTYPES[dtype_name]
    sync = (lambda: torch.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
    check_memory(spec, device, dtype)

    start = time.perf_counter()
    pipe = build_pipeline(spec, job["weights"], device, dtype)
    sync()
    env = environment.describe(device)
    send("loaded", {
        "load_s": time.perf_counter() - start,
        "device": device,
        "dtype": dtype_name,
        "environment": env,
        "hardware_class": environment.hardware_class(env["device_name"], "cpu" if device == "cpu" else "gpu"),
    })

    clock = StageClock(pipe, sync)
    kwargs = call_kwargs(pipe, job)
    for k in range(job["warmup"]):
        timing, _ = generate(pipe, clock, kwargs, job["seed"] - 1 - k, device)
        send("warmup", {"latency_s": timing["latency_s"]})
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats(torch.device(device))

    frames, timed_start, index = None, time.perf_counter(), 0
    budget = job["time_budget_s"]
    while index < job["repeats"] and (budget is None or time.perf_counter() - timed_start < budget):
        timing, frames = generate(pipe, clock, kwargs, job["seed"] + index, device)
        peak, method = peak_memory(device)
        send("generation", {"index": index, **timing, "peak_memory_bytes": peak, "peak_memory_method": method})
        index += 1

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
