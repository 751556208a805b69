"""Fake vendor libraries: the only place tests stand in for hardware."""

from __future__ import annotations

import dataclasses
import types
from unittest import mock

import pynvml


@dataclasses.dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    energy_mj: int | None = 5_000_000  # None: counter not supported
    power_mw: int = 650_000
    sm_mhz: int = 1755
    mem_mhz: int = 2619
    max_sm_mhz: int = 1980
    temp_c: int = 61
    reasons: int = 0
    limit_mw: int = 700_000
    default_limit_mw: int = 700_000
    mig: int = 0
    util: tuple[int, int] = (99, 45)
    memory: tuple[int, int] = (85_520_809_984, 30_000_000_000)  # total, used


def _not_supported():
    return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


def fake_pynvml(gpus: list[FakeGpu], library_missing: bool = False) -> mock.MagicMock:
    """An autospec of the real pynvml: every call is checked against the real function's signature."""
    fake = mock.create_autospec(pynvml)
    for name in dir(pynvml):
        value = getattr(pynvml, name)
        if name.startswith("NVML_") or (isinstance(value, type) and issubclass(value, Exception)):
            setattr(fake, name, value)
    if library_missing:
        fake.nvmlInit.side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    def by_uuid(uuid):
        for g in gpus:
            if g.uuid == uuid:
                return g
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def energy(h):
        if h.energy_mj is None:
            raise _not_supported()
        return h.energy_mj

    fake.nvmlDeviceGetCount.side_effect = lambda: len(gpus)
    fake.nvmlDeviceGetHandleByIndex.side_effect = lambda i: gpus[i]
    fake.nvmlDeviceGetHandleByUUID.side_effect = by_uuid
    fake.nvmlDeviceGetUUID.side_effect = lambda h: h.uuid
    fake.nvmlDeviceGetName.side_effect = lambda h: h.name
    fake.nvmlDeviceGetTotalEnergyConsumption.side_effect = energy
    fake.nvmlDeviceGetPowerUsage.side_effect = lambda h: h.power_mw
    fake.nvmlDeviceGetClockInfo.side_effect = lambda h, t: h.sm_mhz if t == pynvml.NVML_CLOCK_SM else h.mem_mhz
    fake.nvmlDeviceGetMaxClockInfo.side_effect = lambda h, t: h.max_sm_mhz
    fake.nvmlDeviceGetUtilizationRates.side_effect = lambda h: types.SimpleNamespace(gpu=h.util[0], memory=h.util[1])
    fake.nvmlDeviceGetMemoryInfo.side_effect = lambda h: types.SimpleNamespace(
        total=h.memory[0], used=h.memory[1], free=h.memory[0] - h.memory[1])
    fake.nvmlDeviceGetTemperature.side_effect = lambda h, s: h.temp_c
    fake.nvmlDeviceGetCurrentClocksEventReasons.side_effect = lambda h: h.reasons
    fake.nvmlSystemGetDriverVersion.return_value = "550.54.15"
    fake.nvmlSystemGetCudaDriverVersion.return_value = 12040
    fake.nvmlDeviceGetCudaComputeCapability.side_effect = lambda h: (9, 0)
    fake.nvmlDeviceGetPowerManagementLimit.side_effect = lambda h: h.limit_mw
    fake.nvmlDeviceGetPowerManagementDefaultLimit.side_effect = lambda h: h.default_limit_mw
    fake.nvmlDeviceGetCurrPcieLinkGeneration.side_effect = lambda h: 5
    fake.nvmlDeviceGetCurrPcieLinkWidth.side_effect = lambda h: 16
    fake.nvmlDeviceGetEccMode.side_effect = lambda h: (1, 1)
    fake.nvmlDeviceGetMigMode.side_effect = lambda h: (h.mig, h.mig)
    fake.nvmlDeviceGetPersistenceMode.side_effect = lambda h: 1
    return fake


class AmdSmiException(Exception):
    pass


def fake_amdsmi(n_gpus: int = 2, energy_raw: int = 2_000_000, resolution_uj: float = 15.3) -> types.ModuleType:
    """A stand-in for ROCm's amdsmi module (which cannot be imported without ROCm, so it cannot be autospecced)."""
    m = types.ModuleType("amdsmi")
    m.AmdSmiException = AmdSmiException
    m.AmdSmiClkType = types.SimpleNamespace(GFX="gfx", MEM="mem")
    m.AmdSmiTemperatureType = types.SimpleNamespace(HOTSPOT="hotspot")
    m.AmdSmiTemperatureMetric = types.SimpleNamespace(CURRENT="current")
    handles = [f"handle{i}" for i in range(n_gpus)]
    m.amdsmi_init = lambda: None
    m.amdsmi_shut_down = lambda: None
    m.amdsmi_get_processor_handles = lambda: handles
    m.amdsmi_get_gpu_device_bdf = lambda h: f"0000:{0xc1 + handles.index(h):02x}:00.0"
    m.amdsmi_get_gpu_device_uuid = lambda h: f"uuid-{h}"
    m.amdsmi_get_energy_count = lambda h: {"energy_accumulator": energy_raw, "counter_resolution": resolution_uj,
                                           "timestamp": 0}
    m.amdsmi_get_power_info = lambda h: {"current_socket_power": "N/A", "average_socket_power": 598}
    m.amdsmi_get_clock_info = lambda h, t: {"clk": 2100 if t == "gfx" else 1300, "max_clk": 2100, "min_clk": 500}
    m.amdsmi_get_gpu_activity = lambda h: {"gfx_activity": 100, "umc_activity": 40, "mm_activity": 0}
    m.amdsmi_get_gpu_vram_usage = lambda h: {"vram_total": 196_592, "vram_used": 1_024}
    m.amdsmi_get_temp_metric = lambda h, t, k: 70
    m.amdsmi_get_gpu_metrics_info = lambda h: {"throttle_status": 0}
    m.amdsmi_get_gpu_asic_info = lambda h: {"market_name": "AMD Instinct MI300X"}
    m.amdsmi_get_gpu_vram_info = lambda h: {"vram_size": 196_592}
    m.amdsmi_get_power_cap_info = lambda h: {"power_cap": 750_000_000, "default_power_cap": 750_000_000}
    m.amdsmi_get_gpu_driver_info = lambda h: {"driver_version": "6.8.5"}
    return m
