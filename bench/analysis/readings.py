"""What a GPU record's sampled readings must not contradict: the limits its own device reports, and its class's. Each
section that measured (the record's and each worker's) is held to:

- clocks: no sampled SM clock above the maximum NVML reports for the device (nvmlDeviceGetMaxClockInfo, stored as
  device.max_sm_clock_mhz), and neither above the class's maximum SM clock where the catalogue has one with its
  source (bench/core/data/hardware.toml): a clock above the part's maximum boost does not happen, so a faster part's
  run relabelled a slower class (an H100 SXM's 1,980 MHz filed as a class that tops out lower) is refused.
- the power cap: NVML's sw_power_cap reason means the board's power reached its limit and the power controller holds
  clocks down to keep it there ("If the card's total power draw reaches this limit the power management algorithm
  kicks in", nvmlDeviceGetPowerManagementLimit). NVML's power reading is an average over the last second on Ampere
  (except GA100) and newer GPUs (nvmlDeviceGetPowerUsage: "power averaged over 1 sec interval"; instantaneous on GA100
  and older), so a reading taken after POWER_WINDOW_S of unbroken capping averages a second the board spent at its
  limit, while readings in the first second of a capped stretch still carry the lower power before it. The median of
  the readings after a full window of capping is held to at least (1 - CAP_SHORTFALL) of the limit the record states
  (device.power_limit_w; the class's board power where it states none). Energies and power scaled down together
  beside throttle flags kept are refused.
- memory: no sampled memory use above the device's memory total, and no peak memory the run allocated
  (cuda_max_allocated, one GPU's) above it, nor above the class's memory (evidence.MEMORY_SPAN's high end) where the
  device's total is not recorded.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.analysis.evidence import MEMORY_SPAN
from bench.core import hardware
from bench.records.schema import ResultRecord, Telemetry
from bench.telemetry.nvml import THROTTLE_BITS
from bench.telemetry.summary import GAP_FACTOR

POWER_WINDOW_S = 1.0  # NVML's power averaging window on Ampere (except GA100) and newer (see the module's docstring)
# The committed H100 records' readings after a full second of capping have medians 0.8-0.9% below their 700 W limit
# (694.2, 694.5, 693.6 W) and their lowest single reading 6.2% below (656.8 W, where a generation ends): the
# controller holds the limit to about 1%. A median 10% short is beyond any of them; 0.9 x the limit still leaves a
# forger 10%, and the per-generation counter check (15%) bounds the rest.
CAP_SHORTFALL = 0.10
SW_POWER_CAP, GPU_IDLE = THROTTLE_BITS["sw_power_cap"], THROTTLE_BITS["gpu_idle"]


def problems(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """One message per reading of the record that contradicts its device's limits or its class `hw`'s; [] when none
    does. Messages name the field, the value and the limit."""
    sections = [("telemetry", record.telemetry)]
    # worker 0's section is the record's own (bench.analysis.workers holds them equal): each problem said once
    sections += [(f"workers[{w.index}].telemetry", w.telemetry) for w in record.workers or []
                 if w.telemetry and w.index != 0]
    out = []
    for where, t in sections:
        if t.available:
            out += _clocks(t, hw, where) + _capped_power(t, hw, where) + _memory(t, where)
    return out + _peak_memory(record, hw)


def _series(t: Telemetry, field: str) -> list[Any]:
    return list((t.series or {}).get(field) or [])


def _clocks(t: Telemetry, hw: hardware.HardwareClass, where: str) -> list[str]:
    sampled_mhz = [c for c in _series(t, "sm_clock_mhz") if c is not None]
    device_max_mhz = (t.device or {}).get("max_sm_clock_mhz")
    out = []
    if sampled_mhz and isinstance(device_max_mhz, (int, float)) and max(sampled_mhz) > device_max_mhz:
        out.append(f"{where}.series.sm_clock_mhz reaches {max(sampled_mhz):g} MHz, above the {device_max_mhz:g} MHz "
                   f"maximum its own device reports ({where}.device.max_sm_clock_mhz): a clock never exceeds it")
    if hw.max_sm_clock_mhz is None:
        return out
    for what, mhz in ((f"{where}.device.max_sm_clock_mhz", device_max_mhz),
                      (f"{where}.series.sm_clock_mhz", max(sampled_mhz, default=None))):
        if isinstance(mhz, (int, float)) and mhz > hw.max_sm_clock_mhz:
            out.append(f"{what} is {mhz:g} MHz, above the {hw.max_sm_clock_mhz:g} MHz maximum SM clock of the "
                       f"{hw.name}: the GPU is not of the record's class {hw.id}")
    return out


def capped_readings(t: Telemetry) -> list[float]:
    """The power readings (W) taken after POWER_WINDOW_S of unbroken sw_power_cap (no gpu_idle, no sampling gap):
    each averages a second the board spent at its power limit. [] for a section not read through NVML."""
    if t.backend != "nvml":
        return []
    times, power, masks = _series(t, "t_s"), _series(t, "power_w"), _series(t, "throttle_mask")
    out, since = [], None
    for i, (t_s, mask) in enumerate(zip(times, masks)):
        capped = isinstance(mask, int) and mask & SW_POWER_CAP and not mask & GPU_IDLE
        gap = i > 0 and t_s - times[i - 1] > GAP_FACTOR * t.sample_period_s
        since = None if not capped else t_s if since is None or gap else since
        if since is not None and t_s - since >= POWER_WINDOW_S and i < len(power) and power[i] is not None:
            out.append(power[i])
    return out


def _capped_power(t: Telemetry, hw: hardware.HardwareClass, where: str) -> list[str]:
    capped_w = capped_readings(t)
    if not capped_w:
        return []
    stated_w = (t.device or {}).get("power_limit_w")
    limit_w, named = (stated_w, f"{where}.device.power_limit_w") if isinstance(stated_w, (int, float)) else \
        (hw.board_power_w, f"the {hw.name}'s board power")
    median_w = statistics.median(capped_w)
    if median_w < limit_w * (1 - CAP_SHORTFALL):
        return [f"{where}.series.throttle_mask says the power cap held clocks down (sw_power_cap), yet its power "
                f"readings after {POWER_WINDOW_S:g} s of capping have a median of {median_w:.4g} W, "
                f"{1 - median_w / limit_w:.0%} below the {limit_w:g} W limit ({named}): a capped board draws its "
                "limit"]
    return []


def _memory(t: Telemetry, where: str) -> list[str]:
    total_bytes = (t.device or {}).get("memory_total_bytes")
    used_bytes = [m for m in _series(t, "memory_used_bytes") if m is not None]
    if used_bytes and isinstance(total_bytes, (int, float)) and max(used_bytes) > total_bytes:
        return [f"{where}.series.memory_used_bytes reaches {max(used_bytes):.4g} bytes, more than the device's "
                f"{total_bytes:.4g} ({where}.device.memory_total_bytes)"]
    return []


def _peak_memory(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """torch's peak allocation on one GPU is part of that GPU's memory."""
    if record.peak_memory_method != "cuda_max_allocated":
        return []
    peaks_bytes = [record.peak_memory_bytes] + [g.peak_memory_bytes for g in record.generations]
    peak_bytes = max((p for p in peaks_bytes if p is not None), default=None)
    total_bytes = (record.telemetry.device or {}).get("memory_total_bytes") if record.telemetry.available else None
    if isinstance(total_bytes, (int, float)):
        limit_bytes, named = total_bytes, "its device's memory_total_bytes"
    else:
        limit_bytes, named = MEMORY_SPAN[1] * hw.memory_gb * 2**30, f"the {hw.name}'s {hw.memory_gb:g} GB"
    if peak_bytes is not None and peak_bytes > limit_bytes:
        return [f"peak_memory_bytes {peak_bytes:.4g} (cuda_max_allocated, one GPU's) is more than {named} "
                f"({limit_bytes:.4g} bytes): a GPU cannot allocate more memory than it has"]
    return []
