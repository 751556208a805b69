"""The definitions every figure in t2vbench uses, in one place.

- video seconds of one generation = num_frames / fps
- GPU-seconds = timed wall seconds x GPUs one generation occupies (model load and warm-up excluded): all GPUs of a
  context-parallel run, one GPU per generation under data parallelism (each worker has its own)
- server figures: the window from the first timed start to the last timed end, x every GPU of the run, so idle
  GPUs waiting for a slower one count against the server
- video minutes per GPU-hour = (sum of video seconds / 60) / (GPU-seconds / 3600)
- GPU-seconds per video-second (= 60 / video minutes per GPU-hour) is printed beside it
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_serializer

MIN_GENERATIONS = 3  # fewer timed generations than this is a weak measurement
MAX_REL_STDEV = 0.10  # latency spread above this is a weak measurement


def _whole(value: Any) -> Any:
    """Counts stored as 3.0 by records written before the summary was typed (a float with no fraction) read as 3."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Count = Annotated[int, BeforeValidator(_whole)]


class Summary(BaseModel):
    """A run's summary figures, each recomputable from its raw per-generation timings (see summarize). A new figure
    is one field here and its line in summarize (and a record migration if stored records must gain it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    generations: Count
    video_seconds_per_generation: float
    video_seconds_total: float
    timed_wall_s: float
    gpu_seconds: float
    video_minutes_per_gpu_hour: float
    gpu_seconds_per_video_second: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p90_s: float
    latency_min_s: float
    latency_max_s: float
    latency_rel_stdev: float
    text_encode_mean_s: float
    denoise_mean_s: float
    step_mean_s: float
    vae_decode_mean_s: float
    other_mean_s: float
    # Whole-run figures; None for records from before generation times were kept (then absent from the file).
    server_window_s: float | None = None
    server_video_minutes_per_gpu_hour: float | None = None
    workers: Count | None = None
    per_worker_rel_spread: float | None = None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def mismatch(self, expected: Summary) -> str | None:
        """The first figure that differs from `expected` (beyond floating-point order), as a message; else None."""
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(expected, name)
            if (mine is None) != (theirs is None) or (
                    mine is not None and not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-12)):
                return f"summary.{name} is {mine} but the raw timings give {theirs}"
        return None


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


def gpus_per_generation(gpus_used: int, parallel: str | None) -> int:
    """GPUs one generation occupies: 1 under data parallelism ('data'), every GPU of the run otherwise."""
    return 1 if parallel == "data" else gpus_used


def summarize(generations: Sequence[dict[str, Any]], num_frames: int, fps: float, gpus_used: int,
              parallel: str | None = None) -> Summary:
    """Summary figures of timed generations; each holds latency_s and its stage times in seconds, and (for the
    server figures) telemetry.start_s/end_s on one clock shared by all workers, and its worker index."""
    latencies = [g["latency_s"] for g in generations]
    n = len(latencies)
    wall_s = sum(latencies)
    gpu_s = wall_s * gpus_per_generation(gpus_used, parallel)
    video_s = video_seconds(num_frames, fps) * n
    mean_s = wall_s / n
    stages = {k: sum(g[k] for g in generations) / n for k in ("text_encode_s", "denoise_s", "vae_decode_s")}
    steps = [s for g in generations for s in g["step_s"]]
    return Summary(**{
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
        **_server(generations, video_s, gpus_used, num_frames, fps),
    })


def _server(generations: Sequence[dict[str, Any]], video_s: float, gpus_used: int, num_frames: int, fps: float
            ) -> dict[str, float]:
    """Whole-run figures: the window all GPUs were held, and the spread between workers' own throughputs."""
    spans = [g.get("telemetry") for g in generations]
    if any(t is None for t in spans):  # records from before generation times were kept
        return {}
    window_s = max(t["end_s"] for t in spans) - min(t["start_s"] for t in spans)
    per_worker: dict[int, list[float]] = {}
    for g in generations:
        per_worker.setdefault(g.get("worker") or 0, []).append(g["latency_s"])
    rates = [video_minutes_per_gpu_hour(video_seconds(num_frames, fps) * len(v), sum(v)) for v in per_worker.values()]
    return {
        "server_window_s": window_s,
        "server_video_minutes_per_gpu_hour": video_minutes_per_gpu_hour(video_s, window_s * gpus_used),
        "workers": len(per_worker),
        "per_worker_rel_spread": statistics.stdev(rates) / statistics.mean(rates) if len(rates) > 1 else 0.0,
    }


def quality_warnings(summary: Summary) -> list[str]:
    """Warnings about a weak measurement: too few generations, too much spread."""
    warnings = []
    if summary.generations < MIN_GENERATIONS:
        warnings.append(
            f"only {summary.generations} timed generation(s): use --repeats {MIN_GENERATIONS} or more "
            "for a figure you can trust"
        )
    if summary.latency_rel_stdev > MAX_REL_STDEV:
        warnings.append(
            f"latency spread {summary.latency_rel_stdev:.0%} (relative stdev) is above {MAX_REL_STDEV:.0%}: "
            "the machine may be busy or throttling; rerun with more --repeats"
        )
    return warnings
