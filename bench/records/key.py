"""The settings key: the one string that decides which records may be merged (compare, fleet medians, registry
paths)."""

from __future__ import annotations

import re

from bench.records.schema import DETAIL_KEYS, ResultRecord


def settings_key(record: ResultRecord) -> str:
    """The settings a measurement depends on, as a path-safe key: records with different keys are never merged.

    Seed, prompt, repeats and warm-up do not change what a generation costs; pixels, frames, fps, steps, guidance,
    dtype, GPUs and every serving option do. A step-sampled record ends in 'sampled=K': its figures are partly
    extrapolated, so it is never merged with a full run's. Example: '832x480-81f-16fps-50steps-g5-bfloat16-1gpu'.
    """
    s = record.settings
    parts = [f"{s.width}x{s.height}", f"{s.num_frames}f", f"{s.fps:g}fps", f"{s.steps}steps",
             f"g{s.guidance_scale:g}", s.dtype, f"{s.gpus_used}gpu"]
    if s.guidance_scale_2 is not None:  # the low-noise expert's guidance: a different setting, never merged
        parts.insert(5, f"g2={s.guidance_scale_2:g}")
    for name, value in sorted(s.options.items()):
        if value not in (None, False) and name not in DETAIL_KEYS:
            parts.append(name if value is True else f"{name}={value}")
    if record.sampling is not None:  # partly extrapolated: never merged with full runs
        parts.append(f"sampled={record.sampling.sample_steps}")
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", "-".join(parts))

