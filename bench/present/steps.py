"""`t2vbench show RECORD --steps`: each denoising step's time beside what the telemetry sampled while it ran."""

from __future__ import annotations

from bench.analysis.steps import Diagnosis, StepRow
from bench.present.text import table

GIB = 1024**3
HEADER = ["gen", "step", "s", "samples", "SM MHz", "W", "memory GiB", "max C", "clocks held down by"]


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_steps(rows: list[StepRow], diagnosis: Diagnosis | None) -> str:
    if not rows:
        return ("no step profile: the record has no telemetry series or no step times (a CPU run, --telemetry none, "
                "or a record from before per-step times)")
    body = [[r.generation, r.step, f"{r.duration_s:.4g}", r.samples, _f(r.sm_clock_mhz, ".0f"), _f(r.power_w, ".0f"),
             _f(None if r.memory_used_bytes is None else r.memory_used_bytes / GIB, ".2f"),
             _f(r.temperature_c, ".0f"), ", ".join(r.slowdowns) or "-"] for r in rows]
    return (table(body, HEADER) + "\n" + describe(diagnosis) + "\nmemory is what the GPU's driver reports used on the "
            "whole device (the CUDA context and the allocator's cache included), so it reads above the record's peak "
            "memory, which is torch's own largest allocation")


def describe(d: Diagnosis | None) -> str:
    """One line on the steady steps: their mean time, clocks, memory, slowdowns and drift."""
    if d is None:
        return "steady steps: none (each generation's first step pays one-off work and is left out)"
    clock = "no clock samples" if d.sm_clock_mhz is None else \
        f"SM clock {d.sm_clock_mhz:.0f} MHz mean, {d.lowest_sm_clock_mhz:.0f} lowest"
    memory = "" if d.highest_memory_used_bytes is None else \
        f"; memory used up to {d.highest_memory_used_bytes / GIB:.1f} GiB"
    held = f"; clocks held down in {d.slowed_share:.0%} of them ({', '.join(d.slowdowns)})" if d.slowdowns else \
        "; clocks never held down"
    drift = "" if d.drift is None else f"; last five steps {d.drift:+.1%} against the first five"
    return f"steady steps ({d.steps}, each generation's first left out): {d.mean_step_s:.4g} s mean; {clock}" \
           f"{memory}{held}{drift}"
