"""What physics forbids a record to claim. A record can be internally consistent and still be impossible: faster
than its GPU's peak FLOP/s allows, drawing more energy than its board can, a GPU class on a CPU run, or a telemetry
summary that its own series contradicts. `load_record` refuses those (the run that writes a record skips this).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from bench.analysis.flops import total_flops
from bench.core import hardware, metrics
from bench.core.errors import UsageError
from bench.core.specs import Settings, load_spec, spec_names
from bench.records.io import load_record
from bench.records.schema import GPU_DEVICE, ResultRecord
from bench.telemetry.summary import check_summary

MAX_MFU = 1.0  # achieved FLOP/s over the class's peak dense FLOP/s
POWER_MARGIN = 1.10  # average board power may exceed the catalogue's board power by this much (boost, sensors)


def load_checked(path: str | Path) -> ResultRecord:
    """A record file as the gate judges it: loaded strictly, then refused if physics forbids what it claims.
    Raises UsageError naming the file and the first impossibility."""
    record = load_record(path)
    problems = violations(record)
    if problems:
        raise UsageError(f"{path}: {problems[0]}")
    return record


def violations(record: ResultRecord) -> list[str]:
    """One message per impossibility; an empty list for a record physics allows."""
    problems = _device_class(record)
    hw = None if record.hardware_class.startswith("cpu:") else hardware.match_gpu(record.hardware_class)
    if hw is not None:
        problems += _energy(record, hw.board_power_w) + _bound(record, hw)
    problems += _telemetry(record)
    return problems


def _device_class(record: ResultRecord) -> list[str]:
    on_cpu = GPU_DEVICE.fullmatch(record.settings.device) is None
    if on_cpu != record.hardware_class.startswith("cpu:"):
        return [f"device '{record.settings.device}' does not match hardware class '{record.hardware_class}'"]
    return []


def _gpus(record: ResultRecord) -> int:
    """GPUs one generation occupies (one under data parallelism)."""
    return metrics.gpus_per_generation(record.settings.gpus_used, record.settings.options.get("parallel"))


def _energy(record: ResultRecord, board_power_w: float) -> list[str]:
    """Each generation's energy is its own GPU's (worker 0's under data parallelism), the run's average power the
    first worker's: neither may exceed the board power of the GPUs it covers."""
    gpus = _gpus(record)
    limit_w = board_power_w * gpus * POWER_MARGIN
    out = []
    for g in record.generations:
        energy = g.telemetry.energy_j if g.telemetry else None
        if energy is not None and energy > limit_w * g.latency_s:
            out.append(f"generation {g.index} used {energy:.0f} J in {g.latency_s:.3g} s, more than {gpus} x "
                       f"{board_power_w:.0f} W board power allows")
            break
    avg = record.telemetry.summary.avg_power_w
    if avg is not None and avg > limit_w:
        out.append(f"average power {avg:.0f} W is above {gpus} x {board_power_w:.0f} W board power")
    return out


def _bound(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """Faster than the counted FLOPs at 100% of the class's peak is impossible."""
    flops = record_flops(record)
    if flops is None:
        return []
    peak = hw.peak_flops("fp8" if record.settings.options.get("quantize") == "fp8" and hw.fp8_tflops else "bfloat16")
    floor_s = flops / (peak * _gpus(record))
    fastest = min(record.latencies_s())  # full generations: a step-sampled one's extrapolated latency
    if fastest * MAX_MFU < floor_s:
        return [f"a generation took {fastest:.3g} s, faster than the physical bound of {floor_s:.3g} s "
                f"({flops:.3g} FLOPs at {hw.id}'s peak): MFU above 100% is impossible"]
    return []


def record_flops(record: ResultRecord) -> float | None:
    """FLOPs of one video of the record's spec at its settings; None where the spec is not one of ours or its family
    cannot be counted."""

    fields = {f: getattr(record.settings, f) for f in Settings.__dataclass_fields__}
    return spec_flops(record.spec.name, Settings(**fields))


@functools.lru_cache(maxsize=64)
def spec_flops(name: str, settings: Any) -> float | None:
    """FLOPs of one video of the models/ spec `name` at `settings` (a bench.core.specs.Settings), counted once per
    process; None for a name models/ does not have or a family that cannot be counted."""

    if name not in spec_names():  # a name from a file is never turned into a path
        return None
    try:
        return total_flops(load_spec(name), settings)
    except UsageError:  # a family the counter does not cover (Mochi)
        return None


def _telemetry(record: ResultRecord) -> list[str]:
    t = record.telemetry
    if not t.available:
        return []
    gens = [g.model_dump() for g in record.generations if g.worker == 0]  # the section is worker 0's
    video_s = record.summary.video_seconds_per_generation
    return [f"telemetry: {m}" for m in check_summary(t.model_dump(), gens, video_s)]
