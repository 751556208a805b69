import json

import pytest

from bench import fleet
from bench.fleet import Throughput
from bench.hardware import get
from tests.test_record import GOLDEN, _with_nvml_telemetry

HAND = """
name = "hand"
description = "a case computed by hand"
source = "this test"
ai_video_minutes_per_day = 1e6
candidates_per_kept_video = 3
utilization = 0.6
peak_to_average = 1.5
gpu_lifetime_years = 5
pue = 1.2
electricity_usd_per_kwh = 0.2
throughput_video_min_per_gpu_hour = 10
rental_usd_per_gpu_hour = 2.0
"""


def _fleet_json(run_cli, *argv):
    code, out, err = run_cli("fleet", "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_factorial_preset_reproduces_the_published_estimate(run_cli):
    d = _fleet_json(run_cli, "--scenario", "factorial-2024")
    assert d["throughput"]["value"] == 5.0 and d["ai_video_minutes_per_day"] == 10.7e6
    assert d["naive_gpus"] == pytest.approx(89_166.67, abs=0.01)
    assert d["peak_gpus"] == pytest.approx(713_333.33, abs=0.01)
    assert d["capex_usd"] == pytest.approx(21.4e9)
    assert d["power_at_peak_mw"] == pytest.approx(499.33, abs=0.01)
    assert d["context"]["peak_vs_h100_shipped_2023"] == pytest.approx(713_333.33 / 550_000)
    assert d["context"]["capex_vs_ai_token_market_cap"] == pytest.approx(21.4 / 25)


def test_factorial_text_shows_both_demand_figures_and_the_published_rounding(run_cli):
    code, out, _ = run_cli("fleet", "--explain")
    assert code == 0
    assert "= 14.95M" in out and "10.70M" in out
    assert "720k GPUs x $30,000 = $21.60B" in out and "504 MW" in out
    assert "peak fleet        = average x peak-to-average ratio" in out


def test_hand_computed_case(tmp_path):
    path = tmp_path / "hand.toml"
    path.write_text(HAND)
    s = fleet.load_scenario(str(path))
    out = fleet.size(s, Throughput(10.0, "given"), unit_price_usd=2000, power_w=400)
    assert out["naive_gpus"] == pytest.approx(1e6 / 240)
    assert out["busy_gpus"] == pytest.approx(12_500)
    assert out["average_gpus"] == pytest.approx(12_500 / 0.6)
    assert out["peak_gpus"] == pytest.approx(31_250)
    assert out["capex_usd"] == pytest.approx(62.5e6)
    assert out["power_at_peak_mw"] == pytest.approx(15.0)
    assert out["energy_per_year_mwh"] == pytest.approx(52_560)
    assert out["energy_cost_per_year_usd"] == pytest.approx(10.512e6)
    assert out["usd_per_video_minute_owned"] == pytest.approx((62.5e6 / 5 + 10.512e6) / 365e6)
    assert out["usd_per_video_minute_rented"] == pytest.approx(1.0)


def test_platform_shares_are_used_when_no_direct_figure(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(HAND.replace("ai_video_minutes_per_day = 1e6", "") +
                    '[[platforms]]\nname = "a"\nminutes_uploaded_per_day = 2e6\nai_share = 0.25\n'
                    '[[platforms]]\nname = "b"\nminutes_uploaded_per_day = 1e6\nai_share = 0.5\n')
    assert fleet.load_scenario(str(path)).demand_minutes_per_day == 1e6


def test_sensitivity_and_per_class_scaling():
    s = fleet.load_scenario("factorial-2024")
    tp = Throughput(5.0, "given", get("h100-sxm"))
    rows = {r["assumption"]: r for r in fleet.sensitivity(s, tp, 0.5)}
    assert rows["throughput"]["peak_at_low"] == pytest.approx(2 * 713_333.33, abs=0.1)
    assert rows["throughput"]["peak_at_high"] == pytest.approx(713_333.33 / 1.5, abs=0.1)
    assert rows["utilization"]["high_value"] == 0.75
    classes = {r["hardware"]: r for r in fleet.per_class(s, tp)}
    assert classes["b200"]["throughput"] == pytest.approx(5.0 * 2250 / 989.4)
    assert classes["h100-sxm"]["measured"] and classes["h100-sxm"]["peak_gpus"] == pytest.approx(713_333.33, abs=0.1)


@pytest.mark.parametrize("edit,fragment", [
    (("ai_share = 0.5", "ai_share = 1.5"), "field 'ai_share' = 1.5 is outside [0, 1]"),
    (("ai_share = 0.5", "ai_share = -0.1"), "field 'ai_share' = -0.1 is outside [0, 1]"),
    (("utilization = 0.5", "utilization = 0"), "field 'utilization' = 0 is outside (0, 1]"),
    (("utilization = 0.5", "utilization = 1.2"), "field 'utilization' = 1.2 is outside (0, 1]"),
    (("throughput_video_min_per_gpu_hour = 5.0", "throughput_video_min_per_gpu_hour = -5"),
     "field 'throughput_video_min_per_gpu_hour' = -5"),
    (("candidates_per_kept_video = 2", ""), "missing field 'candidates_per_kept_video'"),
    (("pue = 1.0", "pue = 1.0\nutilisation = 0.5"), "unknown field 'utilisation' (did you mean utilization?)"),
    (("utilization = 0.5", 'utilization = "half"'), "field 'utilization' must be a number"),
    (("name = ", "name = = "), "not valid TOML"),
])
def test_malformed_scenarios_are_refused_in_one_line(run_cli, tmp_path, edit, fragment):
    text = (fleet.PRESETS / "factorial-2024.toml").read_text()
    assert edit[0] in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    code, out, err = run_cli("fleet", "--scenario", path)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv,fragment", [
    (["--throughput", "0"], "throughput 0.0 video-min per GPU-hour is impossible"),
    (["--set", "utilization=2"], "field 'utilization' = 2.0 is outside (0, 1]"),
    (["--set", "utilisation=0.7"], "did you mean utilization?"),
    (["--set", "utilization=high"], "not a number"),
    (["--set", "utilization"], "write FIELD=VALUE"),
    (["--scenario", "factorial-2025"], "no such preset"),
    (["--hardware", "h100", "--throughput", "3"], "did you mean"),
    (["--results", "/tmp"], "--results needs --model and --hardware"),
    (["--bound", "mochi-1"], "FLOP counting is not available for mochi-1"),
])
def test_bad_fleet_options_are_one_line(run_cli, argv, fragment):
    code, _, err = run_cli("fleet", *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_fleet_from_a_cpu_record_uses_its_measured_throughput(run_cli):
    d = _fleet_json(run_cli, "--record", GOLDEN)
    measured = json.loads(GOLDEN.read_text())["summary"]["video_minutes_per_gpu_hour"]
    assert d["throughput"]["value"] == measured and "tiny-wan" in d["throughput"]["source"]
    assert d["naive_gpus"] == pytest.approx(10.7e6 / (24 * measured))
    assert d["capex_usd"] is None and d["power_at_peak_mw"] is None  # a CPU is not in the catalogue: no guess


def test_fleet_from_a_gpu_record_uses_its_measured_power(run_cli, monkeypatch, tmp_path):
    path = tmp_path / "gpu.json"
    data = _with_nvml_telemetry(monkeypatch)
    data["hardware_class"] = "nvidia-h100-80gb-hbm3"
    path.write_text(json.dumps(data))
    d = _fleet_json(run_cli, "--record", path)
    assert d["throughput"]["hardware"] == "h100-sxm"
    assert d["throughput"]["power_w"] == pytest.approx(650.0) and "measured" in d["throughput"]["power_source"]
    assert d["power_at_peak_mw"] == pytest.approx(d["peak_gpus"] * 650.0 / 1e6)
    assert d["unit_price_usd"] == 30000


def test_fleet_from_a_results_folder_takes_the_median(run_cli, monkeypatch, tmp_path):
    values = []
    for i, scale in enumerate((1.0, 2.0, 4.0)):
        data = _with_nvml_telemetry(monkeypatch)
        data["hardware_class"] = "nvidia-h100-80gb-hbm3"
        for g in data["generations"]:
            for key in ("latency_s", "text_encode_s", "denoise_s", "vae_decode_s"):
                g[key] /= scale
            g["step_s"] = [t / scale for t in g["step_s"]]
        from bench import metrics

        data["summary"] = metrics.summarize(data["generations"], 9, 16.0, 1)
        values.append(data["summary"]["video_minutes_per_gpu_hour"])
        (tmp_path / f"r{i}.json").write_text(json.dumps(data))
    d = _fleet_json(run_cli, "--results", tmp_path, "--model", "tiny-wan", "--hardware", "h100-sxm")
    assert d["throughput"]["value"] == pytest.approx(sorted(values)[1])


def test_plot_writes_png_and_svg(run_cli, tmp_path):
    d = _fleet_json(run_cli, "--throughput", "3.4", "--hardware", "h100-sxm", "--set", "utilization=0.7",
                    "--plot", tmp_path / "fleet.png")
    png, svg = (tmp_path / "fleet.png"), (tmp_path / "fleet.svg")
    assert sorted(d["plots"]) == sorted([str(png), str(svg)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:400]
    assert d["peak_gpus"] == pytest.approx(10.7e6 / (24 * 3.4) * 2 / 0.7 * 2)


def test_catalogue_entries_all_carry_a_source():
    from bench.hardware import catalogue

    classes = catalogue()
    assert {"h100-sxm", "h100-pcie", "h200", "b200", "a100-80gb", "l40s", "rtx-4090", "rtx-3090", "rtx-5090",
            "mi300x", "mi250x", "rx-7900-xtx"} <= set(classes)
    for hw in classes.values():
        assert len(hw.source) > 20 and hw.date[:2] == "20" and hw.bf16_tflops > 0 and hw.board_power_w > 0
        if hw.price_usd is not None:
            assert "price" in hw.source or "MSRP" in hw.source


@pytest.mark.parametrize("name,expected", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("AMD Instinct MI300X", "mi300x"), ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),
    ("NVIDIA GeForce RTX 3090 Ti", None), ("NVIDIA H100 NVL", None), ("cpu:amd-epyc", None),
])
def test_gpu_names_map_onto_the_catalogue(name, expected):
    from bench.hardware import match_gpu

    hw = match_gpu(name)
    assert (hw.id if hw else None) == expected


def test_hardware_command_lists_sources(run_cli):
    code, out, _ = run_cli("hardware")
    assert code == 0 and "h100-sxm" in out and "datasheet" in out
