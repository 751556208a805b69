"""Where the fleet's throughput comes from: a number, a record, the results registry, or the roofline bound.
Each answer says which, and for a record, which model, setting and GPU produced it."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench import hardware
from bench.errors import UsageError
from bench.fleet import Scenario, Throughput
from bench.record import load_record


def _hw(class_id: str | None) -> hardware.HardwareClass | None:
    return hardware.get(class_id) if class_id else None


def given(value: float, class_id: str | None) -> Throughput:
    hw = _hw(class_id)
    return Throughput(value, f"given: {value:g} video-min per GPU-hour", hw,
                      hw.board_power_w if hw else None, "catalogue board power" if hw else None)


def from_scenario(s: Scenario) -> Throughput:
    if s.throughput_video_min_per_gpu_hour is None:
        raise UsageError(f"scenario {s.name} gives no throughput: pass --throughput, --record, --results or --bound")
    hw = _hw(s.hardware)
    return Throughput(s.throughput_video_min_per_gpu_hour,
                      f"scenario {s.name}: {s.throughput_video_min_per_gpu_hour:g} video-min per GPU-hour", hw,
                      hw.board_power_w if hw else None, "catalogue board power" if hw else None)


def from_record(path: str, class_id: str | None = None) -> Throughput:
    """The record's measured throughput, its measured average board power when it has one, its GPU's class."""
    r = load_record(path)
    hw = _hw(class_id) or hardware.match_gpu(r.hardware_class)
    st = r.settings
    setting = f"{st.width}x{st.height}, {st.num_frames} frames @ {st.fps:g} fps, {st.steps} steps"
    value = r.summary["video_minutes_per_gpu_hour"]
    source = (f"record {Path(path).name}: {r.spec.name} ({setting}) on {r.hardware_class}, "
              f"{value:.4g} video-min per GPU-hour measured")
    if hw is None:
        source += f"; '{r.hardware_class}' is not in the hardware catalogue, so price and board power are unknown"
    power = r.telemetry.summary.avg_power_w
    if power is not None:
        return Throughput(value, source, hw, power, f"measured average board power ({r.telemetry.backend})")
    return Throughput(value, source, hw, hw.board_power_w if hw else None, "catalogue board power" if hw else None)


def from_results(root: str, model: str, class_id: str) -> Throughput:
    """Median measured throughput of complete records of `model` on `class_id` under a results folder."""
    hw = hardware.get(class_id)
    values = []
    for path in sorted(Path(root).rglob("*.json")):
        r = load_record(path)
        if r.complete and r.spec.name == model and (m := hardware.match_gpu(r.hardware_class)) and m.id == hw.id:
            values.append(r.summary["video_minutes_per_gpu_hour"])
    if not values:
        raise UsageError(f"no complete {model} record on {class_id} under {root}: run and submit one first")
    median = statistics.median(values)
    return Throughput(median, f"results {root}: median of {len(values)} {model} record(s) on {class_id}, "
                      f"{median:.4g} video-min per GPU-hour", hw, hw.board_power_w, "catalogue board power")


def from_bound(model: str, class_id: str, dtype: str = "bfloat16") -> Throughput:
    """The roofline bound: 100% of the class's peak FLOP/s at the model's canonical settings."""
    from bench import metrics, roofline
    from bench.flops import count_flops
    from bench.specs import load_spec

    spec, hw = load_spec(model), hardware.get(class_id)
    st = spec.settings
    b = roofline.bound(count_flops(spec, st), hw, metrics.video_seconds(st.num_frames, st.fps), dtype)
    value = b["bound_video_minutes_per_gpu_hour"]
    return Throughput(value, f"roofline bound: {model} at its canonical setting on {class_id} at 100% of peak "
                      f"{dtype}, {value:.4g} video-min per GPU-hour", hw, hw.board_power_w, "catalogue board power")
