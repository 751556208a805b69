"""The memory model: how much GPU memory a model's weights need, with and without offloading.

Weights only (parameters counted on the meta device x bytes per parameter). Activations, the CUDA context and the
VAE decode add more, so a fit near the limit is a hint to measure (`run --memory-cap GIB`), not a promise.
  plain             every component on the GPU: all weights
  --offload model   one component on the GPU at a time (diffusers' model CPU offload): the largest component
  --offload group   one block of a component at a time: a small part of the largest component, bounded here by
                    the largest component / its number of repeated blocks (at least 1 GiB is kept for it)

Counting parameters needs bench.run.build (torch), imported only when a count is asked for.
"""

from __future__ import annotations

from typing import Any

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
