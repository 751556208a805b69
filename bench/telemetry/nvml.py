"""NVIDIA GPUs through NVML (package nvidia-ml-py, module pynvml)."""

from __future__ import annotations

import os
from typing import Any

from bench.telemetry.base import Backend, TelemetryUnavailable, flag, reading, text

# nvmlClocksEventReason* bits (older name ...ThrottleReason*), from nvml.h; tests check them against pynvml's own.
THROTTLE_BITS = {
    "gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4, "hw_slowdown": 0x8,
    "sync_boost": 0x10, "sw_thermal_slowdown": 0x20, "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80, "display_clock_setting": 0x100,
}
SLOWDOWNS = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")
_MIG = ("a MIG instance: NVML's power and energy are the whole GPU's, not this instance's; "
        "run on a full GPU for energy figures, or use --telemetry none")


def select_handle(nvml: Any, torch_index: int, uuid: str | None = None, visible: str | None = None) -> Any:
    """NVML handle of torch's cuda:<torch_index>. torch's index is not NVML's: match by UUID when torch gives
    one, else through CUDA_VISIBLE_DEVICES (indices or UUID prefixes).

    Raises TelemetryUnavailable for a MIG instance, a device that is not there, and any NVML error on the way."""
    try:
        return _select(nvml, torch_index, uuid, visible)
    except nvml.NVMLError as exc:
        raise TelemetryUnavailable(f"NVML could not find cuda:{torch_index}: {exc}") from None


def _select(nvml: Any, torch_index: int, uuid: str | None, visible: str | None) -> Any:
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
        return _by_uuid_prefix(nvml, entry)
    if not entry.isdigit():
        raise TelemetryUnavailable(f"CUDA_VISIBLE_DEVICES entry {entry!r} is neither an index nor a UUID")
    return nvml.nvmlDeviceGetHandleByIndex(int(entry))


def _by_uuid_prefix(nvml: Any, prefix: str) -> Any:
    """CUDA accepts any unique UUID prefix; NVML wants the whole UUID, so look at every GPU's."""
    failures = []
    for i in range(nvml.nvmlDeviceGetCount()):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            uuid = text(nvml.nvmlDeviceGetUUID(handle))
        except nvml.NVMLError as exc:  # another GPU failing is not ours failing: note it and look further
            failures.append(f"GPU {i}: {exc}")
            continue
        if uuid and uuid.startswith(prefix):
            return handle
    unread = f" ({'; '.join(failures)})" if failures else ""
    raise TelemetryUnavailable(f"no GPU with UUID {prefix} (from CUDA_VISIBLE_DEVICES){unread}")


class NvmlBackend(Backend):
    name = "nvml"
    throttle_bits = THROTTLE_BITS
    slowdown_reasons = SLOWDOWNS

    def __init__(self, torch_index: int = 0, uuid: str | None = None):
        super().__init__()
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
            mig = self._call(pynvml.nvmlDeviceGetMigMode, self.handle)  # [current, pending]
            if mig is not None and mig[0] == pynvml.NVML_DEVICE_MIG_ENABLE:
                raise TelemetryUnavailable("MIG mode is on: " + _MIG)
        except TelemetryUnavailable:
            self.close()
            raise
        self.energy_unsupported_reason = None
        if self.energy_j() is None:
            self.energy_unsupported_reason = "NVML total-energy counter not supported on this GPU (pre-Volta or vGPU)"

    def _unsupported(self, exc: Exception) -> bool:
        n = self.nvml
        return getattr(exc, "value", None) in (n.NVML_ERROR_NOT_SUPPORTED, n.NVML_ERROR_FUNCTION_NOT_FOUND)

    def _lost(self, exc: Exception) -> bool:
        return getattr(exc, "value", None) == self.nvml.NVML_ERROR_GPU_IS_LOST

    def _reasons(self) -> int | None:
        # The Event name is NVML 12.535's: older bindings lack it, older drivers answer FUNCTION_NOT_FOUND.
        getter = getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        value = self._call(getter, self.handle) if getter else None
        if value is None:
            value = self._call(self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons, self.handle)
        return reading(value, "throttle_mask")

    def energy_j(self) -> float | None:
        return reading(self._call(self.nvml.nvmlDeviceGetTotalEnergyConsumption, self.handle), "energy_j", 1e-3)

    def sample(self) -> dict[str, float | int | None]:
        n, h, call = self.nvml, self.handle, self._call
        util = call(n.nvmlDeviceGetUtilizationRates, h)  # c_nvmlUtilization_t: .gpu, .memory
        mem = call(n.nvmlDeviceGetMemoryInfo, h)  # c_nvmlMemory_t: .total, .free, .used (bytes)
        return {
            "power_w": reading(call(n.nvmlDeviceGetPowerUsage, h), "power_w", 1e-3),  # mW
            "sm_clock_mhz": reading(call(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM), "sm_clock_mhz"),
            "mem_clock_mhz": reading(call(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_MEM), "mem_clock_mhz"),
            "gpu_util_pct": reading(getattr(util, "gpu", None), "gpu_util_pct"),
            "mem_util_pct": reading(getattr(util, "memory", None), "mem_util_pct"),
            "memory_used_bytes": reading(getattr(mem, "used", None), "memory_used_bytes"),
            "temperature_c": reading(call(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU), "temperature_c"),
            "throttle_mask": self._reasons(),
        }

    def static_info(self) -> dict[str, Any]:
        n, h, call = self.nvml, self.handle, self._call
        name = text(call(n.nvmlDeviceGetName, h))
        mem = call(n.nvmlDeviceGetMemoryInfo, h)
        cc = call(n.nvmlDeviceGetCudaComputeCapability, h)  # (major, minor)
        cuda = reading(call(n.nvmlSystemGetCudaDriverVersion), "cuda_version")
        ecc, mig = call(n.nvmlDeviceGetEccMode, h), call(n.nvmlDeviceGetMigMode, h)  # [current, pending] each
        return {
            "name": name,
            "uuid": text(call(n.nvmlDeviceGetUUID, h)),
            "memory_total_bytes": reading(getattr(mem, "total", None), "memory_total_bytes"),
            "driver_version": text(call(n.nvmlSystemGetDriverVersion)),
            "cuda_driver_version": None if cuda is None else f"{cuda // 1000}.{cuda % 1000 // 10}",
            "compute_capability": f"{cc[0]}.{cc[1]}" if _pair_of_ints(cc) else None,
            "power_limit_w": reading(call(n.nvmlDeviceGetPowerManagementLimit, h), "power_limit_w", 1e-3),
            "default_power_limit_w": reading(call(n.nvmlDeviceGetPowerManagementDefaultLimit, h), "power_limit_w",
                                             1e-3),
            "max_sm_clock_mhz": reading(call(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM), "max_sm_clock_mhz"),
            "pcie_generation": reading(call(n.nvmlDeviceGetCurrPcieLinkGeneration, h), "pcie_generation"),
            "pcie_width": reading(call(n.nvmlDeviceGetCurrPcieLinkWidth, h), "pcie_width"),
            "ecc_enabled": flag(ecc[0]) if _pair_of_ints(ecc) else None,
            "mig_enabled": flag(mig[0]) if _pair_of_ints(mig) else None,
            "persistence_mode": flag(call(n.nvmlDeviceGetPersistenceMode, h)),
            "same_model_count": self._same_model_count(name),
        }

    def _same_model_count(self, name: str | None) -> int | None:
        """GPUs in this machine with this GPU's name; None when any of them cannot be read."""
        n, call = self.nvml, self._call
        count = reading(call(n.nvmlDeviceGetCount), "count")
        handles = [call(n.nvmlDeviceGetHandleByIndex, i) for i in range(count or 0)]
        names = [text(call(n.nvmlDeviceGetName, h)) if h is not None else None for h in handles]
        return None if name is None or count is None or None in names else names.count(name)

    def _shutdown(self) -> None:
        self.nvml.nvmlShutdown()


def _pair_of_ints(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(type(v) is int for v in value)
