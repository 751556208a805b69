import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.analysis import fleet, fleet_estimate
from bench.analysis.fleet import Figure
from bench.analysis.scenarios import PRESETS, load_scenario
from bench.analysis.throughput import Throughput
from bench.core.errors import UsageError
from bench.core.hardware import get
from bench.records.io import load_record
from bench.records.key import settings_key
from tests import forge
from tests.test_record import GOLDEN, _with_nvml_telemetry

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = (PRESETS / "factorial-2024.toml").read_text()
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


def _scenario(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _figures(price=None, power=None, rental=None):
    return {"unit_price_usd": Figure(price, "test"), "board_power_w": Figure(power, "test"),
            "rental_usd_per_gpu_hour": Figure(rental, "test")}


# --- the published estimate, the vocabulary, the hand-computed model -------------------------------------------------

def test_factorial_preset_reproduces_the_published_estimate(run_cli):
    d = _fleet_json(run_cli, "--scenario", "factorial-2024")
    assert d["throughput"] == {"video_min_per_gpu_hour": 5.0, "kind": "scenario", "measured": False,
                               "source": d["throughput"]["source"], "hardware": "h100-sxm", "settings_key": None,
                               "evidence": "assumed", "interval": None, "interval_basis": "", "made": None}
    assert d["ai_video_minutes_per_day"] == 10.7e6
    assert d["kept_video_gpus"] == pytest.approx(89_166.67, abs=0.01)
    assert d["busy_gpus"] == pytest.approx(178_333.33, abs=0.01)
    assert d["average_fleet_gpus"] == pytest.approx(356_666.67, abs=0.01)
    assert d["peak_fleet_gpus"] == pytest.approx(713_333.33, abs=0.01)
    assert d["capex_usd"] == pytest.approx(21.4e9)
    assert d["power_at_peak_mw"] == pytest.approx(499.33, abs=0.01)
    assert d["context"]["peak_fleet_vs_h100_shipped_2023"] == pytest.approx(713_333.33 / 550_000)
    assert d["context"]["capex_vs_ai_token_market_cap"] == pytest.approx(21.4 / 25)
    # owned: (capex / 4 years + energy per year) / kept minutes per year; rented: the catalogue's dated H100 price
    energy_cost = 178_333.33 * 700 * 8760 / 1e3 * 0.10
    assert d["owned_usd_per_kept_video_minute"] == pytest.approx((21.4e9 / 4 + energy_cost) / (365 * 10.7e6), rel=1e-6)
    rental = get("h100-sxm").rental_usd_per_gpu_hour
    assert d["gpu_figures"]["rental_usd_per_gpu_hour"]["value"] == rental
    assert d["rented_usd_per_kept_video_minute"] == pytest.approx(2 * rental / (5 * 0.5))
    assert d["warnings"] == []


def test_one_vocabulary_in_screen_and_json(run_cli):
    d = _fleet_json(run_cli)
    assert {"kept_video_gpus", "busy_gpus", "average_fleet_gpus", "peak_fleet_gpus"} <= set(d)
    assert not any("naive" in k or k in ("peak_gpus", "average_gpus") for k in d)
    assert {"peak_fleet_gpus_at_low", "peak_fleet_gpus_at_high"} <= set(d["sensitivity"][0])
    code, out, _ = run_cli("fleet")
    assert code == 0 and "naive" not in out
    for label in ("kept-video GPUs (demand / 24 h / throughput)", "busy GPUs (x 2", "average fleet (/ 0.5",
                  "peak fleet (x 2"):
        assert label in out


def test_factorial_text_shows_both_demand_figures_the_publication_and_the_rules(run_cli):
    code, out, _ = run_cli("fleet", "--explain")
    assert code == 0
    assert "= 14.95M" in out and "10.70M" in out
    assert "as published: 720k GPUs x $30,000 = $21.60B, x 700 W = 504 MW" in out
    assert "peak fleet       = average fleet x peak-to-average ratio" in out
    assert "the first that applies" in out and "--measured-power" in out  # the precedence rule is explained


def test_as_published_line_only_for_a_scenario_with_a_publication(run_cli, tmp_path):
    start = FACTORIAL.index("# What the report and its coverage published")
    end = FACTORIAL.index("[[platforms]]")
    path = _scenario(tmp_path, FACTORIAL[:start] + FACTORIAL[end:])
    code, out, _ = run_cli("fleet", "--scenario", path)
    assert code == 0 and "peak fleet (x 2" in out and "as published" not in out
    code, out, _ = run_cli("fleet", "--throughput", "3")  # the preset keeps its quote whatever the throughput
    assert code == 0 and "as published: 720k GPUs" in out


def test_hand_computed_case(tmp_path):
    s = load_scenario(str(_scenario(tmp_path, HAND)))
    out = fleet.size(s, 10.0, _figures(price=2000, power=400, rental=2.0))
    assert out["kept_video_gpus"] == pytest.approx(1e6 / 240)
    assert out["busy_gpus"] == pytest.approx(12_500)
    assert out["average_fleet_gpus"] == pytest.approx(12_500 / 0.6)
    assert out["peak_fleet_gpus"] == pytest.approx(31_250)
    assert out["capex_usd"] == pytest.approx(62.5e6)
    assert out["power_at_peak_mw"] == pytest.approx(15.0)
    assert out["energy_per_year_mwh"] == pytest.approx(52_560)
    assert out["energy_cost_per_year_usd"] == pytest.approx(10.512e6)
    assert out["owned_usd_per_kept_video_minute"] == pytest.approx((62.5e6 / 5 + 10.512e6) / 365e6)
    assert out["rented_usd_per_kept_video_minute"] == pytest.approx(1.0)  # 3 x $2 / (10 x 0.6)


def test_cost_per_video_minute_against_a_hand_computation(tmp_path):
    s = load_scenario(str(_scenario(tmp_path, HAND)))
    c = fleet.cost_per_video_minute(s, 10.0, unit_price_usd=2000, board_power_w=400, rental_usd_per_gpu_hour=2.0)
    capital = 2000 / (5 * 8760 * 0.6) / 10  # price over the busy hours of a 5-year life, per video-minute
    energy = 0.4 * 1.2 * 0.2 / 10  # kW x PUE x $/kWh per GPU-hour, per video-minute
    assert c["owned_capital_usd_per_video_minute"] == pytest.approx(capital)
    assert c["owned_energy_usd_per_video_minute"] == pytest.approx(energy)
    assert c["owned_usd_per_video_minute"] == pytest.approx(capital + energy) == pytest.approx(0.0172103501)
    assert c["rented_usd_per_video_minute"] == pytest.approx(0.2)  # $2 per GPU-hour / 10 video-min per GPU-hour
    partial = fleet.cost_per_video_minute(s, 10.0, unit_price_usd=None, board_power_w=400, rental_usd_per_gpu_hour=None)
    assert partial["owned_usd_per_video_minute"] is None and partial["rented_usd_per_video_minute"] is None
    assert partial["owned_energy_usd_per_video_minute"] == pytest.approx(energy)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(UsageError, match="impossible"):
            fleet.cost_per_video_minute(s, bad, 2000, 400, 2.0)


def test_platform_shares_are_used_when_no_direct_figure(tmp_path):
    path = _scenario(tmp_path, HAND.replace("ai_video_minutes_per_day = 1e6", "") +
                     '[[platforms]]\nname = "a"\nminutes_uploaded_per_day = 2e6\nai_share = 0.25\n'
                     '[[platforms]]\nname = "b"\nminutes_uploaded_per_day = 1e6\nai_share = 0.5\n')
    assert load_scenario(str(path)).demand_minutes_per_day == 1e6


def test_sensitivity_and_per_class_scaling():
    s = load_scenario("factorial-2024")
    tp = Throughput(5.0, "given", "test", get("h100-sxm"))
    est = fleet_estimate.estimate(s, tp, set())
    rows = {r["assumption"]: r for r in est.sensitivity}
    # the throughput has no range (given, not measured): +-50%
    assert rows["throughput_video_min_per_gpu_hour"]["peak_fleet_gpus_at_low"] == pytest.approx(2 * 713_333.33, abs=0.1)
    assert rows["throughput_video_min_per_gpu_hour"]["peak_fleet_gpus_at_high"] == pytest.approx(713_333.33 / 1.5, abs=0.1)
    assert "no range given" in rows["throughput_video_min_per_gpu_hour"]["basis"]
    # utilization has the preset's range [0.3, 0.7]: 713,333 x 0.5 / 0.3 and x 0.5 / 0.7
    assert rows["utilization"]["high_value"] == 0.7 and rows["utilization"]["basis"] == "assumed: scenario range"
    assert rows["utilization"]["peak_fleet_gpus_at_low"] == pytest.approx(713_333.33 * 0.5 / 0.3, abs=0.1)
    classes = {r["hardware"]: r for r in est.per_class}
    assert classes["b200"]["video_min_per_gpu_hour"] == pytest.approx(5.0 * 2250 / 989.4) and classes["b200"]["scaled"]
    assert not classes["h100-sxm"]["scaled"]
    assert classes["h100-sxm"]["peak_fleet_gpus"] == pytest.approx(713_333.33, abs=0.1)


# --- precedence of the per-GPU figures: --set > scenario file > catalogue; measured power only when asked ------------

def test_a_scenario_files_own_board_power_is_used(run_cli, tmp_path):
    base = _fleet_json(run_cli, "--throughput", "5")
    path = _scenario(tmp_path, FACTORIAL.replace("\nboard_power_w = 700\n", "\nboard_power_w = 600\n", 1))
    d = _fleet_json(run_cli, "--scenario", path, "--throughput", "5")
    assert d["gpu_figures"]["board_power_w"] == {"value": 600.0, "source": "scenario factorial-2024"}
    assert d["power_at_peak_mw"] == pytest.approx(base["power_at_peak_mw"] * 600 / 700)
    assert d["energy_per_year_mwh"] == pytest.approx(base["energy_per_year_mwh"] * 600 / 700)


def test_a_scenario_without_hardware_keeps_its_price_and_power(run_cli, tmp_path):
    text = HAND + "unit_price_usd = 2000\nboard_power_w = 400\n"
    d = _fleet_json(run_cli, "--scenario", _scenario(tmp_path, text))
    assert d["throughput"]["hardware"] is None
    assert d["capex_usd"] == pytest.approx(62.5e6) and d["power_at_peak_mw"] == pytest.approx(15.0)
    assert d["rented_usd_per_kept_video_minute"] == pytest.approx(1.0)


def test_set_beats_the_file_and_the_file_does_not_price_another_class(run_cli):
    d = _fleet_json(run_cli, "--set", "board_power_w=500", "--set", "unit_price_usd=25000")
    assert d["gpu_figures"]["board_power_w"] == {"value": 500.0, "source": "--set"}
    assert d["capex_usd"] == pytest.approx(d["peak_fleet_gpus"] * 25000)
    d = _fleet_json(run_cli, "--throughput", "5", "--hardware", "b200")  # factorial's figures are for h100-sxm
    b200 = get("b200")
    assert d["gpu_figures"]["board_power_w"]["value"] == b200.board_power_w
    assert d["gpu_figures"]["unit_price_usd"]["value"] == b200.price_usd
    assert "catalogue b200" in d["gpu_figures"]["unit_price_usd"]["source"]
    assert d["power_at_peak_mw"] == pytest.approx(d["peak_fleet_gpus"] * b200.board_power_w / 1e6)


def test_hardware_alone_scales_the_scenario_throughput_and_says_so(run_cli):
    d = _fleet_json(run_cli, "--hardware", "b200")
    assert d["throughput"]["kind"] == "scaled" and d["throughput"]["measured"] is False
    assert d["throughput"]["video_min_per_gpu_hour"] == pytest.approx(5.0 * 2250 / 989.4)
    assert "SCALED to b200" in d["throughput"]["source"]
    same = _fleet_json(run_cli, "--hardware", "h100-sxm")
    assert same["throughput"]["kind"] == "scenario" and same["peak_fleet_gpus"] == pytest.approx(713_333.33, abs=0.1)


# --- records: only complete GPU runs of real models, unless --allow-toy ----------------------------------------------

def _record_data(*, gpu: bool = True, spec: str = "custom-dit", complete: bool = True) -> dict:
    """The golden record (a complete CPU run of tiny-wan) made into another kind, its summary kept consistent."""
    data = load_record(GOLDEN).model_dump(mode="json")
    if gpu:
        data["hardware_class"], data["settings"]["device"] = "nvidia-h100-80gb-hbm3", "cuda:0"
        data["environment"] = forge.gpu_environment()
    data["spec"]["name"] = spec
    if "tiny" in data["spec"]:
        data["spec"]["tiny"] = spec.startswith("tiny-")
    if not complete:
        data["complete"], data["incomplete_reason"] = False, "out of memory at generation 3"
    return data


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_gpu_record_of_a_real_model_is_used_and_is_measured(run_cli, tmp_path):
    data = _record_data()
    d = _fleet_json(run_cli, "--record", _write(tmp_path / "gpu.json", data))
    assert d["throughput"]["kind"] == "record" and d["throughput"]["measured"] is True
    assert d["throughput"]["video_min_per_gpu_hour"] == data["summary"]["video_minutes_per_gpu_hour"]
    assert d["throughput"]["hardware"] == "h100-sxm" and d["warnings"] == []
    assert d["kept_video_gpus"] == pytest.approx(10.7e6 / (24 * data["summary"]["video_minutes_per_gpu_hour"]))


@pytest.mark.parametrize("kind,fragment", [
    ("cpu", "was made on a CPU ('cpu:amd-epyc')"),
    ("toy", "was made with the toy spec 'tiny-wan'"),
    ("golden", "was made on a CPU"),
    ("incomplete", "is incomplete ('out of memory at generation 3')"),
])
def test_cpu_toy_and_incomplete_records_are_refused(run_cli, tmp_path, kind, fragment):
    data = {"cpu": lambda: _record_data(gpu=False), "toy": lambda: _record_data(spec="tiny-wan"),
            "golden": lambda: json.loads(GOLDEN.read_text()),
            "incomplete": lambda: _record_data(complete=False)}[kind]()
    _refused(run_cli, tmp_path, ["--record", _write(tmp_path / "r.json", data)], fragment)


def test_allow_toy_warns_and_keeps_the_warning_in_the_json(run_cli, tmp_path):
    code, out, err = run_cli("fleet", "--json", "--record", GOLDEN, "--allow-toy")
    assert code == 0
    d = json.loads(out)
    assert d["throughput"]["measured"] is True and d["capex_usd"] is None  # a CPU has no catalogue price: no guess
    assert len(d["warnings"]) == 1 and "toy, not an estimate" in d["warnings"][0]
    assert "made on a CPU" in d["warnings"][0] and "toy spec 'tiny-wan'" in d["warnings"][0]
    assert "t2vbench: warning:" in err and "toy, not an estimate" in err
    path = _write(tmp_path / "inc.json", _record_data(complete=False))  # --allow-toy never admits an incomplete run
    _refused(run_cli, tmp_path, ["--record", path, "--allow-toy"], "is incomplete")


def test_a_records_measured_power_is_used_only_when_asked(run_cli, monkeypatch, tmp_path):
    data = _with_nvml_telemetry(monkeypatch)
    data["hardware_class"], data["settings"]["device"], data["spec"]["name"] = "nvidia-h100-80gb-hbm3", "cuda:0", "dit"
    data["spec"]["tiny"] = False
    path = _write(tmp_path / "gpu.json", data)
    d = _fleet_json(run_cli, "--record", path)
    assert d["gpu_figures"]["board_power_w"] == {"value": 700.0, "source": "scenario factorial-2024"}
    assert d["gpu_figures"]["unit_price_usd"]["value"] == 30000
    d = _fleet_json(run_cli, "--record", path, "--measured-power")
    assert d["gpu_figures"]["board_power_w"]["value"] == pytest.approx(650.0)
    assert "measured" in d["gpu_figures"]["board_power_w"]["source"]
    assert d["power_at_peak_mw"] == pytest.approx(d["peak_fleet_gpus"] * 650.0 / 1e6)
    _refused(run_cli, tmp_path, ["--record", path, "--measured-power", "--set", "board_power_w=600"],
             "--measured-power and --set board_power_w")
    _refused(run_cli, tmp_path, ["--record", path, "--hardware", "b200"], "--hardware b200 disagrees with the record")


def _results(tmp_path, guidances=(5.0, 5.0, 5.0), scales=(1.0, 2.0, 4.0), spec="custom-dit") -> list[float]:
    """Records of one model on an H100 at known throughputs (timings divided by scale), some at another guidance."""
    values = []
    for i, (guidance, scale) in enumerate(zip(guidances, scales)):
        data = _record_data(spec=spec)
        data["settings"]["guidance_scale"] = guidance
        for g in data["generations"]:
            for key in ("latency_s", "text_encode_s", "denoise_s", "vae_decode_s"):
                g[key] /= scale
            g["step_s"] = [t / scale for t in g["step_s"]]
        forge.summarized(data)
        data["run_id"] = f"{0xf1ee7000 + i:012x}"  # runs of their own: a shared run_id would count them as one
        values.append(data["summary"]["video_minutes_per_gpu_hour"])
        _write(tmp_path / f"r{i}.json", data)
    return values


def test_fleet_from_a_results_folder_takes_the_median_and_skips_what_is_not_a_record(run_cli, tmp_path):
    values = _results(tmp_path)
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "cut.json").write_text('{"schema_version": 4')
    d = _fleet_json(run_cli, "--results", tmp_path, "--model", "custom-dit", "--hardware", "h100-sxm")
    assert d["throughput"]["video_min_per_gpu_hour"] == pytest.approx(sorted(values)[1])
    assert d["throughput"]["kind"] == "results" and d["throughput"]["measured"] is True
    assert d["throughput"]["settings_key"] == settings_key(load_record(tmp_path / "r0.json"))
    skipped = [w for w in d["warnings"] if w.startswith("skipped ")]  # one line per file, naming it
    assert len(skipped) == 2 and any("notes.json" in w for w in skipped) and any("cut.json" in w for w in skipped)


def test_a_copy_under_a_new_run_id_does_not_move_the_median(run_cli, tmp_path):
    # catches: fleet --results counting a run twice when copied under a new run id (as compare no longer does): with
    # r2 (the fastest, 4x) copied twice the median of 1x, 2x, 4x, 4x, 4x moved from 2x to 4x
    values = _results(tmp_path)
    fastest = json.loads((tmp_path / "r2.json").read_text())
    for n in (1, 2):
        _write(tmp_path / f"copy{n}.json", {**fastest, "run_id": f"c0c0c0c0c0c{n}", "label": f"copy {n}"})
    d = _fleet_json(run_cli, "--results", tmp_path, "--model", "custom-dit", "--hardware", "h100-sxm")
    assert d["throughput"]["video_min_per_gpu_hour"] == pytest.approx(sorted(values)[1])
    skipped = [w for w in d["warnings"] if "the same measurements as" in w and "counted once" in w]
    assert len(skipped) == 2, d["warnings"]


def test_results_of_several_settings_are_never_merged(run_cli, tmp_path):
    values = _results(tmp_path, guidances=(5.0, 5.0, 6.0), scales=(1.0, 2.0, 8.0))
    keys = [settings_key(load_record(tmp_path / f"r{i}.json")) for i in (0, 2)]
    argv = ["--results", tmp_path, "--model", "custom-dit", "--hardware", "h100-sxm"]
    err = _refused(run_cli, tmp_path, argv, "were made at 2 settings")
    assert keys[0] in err and keys[1] in err and "--settings KEY" in err
    d = _fleet_json(run_cli, *argv, "--settings", keys[0])
    assert d["throughput"]["video_min_per_gpu_hour"] == pytest.approx((values[0] + values[1]) / 2)
    d = _fleet_json(run_cli, *argv, "--settings", keys[1])
    assert d["throughput"]["video_min_per_gpu_hour"] == pytest.approx(values[2])
    _refused(run_cli, tmp_path, [*argv, "--settings", "640x480-nope"], "no records of 'custom-dit' on h100-sxm")


def test_toy_records_in_a_results_folder_are_refused_unless_allowed(run_cli, tmp_path):
    _results(tmp_path, spec="tiny-wan")
    argv = ["--results", tmp_path, "--model", "tiny-wan", "--hardware", "h100-sxm"]
    _refused(run_cli, tmp_path, argv, "was made with the toy spec 'tiny-wan'")
    d = _fleet_json(run_cli, *argv, "--allow-toy")
    assert len(d["warnings"]) == 3 and all("toy" in w for w in d["warnings"])


def test_the_throughput_line_names_its_kind_and_evidence_once(run_cli, tmp_path):
    code, out, err = run_cli("fleet", "--record", _write(tmp_path / "gpu.json", _record_data()))
    assert code == 0, err
    assert "throughput  [record, measured] record " in out, out  # it read "[record, measured, measured]"
    code, out, err = run_cli("fleet")
    assert code == 0, err
    assert "throughput  [scenario, assumed, not measured] scenario factorial-2024" in out, out


def test_measured_is_true_only_for_measured_sources(run_cli, tmp_path):
    assert _fleet_json(run_cli)["throughput"]["measured"] is False
    assert _fleet_json(run_cli, "--throughput", "3")["throughput"]["measured"] is False
    assert _fleet_json(run_cli, "--hardware", "b200")["throughput"]["measured"] is False
    assert Throughput(1.0, "bound", "test").measured is False
    assert _fleet_json(run_cli, "--record", _write(tmp_path / "r.json", _record_data()))["throughput"]["measured"]


# --- every refusal: exit 2, one line naming the field and the fix, nothing written -----------------------------------

def _refused(run_cli, tmp_path, argv, fragment) -> str:
    plots = tmp_path / "plots"
    code, out, err = run_cli("fleet", *argv, "--plot", plots / "fleet.png")
    assert code == 2 and out == "", (code, out, err)
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not plots.exists()  # nothing written
    return err


@pytest.mark.parametrize("edit,fragment", [
    (("ai_share = 0.5", "ai_share = 1.5"), "field 'ai_share' = 1.5 is outside [0, 1]"),
    (("ai_share = 0.5", "ai_share = -0.1"), "field 'ai_share' = -0.1 is outside [0, 1]"),
    (("utilization = 0.5", "utilization = 0"), "field 'utilization' = 0 is outside (0, 1]"),
    (("utilization = 0.5", "utilization = 1.2"), "field 'utilization' = 1.2 is outside (0, 1]: give the share"),
    (("utilization = 0.5", "utilization = nan"), "field 'utilization' = nan is outside"),
    (("utilization = 0.5", "utilization = inf"), "field 'utilization' = inf is outside"),
    (("utilization = 0.5", "utilization = true"), "field 'utilization' must be a number"),
    (("utilization = 0.5", 'utilization = "half"'), "field 'utilization' must be a number, not 'half'"),
    (("utilization = 0.5", "utilization = 1979-05-27"), "field 'utilization' must be a number"),
    (("peak_to_average = 2", "peak_to_average = 0.5"), "field 'peak_to_average' = 0.5 is outside [1, 1000]"),
    (("pue = 1.0", "pue = 0.9"), "field 'pue' = 0.9 is outside [1, 10]"),
    (("gpu_lifetime_years = 4", "gpu_lifetime_years = 0"), "field 'gpu_lifetime_years' = 0 is outside (0, 50]"),
    (("gpu_lifetime_years = 4", "gpu_lifetime_years = -inf"), "field 'gpu_lifetime_years' = -inf"),
    (("electricity_usd_per_kwh = 0.10", "electricity_usd_per_kwh = -0.1"), "field 'electricity_usd_per_kwh'"),
    (("candidates_per_kept_video = 2", "candidates_per_kept_video = 0.5"), "field 'candidates_per_kept_video'"),
    (("\nunit_price_usd = 30000", "\nunit_price_usd = -1"), "field 'unit_price_usd' = -1 is outside [0, 1e+07]"),
    (("\nboard_power_w = 700", "\nboard_power_w = -700"), "field 'board_power_w' = -700 is outside"),
    (("\nboard_power_w = 700", "\nboard_power_w = 1e300"), "field 'board_power_w' = 1e+300 is outside"),
    (("ai_video_minutes_per_day = 10.7e6", "ai_video_minutes_per_day = 99999999999999999999999999999"),
     "field 'ai_video_minutes_per_day' = 99999999999999999999999999999 is outside (0, 1e+11]"),
    (("ai_video_minutes_per_day = 10.7e6", "ai_video_minutes_per_day = 0"), "field 'ai_video_minutes_per_day' = 0"),
    (("throughput_video_min_per_gpu_hour = 5.0", "throughput_video_min_per_gpu_hour = -5"),
     "field 'throughput_video_min_per_gpu_hour' = -5"),
    (("throughput_video_min_per_gpu_hour = 5.0", "throughput_video_min_per_gpu_hour = inf"),
     "field 'throughput_video_min_per_gpu_hour' = inf"),
    (("electricity_usd_per_kwh = 0.10", "electricity_usd_per_kwh = 0.10\nrental_usd_per_gpu_hour = nan"),
     "field 'rental_usd_per_gpu_hour' = nan"),
    (("candidates_per_kept_video = 2", ""), "missing field 'candidates_per_kept_video'"),
    (("pue = 1.0", "pue = 1.0\nutilisation = 0.5"), "unknown field 'utilisation' (did you mean utilization?)"),
    (("name = ", "name = = "), "not valid TOML"),
    (('name = "factorial-2024"', 'name = "../../x"'), "field 'name' = '../../x' must be a short slug"),
    (('name = "factorial-2024"', "name = 5"), "field 'name' = 5 must be a short slug"),
    (('hardware = "h100-sxm"', "hardware = 5"), "field 'hardware' must be a hardware class name, not 5"),
    (('hardware = "h100-sxm"', 'hardware = "h100"'), "field 'hardware': unknown hardware class 'h100': did you mean"),
    (('description = "', 'description = "\\u001b[2J'), "field 'description' must be one printable line"),
    (('ai_share = 0.15', "ai_share = 0.15\nshare = 1"), "platforms[1]: unknown field 'share'"),
    (('name = "TikTok"', 'name = 7'), "platforms[0]: field 'name' must be a non-empty string"),
    (("peak_gpus = 720000", "peak_gpus = -720000"), "[publication]: field 'peak_gpus' = -720000 is outside"),
    (("peak_gpus = 720000\n", ""), "[publication]: missing field 'peak_gpus'"),
])
def test_malformed_scenarios_are_refused_in_one_line(run_cli, tmp_path, edit, fragment):
    assert edit[0] in FACTORIAL
    path = _scenario(tmp_path, FACTORIAL.replace(edit[0], edit[1], 1))
    _refused(run_cli, tmp_path, ["--scenario", path], fragment)


@pytest.mark.parametrize("platforms", ["5", "[5]", '"TikTok"', "[[1, 2]]", "{ name = 1 }"])
def test_platforms_of_the_wrong_type_are_refused_not_a_traceback(run_cli, tmp_path, platforms):
    path = _scenario(tmp_path, HAND + f"platforms = {platforms}\n")
    _refused(run_cli, tmp_path, ["--scenario", path], "field 'platforms' must be an array of tables")


def test_hostile_scenario_files_are_refused_in_one_line(run_cli, tmp_path):
    deep = _scenario(tmp_path, "a = " + "[" * 5000 + "]" * 5000, "deep.toml")
    _refused(run_cli, tmp_path, ["--scenario", deep], "nested too deeply")
    big = _scenario(tmp_path, "#" * 70_000, "big.toml")
    _refused(run_cli, tmp_path, ["--scenario", big], "larger than 65536 bytes")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(FACTORIAL.replace("Factorial Funds (March", "Factorial Funds (M\xe4rz").encode("latin-1"))
    _refused(run_cli, tmp_path, ["--scenario", latin], "not UTF-8 text")
    _refused(run_cli, tmp_path, ["--scenario", tmp_path], "is a folder")
    _refused(run_cli, tmp_path, ["--scenario", "/dev/zero"], "no such file (or not a regular file)")
    _refused(run_cli, tmp_path, ["--scenario", tmp_path / "absent.toml"], "no such file")
    _refused(run_cli, tmp_path, ["--scenario", "factorial-2025"], "no such preset; did you mean factorial-2024?")
    _refused(run_cli, tmp_path, ["--scenario", "factorial-2024;rm"], "no such preset")


def test_strings_from_the_command_line_are_echoed_escaped(run_cli, tmp_path):
    err = _refused(run_cli, tmp_path, ["--set", "\x1b[2J=1"], "not a numeric scenario field")
    assert "\x1b" not in err and "\\x1b[2J" in err
    err = _refused(run_cli, tmp_path, ["--hardware", "\x1b]0;x\x07", "--throughput", "3"], "unknown hardware class")
    assert "\x1b" not in err and "\x07" not in err


@pytest.mark.parametrize("argv,fragment", [
    (["--throughput", "0"], "--throughput = 0 is outside (0, 100000]"),
    (["--throughput", "inf"], "--throughput = inf is outside"),
    (["--throughput", "nan"], "--throughput = nan is outside"),
    (["--throughput", "-3"], "--throughput = -3 is outside"),
    (["--throughput", "1e9"], "--throughput = 1e+09 is outside"),
    (["--set", "utilization=2"], "--set utilization = 2 is outside (0, 1]"),
    (["--set", "utilization=nan"], "--set utilization = nan is outside"),
    (["--set", "pue=inf"], "--set pue = inf is outside [1, 10]"),
    (["--set", "board_power_w=-1"], "--set board_power_w = -1 is outside"),
    (["--set", "unit_price_usd=1e400"], "--set unit_price_usd = inf is outside"),
    (["--set", "utilisation=0.7"], "did you mean utilization?"),
    (["--set", "utilization=high"], "--set utilization='high': not a number"),
    (["--set", "utilization"], "write FIELD=VALUE"),
    # catches: the last of two differing values silently winning (which did the user mean?)
    (["--set", "utilization=0.5", "--set", "utilization=0.6"], "--set utilization is given twice (0.5 and 0.6)"),
    (["--set", "hardware=b200"], "--set 'hardware': not a numeric scenario field"),
    (["--range", "nan"], "--range nan"),
    (["--range", "1.5"], "--range 1.5"),
    (["--hardware", "h100", "--throughput", "3"], "unknown hardware class 'h100': did you mean"),
    (["--hardware", "h100"], "unknown hardware class 'h100': did you mean"),
    (["--results", "/tmp"], "--results needs --model and --hardware"),
    (["--results", "/nonexistent-dir", "--model", "m", "--hardware", "h100-sxm"], "not a folder"),
    (["--settings", "k"], "--settings chooses among the records of --results"),
    (["--model", "wan2.1-t2v-1.3b"], "--model names the model of --results"),
    (["--measured-power"], "--measured-power needs a measured throughput"),
    (["--bound", "mochi-1"], "FLOP counting is not available for mochi-1"),
    (["--bound", "tiny-wan"], "--bound tiny-wan: a toy spec's bound says nothing"),
    (["--record", "/nonexistent.json"], "no such record file"),
])
def test_bad_fleet_options_are_one_line(run_cli, tmp_path, argv, fragment):
    _refused(run_cli, tmp_path, argv, fragment)


def test_scaling_needs_a_scenario_with_hardware_and_plots_need_a_writable_name(run_cli, tmp_path):
    path = _scenario(tmp_path, HAND)
    _refused(run_cli, tmp_path, ["--scenario", path, "--hardware", "b200"], "names no hardware class to scale")
    code, _, err = run_cli("fleet", "--plot", tmp_path)
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli("fleet", "--plot", tmp_path / "fleet.pdf")
    assert code == 2 and "give a name ending in .png or .svg" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing written


def test_a_fleet_too_large_for_a_float_is_refused(tmp_path):
    s = load_scenario(str(_scenario(tmp_path, HAND.replace("utilization = 0.6", "utilization = 1e-300"))))
    with pytest.raises(UsageError, match="too large for a number"):
        fleet.size(s, 1e-5, _figures(price=1e7))


# --- output files, the catalogue, the pipe ------------------------------------------------------------------------

def test_plot_writes_png_and_svg(run_cli, tmp_path):
    d = _fleet_json(run_cli, "--throughput", "3.4", "--hardware", "h100-sxm", "--set", "utilization=0.7",
                    "--plot", tmp_path / "fleet.png")
    png, svg = (tmp_path / "fleet.png"), (tmp_path / "fleet.svg")
    assert sorted(d["plots"]) == sorted([str(png), str(svg)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:400]
    assert d["peak_fleet_gpus"] == pytest.approx(10.7e6 / (24 * 3.4) * 2 / 0.7 * 2)


def test_catalogue_entries_all_carry_a_source_and_rentals_a_dated_one():
    from bench.core.hardware import catalogue

    classes = catalogue()
    assert {"h100-sxm", "h100-pcie", "h200", "b200", "a100-80gb", "l40s", "rtx-4090", "rtx-3090", "rtx-5090",
            "mi300x", "mi250x", "rx-7900-xtx"} <= set(classes)
    for hw in classes.values():
        assert len(hw.source) > 20 and hw.date[:2] == "20" and hw.bf16_tflops > 0 and hw.board_power_w > 0
        if hw.price_usd is not None:
            assert "price" in hw.source or "MSRP" in hw.source
        if hw.rental_usd_per_gpu_hour is not None:
            assert 0.1 < hw.rental_usd_per_gpu_hour < 50 and "https://" in hw.rental_source
            assert hw.rental_date[:4] == "2026" and len(hw.rental_date) == 10
        else:
            assert hw.rental_source is None and hw.rental_date is None
    for cls in ("h100-sxm", "h200", "b200", "mi300x"):
        assert classes[cls].rental_usd_per_gpu_hour is not None
    # the NVIDIA data-center prices come from one cloud's page, so class ratios are not cloud differences
    assert all("coreweave.com/pricing" in classes[c].rental_source for c in ("h100-sxm", "h200", "b200"))


@pytest.mark.parametrize("name,expected", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("AMD Instinct MI300X", "mi300x"), ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),
    ("NVIDIA GeForce RTX 3090 Ti", None), ("NVIDIA H100 NVL", None), ("cpu:amd-epyc", None),
])
def test_gpu_names_map_onto_the_catalogue(name, expected):
    from bench.core.hardware import match_gpu

    hw = match_gpu(name)
    assert (hw.id if hw else None) == expected


def test_hardware_command_lists_sources(run_cli):
    code, out, _ = run_cli("hardware")
    assert code == 0 and "h100-sxm" in out and "datasheet" in out


def test_a_closed_pipe_ends_quietly():
    # The reader closes its end before anything is written: every write then fails with EPIPE.
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "fleet", "--explain"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    head = subprocess.run(f"'{sys.executable}' -m bench.cli fleet --explain | head -1", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert head.stdout.startswith("The fleet extrapolator") and head.stderr == "", head.stderr


MINIMAL = """name = "my"
candidates_per_kept_video = 2
utilization = 0.5
peak_to_average = 2
gpu_lifetime_years = 4
pue = 1.2
electricity_usd_per_kwh = 0.1
ai_video_minutes_per_day = 1.2e6
"""


def test_a_minimal_scenario_needs_no_description_and_explain_documents_the_format(run_cli, tmp_path):
    path = tmp_path / "my.toml"
    path.write_text(MINIMAL)
    code, out, err = run_cli("fleet", "--scenario", path, "--throughput", 5, "--json")
    assert code == 0, err
    # hand arithmetic: 1.2e6 video-min/day / 24 h / 5 video-min per GPU-hour = 10,000 kept-video GPUs
    fleet = json.loads(out)
    assert fleet["kept_video_gpus"] == pytest.approx(10_000)
    assert fleet["peak_fleet_gpus"] == pytest.approx(10_000 * 2 / 0.5 * 2)  # x candidates / utilization x peak
    code, out, _ = run_cli("fleet", "--scenario", path, "--throughput", 5, "--explain")
    assert "A scenario file is TOML" in out and "candidates_per_kept_video" in out and "scenario    my\n" in out
    path.write_text(MINIMAL.replace("pue = 1.2\n", ""))
    code, _, err = run_cli("fleet", "--scenario", path, "--throughput", 5)
    assert code == 2 and "missing field 'pue'" in err


def test_fleet_figure_counts_gpus_in_k_and_m_and_names_every_colour(tmp_path):
    """A hand-made estimate: a 1.25M-GPU scenario, two assumptions moved, three classes. Every count axis reads
    '500k', '1M', '10M' (no '1e6' offset, no 10^6), each axis says what it counts, each colour is in a legend."""
    from matplotlib.colors import to_hex

    from bench.present.fleet import figure

    sensitivity = [{"assumption": "utilization", "low_value": 0.3, "high_value": 0.9,
                    "peak_fleet_gpus_at_low": 2_500_000.0, "peak_fleet_gpus_at_high": 833_333.3},
                   {"assumption": "ai_video_minutes_per_day", "low_value": 5e6, "high_value": 1.5e7,
                    "peak_fleet_gpus_at_low": 625_000.0, "peak_fleet_gpus_at_high": 1_875_000.0}]
    per_class = [{"hardware": "h100-sxm", "peak_fleet_gpus": 1_250_000.0, "scaled": False},
                 {"hardware": "b200", "peak_fleet_gpus": 550_000.0, "scaled": True},
                 {"hardware": "rtx-4090", "peak_fleet_gpus": 12_000_000.0, "scaled": True}]
    est = fleet_estimate.Estimate(load_scenario(str(_scenario(tmp_path, HAND))), Throughput(5.0, "given", "test",
                                  get("h100-sxm")), _figures(), {"peak_fleet_gpus": 1_250_000.0}, {}, [],
                                  sensitivity, per_class, None)
    fig = figure(est)
    fig.draw_without_rendering()
    left, right = fig.axes
    for ax in (left, right):
        assert ax.get_xlabel() and ax.get_ylabel()
        assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
    in_view = [t.get_text() for t in left.xaxis.get_ticklabels()
               if left.get_xlim()[0] <= t.get_position()[0] <= left.get_xlim()[1]]
    assert {"1M", "2M"} <= set(in_view) and all(re.fullmatch(r"\d+(\.\d+)?[kM]|0", t) for t in in_view), in_view
    assert "GPUs" in left.get_xlabel() and "GPUs" in right.get_ylabel()
    assert {t.get_text() for t in right.yaxis.get_ticklabels()} >= {"1M", "2M", "5M", "10M"}
    # each end of a bar says the assumption's value there: 5M and 15M video-minutes a day, 0.3 and 0.9 utilization
    assert {"5M", "15M", "0.3", "0.9"} <= {t.get_text().strip() for t in left.texts}
    left_legend = {t.get_text() for t in left.get_legend().get_texts()}
    assert left_legend == {"assumption at low", "assumption at high", "scenario: 1.25M GPUs"}
    assert [t.get_text() for t in right.get_legend().get_texts()] == [
        "the throughput's own class", "scaled by peak bf16 FLOP/s", "H100 shipped in 2023 (550k)",
        "H100 held by the top 12 (650k)"]
    # one colour, one meaning: low bars share a colour, high bars another; the own class differs from scaled ones
    ends = {round(p.get_x() + p.get_width()): to_hex(p.get_facecolor()) for p in left.patches}
    low, high = {ends[2_500_000], ends[625_000]}, {ends[833_333], ends[1_875_000]}
    assert len(low) == len(high) == 1 and low != high
    own, b200, rtx = (to_hex(p.get_facecolor()) for p in right.patches)
    assert b200 == rtx != own


def test_plot_never_writes_over_a_file_or_through_a_link(run_cli, tmp_path):
    keep = tmp_path / "keep.png"
    keep.write_text("precious")
    code, _, err = run_cli("fleet", "--plot", tmp_path / "keep")
    assert code == 2 and "exists" in err and err.count("\n") == 1
    assert keep.read_text() == "precious" and not (tmp_path / "keep.svg").exists()
    outside = tmp_path / "elsewhere" / "out.png"
    (tmp_path / "p2.png").symlink_to(outside)  # dangling: writing through it would create a file elsewhere
    code, _, err = run_cli("fleet", "--plot", tmp_path / "p2")
    assert code == 2 and not outside.exists() and not (tmp_path / "p2.svg").exists()
    code, out, _ = run_cli("fleet", "--plot", tmp_path / "new")
    assert code == 0 and (tmp_path / "new.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "new.svg").read_text().lstrip().startswith("<?xml")
