"""The work of one video, split the way the cost model prices it (bench.analysis.predict_model).

- text_flops, vae_flops: the text encoders and the VAE decode, as bench.analysis.flops counts them
- attention_flops: the denoiser's attention products (QK^T and PV: 4 x tokens^2 x width per block and pass, plus the
  cross-attention to the prompt), every step and guidance pass; dense_flops: the rest of the denoiser (projections,
  feed-forward, embeddings)
- elements: activation elements the denoiser's blocks pass through (tokens x width x blocks, every pass): what its
  norms, modulation, rotary embedding and residual adds read and write, work that moves bytes, not FLOPs
- params: parameters per component (bench.run.build.count_params_meta), for the memory model

The attention FLOPs are the batched matmuls FlopCounterMode sees inside the denoiser while bench.analysis.flops counts
it (scaled dot-product attention decomposes into them on the meta device); tokens per block follow from them (4 x
tokens^2 x width per block), so no family needs its own formula. The split is kept in a small cache beside the FLOP
cache (flops.json holds totals only): counting a 14B model takes seconds, a cached answer milliseconds.

torch is imported only when a count is missing from the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

from bench.analysis import flops as flops_mod
from bench.core.specs import Settings, Spec

WORK_VERSION = 1  # bump when the split changes
CACHE_FILE = "predict-work.json"
ATTENTION_OPS = ("aten.bmm", "aten.baddbmm")  # what scaled dot-product attention becomes on the meta device


@dataclasses.dataclass(frozen=True)
class Work:
    """FLOPs and activation elements of one video at one setting (units in the names)."""

    text_flops: float
    attention_flops: float
    dense_flops: float
    elements: float
    vae_flops: float
    denoise_calls: int  # denoiser forward passes per video: steps x guidance passes
    expert_steps: tuple[int, ...]  # steps each denoiser runs, in step order (two for Wan 2.2 A14B)
    params: dict[str, int]  # component -> parameters

    @property
    def denoise_flops(self) -> float:
        return self.attention_flops + self.dense_flops

    @property
    def total_flops(self) -> float:
        return self.text_flops + self.denoise_flops + self.vae_flops


def width_and_blocks(spec: Spec) -> tuple[int, int]:
    """The denoiser's width (heads x head dim) and its count of transformer blocks (dual- and single-stream)."""
    config = spec.components[spec.denoiser].get("config", {})
    width = int(config.get("num_attention_heads", 0)) * int(config.get("attention_head_dim", 0))
    return width, int(config.get("num_layers", 0)) + int(config.get("num_single_layers", 0))


def elements_per_call(attention_flops_per_call: float, width: int, blocks: int) -> float:
    """tokens x width x blocks, with tokens from the attention FLOPs of one pass (4 x tokens^2 x width per block)."""
    if width <= 0 or blocks <= 0 or attention_flops_per_call <= 0:
        return 0.0
    return math.sqrt(attention_flops_per_call / (4 * width * blocks)) * width * blocks


def count_work(spec: Spec, settings: Settings) -> Work:
    """Count the split (seconds per 14B model on a CPU). Raises UsageError as bench.analysis.flops.count_flops."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench.run.build import count_params_meta

    with FlopCounterMode(display=False) as outer:  # sees every op the inner count sees, by module
        counted = flops_mod.count_flops(spec, settings)
    denoisers = {type_name for type_name in outer.get_flop_counts() if "." not in type_name} & _denoiser_types(spec)
    per_call_attention = sum(float(v) for t in denoisers for op, v in outer.get_flop_counts()[t].items()
                             if str(op) in ATTENTION_OPS)
    per_call_all = sum(e.per_call for e in counted.experts)  # each expert counted once by the inner count
    share = per_call_attention / per_call_all if per_call_all else 0.0
    calls = counted.steps * counted.calls_per_step
    attention = counted.denoise * share
    width, blocks = width_and_blocks(spec)
    elements = calls * elements_per_call(attention / calls, width, blocks) if calls else 0.0
    return Work(text_flops=counted.text_encode, attention_flops=attention, dense_flops=counted.denoise - attention,
                elements=elements, vae_flops=counted.vae_decode, denoise_calls=calls,
                expert_steps=tuple(e.steps for e in counted.experts), params=count_params_meta(spec))


def _denoiser_types(spec: Spec) -> set[str]:
    """Class names of the denoisers (FlopCounterMode names a top-level module by its class)."""
    names = [spec.denoiser] + (["transformer_2"] if "transformer_2" in spec.components else [])
    return {spec.components[n]["class"].rpartition(".")[2] for n in names if n in spec.components}


def work(spec: Spec, settings: Settings) -> Work:
    """The split of one video at settings, from the cache or counted and cached. Raises as count_work."""
    key = _key(spec, settings)
    path = flops_mod.cache_dir() / CACHE_FILE
    cached = flops_mod.read_cache(path).get(key)
    if cached is not None:
        try:
            return Work(**{**cached, "expert_steps": tuple(cached["expert_steps"]), "params": dict(cached["params"])})
        except (TypeError, KeyError, ValueError):
            pass  # a damaged entry is counted again
    found = count_work(spec, settings)
    flops_mod.write_cache(path, {**flops_mod.read_cache(path), key: dataclasses.asdict(found)})
    return found


def _key(spec: Spec, settings: Settings) -> str:
    """The cache key: the spec, the settings the work depends on (not fps; numbers as floats, so a record's 16.0
    and a spec's 16 share an entry) and the counting libraries' versions."""
    versions = list(flops_mod.library_versions())
    shape = {k: float(v) if isinstance(v, (int, float)) else v for k, v in dataclasses.asdict(settings).items()
             if k != "fps"}
    raw = json.dumps([WORK_VERSION, flops_mod.CACHE_VERSION, spec.sha256, shape, versions], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()

