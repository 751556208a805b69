"""NVIDIA GPUs through NVML (package nvidia-ml-py, module pynvml)."""

from __future__ import annotations

import os
from typing import Any

from bench.telemetry.base import Backend, TelemetryUnavailable

# nvmlClocksEventReason* bits (older name ...ThrottleReason*), from nvml.h.
THROTTLE_BITS = {
    "gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4, "hw_slowdown": 0x8,
    "sync_boost": 0x10, "sw_thermal_slowdown": 0x20, "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80, "display_clock_setting": 0x100,
}
SLOWDOWNS = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def select_handle(nvml: Any, torch_index: int, uuid: str | None = None, visible: str | None = None) -> Any:
    """NVML handle of torch's cuda:<torch_index>. torch's index is not NVML's: match by UUID when torch gives
    one, else through CUDA_VISIBLE_DEVICES (indices or UUID prefixes). Raises TelemetryUnavailable for MIG."""
    if uuid:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    if not entries:
        return nvml.nvmlDeviceGetHandleByIndex(torch_index)
    if torch_index >= len(entries):
        raise TelemetryUnavailable(f"cuda:{torch_index} is not in CUDA_VISIBLE_DEVICES={visible}")
    entry = entries[torch_index]
    if entry.startswith("MIG-"):
        raise TelemetryUnavailable(_MIG)
    if entry.startswith("GPU-"):
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(entry):
                return handle
        raise TelemetryUnavailable(f"no GPU with UUID {entry} (from CUDA_VISIBLE_DEVICES)")
    return nvml.nvmlDeviceGetHandleByIndex(int(entry))


_MIG = ("a MIG instance: NVML's power and energy are the whole GPU's, not this instance's; "
        "run on a full GPU for energy figures, or use --telemetry none")


class NvmlBackend(Backend):
    name = "nvml"
    throttle_bits = THROTTLE_BITS
    slowdown_reasons = SLOWDOWNS

    def __init__(self, torch_index: int = 0, uuid: str | None = None):
        try:
            import pynvml
        except ImportError:
            raise TelemetryUnavailable("nvidia-ml-py is not installed") from None
        self.nvml = pynvml
        self.vendor_error = pynvml.NVMLError
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise TelemetryUnavailable(f"NVML: {exc} (no NVIDIA driver?)") from None
        try:
            self.handle = select_handle(pynvml, torch_index, uuid, os.environ.get("CUDA_VISIBLE_DEVICES"))
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise TelemetryUnavailable(f"NVML could not find cuda:{torch_index}: {exc}") from None
        except TelemetryUnavailable:
            pynvml.nvmlShutdown()
            raise
        mig = self._call(pynvml.nvmlDeviceGetMigMode, self.handle)
        if mig is not None and mig[0] == 1:
            pynvml.nvmlShutdown()
            raise TelemetryUnavailable("MIG mode is on: " + _MIG)
        self.energy_unsupported_reason = None
        if self._call(pynvml.nvmlDeviceGetTotalEnergyConsumption, self.handle) is None:
            self.energy_unsupported_reason = "NVML total-energy counter not supported on this GPU (pre-Volta or vGPU)"

    def _reasons(self) -> int | None:
        getter = getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        value = self._call(getter, self.handle) if getter else None
        return value if value is not None else self._call(self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons, self.handle)

    def energy_j(self) -> float | None:
        if self.energy_unsupported_reason:
            return None
        mj = self._call(self.nvml.nvmlDeviceGetTotalEnergyConsumption, self.handle)
        return None if mj is None else mj / 1000.0

    def sample(self) -> dict[str, float | int | None]:
        n, h = self.nvml, self.handle
        power_mw = self._call(n.nvmlDeviceGetPowerUsage, h)
        util = self._call(n.nvmlDeviceGetUtilizationRates, h)
        mem = self._call(n.nvmlDeviceGetMemoryInfo, h)
        return {
            "power_w": None if power_mw is None else power_mw / 1000.0,
            "sm_clock_mhz": self._call(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM),
            "mem_clock_mhz": self._call(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_MEM),
            "gpu_util_pct": None if util is None else util.gpu,
            "mem_util_pct": None if util is None else util.memory,
            "memory_used_bytes": None if mem is None else mem.used,
            "temperature_c": self._call(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU),
            "throttle_mask": self._reasons(),
        }

    def static_info(self) -> dict[str, Any]:
        n, h, call = self.nvml, self.handle, self._call
        name = _text(call(n.nvmlDeviceGetName, h))
        mem = call(n.nvmlDeviceGetMemoryInfo, h)
        cc = call(n.nvmlDeviceGetCudaComputeCapability, h)
        cuda = call(n.nvmlSystemGetCudaDriverVersion)
        limit, default = call(n.nvmlDeviceGetPowerManagementLimit, h), call(n.nvmlDeviceGetPowerManagementDefaultLimit, h)
        ecc, mig = call(n.nvmlDeviceGetEccMode, h), call(n.nvmlDeviceGetMigMode, h)
        count = call(n.nvmlDeviceGetCount) or 0
        same = sum(1 for i in range(count) if _text(call(n.nvmlDeviceGetName, n.nvmlDeviceGetHandleByIndex(i))) == name)
        return {
            "name": name,
            "uuid": _text(call(n.nvmlDeviceGetUUID, h)),
            "memory_total_bytes": None if mem is None else mem.total,
            "driver_version": _text(call(n.nvmlSystemGetDriverVersion)),
            "cuda_driver_version": None if cuda is None else f"{cuda // 1000}.{cuda % 1000 // 10}",
            "compute_capability": None if cc is None else f"{cc[0]}.{cc[1]}",
            "power_limit_w": None if limit is None else limit / 1000.0,
            "default_power_limit_w": None if default is None else default / 1000.0,
            "max_sm_clock_mhz": call(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM),
            "pcie_generation": call(n.nvmlDeviceGetCurrPcieLinkGeneration, h),
            "pcie_width": call(n.nvmlDeviceGetCurrPcieLinkWidth, h),
            "ecc_enabled": None if ecc is None else bool(ecc[0]),
            "mig_enabled": None if mig is None else bool(mig[0]),
            "persistence_mode": None if (p := call(n.nvmlDeviceGetPersistenceMode, h)) is None else bool(p),
            "same_model_count": same,
        }

    def close(self) -> None:
        self._call(self.nvml.nvmlShutdown)
