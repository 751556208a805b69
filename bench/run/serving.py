"""Apply serving options to a built pipeline, inside the worker (torch and diffusers are imported here).

`check_installed` runs before anything is built and refuses, in one line, what the installed libraries, the model or
the device cannot do; `apply` returns what was actually applied, which is what the record keeps.

diffusers' hooks and attention dispatch are imported where an option needs them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.core.errors import UsageError
from bench.run.options import Options, refuse_gpu_only

# Step-cache thresholds: diffusers' documented defaults, named so the record says what ran.
FIRST_BLOCK_THRESHOLD = 0.05
PAB_SPATIAL_SKIP = 2


def check_installed(options: Options, denoiser_cls: type, device: str) -> None:
    """Refuse options the installed torch/diffusers, this denoiser or this device cannot do. Raises UsageError."""
    name = denoiser_cls.__name__
    if options.attention_backend is not None:
        _check_attention_backend(options.attention_backend)
    if options.compile and not getattr(denoiser_cls, "_repeated_blocks", None):
        raise UsageError(f"--compile: {name} declares no repeated block for regional compilation in this diffusers; "
                         "drop --compile")
    if options.cache is not None:
        if not hasattr(denoiser_cls, "enable_cache"):
            raise UsageError(f"--cache {options.cache}: {name} does not support diffusers' cache hooks; drop --cache")
        if options.cache == "magcache":
            raise UsageError("--cache magcache needs magnitude ratios calibrated for this model, and diffusers ships "
                             "them only for Flux; use --cache first-block, faster or pab")
    if options.quantize == "fp8" and not hasattr(torch, "float8_e4m3fn"):
        raise UsageError("--quantize fp8 needs a torch with float8 dtypes (2.1 or newer)")
    refuse_gpu_only(options, device)


def _check_attention_backend(backend: str) -> None:
    from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

    names = sorted(b.value for b in AttentionBackendName)
    if backend not in names:
        raise UsageError(f"--attention-backend {backend}: this diffusers offers {', '.join(names)}")
    if backend.endswith("_hub"):
        raise UsageError(f"--attention-backend {backend} downloads its kernel from the Hugging Face hub at run time; "
                         "install the kernel's package and use the backend without _hub")
    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except (RuntimeError, ImportError) as exc:
        raise UsageError(f"--attention-backend {backend}: {str(exc).splitlines()[0]}") from None


def cap_memory(options: Options, device: str) -> dict[str, Any]:
    """Limit this process to memory_cap_gib of the device (emulating a smaller card); call before building."""
    if options.memory_cap_gib is None:
        return {}
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    cap = options.memory_cap_gib * 2**30
    if cap >= total:
        raise UsageError(f"--memory-cap {options.memory_cap_gib:g}: the GPU has only {total / 2**30:.1f} GiB; "
                         "give a smaller cap")
    torch.cuda.set_per_process_memory_fraction(cap / total, torch.device(device))
    return {"memory_cap_gib": options.memory_cap_gib, "memory_cap_of_gib": round(total / 2**30, 1)}


def place(pipe: Any, options: Options, device: str) -> dict[str, Any]:
    """Offloading: where the weights live. Lossless, and needed before the first generation to fit at all."""
    if options.offload is None:
        return {}
    target = torch.device(device)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=target)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=target)
    else:
        pipe.enable_group_offload(onload_device=target, offload_type="block_level", num_blocks_per_group=1,
                                  use_stream=True)
    return {"offload": options.offload}


def apply(pipe: Any, denoiser: str, options: Options, dtype: torch.dtype) -> dict[str, Any]:
    """Apply the options that change how the work is computed (after the plain reference generation, when there is
    one). Returns what was applied, for the record. Compilation comes last, over the hooks the others install."""
    models = denoisers(pipe, denoiser)
    applied: dict[str, Any] = {}
    if options.attention_backend is not None:
        for model in models:
            model.set_attention_backend(options.attention_backend)
        applied["attention_backend"] = options.attention_backend
    if options.vae_tiling:
        pipe.vae.enable_tiling()
        applied["vae_tiling"] = True
    names = ", ".join(m.__class__.__name__ for m in models)
    if options.quantize == "fp8":
        for model in models:
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
        applied["quantize"] = "fp8"
        applied["quantized"] = f"{names} weights (fp8 e4m3 storage, {str(dtype).removeprefix('torch.')} compute)"
    if options.cache is not None:
        for model in models:
            model.enable_cache(_cache_config(options.cache, pipe))
        applied["cache"] = options.cache
    if options.compile:
        for model in models:
            model.compile_repeated_blocks(fullgraph=True)
        applied["compile"] = "regional:" + ",".join(models[0]._repeated_blocks)
    return applied


def denoisers(pipe: Any, denoiser: str) -> list[Any]:
    """The denoising networks an option must reach: two-expert pipelines (Wan 2.2 A14B) have a second one."""
    second = getattr(pipe, "transformer_2", None)
    return [getattr(pipe, denoiser)] + ([second] if second is not None else [])


def _cache_config(kind: str, pipe: Any) -> Any:
    from diffusers.hooks import FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig

    def timestep() -> int:
        return pipe.current_timestep

    if kind == "first-block":
        return FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD)
    if kind == "faster":
        return FasterCacheConfig(current_timestep_callback=timestep)
    return PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=PAB_SPATIAL_SKIP,
                                           current_timestep_callback=timestep)


def compiled_graphs() -> int:
    """Graphs torch.compile has produced so far in this process (grows on every recompilation)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return 0
    return int(counters["stats"]["unique_graphs"])


def fidelity(reference: Any, frames: Any) -> dict[str, float]:
    """PSNR (dB, data range 1) and mean SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5, on luma) of
    frames against reference frames; both (frames, H, W, 3) in [0, 1]."""
    ref = torch.as_tensor(reference, dtype=torch.float64)
    out = torch.as_tensor(frames, dtype=torch.float64)
    mse = float(torch.mean((ref - out) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    return {"psnr_db": min(psnr, 999.0), "ssim": _ssim(_luma(ref), _luma(out))}


def _luma(frames: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=frames.dtype)
    return (frames * weights).sum(-1).unsqueeze(1)  # (frames, 1, H, W)


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    size = min(11, a.shape[-1], a.shape[-2])
    coords = torch.arange(size, dtype=a.dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]

    def blur(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, window)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())
