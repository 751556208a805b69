"""AMD GPUs through amdsmi (ROCm's libamd_smi). Without ROCm its import prints to stdout and raises KeyError.

amdsmi answers "N/A" for unsupported fields, bools for flags and raw uint sentinels where it forgets to translate
them; every value goes through `reading` or `text` before it is used, so none of them reaches a series.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

from bench.telemetry.base import Backend, TelemetryUnavailable, reading, text

# amdsmi reduces the SMU's throttle word to a bool (gpu_metrics "throttle_status", isBool=True); older releases gave
# the raw word. Either way the record keeps one mask and the share of samples in which it was non-zero.
THROTTLE_BITS = {"throttle_status": 0xFFFFFFFF}
AMDSMI_STATUS_NOT_SUPPORTED = 2  # amdsmi_wrapper.py


def import_amdsmi() -> Any:
    """Import amdsmi silently. Raises TelemetryUnavailable (with why) for any failure, KeyError included."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            import amdsmi
    except Exception as exc:  # noqa: BLE001 - KeyError/OSError/ImportError: all mean "not usable here"
        raise TelemetryUnavailable(f"amdsmi not usable ({type(exc).__name__}: {exc})") from None
    return amdsmi


def select_handle(handles: list[Any], torch_index: int, visible: str | None, bdf_of: Callable[[Any], str | None],
                  bdf: str | None = None) -> Any:
    """amdsmi handle of torch's cuda:<torch_index>: by PCI bus id when torch gives one, else HIP_VISIBLE_DEVICES.

    Raises TelemetryUnavailable when no handle matches. `bdf_of` returns None for a GPU it cannot read."""
    if bdf:
        for h in handles:
            if (bdf_of(h) or "").lower() == bdf.lower():
                return h
        raise TelemetryUnavailable(f"no AMD GPU at PCI bus id {bdf}")
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    if entries and torch_index >= len(entries):
        raise TelemetryUnavailable(f"cuda:{torch_index} is not in HIP_VISIBLE_DEVICES={visible}")
    if entries and not entries[torch_index].isdigit():
        raise TelemetryUnavailable(f"HIP_VISIBLE_DEVICES entry {entries[torch_index]!r} is not an index")
    index = int(entries[torch_index]) if entries else torch_index
    if index >= len(handles):
        raise TelemetryUnavailable(f"cuda:{torch_index} maps to AMD GPU {index}, but only {len(handles)} exist")
    return handles[index]


class AmdSmiBackend(Backend):
    name = "amdsmi"
    throttle_bits = THROTTLE_BITS
    slowdown_reasons = ("throttle_status",)

    def __init__(self, torch_index: int = 0, bdf: str | None = None):
        super().__init__()
        smi = import_amdsmi()
        self.smi = smi
        # The Python wrapper's own post-processing can fail on odd data (int() of a serial, a decode): a missing
        # reading too, not a crash.
        self.vendor_error = (smi.AmdSmiException, ArithmeticError, LookupError, TypeError, ValueError)
        try:
            smi.amdsmi_init()
        except smi.AmdSmiException as exc:
            raise TelemetryUnavailable(f"amdsmi: {exc}") from None
        try:
            self.handle = self._find(torch_index, bdf)
        except TelemetryUnavailable:
            self.close()
            raise
        self.energy_unsupported_reason = None
        if self.energy_j() is None:
            self.energy_unsupported_reason = "amdsmi energy counter not supported on this GPU"

    def _find(self, torch_index: int, bdf: str | None) -> Any:
        smi = self.smi
        try:
            handles = smi.amdsmi_get_processor_handles()
        except smi.AmdSmiException as exc:
            raise TelemetryUnavailable(f"amdsmi: {exc}") from None
        if not handles:
            raise TelemetryUnavailable("amdsmi found no AMD GPU")
        visible = os.environ.get("HIP_VISIBLE_DEVICES") or os.environ.get("ROCR_VISIBLE_DEVICES")
        return select_handle(handles, torch_index, visible,
                             lambda h: text(self._call(smi.amdsmi_get_gpu_device_bdf, h)), bdf)

    def _unsupported(self, exc: Exception) -> bool:
        return getattr(exc, "err_code", None) == AMDSMI_STATUS_NOT_SUPPORTED

    def _dict(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        value = self._call(fn, *args)
        return value if isinstance(value, dict) else {}

    def energy_j(self) -> float | None:
        info = self._dict(self.smi.amdsmi_get_energy_count, self.handle)
        raw = info.get("energy_accumulator", info.get("power"))  # 'power' until ROCm 6.3, removed in 6.4
        ticks = reading(raw, "counter_ticks")
        resolution_uj = reading(info.get("counter_resolution"), "counter_resolution_uj")
        if ticks is None or resolution_uj is None:
            return None
        return reading(ticks * resolution_uj, "energy_j", 1e-6)

    def _power_w(self) -> float | None:
        power = self._dict(self.smi.amdsmi_get_power_info, self.handle)
        # MI300 reports current_socket_power and "N/A" for the average; older ASICs the other way round.
        watts = reading(power.get("current_socket_power"), "power_w")
        return watts if watts is not None else reading(power.get("average_socket_power"), "power_w")

    def sample(self) -> dict[str, float | int | None]:
        s, h, call = self.smi, self.handle, self._call
        activity = self._dict(s.amdsmi_get_gpu_activity, h)
        vram = self._dict(s.amdsmi_get_gpu_vram_usage, h)  # MB
        status = self._dict(s.amdsmi_get_gpu_metrics_info, h).get("throttle_status")
        temp = call(s.amdsmi_get_temp_metric, h, s.AmdSmiTemperatureType.HOTSPOT, s.AmdSmiTemperatureMetric.CURRENT)
        return {
            "power_w": self._power_w(),
            "sm_clock_mhz": reading(self._dict(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.GFX).get("clk"),
                                    "sm_clock_mhz"),
            "mem_clock_mhz": reading(self._dict(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.MEM).get("clk"),
                                     "mem_clock_mhz"),
            "gpu_util_pct": reading(activity.get("gfx_activity"), "gpu_util_pct"),
            "mem_util_pct": reading(activity.get("umc_activity"), "mem_util_pct"),
            "memory_used_bytes": reading(vram.get("vram_used"), "memory_used_bytes", 2**20),
            "temperature_c": reading(temp, "temperature_c"),
            "throttle_mask": reading(int(status) if isinstance(status, bool) else status, "throttle_word_u32"),
        }

    def static_info(self) -> dict[str, Any]:
        s, h, call = self.smi, self.handle, self._call
        cap = self._dict(s.amdsmi_get_power_cap_info, h)  # uW on bare metal
        name = text(self._dict(s.amdsmi_get_gpu_asic_info, h).get("market_name"))
        return {
            "name": name,
            "uuid": text(call(s.amdsmi_get_gpu_device_uuid, h)),
            "pci_bus_id": text(call(s.amdsmi_get_gpu_device_bdf, h)),
            "memory_total_bytes": reading(self._dict(s.amdsmi_get_gpu_vram_info, h).get("vram_size"),
                                          "memory_total_bytes", 2**20),
            "driver_version": text(self._dict(s.amdsmi_get_gpu_driver_info, h).get("driver_version")),
            "power_limit_w": reading(cap.get("power_cap"), "power_limit_w", 1e-6),
            "default_power_limit_w": reading(cap.get("default_power_cap"), "power_limit_w", 1e-6),
            "max_sm_clock_mhz": reading(self._dict(s.amdsmi_get_clock_info, h, s.AmdSmiClkType.GFX).get("max_clk"),
                                        "max_sm_clock_mhz"),
            "same_model_count": self._same_model_count(name),
        }

    def _same_model_count(self, name: str | None) -> int | None:
        """GPUs in this machine with this GPU's name; None when any of them cannot be read."""
        handles = self._call(self.smi.amdsmi_get_processor_handles)
        if name is None or not isinstance(handles, list):
            return None
        names = [text(self._dict(self.smi.amdsmi_get_gpu_asic_info, x).get("market_name")) for x in handles]
        return None if None in names else names.count(name)

    def _shutdown(self) -> None:
        self.smi.amdsmi_shut_down()
