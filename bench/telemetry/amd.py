"""AMD GPUs through amdsmi (ROCm's libamd_smi). Without ROCm its import prints to stdout and raises KeyError."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

from bench.telemetry.base import Backend, TelemetryUnavailable

# amdsmi's per-bit throttle decoding differs between ASICs; the record keeps the raw status word and names the
# share of samples in which any throttle bit was set.
THROTTLE_BITS = {"throttle_status": 0xFFFFFFFFFFFFFFFF}


def import_amdsmi() -> Any:
    """Import amdsmi silently. Raises TelemetryUnavailable (with why) for any failure, KeyError included."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            import amdsmi
    except Exception as exc:  # noqa: BLE001 - KeyError/OSError/ImportError: all mean "not usable here"
        raise TelemetryUnavailable(f"amdsmi not usable ({type(exc).__name__}: {exc})") from None
    return amdsmi


def select_handle(handles: list[Any], torch_index: int, visible: str | None, bdf_of: Callable[[Any], str],
                  bdf: str | None = None) -> Any:
    """amdsmi handle of torch's cuda:<torch_index>: by PCI bus id when torch gives one, else HIP_VISIBLE_DEVICES."""
    if bdf:
        for h in handles:
            if bdf_of(h).lower() == bdf.lower():
                return h
        raise TelemetryUnavailable(f"no AMD GPU at PCI bus id {bdf}")
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    index = int(entries[torch_index]) if entries else torch_index
    if index >= len(handles):
        raise TelemetryUnavailable(f"cuda:{torch_index} maps to AMD GPU {index}, but only {len(handles)} exist")
    return handles[index]


class AmdSmiBackend(Backend):
    name = "amdsmi"
    throttle_bits = THROTTLE_BITS
    slowdown_reasons = ("throttle_status",)

    def __init__(self, torch_index: int = 0, bdf: str | None = None):
        smi = import_amdsmi()
        self.smi = smi
        self.vendor_error = smi.AmdSmiException
        try:
            smi.amdsmi_init()
            handles = smi.amdsmi_get_processor_handles()
        except smi.AmdSmiException as exc:
            raise TelemetryUnavailable(f"amdsmi: {exc}") from None
        visible = os.environ.get("HIP_VISIBLE_DEVICES") or os.environ.get("ROCR_VISIBLE_DEVICES")
        self.handle = select_handle(handles, torch_index, visible, smi.amdsmi_get_gpu_device_bdf, bdf)
        self.energy_unsupported_reason = None
        if self.energy_j() is None:
            self.energy_unsupported_reason = "amdsmi energy counter not supported on this GPU"

    def energy_j(self) -> float | None:
        info = self._call(self.smi.amdsmi_get_energy_count, self.handle)
        if not info:
            return None
        raw = info.get("energy_accumulator", info.get("power"))  # renamed in ROCm 6.3
        resolution_uj = info.get("counter_resolution")
        if raw is None or not resolution_uj or resolution_uj <= 0:
            return None
        return raw * resolution_uj / 1e6

    def sample(self) -> dict[str, float | int | None]:
        s, h, call = self.smi, self.handle, self._call
        power = call(s.amdsmi_get_power_info, h) or {}
        gfx = call(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.GFX) or {}
        mem_clk = call(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.MEM) or {}
        activity = call(s.amdsmi_get_gpu_activity, h) or {}
        vram = call(s.amdsmi_get_gpu_vram_usage, h) or {}
        metrics = call(s.amdsmi_get_gpu_metrics_info, h) or {}
        watts = power.get("current_socket_power")
        if not isinstance(watts, (int, float)):  # "N/A" on some ASICs: fall back to the average
            watts = power.get("average_socket_power")
        return {
            "power_w": float(watts) if isinstance(watts, (int, float)) else None,
            "sm_clock_mhz": gfx.get("clk"),
            "mem_clock_mhz": mem_clk.get("clk"),
            "gpu_util_pct": activity.get("gfx_activity"),
            "mem_util_pct": activity.get("umc_activity"),
            "memory_used_bytes": None if vram.get("vram_used") is None else vram["vram_used"] * 2**20,
            "temperature_c": call(s.amdsmi_get_temp_metric, h, s.AmdSmiTemperatureType.HOTSPOT,
                                  s.AmdSmiTemperatureMetric.CURRENT),
            "throttle_mask": metrics.get("throttle_status"),
        }

    def static_info(self) -> dict[str, Any]:
        s, h, call = self.smi, self.handle, self._call
        asic = call(s.amdsmi_get_gpu_asic_info, h) or {}
        vram = call(s.amdsmi_get_gpu_vram_info, h) or {}
        cap = call(s.amdsmi_get_power_cap_info, h) or {}
        clock = call(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.GFX) or {}
        driver = call(s.amdsmi_get_gpu_driver_info, h) or {}
        handles = call(s.amdsmi_get_processor_handles) or []
        name = asic.get("market_name")
        same = sum(1 for x in handles if (call(s.amdsmi_get_gpu_asic_info, x) or {}).get("market_name") == name)
        return {
            "name": name,
            "uuid": call(s.amdsmi_get_gpu_device_uuid, h),
            "pci_bus_id": call(s.amdsmi_get_gpu_device_bdf, h),
            "memory_total_bytes": None if vram.get("vram_size") is None else vram["vram_size"] * 2**20,
            "driver_version": driver.get("driver_version"),
            "power_limit_w": None if cap.get("power_cap") is None else cap["power_cap"] / 1e6,
            "default_power_limit_w": None if cap.get("default_power_cap") is None else cap["default_power_cap"] / 1e6,
            "max_sm_clock_mhz": clock.get("max_clk"),
            "same_model_count": same,
        }

    def close(self) -> None:
        self._call(self.smi.amdsmi_shut_down)
