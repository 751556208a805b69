"""Telemetry without hardware: pynvml and amdsmi faked at the library boundary (tests/fakes.py), /sys faked on disk.
No assertion here depends on how fast the machine is."""

import ctypes
import math
import sys
import threading
import time

import pynvml
import pytest

from bench import telemetry
from bench.telemetry import rapl
from bench.telemetry.amd import AmdSmiBackend
from bench.telemetry.base import SAMPLE_FIELDS, reading, text
from bench.telemetry.nvml import SLOWDOWNS, THROTTLE_BITS, NvmlBackend
from bench.telemetry.sampler import SERIES_FIELDS, Sampler, integrate_energy_j, join_chunks
from bench.telemetry.summary import check_summary, summarize
from tests.fakes import (
    AMDSMI_STATUS_NOT_SUPPORTED,
    UINT16_MAX,
    UINT32_MAX,
    UINT64_MAX,
    FakeAmdGpu,
    FakeGpu,
    fake_amdsmi,
    fake_pynvml,
)

UUIDS = [f"GPU-{c * 8}-1111-2222-3333-444444444444" for c in "abcd"]


@pytest.fixture
def nvml(monkeypatch):
    """Four GPUs behind a fake NVML; the fourth is another model. Returns (fake module, GPUs)."""
    devices = [FakeGpu(u) for u in UUIDS]
    devices[3].name = "NVIDIA L40S"
    fake = fake_pynvml(devices)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake, devices


@pytest.fixture
def gpus(nvml):
    return nvml[1]


@pytest.fixture
def amd(monkeypatch):
    """Two MI300X behind a fake amdsmi. Returns (fake module, GPUs)."""
    devices = [FakeAmdGpu("0000:c1:00.0"), FakeAmdGpu("0000:c2:00.0")]
    fake = fake_amdsmi(devices)
    monkeypatch.setitem(sys.modules, "amdsmi", fake)
    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("ROCR_VISIBLE_DEVICES", raising=False)
    return fake, devices


@pytest.fixture
def no_amdsmi(monkeypatch, tmp_path):
    """amdsmi as it behaves without ROCm: the import prints to stdout and raises KeyError."""
    (tmp_path / "amdsmi.py").write_text("print('ROCm library not found, noisy banner')\nraise KeyError('ROCM_PATH')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)


def _numbers_or_none(sample):
    return all(v is None or (type(v) in (int, float) and math.isfinite(v)) for v in sample.values())


# --- the one coercion ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,kind,scale,expected", [
    (650_000, "power_w", 1e-3, 650.0),
    (1755, "sm_clock_mhz", 1, 1755),
    (1024, "memory_used_bytes", 2**20, 1024 * 2**20),
    ("N/A", "power_w", 1, None),
    ("598", "power_w", 1, None),
    (True, "gpu_util_pct", 1, None),
    (False, "throttle_mask", 1, None),
    (None, "temperature_c", 1, None),
    (float("nan"), "power_w", 1, None),
    (float("inf"), "power_w", 1, None),
    (UINT16_MAX, "gpu_util_pct", 1, None),
    (UINT32_MAX, "throttle_word_u32", 1, None),
    (UINT64_MAX, "throttle_mask", 1, None),
    (UINT64_MAX, "memory_used_bytes", 2**20, None),
    (-5, "power_w", 1, None),
    (b"12", "sm_clock_mhz", 1, None),
    (pynvml.c_nvmlMemory_t(), "memory_used_bytes", 1, None),
])
def test_reading_keeps_plausible_numbers_and_drops_everything_else(value, kind, scale, expected):
    got = reading(value, kind, scale)
    assert got == expected and type(got) is type(expected)


def test_text_drops_none_and_na_and_decodes_bytes():
    assert [text(v) for v in (None, "", "N/A", 7, b"NVIDIA A100\x00", " MI300X ")] == [
        None, None, None, None, "NVIDIA A100", "MI300X"]


# --- NVML ----------------------------------------------------------------------------------------------------------

def test_counter_supported_reads_joules_and_static_metadata(gpus):
    backend = NvmlBackend(0)
    assert backend.energy_unsupported_reason is None
    assert backend.energy_j() == 5000.0  # 5,000,000 mJ
    gpus[0].energy_mj += 64_700_000
    assert backend.energy_j() == 69_700.0
    info = backend.static_info()
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["same_model_count"] == 3
    assert info["power_limit_w"] == 700.0 and info["max_sm_clock_mhz"] == 1980
    assert info["cuda_driver_version"] == "12.4" and info["compute_capability"] == "9.0"
    link = (info["pcie_generation"], info["pcie_width"], info["ecc_enabled"], info["mig_enabled"])
    assert link == (5, 16, True, False)
    assert info["memory_total_bytes"] == 85_520_809_984 and info["persistence_mode"] is True
    s = backend.sample()
    assert s["power_w"] == 650.0 and s["sm_clock_mhz"] == 1755 and s["mem_clock_mhz"] == 2619
    assert (s["gpu_util_pct"], s["mem_util_pct"]) == (99, 45)
    assert (s["memory_used_bytes"], s["temperature_c"]) == (30_000_000_000, 61)
    assert backend.read_errors == {}


def test_a_pynvml_call_the_fake_does_not_answer_raises(nvml):
    fake, gpus = nvml
    with pytest.raises(AssertionError, match="nvmlDeviceGetBoardId"):
        fake.nvmlDeviceGetBoardId(gpus[0])
    with pytest.raises(TypeError):  # the autospec still checks signatures
        fake.nvmlDeviceGetPowerUsage()


def test_failing_name_query_is_none_not_the_text_none(gpus):
    gpus[0].errors["nvmlDeviceGetName"] = pynvml.NVML_ERROR_UNKNOWN
    info = telemetry.describe(NvmlBackend(0), 0.1)
    assert info["device"]["name"] is None and info["device"]["same_model_count"] is None
    assert "nvmlDeviceGetName" in info["read_errors"]


def test_name_as_bytes_from_old_nvidia_ml_py_is_decoded(gpus):
    gpus[0].name = b"NVIDIA A100-SXM4-80GB"
    assert NvmlBackend(0).static_info()["name"] == "NVIDIA A100-SXM4-80GB"


def test_unsupported_queries_are_missing_readings_not_errors(gpus):
    gpus[0].errors.update(nvmlDeviceGetEccMode=pynvml.NVML_ERROR_NOT_SUPPORTED,
                          nvmlDeviceGetPowerUsage=pynvml.NVML_ERROR_NOT_SUPPORTED)
    backend = NvmlBackend(0)
    assert backend.static_info()["ecc_enabled"] is None and backend.sample()["power_w"] is None
    assert backend.read_errors == {}  # "not supported" is a capability, not a failure


@pytest.mark.parametrize("visible,uuid,failing,fragment", [
    (None, None, "nvmlDeviceGetHandleByIndex", "Unknown Error"),
    ("1", None, "nvmlDeviceGetHandleByIndex", "Unknown Error"),
    (None, UUIDS[0], "nvmlDeviceGetHandleByUUID", "Unknown Error"),
    ("GPU-aaaa", None, "nvmlDeviceGetCount", "Unknown Error"),
    ("GPU-aaaa", None, "nvmlDeviceGetUUID", "no GPU with UUID GPU-aaaa .*GPU 0: Unknown Error"),
])
def test_nvml_errors_while_finding_the_gpu_make_it_unavailable(nvml, monkeypatch, visible, uuid, failing, fragment):
    fake, _ = nvml
    if visible:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    getattr(fake, failing).side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
    with pytest.raises(telemetry.TelemetryUnavailable, match=fragment):
        NvmlBackend(0, uuid)
    assert fake.initialized() == 0  # NVML shut down again
    backend = telemetry.open_backend("auto", "cuda:0", uuid)
    assert backend.name == "none" and "nvml:" in backend.reason


def test_a_gpu_whose_uuid_cannot_be_read_is_skipped_when_looking_for_ours(gpus, monkeypatch):
    gpus[0].errors["nvmlDeviceGetUUID"] = pynvml.NVML_ERROR_UNKNOWN
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-cccc")
    assert NvmlBackend(0).handle is gpus[2]


def test_another_gpu_failing_makes_the_model_count_unknown_not_an_error(gpus):
    backend = NvmlBackend(0)
    gpus[2].lost = True
    info = backend.static_info()
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["same_model_count"] is None


def test_gpu_lost_mid_run_gives_none_readings_and_a_reason(nvml):
    fake, gpus = nvml
    backend = NvmlBackend(0)
    sampler = Sampler(backend, t0=0.0)
    sampler.sample_once()
    gpus[0].lost = True
    sampler.sample_once()
    assert backend.energy_j() is None and "GPU is lost" in backend.lost_reason
    calls = fake.nvmlDeviceGetPowerUsage.call_count
    sampler.sample_once()
    assert fake.nvmlDeviceGetPowerUsage.call_count == calls  # a lost GPU is not asked again
    series = sampler.stop()
    assert series["power_w"][0] == 650.0 and series["power_w"][1:] == [None] * 3
    assert all(series[f][1:] == [None] * 3 for f in SAMPLE_FIELDS)
    assert backend.static_info()["name"] is None
    info = {**telemetry.describe(backend, 0.1), "series": series}
    t_end = series["t_s"][-1]
    _, _, warnings = summarize(info, [_gen(0.0, t_end, None)], video_s_per_gen=5.0)
    assert any("GPU is lost" in w for w in warnings)
    backend.close()
    assert fake.initialized() == 0


@pytest.mark.parametrize("name", sorted(THROTTLE_BITS))
def test_throttle_bits_are_pynvmls_own(name):
    camel = "".join(part.capitalize() for part in name.split("_"))
    constant = getattr(pynvml, f"nvmlClocksEventReason{camel}", None)
    if constant is None:
        constant = getattr(pynvml, f"nvmlClocksThrottleReason{camel}")
    assert THROTTLE_BITS[name] == constant


@pytest.mark.parametrize("name", sorted(THROTTLE_BITS))
def test_each_reason_the_gpu_reports_is_decoded_to_its_own_name(gpus, name):
    camel = "".join(part.capitalize() for part in name.split("_"))
    gpus[0].reasons = getattr(pynvml, f"nvmlClocksEventReason{camel}", None) or getattr(
        pynvml, f"nvmlClocksThrottleReason{camel}")
    backend = NvmlBackend(0)
    sampler = Sampler(backend, t0=0.0)
    for _ in range(4):
        sampler.sample_once()
    info = {**telemetry.describe(backend, 0.1), "series": sampler.stop()}
    section, _, warnings = summarize(info, [_gen(0.0, info["series"]["t_s"][-1], None)], video_s_per_gen=5.0)
    share = section["summary"]["throttle_share"]
    assert share == {n: (1.0 if n == name else 0.0) for n in THROTTLE_BITS}
    assert any(f"{name} 100%" in w for w in warnings) == (name in SLOWDOWNS)


def test_counter_unsupported_falls_back_to_integrated_power(gpus):
    gpus[0].energy_mj = None
    backend = NvmlBackend(0)
    assert backend.energy_j() is None and "not supported" in backend.energy_unsupported_reason
    info = _info(backend, series={"t_s": [0.0, 1.0, 2.0, 3.0], "power_w": [300.0, 300.0, 500.0, 500.0],
                                  **_flat(4, throttle_mask=0)})
    gens = [_gen(0.0, 2.0, None), _gen(2.0, 3.0, None)]
    section, gens, _ = summarize(info, gens, video_s_per_gen=81 / 16)
    assert section["energy_method"] == "power_integration"
    assert [g["telemetry"]["energy_j"] for g in gens] == [700.0, 500.0]  # trapezoids: 300 + 400, then 500
    assert section["summary"]["energy_per_video_j"] == 600.0
    assert section["summary"]["avg_power_w"] == pytest.approx(1200.0 / 3.0)
    assert section["summary"]["energy_per_video_minute_wh"] == pytest.approx(600.0 / 3600 / (81 / 16 / 60))
    assert "not supported" in section["energy_unsupported_reason"]


def test_counter_energy_is_used_and_compared_with_integration(gpus):
    info = _info(NvmlBackend(0), series={"t_s": [0.0, 1.0, 2.0], "power_w": [400.0, 400.0, 400.0],
                                         **_flat(3, throttle_mask=0)})
    section, _, warnings = summarize(info, [_gen(0.0, 2.0, 1000.0)], video_s_per_gen=5.0)
    assert section["energy_method"] == "counter" and section["summary"]["energy_per_video_j"] == 1000.0
    assert section["summary"]["energy_integrated_j"] == 800.0
    assert any("disagree by 25%" in w for w in warnings)


def test_broken_counter_fails_its_sanity_check(gpus):
    info = _info(NvmlBackend(0), series={"t_s": [0.0, 1.0], "power_w": [100.0, 100.0], **_flat(2, throttle_mask=0)})
    gens = [_gen(0.0, 1.0, 1e6)]
    section, out, warnings = summarize(info, gens, video_s_per_gen=5.0)
    assert section["energy_method"] == "power_integration" and out[0]["telemetry"]["energy_j"] == 100.0
    assert out[0]["telemetry"]["denoise_energy_j"] is None
    assert gens[0]["telemetry"]["energy_j"] == 1e6  # the input is not modified
    assert any("sanity check" in w for w in warnings)


def test_nvml_library_missing_and_amdsmi_noisy_give_the_none_backend(monkeypatch, capfd, no_amdsmi):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], library_missing=True))
    backend = telemetry.open_backend("auto", "cuda:0")
    assert backend.name == "none"
    assert "nvml: NVML: NVML Shared Library Not Found" in backend.reason
    assert "amdsmi: amdsmi not usable (KeyError" in backend.reason
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # amdsmi's banner never reaches the user
    with pytest.raises(telemetry.TelemetryUnavailable, match="Library Not Found"):
        telemetry.open_backend("nvml", "cuda:0")


def test_explicit_none_cpu_runs_and_unknown_names(nvml):
    fake, _ = nvml
    assert telemetry.open_backend("none", "cuda:0").reason == "telemetry turned off (--telemetry none)"
    assert telemetry.open_backend("auto", "cpu").reason.startswith("the run is on the CPU; nvml: available")
    assert fake.initialized() == 0  # the probe closed what it opened
    with pytest.raises(telemetry.TelemetryUnavailable, match="needs a GPU run"):
        telemetry.open_backend("nvml", "cpu")
    with pytest.raises(telemetry.TelemetryUnavailable, match="unknown telemetry backend 'nvm'"):
        telemetry.open_backend("nvm", "cuda:0")
    assert telemetry.CHOICES == ("auto", *telemetry.BACKENDS)


@pytest.mark.parametrize("visible,torch_index,expected", [
    (None, 2, 2),
    ("2,3", 0, 2),
    ("2,3", 1, 3),
    ("3, 0", 1, 0),
    (f"{UUIDS[2]},{UUIDS[0]}", 0, 2),
    (f"{UUIDS[2]},{UUIDS[0]}", 1, 0),
    ("GPU-bbbb,GPU-dddd", 1, 3),  # CUDA accepts unique UUID prefixes
])
def test_cuda_visible_devices_maps_torch_index_to_nvml(gpus, monkeypatch, visible, torch_index, expected):
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert NvmlBackend(torch_index).handle is gpus[expected]


def test_torch_uuid_wins_over_indices(gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert NvmlBackend(0, uuid=UUIDS[3]).handle is gpus[3]


@pytest.mark.parametrize("visible,fragment", [
    ("MIG-12345678-aaaa-bbbb-cccc-dddddddddddd", "MIG instance"),
    ("GPU-ffff", "no GPU with UUID GPU-ffff"),
    ("1", "cuda:1 is not in CUDA_VISIBLE_DEVICES=1"),
    ("gpu0", "neither an index nor a UUID"),
])
def test_devices_that_cannot_be_measured_are_refused(nvml, monkeypatch, visible, fragment):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(telemetry.TelemetryUnavailable, match=fragment):
        NvmlBackend(1 if visible == "1" else 0)
    assert nvml[0].initialized() == 0


def test_gpu_in_mig_mode_is_refused(nvml):
    fake, gpus = nvml
    gpus[0].mig = pynvml.NVML_DEVICE_MIG_ENABLE
    with pytest.raises(telemetry.TelemetryUnavailable, match="MIG mode is on"):
        NvmlBackend(0)
    assert fake.initialized() == 0


def test_close_is_idempotent_and_never_raises(nvml, amd):
    fake, _ = nvml
    backend = NvmlBackend(0)
    backend.close()
    backend.close()
    assert fake.initialized() == 0 and backend.sample() == dict.fromkeys(SAMPLE_FIELDS)
    other = NvmlBackend(0)
    fake.nvmlShutdown.side_effect = RuntimeError("driver gone")
    other.close()
    smi, _ = amd
    amd_backend = AmdSmiBackend(0)
    amd_backend.close()
    amd_backend.close()
    assert not smi.initialized()
    telemetry.NullBackend("off").close()


def test_throttle_reasons_are_decoded_and_warned_about(gpus):
    masks = [0x4 | 0x40] * 3 + [0x1] * 5 + [0] * 12  # power cap + HW thermal 15%, idle 25%
    info = _info(NvmlBackend(0), series={"t_s": [i * 0.1 for i in range(20)], "power_w": [600.0] * 20,
                                         **_flat(20, throttle_mask=None), "throttle_mask": masks})
    section, _, warnings = summarize(info, [_gen(0.0, 1.9, 1140.0)], video_s_per_gen=5.0)
    share = section["summary"]["throttle_share"]
    assert share["sw_power_cap"] == share["hw_thermal_slowdown"] == 0.15 and share["gpu_idle"] == 0.25
    assert share["hw_slowdown"] == 0.0 and set(share) == set(THROTTLE_BITS)
    assert any("throttled" in w and "sw_power_cap 15%" in w for w in warnings)
    assert not any("gpu_idle" in w for w in warnings)  # idle is not a slowdown


def test_power_cap_below_default_and_sampling_gaps_warn(gpus):
    gpus[0].limit_mw = 500_000
    t = [0.0, 0.1, 0.2, 0.9, 1.0]  # one 0.7 s gap at a 0.1 s period
    info = _info(NvmlBackend(0), series={"t_s": t, "power_w": [500.0] * 5, **_flat(5, throttle_mask=0)})
    section, _, warnings = summarize(info, [_gen(0.0, 1.0, 500.0)], video_s_per_gen=5.0)
    assert section["summary"]["sampling_gaps"] == 1 and section["summary"]["longest_gap_s"] == pytest.approx(0.7)
    assert any("power limit 500 W is below the board default 700 W" in w for w in warnings)
    assert any("1 gap(s), the longest 0.70 s" in w for w in warnings)


# --- AMD -----------------------------------------------------------------------------------------------------------

def test_amdsmi_backend_reads_counter_and_maps_hip_visible_devices(amd, monkeypatch):
    smi, gpus = amd
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    backend = AmdSmiBackend(0)
    assert smi.amdsmi_get_gpu_device_bdf(backend.handle) == "0000:c2:00.0"
    resolution_uj = ctypes.c_float(15.3).value  # amdsmi hands out a C float
    assert backend.energy_j() == pytest.approx(2_000_000 * resolution_uj / 1e6)
    s = backend.sample()
    assert s == {"power_w": 598, "sm_clock_mhz": 2100, "mem_clock_mhz": 1300, "gpu_util_pct": 100,
                 "mem_util_pct": 40, "memory_used_bytes": 1024 * 2**20, "temperature_c": 70, "throttle_mask": 0}
    assert type(s["throttle_mask"]) is int  # amdsmi's False, not a bool in the series
    info = backend.static_info()
    assert info["name"] == "AMD Instinct MI300X" and info["power_limit_w"] == 750.0 and info["same_model_count"] == 2
    assert info["memory_total_bytes"] == 196_592 * 2**20 and info["driver_version"] == "6.8.5"
    assert info["pci_bus_id"] == "0000:c2:00.0" and info["max_sm_clock_mhz"] == 2100
    assert smi.amdsmi_get_gpu_device_bdf(AmdSmiBackend(0, bdf="0000:C1:00.0").handle) == "0000:c1:00.0"
    assert backend.read_errors == {}


def test_amdsmi_current_power_is_preferred_when_the_asic_reports_it(amd):
    _, gpus = amd
    gpus[0].current_socket_power_w = 731
    assert AmdSmiBackend(0).sample()["power_w"] == 731


@pytest.mark.parametrize("raw,field", [
    ({"gfx_activity_pct": UINT16_MAX}, "gpu_util_pct"),  # the wrapper answers "N/A"
    ({"umc_activity_pct": UINT16_MAX}, "mem_util_pct"),
    ({"current_socket_power_w": UINT16_MAX, "average_socket_power_w": UINT16_MAX}, "power_w"),
    ({"gfx_clk_mhz": UINT32_MAX}, "sm_clock_mhz"),
    ({"mem_clk_mhz": UINT32_MAX}, "mem_clock_mhz"),
    ({"throttle_status": UINT32_MAX}, "throttle_mask"),
    ({"temperature_hotspot_c": UINT16_MAX}, "temperature_c"),  # no sentinel check in the wrapper: raw 65535
    ({"vram_used_mb": UINT64_MAX}, "memory_used_bytes"),
])
def test_amdsmi_na_and_sentinels_become_missing_readings(amd, raw, field):
    _, gpus = amd
    for key, value in raw.items():
        setattr(gpus[0], key, value)
    sample = AmdSmiBackend(0).sample()
    assert sample[field] is None
    assert all(sample[f] is not None for f in SAMPLE_FIELDS if f != field)
    assert _numbers_or_none(sample)


def test_amdsmi_throttle_flag_and_odd_counters(amd):
    _, gpus = amd
    gpus[0].throttle_status = 0x20  # some throttle bit: the wrapper says True
    gpus[0].energy_accumulator = UINT64_MAX
    backend = AmdSmiBackend(0)
    mask = backend.sample()["throttle_mask"]
    assert mask == 1 and type(mask) is int
    assert backend.energy_j() is None and backend.energy_unsupported_reason


def test_amdsmi_static_values_na_and_unit_surprises_become_none(amd):
    _, gpus = amd
    gpus[0].market_name, gpus[0].driver_version = "", ""  # the wrapper answers "N/A" for both
    gpus[0].power_cap_uw = 750  # a host reporting watts, not microwatts: implausible, so unknown
    info = AmdSmiBackend(0).static_info()
    assert info["name"] is None and info["driver_version"] is None and info["power_limit_w"] is None
    assert info["same_model_count"] is None


def test_amdsmi_unsupported_and_failing_queries(amd):
    smi, gpus = amd
    gpus[0].errors["amdsmi_get_energy_count"] = AMDSMI_STATUS_NOT_SUPPORTED
    gpus[0].errors["amdsmi_get_gpu_activity"] = 8  # AMDSMI_STATUS_API_FAILED
    backend = AmdSmiBackend(0)
    assert backend.energy_j() is None and "not supported" in backend.energy_unsupported_reason
    s = backend.sample()
    assert s["gpu_util_pct"] is None and s["power_w"] == 598
    assert list(backend.read_errors) == ["amdsmi_get_gpu_activity"]


def test_amdsmi_wrapper_failing_on_odd_data_is_a_missing_reading(amd, monkeypatch):
    smi, _ = amd

    def amdsmi_get_gpu_asic_info(processor_handle):  # its int(asic_serial, 16) on a garbled serial
        raise ValueError("invalid literal for int() with base 16: 'zz'")

    monkeypatch.setattr(smi, "amdsmi_get_gpu_asic_info", amdsmi_get_gpu_asic_info)
    backend = AmdSmiBackend(0)
    assert backend.static_info()["name"] is None and "ValueError" in backend.read_errors["amdsmi_get_gpu_asic_info"]


@pytest.mark.parametrize("visible,fragment", [
    ("GPU-4f2a", "is not an index"),
    ("5", "maps to AMD GPU 5, but only 2 exist"),
    ("0", "cuda:1 is not in HIP_VISIBLE_DEVICES=0"),
])
def test_amd_devices_that_cannot_be_found_are_refused(amd, monkeypatch, visible, fragment):
    smi, _ = amd
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", visible)
    with pytest.raises(telemetry.TelemetryUnavailable, match=fragment):
        AmdSmiBackend(1 if visible == "0" else 0)
    assert not smi.initialized()


def test_amdsmi_run_with_unexpected_values_goes_on(amd):
    _, gpus = amd
    gpus[0].current_socket_power_w = gpus[0].average_socket_power_w = UINT16_MAX
    gpus[0].gfx_activity_pct, gpus[0].throttle_status = UINT16_MAX, 1
    backend = AmdSmiBackend(0)
    sampler = Sampler(backend, t0=0.0)
    for _ in range(3):
        sampler.sample_once()
    info = {**telemetry.describe(backend, 0.1), "series": sampler.stop()}
    section, _, _ = summarize(info, [_gen(0.0, info["series"]["t_s"][-1], backend.energy_j())], 5.0)
    assert all(v is None or type(v) in (int, float) for column in section["series"].values() for v in column)
    assert section["summary"]["throttle_share"] == {"throttle_status": 1.0}
    assert section["summary"]["peak_power_w"] is None


def test_amdsmi_is_probed_first_on_rocm(amd, nvml):
    assert telemetry.open_backend("auto", "cuda:0", is_rocm=True).name == "amdsmi"
    assert telemetry.open_backend("auto", "cuda:0").name == "nvml"


# --- sampler -------------------------------------------------------------------------------------------------------

class _Counting(telemetry.Backend):
    """A backend whose power reading is the number of the sample: 0, 1, 2, ..."""

    def __init__(self, fails=lambda n: False):
        super().__init__()
        self.calls, self.fails = 0, fails

    def sample(self):
        n, self.calls = self.calls, self.calls + 1
        if self.fails(n):
            raise RuntimeError("vendor library blew up")
        return {**dict.fromkeys(SAMPLE_FIELDS), "power_w": float(n)}


def test_drain_hands_out_each_sample_once_and_stop_the_rest():
    sampler = Sampler(_Counting(), t0=0.0)
    for _ in range(3):
        sampler.sample_once()
    first = sampler.drain()
    assert first["power_w"] == [0.0, 1.0, 2.0] and set(first) == set(SERIES_FIELDS)
    assert sampler.drain()["power_w"] == []
    sampler.sample_once()
    rest = sampler.stop()  # with its closing sample
    assert rest["power_w"] == [3.0, 4.0]
    assert sampler.stop()["power_w"] == [] and sampler.drain()["power_w"] == []
    assert join_chunks([first, rest]) == sampler.series


def test_drain_while_the_thread_samples_loses_and_repeats_nothing():
    backend = _Counting()
    chunks = []
    with Sampler(backend, period_s=0.0005) as sampler:
        deadline = time.monotonic() + 60
        while sum(len(c["t_s"]) for c in chunks) < 200:  # however fast or slow the machine, wait for 200 samples
            assert time.monotonic() < deadline, "the sampler took no samples"
            chunks.append(sampler.drain())
        chunks.append(sampler.stop())
    series = join_chunks(chunks)
    assert series["power_w"] == [float(i) for i in range(backend.calls)]  # every sample, once, in order
    assert series == sampler.series and series["t_s"] == sorted(series["t_s"])
    assert not sampler.running


def test_sampler_stops_when_the_block_fails():
    with pytest.raises(RuntimeError, match="generation failed"):
        with Sampler(_Counting(), period_s=0.001) as sampler:
            assert sampler.running
            raise RuntimeError("generation failed")
    assert not sampler.running


def test_a_backend_that_raises_costs_a_row_not_the_run():
    sampler = Sampler(_Counting(fails=lambda n: n == 1), t0=0.0)
    for _ in range(3):
        sampler.sample_once()
    series = sampler.stop()
    assert series["power_w"] == [0.0, None, 2.0, 3.0] and len(series["t_s"]) == 4
    assert sampler.failures == 1 and "blew up" in sampler.first_failure


def test_the_sampling_thread_survives_a_failing_backend():
    backend = _Counting(fails=lambda n: n % 2 == 0)
    with Sampler(backend, period_s=0.0005) as sampler:
        deadline = time.monotonic() + 60
        while backend.calls < 6:
            assert time.monotonic() < deadline, "the sampling thread died"
            time.sleep(0.001)
    assert sampler.failures >= 3 and None in sampler.series["power_w"] and 1.0 in sampler.series["power_w"]


def test_sampler_takes_the_series_from_the_backend(gpus):
    backend = NvmlBackend(0)
    ready = threading.Event()
    original = backend.sample

    def sample():
        ready.set()
        return original()

    backend.sample = sample
    with Sampler(backend, period_s=0.01) as sampler:
        assert ready.wait(60)
    assert len(sampler.series["t_s"]) >= 2 and sampler.series["t_s"] == sorted(sampler.series["t_s"])
    assert set(sampler.series["power_w"]) == {650.0} and set(sampler.series["sm_clock_mhz"]) == {1755}


def test_join_chunks_refuses_ragged_columns():
    with pytest.raises(ValueError, match="equally long"):
        join_chunks([{f: [1.0] for f in SERIES_FIELDS} | {"t_s": []}])


@pytest.mark.parametrize("start,end,expected", [
    (0.0, 2.0, 400.0),  # 100 W rising linearly to 300 W over 2 s
    (0.5, 1.5, 200.0),  # the middle second averages 200 W
    (0.0, 0.25, 0.25 * (100 + 125) / 2),
])
def test_integration_of_a_known_power_curve(start, end, expected):
    t = [i * 0.1 for i in range(21)]
    p = [100 + 100 * x for x in t]
    assert integrate_energy_j(t, p, start, end) == pytest.approx(expected)


def test_integration_refuses_an_interval_the_samples_do_not_cover():
    with pytest.raises(ValueError):
        integrate_energy_j([0.0, 1.0], [100.0, None], 0.0, 1.0)


# --- check_summary -------------------------------------------------------------------------------------------------

def _honest(backend, counter=True, gens_n=3, gen_s=20.0, watts=700.0):
    """A section as a run would record it: `gens_n` generations of `gen_s` seconds at `watts`, sampled at 10 Hz."""
    n = int(gens_n * gen_s * 10) + 1
    masks = [0x4 if i % 10 == 0 else 0 for i in range(n)]
    series = {"t_s": [i / 10 for i in range(n)], "power_w": [watts + (i % 7) for i in range(n)],
              **_flat(n, sm_clock_mhz=1755, temperature_c=70), "throttle_mask": masks}
    info = _info(backend, series)
    gens = [_gen(i * gen_s, (i + 1) * gen_s, watts * gen_s if counter else None) for i in range(gens_n)]
    section, gens, _ = summarize(info, gens, video_s_per_gen=81 / 16)
    return section, gens


def test_check_summary_passes_honest_sections(gpus):
    for counter in (True, False):
        section, gens = _honest(NvmlBackend(0), counter)
        assert section["energy_method"] == ("counter" if counter else "power_integration")
        assert check_summary(section, gens, 81 / 16) == []


@pytest.mark.parametrize("field,forged", [
    ("avg_power_w", 1.0),
    ("energy_per_video_j", 1.0),
    ("energy_per_video_minute_wh", 0.01),
    ("energy_counter_j", 10.0),
    ("energy_integrated_j", 10.0),
    ("peak_power_w", 300.0),
    ("sm_clock_mean_mhz", 1980.0),
    ("sm_clock_max_mhz", 3000.0),
    ("peak_temperature_c", 40.0),
    ("power_limit_w", 1000.0),
    ("samples", 5),
    ("sampling_gaps", 2),
    ("longest_gap_s", 3.0),
    ("throttle_share", {**{n: 0.0 for n in THROTTLE_BITS}}),
])
def test_check_summary_catches_each_forged_figure(gpus, field, forged):
    section, gens = _honest(NvmlBackend(0))
    section["summary"][field] = forged
    problems = check_summary(section, gens, 81 / 16)
    assert len(problems) == 1 and problems[0].startswith(f"summary.{field} is ")


def test_check_summary_catches_a_forged_counter_beside_a_700_w_series(gpus):
    """A forger who rewrites the counter readings and every figure that follows from them (1 W)."""
    section, gens = _honest(NvmlBackend(0))
    for g in gens:
        g["telemetry"]["energy_j"] = g["latency_s"] * 1.0
    total = sum(g["telemetry"]["energy_j"] for g in gens)
    section["summary"].update(avg_power_w=1.0, energy_counter_j=total, energy_per_video_j=total / 3,
                              energy_per_video_minute_wh=total / 3600 / (3 * 81 / 16 / 60))
    problems = check_summary(section, gens, 81 / 16)
    assert len(problems) == 1 and "disagrees with integrated power" in problems[0]


def test_check_summary_catches_a_counter_the_run_would_have_refused(gpus):
    section, gens = _honest(NvmlBackend(0))
    for g in gens:
        g["telemetry"]["energy_j"] *= 10  # 7 kW from a 700 W board
    total = sum(g["telemetry"]["energy_j"] for g in gens)
    section["summary"].update(avg_power_w=7000.0, energy_counter_j=total, energy_per_video_j=total / 3,
                              energy_per_video_minute_wh=total / 3600 / (3 * 81 / 16 / 60))
    assert [p for p in check_summary(section, gens, 81 / 16) if "sanity check" in p]


def test_check_summary_catches_forged_integrated_generation_energy(gpus):
    section, gens = _honest(NvmlBackend(0), counter=False)
    gens[1]["telemetry"]["energy_j"] = 5.0
    problems = check_summary(section, gens, 81 / 16)
    assert any(p.startswith("generation 1 energy_j is 5.0") for p in problems)


def test_check_summary_catches_energy_without_a_method(gpus):
    section, gens = _honest(NvmlBackend(0))
    section["energy_method"] = None
    problems = check_summary(section, gens, 81 / 16)
    assert any(p.startswith("summary.energy_per_video_j") for p in problems)


def test_check_summary_allows_what_power_lag_explains_on_a_short_run(gpus):
    """Half a second at 100 W by the 1 s averaged readings, 180 W by the counter: 80% apart, and honest."""
    info = _info(NvmlBackend(0), series={"t_s": [0.0, 0.5], "power_w": [100.0, 100.0], **_flat(2, throttle_mask=0)})
    section, gens, _ = summarize(info, [_gen(0.0, 0.5, 90.0)], video_s_per_gen=5.0)
    assert section["energy_method"] == "counter" and check_summary(section, gens, 5.0) == []


# --- RAPL ----------------------------------------------------------------------------------------------------------

def _powercap(root, package_uj, core_uj=5, max_uj=262_143_328_850):
    for i, value in enumerate(package_uj):
        zone = root / f"intel-rapl:{i}"
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "name").write_text(f"package-{i}\n")
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
        sub = root / f"intel-rapl:{i}:0"
        sub.mkdir(exist_ok=True)
        (sub / "name").write_text("core\n")
        (sub / "energy_uj").write_text(f"{core_uj}\n")


def test_rapl_package_energy_with_wraparound(tmp_path):
    _powercap(tmp_path, [1_000_000, 262_143_000_000])
    before, reason = rapl.read_packages_uj(tmp_path)
    assert reason is None and set(before) == {"intel-rapl:0", "intel-rapl:1"}  # core sub-zone not double counted
    _powercap(tmp_path, [31_000_000, 1_671_150])  # package 1 wrapped
    after, _ = rapl.read_packages_uj(tmp_path)
    assert rapl.package_energy_j(before, after, tmp_path) == pytest.approx(30.0 + 2.0)


def test_rapl_absent_or_unreadable_says_why(tmp_path):
    assert rapl.read_packages_uj(tmp_path / "missing")[1].endswith("does not exist (not Linux, or no RAPL driver)")
    _powercap(tmp_path, [1])
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()
    (tmp_path / "intel-rapl:0" / "energy_uj").mkdir()  # unreadable as a number
    zones, reason = rapl.read_packages_uj(tmp_path)
    assert zones is None and "energy_uj" in reason


# --- helpers -------------------------------------------------------------------------------------------------------

def _flat(n, **fields):
    keys = ("sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct", "memory_used_bytes", "temperature_c",
            "throttle_mask")
    return {k: [fields.get(k, 1)] * n for k in keys}


def _info(backend, series):
    return {**telemetry.describe(backend, 0.1), "series": series}


def _gen(start, end, energy_j):
    return {"latency_s": end - start, "telemetry": {"start_s": start, "end_s": end, "energy_j": energy_j,
            "text_encode_energy_j": energy_j and 0.0, "denoise_energy_j": energy_j, "vae_decode_energy_j": 0.0}}
