import sys
import time

import pytest

from bench import telemetry
from bench.telemetry import rapl
from bench.telemetry.amd import AmdSmiBackend
from bench.telemetry.nvml import NvmlBackend, THROTTLE_BITS
from bench.telemetry.sampler import Sampler, integrate_energy_j
from bench.telemetry.summary import summarize
from tests.fakes import FakeGpu, fake_amdsmi, fake_pynvml

UUIDS = [f"GPU-{c * 8}-1111-2222-3333-444444444444" for c in "abcd"]


@pytest.fixture
def gpus(monkeypatch):
    """Four GPUs behind a fake NVML; the fourth is another model."""
    devices = [FakeGpu(u) for u in UUIDS]
    devices[3].name = "NVIDIA L40S"
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return devices


@pytest.fixture
def no_amdsmi(monkeypatch, tmp_path):
    """amdsmi as it behaves without ROCm: the import prints to stdout and raises KeyError."""
    (tmp_path / "amdsmi.py").write_text("print('ROCm library not found, noisy banner')\nraise KeyError('ROCM_PATH')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)


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
    assert (info["pcie_generation"], info["pcie_width"], info["ecc_enabled"], info["mig_enabled"]) == (5, 16, True, False)
    s = backend.sample()
    assert s["power_w"] == 650.0 and s["sm_clock_mhz"] == 1755 and s["mem_clock_mhz"] == 2619
    assert (s["gpu_util_pct"], s["memory_used_bytes"], s["temperature_c"]) == (99, 30_000_000_000, 61)


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
    section, gens, warnings = summarize(info, [_gen(0.0, 1.0, 1e6)], video_s_per_gen=5.0)
    assert section["energy_method"] == "power_integration" and gens[0]["telemetry"]["energy_j"] == 100.0
    assert gens[0]["telemetry"]["denoise_energy_j"] is None
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


def test_explicit_none_and_cpu_runs(gpus):
    assert telemetry.open_backend("none", "cuda:0").reason == "telemetry turned off (--telemetry none)"
    assert telemetry.open_backend("auto", "cpu").reason.startswith("the run is on the CPU; nvml: available")
    with pytest.raises(telemetry.TelemetryUnavailable, match="needs a GPU run"):
        telemetry.open_backend("nvml", "cpu")


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
])
def test_devices_that_cannot_be_measured_are_refused(gpus, monkeypatch, visible, fragment):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(telemetry.TelemetryUnavailable, match=fragment):
        NvmlBackend(1 if visible == "1" else 0)


def test_gpu_in_mig_mode_is_refused(gpus):
    gpus[0].mig = 1
    with pytest.raises(telemetry.TelemetryUnavailable, match="MIG mode is on"):
        NvmlBackend(0)


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


def test_sampler_collects_a_series_from_the_backend(gpus):
    sampler = Sampler(NvmlBackend(0), period_s=0.01).start()
    time.sleep(0.2)
    series = sampler.stop()
    assert len(series["t_s"]) >= 5 and series["t_s"] == sorted(series["t_s"])
    assert set(series["power_w"]) == {650.0} and set(series["sm_clock_mhz"]) == {1755}


def test_amdsmi_backend_reads_counter_and_maps_hip_visible_devices(monkeypatch):
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi(n_gpus=2))
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    backend = AmdSmiBackend(0)
    assert backend.handle == "handle1"
    assert backend.energy_j() == pytest.approx(2_000_000 * 15.3 / 1e6)  # raw x resolution (uJ)
    s = backend.sample()
    assert s["power_w"] == 598.0 and s["sm_clock_mhz"] == 2100 and s["memory_used_bytes"] == 1024 * 2**20
    info = backend.static_info()
    assert info["name"] == "AMD Instinct MI300X" and info["power_limit_w"] == 750.0 and info["same_model_count"] == 2
    assert AmdSmiBackend(0, bdf="0000:c1:00.0").handle == "handle0"


def test_amdsmi_is_probed_first_on_rocm(monkeypatch, gpus):
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi())
    assert telemetry.open_backend("auto", "cuda:0", is_rocm=True).name == "amdsmi"
    assert telemetry.open_backend("auto", "cuda:0").name == "nvml"


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


def _flat(n, **fields):
    keys = ("sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct", "memory_used_bytes", "temperature_c",
            "throttle_mask")
    return {k: [fields.get(k, 1)] * n for k in keys}


def _info(backend, series):
    from bench.worker import _telemetry_info

    info = _telemetry_info(backend, 0.1)
    info["series"] = series
    return info


def _gen(start, end, energy_j):
    return {"latency_s": end - start, "telemetry": {"start_s": start, "end_s": end, "energy_j": energy_j,
            "text_encode_energy_j": energy_j and 0.0, "denoise_energy_j": energy_j, "vae_decode_energy_j": 0.0}}
