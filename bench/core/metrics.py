"""The definitions every figure in t2vbench uses, in one place.

- video seconds of one generation = num_frames / fps
- GPU-seconds = timed wall seconds x GPUs one generation occupies (model load and warm-up excluded): all GPUs of a
  context-parallel run, one GPU per generation under data parallelism (each worker has its own)
- server figures: the window from the first timed start to the last timed end, x every GPU of the run, so idle
  GPUs waiting for a slower one count against the server
- video minutes per GPU-hour = (sum of video seconds / 60) / (GPU-seconds / 3600)
- GPU-seconds per video-second (= 60 / video minutes per GPU-hour) is printed beside it
- step-sampled runs (--sample-steps K): each expert's first step and K steps after it (split between experts in
  proportion to their steps) are computed, the others skipped; a generation's figures are those of the full
  generation it stands for: each skipped step counts the mean time (and energy) of its expert's computed steps other
  than its first (the basis), in place of what it measured, in the denoise time, the latency and everything that
  follows from them. The measured figures, the basis and its spread (relative stdev) are kept beside them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
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
    # Step-sampled runs only (None, and absent from the file, for full runs): the figures above are then those of the
    # full generations, with the skipped steps extrapolated; these say from what and with what spread.
    sample_steps: Count | None = None  # K: computed steps after each expert's first
    extrapolated_steps: Count | None = None  # skipped steps per generation, their time extrapolated
    measured_latency_mean_s: float | None = None  # as the clock measured the step-sampled generations
    measured_denoise_mean_s: float | None = None
    extrapolated_denoise_share: float | None = None  # of the denoise time, the part extrapolated
    sample_step_rel_stdev: float | None = None  # relative stdev of the basis steps' times (the largest over experts)
    extrapolated_energy_per_video_j: float | None = None  # worker 0's, where every step's energy was read
    extrapolated_denoise_energy_mean_j: float | None = None
    extrapolated_energy_per_video_minute_wh: float | None = None
    extrapolated_avg_power_w: float | None = None

    @property
    def sampled(self) -> bool:
        """Whether the figures come from a step-sampled run (part of the denoise time extrapolated)."""
        return self.sample_steps is not None

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
              parallel: str | None = None, sampling: Mapping[str, Any] | None = None) -> Summary:
    """Summary figures of timed generations; each holds latency_s and its stage times in seconds, and (for the
    server figures) telemetry.start_s/end_s on one clock shared by all workers, and its worker index. `sampling` is
    a step-sampled run's plan (sample_steps, experts: component, first_step, steps, computed_steps): the figures are
    then the full generations' (see full_generations), with the sampled ones beside them."""
    if sampling is None:
        return Summary(**_figures(generations, num_frames, fps, gpus_used, parallel))
    full = full_generations(generations, sampling["experts"])
    return Summary(**_figures(full, num_frames, fps, gpus_used, parallel),
                   **_sampled_figures(generations, full, sampling, video_seconds(num_frames, fps)))


def _figures(generations: Sequence[dict[str, Any]], num_frames: int, fps: float, gpus_used: int,
             parallel: str | None) -> dict[str, Any]:
    latencies = [g["latency_s"] for g in generations]
    n = len(latencies)
    wall_s = sum(latencies)
    gpu_s = wall_s * gpus_per_generation(gpus_used, parallel)
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
        **_server(generations, video_s, gpus_used, num_frames, fps),
    }


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


# --- step-sampled runs ---------------------------------------------------------------------------------------------


def sampled_steps(experts: Sequence[Mapping[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """Per expert of a step-sampled run's plan: (its basis: the computed steps after its first, its skipped steps),
    as 0-based step indices of the whole schedule."""
    out = []
    for e in experts:
        computed = set(e["computed_steps"])
        span = range(e["first_step"], e["first_step"] + e["steps"])
        out.append(([i for i in span if i in computed and i != e["first_step"]], [i for i in span if i not in computed]))
    return out


def extrapolate(generation: Mapping[str, Any], experts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A step-sampled generation as the full generation it stands for: each skipped step takes the mean time of its
    expert's basis steps instead of what it measured, in step_s, denoise_s and latency_s; where every step's energy
    was read (telemetry.step_energy_j), energy_j and denoise_energy_j likewise. Other fields are kept as measured."""
    step_s = list(generation["step_s"])
    step_j = (generation.get("telemetry") or {}).get("step_energy_j")
    added_s, added_j = 0.0, 0.0
    for basis, skipped in sampled_steps(experts):
        if not skipped:
            continue
        mean_s = sum(generation["step_s"][i] for i in basis) / len(basis)
        added_s += sum(mean_s - step_s[i] for i in skipped)
        if step_j is not None:
            mean_j = sum(step_j[i] for i in basis) / len(basis)
            added_j += sum(mean_j - step_j[i] for i in skipped)
        for i in skipped:
            step_s[i] = mean_s
    out = {**generation, "step_s": step_s, "denoise_s": generation["denoise_s"] + added_s,
           "latency_s": generation["latency_s"] + added_s}
    t = generation.get("telemetry")
    if t is not None:
        known = step_j is not None and t.get("energy_j") is not None and t.get("denoise_energy_j") is not None
        out["telemetry"] = {**t, "energy_j": t["energy_j"] + added_j if known else None,
                            "denoise_energy_j": t["denoise_energy_j"] + added_j if known else None}
    return out


def full_generations(generations: Sequence[Mapping[str, Any]], experts: Sequence[Mapping[str, Any]]
                     ) -> list[dict[str, Any]]:
    """The full generations step-sampled ones stand for (extrapolate), on a clock on which each worker's generations
    take their extrapolated time: each one's start and end move by the time extrapolated onto that worker's earlier
    generations (and its end by its own), so the server window is the one full generations would have held.
    `generations` are in order of start within each worker, as a record holds them."""
    out, moved_s = [], {}
    for g in generations:
        full = extrapolate(g, experts)
        worker = g.get("worker") or 0
        before = moved_s.get(worker, 0.0)
        moved_s[worker] = before + full["latency_s"] - g["latency_s"]
        if full.get("telemetry") is not None:
            t = full["telemetry"]
            full["telemetry"] = {**t, "start_s": t["start_s"] + before, "end_s": t["end_s"] + moved_s[worker]}
        out.append(full)
    return out


def _rel_stdev(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else None


def _sampled_figures(measured: Sequence[Mapping[str, Any]], full: Sequence[Mapping[str, Any]],
                     sampling: Mapping[str, Any], video_s: float) -> dict[str, Any]:
    """What a step-sampled run's figures rest on: K, the steps extrapolated, the measured means, the share of the
    denoise time extrapolated, the spread of the basis steps, and worker 0's extrapolated energy."""
    n = len(measured)
    parts = sampled_steps(sampling["experts"])
    skipped = [i for _, s in parts for i in s]
    extrapolated_s = sum(g["step_s"][i] for g in full for i in skipped)
    spreads = [_rel_stdev([g["step_s"][i] for g in measured for i in basis]) for basis, _ in parts if basis]
    spreads = [v for v in spreads if v is not None]
    denoise_s = sum(g["denoise_s"] for g in full)
    return {
        "sample_steps": sampling["sample_steps"],
        "extrapolated_steps": len(skipped),
        "measured_latency_mean_s": sum(g["latency_s"] for g in measured) / n,
        "measured_denoise_mean_s": sum(g["denoise_s"] for g in measured) / n,
        "extrapolated_denoise_share": extrapolated_s / denoise_s if denoise_s > 0 else 0.0,
        "sample_step_rel_stdev": max(spreads) if spreads else None,
        **_sampled_energy([g for g in full if (g.get("worker") or 0) == 0], video_s),
    }


def _sampled_energy(full: Sequence[Mapping[str, Any]], video_s: float) -> dict[str, float | None]:
    energy = [(g.get("telemetry") or {}).get("energy_j") for g in full]
    denoise = [(g.get("telemetry") or {}).get("denoise_energy_j") for g in full]
    if not full or None in energy or None in denoise:
        return {}
    total_j, wall_s = sum(energy), sum(g["latency_s"] for g in full)
    return {
        "extrapolated_energy_per_video_j": total_j / len(full),
        "extrapolated_denoise_energy_mean_j": sum(denoise) / len(full),
        "extrapolated_energy_per_video_minute_wh": total_j / 3600 / (len(full) * video_s / 60),
        "extrapolated_avg_power_w": total_j / wall_s,
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
    spread = summary.sample_step_rel_stdev
    if spread is not None and spread > MAX_REL_STDEV:
        warnings.append(
            f"the computed steps' times spread {spread:.0%} (relative stdev), above {MAX_REL_STDEV:.0%}: the "
            "extrapolated denoise time is uncertain; use a larger --sample-steps or a full run"
        )
    return warnings
