"""What each denoising step ran at: its time beside the clocks, power, memory, temperature and slowdown reasons the
telemetry sampled while it ran, so a slow step can be explained from the record alone (a step twice the expected
time at half the SM clock is a held-down GPU; at full clock with memory at the card's limit, something else).

A record keeps each generation's step times and, on a GPU, a sampled series with the sampler's clock; each
generation's telemetry says when it started and ended on that clock. Steps run after the text encoding, one after
another, so step k of a generation spans
    start = generation start + text_encode_s + the steps before k,   end = start + step_s[k]
(the scheduler's set-up between encoding and the first step is not timed apart: a step's window may sit up to that
much early, a few milliseconds against steps of a second or more). Each step takes the samples inside its window; a
step shorter than the sample period may have none, and then shows '-'. The series is worker 0's, so only worker 0's
generations are profiled.
"""

from __future__ import annotations

import dataclasses
import statistics

from bench.records.schema import ResultRecord
from bench.telemetry.amd import THROTTLE_BITS as AMD_BITS
from bench.telemetry.nvml import SLOWDOWNS
from bench.telemetry.nvml import THROTTLE_BITS as NVML_BITS


@dataclasses.dataclass(frozen=True)
class StepRow:
    generation: int
    step: int
    start_s: float  # on the sampler's clock
    duration_s: float
    samples: int
    sm_clock_mhz: float | None  # mean over the step's samples
    power_w: float | None  # mean
    memory_used_bytes: float | None  # the largest sampled
    temperature_c: float | None  # the largest sampled
    slowdowns: tuple[str, ...]  # reasons the driver held clocks down in any of the step's samples


def profile(record: ResultRecord) -> list[StepRow]:
    """One row per denoising step of worker 0's generations; [] where the record has no series or no step times."""
    series = record.telemetry.series
    if not record.telemetry.available or not series or "t_s" not in series:
        return []
    bits = _slowdown_bits(record.telemetry.backend)
    rows = []
    for g in record.generations:
        if g.worker != 0 or g.telemetry is None or not g.step_s:
            continue
        start = g.telemetry.start_s + g.text_encode_s
        for k, step_s in enumerate(g.step_s):
            rows.append(_row(series, bits, g.index, k, start, step_s))
            start += step_s
    return rows


def _slowdown_bits(backend: str) -> dict[str, int]:
    if backend == "nvml":
        return {name: NVML_BITS[name] for name in SLOWDOWNS}
    return dict(AMD_BITS) if backend == "amdsmi" else {}


def _row(series: dict, bits: dict[str, int], generation: int, step: int, start_s: float, step_s: float) -> StepRow:
    inside = [i for i, t in enumerate(series["t_s"]) if t is not None and start_s <= t < start_s + step_s]

    def values(field: str) -> list[float]:
        column = series.get(field) or []
        return [column[i] for i in inside if i < len(column) and column[i] is not None]

    masks = [int(m) for m in values("throttle_mask")]
    reasons = tuple(name for name, bit in bits.items() if any(m & bit for m in masks))
    return StepRow(generation, step, start_s, step_s, len(inside), _mean(values("sm_clock_mhz")),
                   _mean(values("power_w")), _max(values("memory_used_bytes")), _max(values("temperature_c")),
                   reasons)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """The steps after each generation's first, taken together: what they ran at and whether it moved."""

    steps: int
    mean_step_s: float
    sm_clock_mhz: float | None  # mean over steps that have samples
    lowest_sm_clock_mhz: float | None
    highest_memory_used_bytes: float | None
    slowed_share: float  # share of the steps with a slowdown reason in any sample
    slowdowns: tuple[str, ...]
    drift: float | None  # mean time of the last five steps over the first five, minus 1 (per generation, averaged)


def diagnose(rows: list[StepRow]) -> Diagnosis | None:
    """The steady steps (each generation's first step aside: it pays one-off work) in one line's worth of figures."""
    steady = [r for r in rows if r.step > 0]
    if not steady:
        return None
    clocks = [r.sm_clock_mhz for r in steady if r.sm_clock_mhz is not None]
    memory = [r.memory_used_bytes for r in steady if r.memory_used_bytes is not None]
    reasons = sorted({x for r in steady for x in r.slowdowns})
    return Diagnosis(len(steady), statistics.fmean(r.duration_s for r in steady), _mean(clocks),
                     min(clocks) if clocks else None, max(memory) if memory else None,
                     sum(1 for r in steady if r.slowdowns) / len(steady), tuple(reasons), _drift(steady))


def _drift(steady: list[StepRow]) -> float | None:
    by_generation: dict[int, list[float]] = {}
    for r in steady:
        by_generation.setdefault(r.generation, []).append(r.duration_s)
    ratios = [statistics.fmean(d[-5:]) / statistics.fmean(d[:5]) - 1 for d in by_generation.values() if len(d) >= 10]
    return statistics.fmean(ratios) if ratios else None
