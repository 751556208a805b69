"""Everything `t2vbench fleet` shows for one scenario and one throughput: the fleet (bench.analysis.fleet), the
interval of each figure and the tornado (bench.analysis.interval), the peak fleet per catalogue class, and one line
when the throughput was made on other video than the scenario describes."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.analysis import interval
from bench.analysis.fleet import NO_FIGURES, Figure, gpu_figures, size
from bench.analysis.scenarios import Scenario
from bench.analysis.throughput import Throughput
from bench.core.errors import UsageError
from bench.core.hardware import catalogue

# Inputs the tornado moves by +-spread where the scenario gives them no range (the old behaviour, said so per row).
SENSITIVE = ("throughput_video_min_per_gpu_hour", "ai_video_minutes_per_day", "candidates_per_kept_video",
             "utilization", "peak_to_average")


@dataclasses.dataclass(frozen=True)
class Estimate:
    scenario: Scenario
    throughput: Throughput
    figures: dict[str, Figure]
    fleet: dict[str, Any]
    ranges: dict[str, tuple[float, float] | None]  # each output's least and greatest over the inputs' ranges
    inputs: list[interval.Input]  # the inputs those ranges come from
    sensitivity: list[dict[str, Any]]  # the tornado: one input at a time, the one that moves the peak most first
    per_class: list[dict[str, Any]]
    mismatch: str | None  # one line when the throughput is of other video than the scenario's; None otherwise

    @property
    def moves_most(self) -> str | None:
        return self.sensitivity[0]["assumption"] if self.sensitivity else None


def mismatch(s: Scenario, tp: Throughput, command: str = "fleet") -> str | None:
    """One line when the throughput's model, resolution or clip length differs from the video the scenario
    describes, naming the nearest open model and the command that sizes the fleet from it; None when they agree or
    either side says nothing (a given figure, a scenario without [video])."""
    v, made = s.video, tp.made
    if v is None or made is None:
        return None
    differs = []
    if made.model not in v.models:
        differs.append(f"model {made.model}")
    if (made.width, made.height) != (v.width, v.height):
        differs.append(f"{made.width}x{made.height}")
    if v.seconds is not None and abs(made.video_s - v.seconds) > 0.5:
        differs.append(f"{made.video_s:.3g} s clips")
    if not differs:
        return None
    hw = f" --hardware {tp.hardware.id}" if tp.hardware else ""
    clip = f", {v.seconds:g} s clips" if v.seconds else ""
    return (f"MISMATCH: this throughput is of {', '.join(differs)}, but scenario {s.name} describes {v.description} at "
            f"{v.width}x{v.height}{clip}; the nearest open model in models/ is {v.models[0]} at {v.width}x{v.height}: "
            f"size the fleet from it with `t2vbench estimate --scenario {s.name}` or `t2vbench {command} --scenario "
            f"{s.name} --predict {v.models[0]}{hw}`")


def _spread_rows(s: Scenario, tp: Throughput, figures: dict[str, Figure], ranged: list[interval.Input],
                 spread: float) -> list[dict[str, Any]]:
    """Tornado rows for the SENSITIVE inputs without a range: each alone at -spread and +spread (utilization capped
    at 1, candidates and peak-to-average floored at 1)."""
    have = {i.name for i in ranged}
    extra = []
    for name in SENSITIVE:
        if name in have:
            continue
        base = tp.video_min_per_gpu_hour if name == interval.THROUGHPUT else \
            s.demand_minutes_per_day if name == "ai_video_minutes_per_day" else getattr(s, name)
        low, high = base * (1 - spread), base * (1 + spread)
        if name == "utilization":
            high = min(high, 1.0)
        if name in ("peak_to_average", "candidates_per_kept_video"):
            low = max(low, 1.0)
        extra.append(interval.Input(name, base, low, high, f"+-{spread:.0%}: no range given"))
    return interval.tornado(s, tp.video_min_per_gpu_hour, figures, extra)


def sensitivity(s: Scenario, tp: Throughput, figures: dict[str, Figure], ranged: list[interval.Input],
                spread: float = 0.5) -> list[dict[str, Any]]:
    """The tornado of the peak fleet: every ranged input at its range, the other main inputs at +-spread."""
    rows = interval.tornado(s, tp.video_min_per_gpu_hour, figures, ranged) + \
        _spread_rows(s, tp, figures, ranged, spread)
    return sorted(rows, key=lambda r: -r["swing"])


def per_class(s: Scenario, tp: Throughput) -> list[dict[str, Any]]:
    """Peak fleet per catalogue class, the throughput scaled by peak bf16 FLOP/s (assumes equal utilization of
    peak); `scaled` is False only for the throughput's own class."""
    if tp.hardware is None:
        return []
    rows = []
    for hw in catalogue().values():
        scaled = tp.video_min_per_gpu_hour * hw.bf16_tflops / tp.hardware.bf16_tflops
        rows.append({"hardware": hw.id, "video_min_per_gpu_hour": scaled,
                     "peak_fleet_gpus": size(s, scaled, NO_FIGURES)["peak_fleet_gpus"],
                     "scaled": hw.id != tp.hardware.id})
    return rows


def estimate(s: Scenario, tp: Throughput, overridden: set[str], measured_power: bool = False,
             spread: float = 0.5, command: str = "fleet") -> Estimate:
    """Everything `t2vbench fleet` shows, from a checked scenario and throughput. Raises UsageError."""
    if not (isinstance(spread, float) and 0 < spread < 1):
        raise UsageError(f"--range {spread!r}: give a fraction between 0 and 1, e.g. 0.5 for +-50%")
    figures = gpu_figures(s, tp, overridden, measured_power)
    fleet = size(s, tp.video_min_per_gpu_hour, figures)
    ranged = interval.inputs(s, tp.video_min_per_gpu_hour, tp.interval, tp.interval_basis, figures)
    ranges = interval.ranges(s, tp.video_min_per_gpu_hour, figures, ranged)
    return Estimate(s, tp, figures, fleet, ranges, ranged, sensitivity(s, tp, figures, ranged, spread),
                    per_class(s, tp), mismatch(s, tp, command))
