"""The hardware catalogue: the classes added for MLPerf Inference v6.1 (B300, GB200, GB300, MI325X, MI350X, MI355X),
their dense rates checked against the sheet numbers they were halved or derived from, the idle floors, and the
`match` expressions, which must each claim their own GPU names and no other class's."""

import dataclasses
import re

import pytest

from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.hardware import catalogue, match_gpu, slug

# Names each class's GPU reports (NVML name, amdsmi market_name) or that the MLPerf Inference v6.1 submissions give
# as accelerator_model_name (summary.csv): a class's `match` must take all of its own and none of another's.
TYPICAL_NAMES = {
    "h100-sxm": ["NVIDIA H100 80GB HBM3", "NVIDIA H100-SXM-80GB"],
    "h100-pcie": ["NVIDIA H100 PCIe"],
    "h200": ["NVIDIA H200", "NVIDIA H200-SXM-141GB"],
    "b200": ["NVIDIA B200", "NVIDIA B200-SXM-180GB"],
    "b300": ["NVIDIA B300", "NVIDIA B300-SXM-270GB", "Nvidia B300-SXM-270GB"],
    "gb200": ["NVIDIA GB200", "GB200-186GB_aarch64"],
    "gb300": ["NVIDIA GB300", "GB300-288GB_aarch64"],
    "a100-80gb": ["NVIDIA A100-SXM4-80GB"],
    "l40s": ["NVIDIA L40S"],
    "rtx-4090": ["NVIDIA GeForce RTX 4090"],
    "rtx-3090": ["NVIDIA GeForce RTX 3090"],
    "rtx-5090": ["NVIDIA GeForce RTX 5090"],
    "mi300x": ["AMD Instinct MI300X", "AMD Instinct MI300X 192GB HBM3"],
    "mi325x": ["AMD Instinct MI325X"],
    "mi350x": ["AMD Instinct MI350X", "AMD Instinct MI350X 288GB HBM3e"],
    "mi355x": ["AMD Instinct MI355X", "AMD Instinct MI355X 288GB HBM3e"],
    "mi250x": ["AMD Instinct MI250X"],
    "rx-7900-xtx": ["AMD Radeon RX 7900 XTX"],
}
NEW = ("b300", "gb200", "gb300", "mi325x", "mi350x", "mi355x")
ML_ENERGY_FLOOR_W = 70  # scripts/validate_results.py check_power_range: min_threshold 70 for device_instant/average


def test_every_class_has_typical_names_here():
    assert set(TYPICAL_NAMES) == set(catalogue())


@pytest.mark.parametrize("class_id,name", [(c, n) for c, names in TYPICAL_NAMES.items() for n in names])
def test_each_match_takes_its_own_names_and_no_other_class_takes_them(class_id, name):
    takers = {hw.id for hw in catalogue().values() if re.search(hw.match, slug(name))}
    assert takers == {class_id}, takers
    assert match_gpu(name).id == class_id


@pytest.mark.parametrize("name", ["NVIDIA GB200", "NVIDIA GB300"])
def test_a_grace_blackwell_gpu_is_never_taken_for_the_hgx_part(name):
    # the bug this catches: 'b200' as a bare expression matched nvidia-gb200 and filed GB200 records as B200
    assert match_gpu(name).id not in ("b200", "b300")


def test_new_classes_load_with_their_vendors():
    classes = catalogue()
    assert {c: classes[c].vendor for c in NEW} == {"b300": "nvidia", "gb200": "nvidia", "gb300": "nvidia",
                                                   "mi325x": "amd", "mi350x": "amd", "mi355x": "amd"}
    for c in NEW:
        hw = classes[c]
        assert hw.price_usd is None and hw.rental_usd_per_gpu_hour is None  # no sourced price: n/a, never a guess
        assert len(hw.source) > 100 and re.fullmatch(r"20\d\d-\d\d", hw.date)


# --- dense rates, from the sheet numbers (sparse ones halved, derived ones recomputed) --------------------------------

def test_blackwell_rates_are_the_sparse_sheet_numbers_halved():
    c = catalogue()
    # HGX B300 (glennklockwood.com, NVIDIA's table): BF16 4500 and FP8 9000 TFLOPS with 2:4 sparsity
    assert (c["b300"].bf16_tflops, c["b300"].fp8_tflops) == (4500 / 2, 9000 / 2)
    # GB200 at 1200 W (NVIDIA Blackwell technical brief via glennklockwood.com): 5000 and 10000 sparse
    assert (c["gb200"].bf16_tflops, c["gb200"].fp8_tflops) == (5000 / 2, 10000 / 2)
    # GB300 NVL72 rack without sparsity: 180 PFLOPS BF16 and 360 PFLOPS FP8 over 72 GPUs; 576 TB/s over 72
    assert (c["gb300"].bf16_tflops, c["gb300"].fp8_tflops) == (180_000 / 72, 360_000 / 72)
    assert c["gb300"].memory_tbs == 576 / 72


def test_amd_rates_follow_from_clock_and_matrix_cores():
    c = catalogue()
    # MI355X: 2400 MHz x 512 FMA per matrix core per clock x 2 FLOP per FMA x 1024 matrix cores; AMD prints 2.5 PF
    assert c["mi355x"].bf16_tflops == pytest.approx(2400e6 * 512 * 2 * 1024 / 1e12, abs=0.05)
    assert c["mi355x"].bf16_tflops == pytest.approx(5.0e3 / 2, rel=0.01)  # "5 PFLOPS with structured sparsity"
    assert c["mi355x"].fp8_tflops == pytest.approx(10.1e3 / 2, rel=0.005)  # "10.1 PFLOPS with structured sparsity"
    # MI350X: the same silicon at 2200 MHz
    assert c["mi350x"].bf16_tflops == pytest.approx(2200e6 * 512 * 2 * 1024 / 1e12, abs=0.05)
    assert c["mi350x"].fp8_tflops == pytest.approx(2 * 2200e6 * 512 * 2 * 1024 / 1e12, abs=0.1)
    # MI325X: MI300X's compute; AMD's FP8 5,229.8 TFLOPS with sparsity, halved
    assert c["mi325x"].fp8_tflops == pytest.approx(5229.8 / 2, abs=0.05)
    assert (c["mi325x"].bf16_tflops, c["mi325x"].fp8_tflops) == (c["mi300x"].bf16_tflops, c["mi300x"].fp8_tflops)


def test_peak_flops_of_the_new_classes():
    assert hardware.get("gb300").peak_flops("fp8") == 5000e12
    assert hardware.get("mi355x").peak_flops("bfloat16") == pytest.approx(2516.6e12)
    assert hardware.get("b300").peak_flops("float16") == 2250e12
    with pytest.raises(UsageError, match="mi350x has no dense float32 tensor rate"):
        hardware.get("mi350x").peak_flops("float32")


def test_board_power_and_memory_of_the_new_classes():
    c = catalogue()
    # TGP per GPU as the MLPerf v6.1 submissions state it; AMD's TBP for its two MI350-series modules
    assert {k: c[k].board_power_w for k in NEW} == {"b300": 1100, "gb200": 1200, "gb300": 1400, "mi325x": 1000,
                                                    "mi350x": 1000, "mi355x": 1400}
    assert {k: c[k].memory_gb for k in NEW} == {"b300": 270, "gb200": 186, "gb300": 288, "mi325x": 256,
                                                "mi350x": 288, "mi355x": 288}


# --- the idle floor ---------------------------------------------------------------------------------------------

def test_ml_energy_floor_on_the_classes_its_validator_covers():
    c = catalogue()
    for k in ("h100-sxm", "h200", "b200"):
        assert c[k].idle_power_w == ML_ENERGY_FLOOR_W
        assert "validate_results.py" in c[k].idle_source and "derived" not in c[k].idle_source
    for k in ("b300", "gb200", "gb300"):  # carried over from B200, and saying so
        assert c[k].idle_power_w == ML_ENERGY_FLOOR_W and c[k].idle_source.startswith("derived")


def test_classes_without_a_sourced_floor_have_none():
    c = catalogue()
    for k in ("mi300x", "mi325x", "mi350x", "mi355x", "mi250x", "h100-pcie", "a100-80gb", "l40s", "rtx-4090"):
        assert c[k].idle_power_w is None and c[k].idle_source is None


def test_every_floor_has_a_source_and_sits_below_the_board_power():
    for hw in catalogue().values():
        if hw.idle_power_w is not None:
            assert len(hw.idle_source) > 50 and 0 < hw.idle_power_w < hw.board_power_w


def test_compute_capability_is_nvidia_s_list_for_every_nvidia_class_and_none_for_amd():
    # NVIDIA's table (developer.nvidia.com/cuda-gpus), copied here by hand: catches a class given its neighbour's row
    # (B300 is 10.3, not the B200's 10.0; the RTX 5090 12.0, not 10.x)
    expected = {"h100-sxm": "9.0", "h100-pcie": "9.0", "h200": "9.0", "b200": "10.0", "gb200": "10.0", "b300": "10.3",
                "gb300": "10.3", "a100-80gb": "8.0", "l40s": "8.9", "rtx-4090": "8.9", "rtx-3090": "8.6",
                "rtx-5090": "12.0"}
    c = catalogue()
    assert {k: hw.compute_capability for k, hw in c.items() if hw.vendor == "nvidia"} == expected
    assert all(hw.compute_capability is None for hw in c.values() if hw.vendor == "amd")
    assert all("cuda-gpus" in c[k].capability_source for k in expected)


@pytest.mark.parametrize("changes,fragment", [
    ({"compute_capability": "9.0", "capability_source": None}, "go together"),
    ({"idle_power_w": 70.0, "idle_source": None}, "go together"),
    ({"idle_power_w": None, "idle_source": "a data sheet"}, "go together"),
    ({"idle_power_w": 800.0, "idle_source": "a typo"}, "not below the board power"),
])
def test_a_floor_without_its_source_or_above_the_board_power_is_refused(changes, fragment):
    h100 = catalogue()["h100-sxm"]
    with pytest.raises(ValueError, match=fragment):
        dataclasses.replace(h100, **changes)


def test_hardware_command_shows_each_floor_and_its_source(run_cli):
    code, out, _ = run_cli("hardware")
    assert code == 0
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in out.splitlines()[2:] if line and line[0] != " "}
    header = re.split(r"\s{2,}", out.splitlines()[0])
    idle = header.index("idle W")
    assert (rows["h100-sxm"][idle], rows["gb300"][idle], rows["mi355x"][idle]) == ("70", "70", "-")
    assert "mi355x: AMD Instinct MI355X" in out and "; idle floor: derived, not measured" in out
