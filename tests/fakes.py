"""Fake vendor libraries: the only place tests stand in for hardware. Each answers what the real library answers,
in the same shapes, and refuses what the real one would refuse."""

from __future__ import annotations

import ctypes
import dataclasses
import inspect
import types
from collections.abc import Callable
from enum import IntEnum
from typing import Any
from unittest import mock

import pynvml

# --- NVML (nvidia-ml-py's pynvml, installed, so the fake is an autospec of the real module) ----------------------


@dataclasses.dataclass
class FakeGpu:
    uuid: str
    name: str | bytes = "NVIDIA H100 80GB HBM3"  # str since nvidia-ml-py 11.5 (convertStrBytes); bytes before
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
    lost: bool = False  # every query about it raises NVML_ERROR_GPU_IS_LOST, as after an Xid 79
    errors: dict[str, int] = dataclasses.field(default_factory=dict)  # pynvml function -> NVML_ERROR_* it raises


def _device_answers(h_answers: dict[str, Callable[..., Any]], state: dict[str, int]) -> dict[str, Callable[..., Any]]:
    """Per-handle answers, wrapped to raise what NVML raises: uninitialized, lost GPU, configured errors."""
    def wrap(name: str, answer: Callable[..., Any]) -> Callable[..., Any]:
        def call(h: FakeGpu, *args: Any) -> Any:
            if not state["init"]:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
            if h.lost:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
            if name in h.errors:
                raise pynvml.NVMLError(h.errors[name])
            return answer(h, *args)
        return call
    return {name: wrap(name, answer) for name, answer in h_answers.items()}


def _energy(h: FakeGpu) -> int:
    if h.energy_mj is None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    return h.energy_mj


# What each real function returns (nvidia-ml-py 13.x, pynvml.py): ints from c_uint/c_ulonglong .value, str from
# convertStrBytes, ctypes structs for utilization and memory, lists for the [current, pending] modes.
_PER_HANDLE: dict[str, Callable[..., Any]] = {
    "nvmlDeviceGetUUID": lambda h: h.uuid,
    "nvmlDeviceGetName": lambda h: h.name,
    "nvmlDeviceGetTotalEnergyConsumption": _energy,
    "nvmlDeviceGetPowerUsage": lambda h: h.power_mw,
    "nvmlDeviceGetClockInfo": lambda h, t: h.sm_mhz if t == pynvml.NVML_CLOCK_SM else h.mem_mhz,
    "nvmlDeviceGetMaxClockInfo": lambda h, t: h.max_sm_mhz,
    "nvmlDeviceGetUtilizationRates": lambda h: pynvml.c_nvmlUtilization_t(gpu=h.util[0], memory=h.util[1]),
    "nvmlDeviceGetMemoryInfo": lambda h, version=None: pynvml.c_nvmlMemory_t(
        total=h.memory[0], free=h.memory[0] - h.memory[1], used=h.memory[1]),
    "nvmlDeviceGetTemperature": lambda h, sensor: h.temp_c,
    "nvmlDeviceGetCurrentClocksEventReasons": lambda h: h.reasons,
    "nvmlDeviceGetCurrentClocksThrottleReasons": lambda h: h.reasons,
    "nvmlDeviceGetCudaComputeCapability": lambda h: (9, 0),
    "nvmlDeviceGetPowerManagementLimit": lambda h: h.limit_mw,
    "nvmlDeviceGetPowerManagementDefaultLimit": lambda h: h.default_limit_mw,
    "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 5,
    "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 16,
    "nvmlDeviceGetEccMode": lambda h: [1, 1],
    "nvmlDeviceGetMigMode": lambda h: [h.mig, h.mig],
    "nvmlDeviceGetPersistenceMode": lambda h: 1,
}


def _unconfigured(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"pynvml.{name} was called, but tests/fakes.py does not fake it: add it there")
    return refuse


def _system_answers(gpus: list[FakeGpu], state: dict[str, int], library_missing: bool) -> dict[str, Callable]:
    def need_init() -> None:
        if not state["init"]:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def init() -> None:
        if library_missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        state["init"] += 1

    def shutdown() -> None:
        need_init()
        state["init"] -= 1

    def by_index(i: int) -> FakeGpu:
        need_init()
        if not 0 <= i < len(gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpus[i]

    def by_uuid(uuid: str) -> FakeGpu:
        need_init()
        for g in gpus:
            if g.uuid == uuid:
                return g
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def answer(value: Any) -> Callable[[], Any]:
        return lambda: (need_init(), value)[1]

    return {"nvmlInit": init, "nvmlShutdown": shutdown, "nvmlDeviceGetHandleByIndex": by_index,
            "nvmlDeviceGetHandleByUUID": by_uuid, "nvmlDeviceGetCount": lambda: answer(len(gpus))(),
            "nvmlSystemGetDriverVersion": answer("550.54.15"), "nvmlSystemGetCudaDriverVersion": answer(12040)}


def fake_pynvml(gpus: list[FakeGpu], library_missing: bool = False) -> mock.MagicMock:
    """An autospec of the real pynvml: every call is checked against the real function's signature, and a call
    this fake does not answer raises AssertionError naming the function instead of returning a MagicMock.
    `fake.initialized()` is how many nvmlInit calls are not yet matched by nvmlShutdown."""
    fake = mock.create_autospec(pynvml)
    for name, value in vars(pynvml).items():
        if not callable(value) or (isinstance(value, type) and issubclass(value, Exception)):
            setattr(fake, name, value)  # constants and error classes are the real ones
    state = {"init": 0}
    answers = {**_system_answers(gpus, state, library_missing), **_device_answers(_PER_HANDLE, state)}
    for name, value in vars(pynvml).items():
        if inspect.isfunction(value) or inspect.isbuiltin(value):
            getattr(fake, name).side_effect = answers.get(name) or _unconfigured(name)
            getattr(fake, name).__name__ = name  # as the real function's; the backend names failing calls by it
    fake.initialized = lambda: state["init"]
    return fake


# --- amdsmi (ROCm's; it cannot be imported without ROCm, so it cannot be autospecced) -----------------------------
#
# Every answer below is what ROCm's Python wrapper returns, from its source: amdsmi 7.0.2 as published on PyPI
# (amdsmi-7.0.2-py3-none-any.whl, amdsmi/amdsmi_interface.py = ROCm's py-interface/amdsmi_interface.py); "A:" lines
# are that file, "W:" amdsmi/amdsmi_wrapper.py, "E:" amdsmi/amdsmi_exception.py. ROCm/amdsmi@0ceca28 (Oct 2024) is
# the same except where noted.

UINT8_MAX, UINT16_MAX, UINT32_MAX, UINT64_MAX = 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF  # A:36-40
AMDSMI_STATUS_NOT_SUPPORTED, AMDSMI_STATUS_NOT_INIT = 2, 32  # W:339, W:360


class AmdSmiException(Exception):  # E:24
    pass


class AmdSmiLibraryException(AmdSmiException):  # E:29; raised by _check_res for any status but SUCCESS (A:679-698)
    def __init__(self, err_code: int):
        super().__init__(err_code)
        self.err_code = abs(err_code)

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | AMDSMI status {self.err_code}"


class AmdSmiParameterException(AmdSmiException):  # E:116; a handle or enum of the wrong type
    pass


class AmdSmiClkType(IntEnum):  # A:197, values W:401-412 (GFX is SYS's alias)
    SYS = 0
    GFX = 0
    DF = 1
    DCEF = 2
    SOC = 3
    MEM = 4


class AmdSmiTemperatureType(IntEnum):  # A:214, values W:546-549
    EDGE = 0
    HOTSPOT = 1
    JUNCTION = 1
    VRAM = 2


class AmdSmiTemperatureMetric(IntEnum):  # A:336, values W:1590-1592
    CURRENT = 0
    MAX = 1


amdsmi_processor_handle = ctypes.c_void_p  # W:255: ctypes.POINTER(None)


def _validate_if_max_uint(value: int, uint_max: int, is_activity: bool = False, is_bool: bool = False) -> Any:
    """A:751-771, scalar branch: the type's max (or >100 for an activity) is "N/A"; flags become bools."""
    if value == uint_max or (is_activity and value > 100):
        return "N/A"
    return bool(value) if is_bool else value


@dataclasses.dataclass
class FakeAmdGpu:
    """Raw values as libamd_smi fills its C structs, before the Python wrapper turns sentinels into "N/A"."""

    bdf: str
    market_name: str = "AMD Instinct MI300X"
    energy_accumulator: int = 2_000_000
    counter_resolution_uj: float = 15.3  # per tick, a c_float
    current_socket_power_w: int = UINT16_MAX  # 0xFFFF -> "N/A"
    average_socket_power_w: int = 598
    gfx_clk_mhz: int = 2100
    mem_clk_mhz: int = 1300
    max_gfx_clk_mhz: int = 2100
    gfx_activity_pct: int = 100  # 0xFFFF -> "N/A"
    umc_activity_pct: int = 40
    vram_total_mb: int = 196_592
    vram_used_mb: int = 1_024
    temperature_hotspot_c: int = 70
    throttle_status: int = 0  # uint32 in gpu_metrics; the wrapper hands out a bool
    power_cap_uw: int = 750_000_000
    default_power_cap_uw: int = 750_000_000
    driver_version: str = "6.8.5"
    errors: dict[str, int] = dataclasses.field(default_factory=dict)  # amdsmi function -> AMDSMI_STATUS_* it raises


def fake_amdsmi(gpus: list[FakeAmdGpu]) -> types.ModuleType:
    """A stand-in for the amdsmi module over these GPUs. It checks handle and enum types as the real wrapper does
    and raises AMDSMI_STATUS_NOT_INIT before amdsmi_init / after amdsmi_shut_down. `initialized()` tells which."""
    m = types.ModuleType("amdsmi")
    m.AmdSmiException, m.AmdSmiLibraryException = AmdSmiException, AmdSmiLibraryException
    m.AmdSmiParameterException = AmdSmiParameterException
    m.AmdSmiClkType, m.AmdSmiTemperatureType = AmdSmiClkType, AmdSmiTemperatureType
    m.AmdSmiTemperatureMetric = AmdSmiTemperatureMetric
    library = _AmdSmi(gpus)
    for name in dir(library):
        if name.startswith("amdsmi_"):
            setattr(m, name, getattr(library, name))
    m.initialized = lambda: library.initialized
    return m


class _AmdSmi:
    """The amdsmi functions the backend calls, one method each, named and shaped as the real ones."""

    def __init__(self, gpus: list[FakeAmdGpu]):
        self.gpus, self.initialized = gpus, False

    def _gpu(self, handle: Any, fn: str) -> FakeAmdGpu:
        if not isinstance(handle, amdsmi_processor_handle):  # every A: getter starts with this check
            raise AmdSmiParameterException(f"expected amdsmi_processor_handle, got {type(handle).__name__}")
        if not self.initialized:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        g = self.gpus[handle.value - 1]
        if fn in g.errors:
            raise AmdSmiLibraryException(g.errors[fn])
        return g

    def amdsmi_init(self, flag: int = 2) -> None:  # A:1895, default INIT_AMD_GPUS
        self.initialized = True

    def amdsmi_shut_down(self) -> None:  # A:1901
        if not self.initialized:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        self.initialized = False

    def amdsmi_get_processor_handles(self) -> list[Any]:  # A:969-993: a fresh handle object per GPU on every call
        if not self.initialized:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        return [amdsmi_processor_handle(i + 1) for i in range(len(self.gpus))]

    def amdsmi_get_gpu_device_bdf(self, processor_handle: Any) -> str:  # A:1924-1936, _format_bdf A:660-677
        return self._gpu(processor_handle, "amdsmi_get_gpu_device_bdf").bdf

    def amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:  # A:1939-1956
        return "8aff74b5-0000-1000-80ec-" + self._gpu(processor_handle, "amdsmi_get_gpu_device_uuid").bdf[5:7] * 6

    def amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:  # A:4123-4142 (@0ceca28 adds 'power')
        g = self._gpu(processor_handle, "amdsmi_get_energy_count")
        return {"energy_accumulator": g.energy_accumulator,
                "counter_resolution": ctypes.c_float(g.counter_resolution_uj).value, "timestamp": 1_700_000_000_000}

    def amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:  # A:2887-2916: 0xFFFF -> "N/A"
        g = self._gpu(processor_handle, "amdsmi_get_power_info")
        raw = {"socket_power": g.average_socket_power_w, "current_socket_power": g.current_socket_power_w,
               "average_socket_power": g.average_socket_power_w, "gfx_voltage": UINT16_MAX,
               "soc_voltage": UINT16_MAX, "mem_voltage": UINT16_MAX, "power_limit": g.power_cap_uw // 10**6}
        return {k: "N/A" if v == UINT16_MAX else v for k, v in raw.items()}

    def amdsmi_get_clock_info(self, processor_handle: Any, clock_type: Any) -> dict[str, Any]:  # A:2349-2376
        g = self._gpu(processor_handle, "amdsmi_get_clock_info")
        if not isinstance(clock_type, AmdSmiClkType):
            raise AmdSmiParameterException(f"expected AmdSmiClkType, got {type(clock_type).__name__}")
        clk = g.gfx_clk_mhz if clock_type == AmdSmiClkType.GFX else g.mem_clk_mhz
        return {"clk": _validate_if_max_uint(clk, UINT32_MAX),
                "min_clk": _validate_if_max_uint(500, UINT32_MAX),
                "max_clk": _validate_if_max_uint(g.max_gfx_clk_mhz, UINT32_MAX),
                "clk_locked": _validate_if_max_uint(0, UINT8_MAX, is_bool=True),
                "clk_deep_sleep": _validate_if_max_uint(0, UINT8_MAX)}

    def amdsmi_get_gpu_activity(self, processor_handle: Any) -> dict[str, Any]:  # A:2321-2346: 0xFFFF -> "N/A"
        g = self._gpu(processor_handle, "amdsmi_get_gpu_activity")
        raw = {"gfx_activity": g.gfx_activity_pct, "umc_activity": g.umc_activity_pct, "mm_activity": UINT16_MAX}
        return {k: "N/A" if v == UINT16_MAX else v for k, v in raw.items()}

    def amdsmi_get_gpu_vram_usage(self, processor_handle: Any) -> dict[str, Any]:  # A:2999-3013, MB, no sentinel check
        g = self._gpu(processor_handle, "amdsmi_get_gpu_vram_usage")
        return {"vram_total": g.vram_total_mb, "vram_used": g.vram_used_mb}

    def amdsmi_get_temp_metric(self, processor_handle: Any, sensor_type: Any, metric: Any) -> int:  # A:4361-4382
        g = self._gpu(processor_handle, "amdsmi_get_temp_metric")
        if not isinstance(sensor_type, AmdSmiTemperatureType) or not isinstance(metric, AmdSmiTemperatureMetric):
            raise AmdSmiParameterException("expected AmdSmiTemperatureType and AmdSmiTemperatureMetric")
        return g.temperature_hotspot_c  # a c_int64 .value, no sentinel check

    def amdsmi_get_gpu_metrics_info(self, processor_handle: Any) -> dict[str, Any]:  # A:4695-4852, a subset of its keys
        g = self._gpu(processor_handle, "amdsmi_get_gpu_metrics_info")
        return {"temperature_hotspot": _validate_if_max_uint(g.temperature_hotspot_c, UINT16_MAX),
                "average_gfx_activity": _validate_if_max_uint(g.gfx_activity_pct, UINT16_MAX, is_activity=True),
                "average_socket_power": _validate_if_max_uint(g.average_socket_power_w, UINT16_MAX),
                "current_socket_power": _validate_if_max_uint(g.current_socket_power_w, UINT16_MAX),
                "energy_accumulator": _validate_if_max_uint(g.energy_accumulator, UINT64_MAX),
                "current_gfxclk": _validate_if_max_uint(g.gfx_clk_mhz, UINT16_MAX),
                "throttle_status": _validate_if_max_uint(g.throttle_status, UINT32_MAX, is_bool=True),  # A:4740
                "indep_throttle_status": _validate_if_max_uint(UINT64_MAX, UINT64_MAX, is_bool=True)}  # A:4751

    def amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:  # A:2027-2086
        g = self._gpu(processor_handle, "amdsmi_get_gpu_asic_info")
        return {"market_name": g.market_name or "N/A", "vendor_id": "0x1002",
                "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]", "subvendor_id": "0x1002", "device_id": "0x74a1",
                "rev_id": "0x00", "asic_serial": "0x1A2B3C4D5E6F7081", "oam_id": 0, "num_compute_units": 304,
                "target_graphics_version": "gfx942", "subsystem_id": "0x74a1"}

    def amdsmi_get_gpu_vram_info(self, processor_handle: Any) -> dict[str, Any]:  # A:2191-2210, vram_size in MB
        g = self._gpu(processor_handle, "amdsmi_get_gpu_vram_info")
        return {"vram_type": 6, "vram_vendor": "SAMSUNG", "vram_size": g.vram_total_mb, "vram_bit_width": 8192,
                "vram_max_bandwidth": _validate_if_max_uint(UINT64_MAX, UINT64_MAX)}

    def amdsmi_get_power_cap_info(self, processor_handle: Any) -> dict[str, Any]:  # A:2112-2131, uW, no sentinel check
        g = self._gpu(processor_handle, "amdsmi_get_power_cap_info")
        return {"power_cap": g.power_cap_uw, "default_power_cap": g.default_power_cap_uw, "dpm_cap": 2100,
                "min_power_cap": 0, "max_power_cap": g.default_power_cap_uw}

    def amdsmi_get_gpu_driver_info(self, processor_handle: Any) -> dict[str, Any]:  # A:2859-2884: "" -> "N/A"
        g = self._gpu(processor_handle, "amdsmi_get_gpu_driver_info")
        raw = {"driver_name": "amdgpu", "driver_version": g.driver_version, "driver_date": "2015/01/01 00:00"}
        return {k: v or "N/A" for k, v in raw.items()}


# --- memory: psutil's view of host RAM, torch's of one CUDA GPU -------------------------------------------------------


def fake_memory(monkeypatch: Any, host_free_bytes: int, gpu_free_bytes: int | None = None,
                gpu_total_bytes: int = 80 * 2**30) -> None:
    """This host with host_free_bytes of available RAM (psutil.virtual_memory's other fields as they are) and, when
    gpu_free_bytes is given, one CUDA GPU with that much free (torch.cuda.mem_get_info answers (free, total))."""
    import psutil
    import torch

    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=host_free_bytes))
    if gpu_free_bytes is not None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gpu_free_bytes, gpu_total_bytes))
