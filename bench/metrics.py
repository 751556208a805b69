"""The definitions every figure in t2vbench uses, in one place.

- video seconds of one generation = num_frames / fps
- GPU-seconds = timed wall seconds x GPUs used (model load and warm-up excluded)
- video minutes per GPU-hour = (sum of video seconds / 60) / (GPU-seconds / 3600)
- GPU-seconds per video-second is its inverse, printed beside it
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

MIN_GENERATIONS = 3  # fewer timed generations than this is a weak measurement
MAX_REL_STDEV = 0.10  # latency spread above this is a weak measurement


def video_seconds(num_frames: int, fps: float) -> float:
    """Seconds of playback of one generated video."""
    return num_frames / fps


def video_minutes_per_gpu_hour(video_s: float, gpu_s: float) -> float:
    """Throughput: minutes of video produced per hour of one GPU."""
    return (video_s / 60.0) / (gpu_s / 3600.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(generations: Sequence[dict[str, Any]], num_frames: int, fps: float, gpus_used: int) -> dict[str, float]:
    """Summary figures of timed generations; each generation holds latency_s and its stage times in seconds."""
    latencies = [g["latency_s"] for g in generations]
    n = len(latencies)
    wall_s = sum(latencies)
    gpu_s = wall_s * gpus_used
    video_s = video_seconds(num_frames, fps) * n
    mean_s = wall_s / n
    stages = {k: sum(g[k] for g in generations) / n for k in ("text_encode_s", "denoise_s", "vae_decode_s")}
    steps = [s for g in generations for s in g["step_s"]]
    return {
        "generations": n,
        "video_seconds_per_generation": video_seconds(num_frames, fps),
        "video_seconds_total": video_s,
        "timed_wall_s": wall_s,
        "gpu_seconds": gpu_s,
        "video_minutes_per_gpu_hour": video_minutes_per_gpu_hour(video_s, gpu_s),
        "gpu_seconds_per_video_second": gpu_s / video_s,
        "latency_mean_s": mean_s,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p90_s": percentile(latencies, 90),
        "latency_min_s": min(latencies),
        "latency_max_s": max(latencies),
        "latency_rel_stdev": statistics.stdev(latencies) / mean_s if n > 1 else 0.0,
        "text_encode_mean_s": stages["text_encode_s"],
        "denoise_mean_s": stages["denoise_s"],
        "step_mean_s": sum(steps) / len(steps) if steps else 0.0,
        "vae_decode_mean_s": stages["vae_decode_s"],
        "other_mean_s": mean_s - sum(stages.values()),
    }


def quality_warnings(summary: dict[str, float]) -> list[str]:
    """Warnings about a weak measurement: too few generations, too much spread."""
    warnings = []
    if summary["generations"] < MIN_GENERATIONS:
        warnings.append(
            f"only {summary['generations']} timed generation(s): use --repeats {MIN_GENERATIONS} or more "
            "for a figure you can trust"
        )
    if summary["latency_rel_stdev"] > MAX_REL_STDEV:
        warnings.append(
            f"latency spread {summary['latency_rel_stdev']:.0%} (relative stdev) is above {MAX_REL_STDEV:.0%}: "
            "the machine may be busy or throttling; rerun with more --repeats"
        )
    return warnings
