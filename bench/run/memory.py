"""The memory model: how much GPU memory a model's weights need, with and without offloading.

Weights only (parameters counted on the meta device x bytes per parameter). Activations, the CUDA context and the
VAE decode add more, so a fit near the limit is a hint to measure (`run --memory-cap GIB`), not a promise.
  plain             every component on the GPU: all weights
  --offload model   one component on the GPU at a time (diffusers' model CPU offload): the largest component
  --offload group   one block of a component at a time: a small part of the largest component, bounded here by
                    the largest component / its number of repeated blocks (at least 1 GiB is kept for it)

Counting parameters needs bench.run.build (torch), imported only when a count is asked for; `check_fit` imports torch
and psutil to ask what is free.
"""

from __future__ import annotations

from typing import Any

from bench.core.errors import UsageError

GIB = 2**30
CARDS_GIB = (24, 48, 80)  # gaming / workstation / datacenter cards
GROUP_FLOOR_BYTES = 1 * GIB


def component_bytes(spec: Any, bytes_per_param: int) -> dict[str, int]:
    from bench.run.build import count_params_meta

    return {name: n * bytes_per_param for name, n in count_params_meta(spec).items()}


def gpu_bytes(components: dict[str, int], offload: str | None, blocks: int = 30) -> int:
    """GPU memory the weights need under an offload mode (None: plain)."""
    if offload is None:
        return sum(components.values())
    largest = max(components.values())
    if offload == "model":
        return largest
    return max(GROUP_FLOOR_BYTES, largest // max(1, blocks))  # group and sequential


def check_fit(spec: Any, device: str, dtype_name: str, offload: str | None) -> None:
    """Refuse a model whose weights alone cannot fit, before building anything: on the CPU (or offloaded) all of them
    must fit the host's available RAM, on a GPU what gpu_bytes says must fit its free memory. The fix offered is one
    that passes this same check. Raises UsageError."""
    import psutil
    import torch

    parts = component_bytes(spec, torch.finfo(getattr(torch, dtype_name)).bits // 8)
    host, total = psutil.virtual_memory().available, sum(parts.values())
    if (device == "cpu" or offload) and total > host:
        half = dtype_name == "float32" and total // 2 <= host  # bfloat16: 2 bytes a parameter instead of 4
        fix = "use --dtype bfloat16 (half the bytes) or a machine with more memory" if half else (
            "use a machine with more memory")
        raise UsageError(f"{spec.name} needs {total / GIB:.1f} GiB of host RAM for its weights in {dtype_name} but "
                         f"{host / GIB:.1f} GiB is free: {fix}")
    if device == "cpu":
        return
    need = gpu_bytes(parts, offload, blocks(spec))
    have = torch.cuda.mem_get_info(torch.device(device))[0]
    if need > have:
        how = "its weights" if offload is None else f"the part of its weights --offload {offload} keeps on the GPU"
        group = offload != "group" and gpu_bytes(parts, "group", blocks(spec)) <= have and total <= host
        fix = "use --offload group (weights in host RAM), a GPU with more memory" if group else "use a GPU with more memory"
        raise UsageError(f"{spec.name} needs {need / GIB:.1f} GiB on {device} for {how} in {dtype_name} but "
                         f"{have / GIB:.1f} GiB is free: {fix}, or a smaller model")


def blocks(spec: Any) -> int:
    """Repeated blocks of the denoiser (what group offloading moves one at a time)."""
    config = spec.components[spec.denoiser].get("config", {})
    return int(config.get("num_layers") or config.get("num_layers_mmdit", 0) or 30)


def fit_table(specs: list[Any], bytes_per_param: int = 2) -> list[list[str]]:
    """Rows: model, weights GiB, fits 24/48/80 GiB plain, then 24 GiB with model and with group offload."""
    rows = []
    for spec in specs:
        parts = component_bytes(spec, bytes_per_param)
        plain = gpu_bytes(parts, None)
        row = [spec.name, f"{plain / GIB:.1f}"]
        row += ["yes" if plain <= cap * GIB else "no" for cap in CARDS_GIB]
        row += ["yes" if gpu_bytes(parts, mode, blocks(spec)) <= CARDS_GIB[0] * GIB else "no"
                for mode in ("model", "group")]
        rows.append(row)
    return rows


FIT_HEADER = ["model", "weights GiB (bf16)", "24 GiB", "48 GiB", "80 GiB", "24 GiB, --offload model",
              "24 GiB, --offload group"]
