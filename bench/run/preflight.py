"""What a run refuses once torch can be asked, before anything is built: the device, what the installed torch and
diffusers can do with the serving options and the layout, and whether the weights fit the device's memory.

The worker calls `check` first; `sweep --dry-run` calls the same function for each cell that passes the parent's
checks (bench.run.runner.prepare), so a dry run says what `run` on this host would say, word for word.

torch and diffusers are imported inside the functions: the parent of a run never calls them.
"""

from __future__ import annotations

from typing import Any

from bench.core.errors import UsageError
from bench.run import memory, parallel
from bench.run.options import Options
from bench.run.parallel import Layout


def check(spec: Any, device: str, dtype: str, options: Options, layout: Layout) -> tuple[str, str]:
    """The device ('cpu' or 'cuda:N') and dtype name a worker of this run uses; device and dtype as asked ('auto'
    allowed). Raises UsageError for what it cannot do here."""
    from bench.run import serving
    from bench.run.build import resolve_class

    device = resolve_device(device)
    dtype_name = dtype_for(dtype, device)
    denoiser_cls = resolve_class(spec.components[spec.denoiser]["class"])
    serving.check_installed(options, denoiser_cls, device)
    parallel.check_context_parallel(denoiser_cls, layout)
    memory.check_fit(spec, device, dtype_name, options.offload)
    return device, dtype_name


def resolve_device(requested: str) -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N' -> the device torch will use. Raises UsageError."""
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA or ROCm GPU is visible to torch; use --device cpu")
        index = torch.device(requested).index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
        return f"cuda:{index}"
    return "cpu"  # the parent accepted only auto, cpu, cuda and cuda:N


def dtype_for(requested: str, device: str) -> str:
    """--dtype auto is float32 on the CPU (bf16 matmuls there are slow or emulated) and bfloat16 on a GPU."""
    return requested if requested != "auto" else ("float32" if device == "cpu" else "bfloat16")
