"""`t2vbench estimate`: the headline table per hardware class, against hand arithmetic on the cost model's throughput."""

import json

import pytest

from bench.analysis import predict
from bench.analysis.headline import headline
from bench.analysis.predict_evidence import gather
from bench.analysis.scenarios import load_scenario
from bench.core.errors import UsageError
from tests.test_fleet import FACTORIAL


def _predicted(model, class_id):
    req = predict.request(model, class_id, {"width": 1280, "height": 720})
    p = predict.predict(req, gather(["results"]))
    return p.video_min_per_gpu_hour.value, p.error_interval


def test_each_class_row_is_the_fleet_of_the_cost_models_throughput():
    h = headline(load_scenario("factorial-2024"), set(), ["results"], "results")
    row = next(r for r in h.rows if r.hardware == "h100-sxm")
    tp, (lo, hi) = _predicted("wan2.2-t2v-a14b", "h100-sxm")
    assert row.model == "wan2.2-t2v-a14b" and row.estimate.throughput.evidence == "predicted"
    # peak fleet = demand x candidates x peak-to-average / (24 h x throughput x utilization), the preset's inputs
    assert row.estimate.fleet["peak_fleet_gpus"] == pytest.approx(10.7e6 * 2 * 2 / (24 * tp * 0.5))
    # the least: every ranged input at its kindest (demand 10.7M, 1 candidate, peak 1.5, utilization 0.7) and the
    # throughput at the top of the rung's validated error; the greatest: the opposite corner
    low = 10.7e6 * 1 * 1.5 / (24 * tp * (1 + hi) * 0.7)
    high = 14.95e6 * 4 * 3 / (24 * tp * (1 + lo) * 0.3)
    assert row.estimate.ranges["peak_fleet_gpus"] == pytest.approx((low, high))
    assert row.estimate.mismatch is None  # the scenario's own model and size


def test_the_publication_and_its_reproduction_stand_beside_the_rows():
    h = headline(load_scenario("factorial-2024"), set(), ["results"], "results")
    assert h.as_published.fleet["peak_fleet_gpus"] == pytest.approx(10.7e6 * 2 * 2 / (24 * 5 * 0.5))
    pub = h.scenario.publication
    assert (pub.peak_gpus, pub.peak_gpus * pub.unit_price_usd, pub.peak_gpus * pub.board_power_w / 1e6) == \
        (720_000, 21.6e9, 504)


def test_a_class_without_evidence_has_no_row_and_says_what_would_give_one():
    h = headline(load_scenario("factorial-2024"), set(), ["results"], "results")
    missing = dict(h.missing)
    assert "mi250x" in missing and "t2vbench run wan2.2-t2v-a14b" in missing["mi250x"]
    assert "mi250x" not in {r.hardware for r in h.rows}


def test_the_next_model_is_used_where_the_first_cannot_be_costed(tmp_path):
    # Mochi's FLOPs cannot be counted, so the cost model cannot predict it anywhere: the row falls to Wan2.2-A14B
    path = tmp_path / "s.toml"
    path.write_text(FACTORIAL.replace('models = ["wan2.2-t2v-a14b", "hunyuanvideo"]',
                                      'models = ["mochi-1", "wan2.2-t2v-a14b"]'))
    h = headline(load_scenario(str(path)), set(), ["results"], "results")
    assert {r.model for r in h.rows} == {"wan2.2-t2v-a14b"}


def test_a_scenario_without_video_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    start, end = FACTORIAL.index("[video]"), FACTORIAL.index("[ranges]")
    path.write_text(FACTORIAL[:start] + FACTORIAL[end:])
    with pytest.raises(UsageError, match="no \\[video\\] table"):
        headline(load_scenario(str(path)), set(), ["results"])


def test_cli_text_and_json(run_cli):
    code, out, err = run_cli("estimate", "--results", "results")
    assert code == 0, err
    assert "h100-sxm" in out and "as published" in out and "720k" in out and "$21.6B" in out and "504 MW" in out
    code, out, err = run_cli("estimate", "--results", "results", "--json")
    doc = json.loads(out)
    h100 = next(r for r in doc["rows"] if r["hardware"] == "h100-sxm")
    assert h100["kinds"]["throughput"] == "predicted" and h100["kinds"]["demand and serving"] == "assumed"
    assert h100["ranges"]["peak_fleet_gpus"]["low"] < h100["fleet"]["peak_fleet_gpus"] < \
        h100["ranges"]["peak_fleet_gpus"]["high"]
    code, _, err = run_cli("estimate", "--scenario", "nope")
    assert code == 2 and err.count("\n") == 1


MIX = """
[[requests]]
name = "5 s at 40 steps"
share = 0.25
seconds = 5
width = 1280
height = 720

[[requests]]
name = "5 s at 20 steps"
share = 0.75
seconds = 5
width = 1280
height = 720
steps = 20
"""


def test_a_request_mix_is_costed_kind_by_kind_and_sized_as_its_harmonic_mean(tmp_path, run_cli):
    path = tmp_path / "mix.toml"
    path.write_text(FACTORIAL + MIX)
    s = load_scenario(str(path))
    h = headline(s, set(), ["results"], "results")
    row = next(r for r in h.rows if r.hardware == "h100-sxm")
    evidence = gather(["results"])
    tps = [predict.predict(predict.request("wan2.2-t2v-a14b", "h100-sxm", {"width": 1280, "height": 720,
                                                                           "steps": steps}), evidence)
           .video_min_per_gpu_hour.value for steps in (40, 20)]
    mixed = 1 / (0.25 / tps[0] + 0.75 / tps[1])  # GPU-hours add up per minute demanded: the harmonic mean
    assert row.estimate.throughput.video_min_per_gpu_hour == pytest.approx(mixed)
    assert row.rung.startswith("mix") and row.estimate.mismatch is None
    # fleet --predict costs the same mix on one class
    code, out, err = run_cli("fleet", "--json", "--scenario", str(path), "--predict", "wan2.2-t2v-a14b")
    assert code == 0, err
    assert json.loads(out)["throughput"]["video_min_per_gpu_hour"] == pytest.approx(mixed)


def test_fleet_says_when_it_does_not_cost_a_mix_kind_by_kind(tmp_path, run_cli):
    path = tmp_path / "mix.toml"
    path.write_text(FACTORIAL + MIX)
    code, out, err = run_cli("fleet", "--json", "--scenario", str(path))  # the scenario's own single throughput
    assert code == 0 and "costed kind by kind only by `estimate`" in err
    assert any("[[requests]] mix" in w for w in json.loads(out)["warnings"])


def test_each_row_says_what_it_rests_on_and_its_implied_mfu(run_cli):
    code, out, _ = run_cli("estimate", "--results", "results")
    b200 = next(line for line in out.splitlines() if line.startswith("b200: "))
    # B200's rows rest on ML.ENERGY's diffusers runs and one MLPerf row (the committed references): said, with the MFU
    assert "4 published (mlenergy-v3)" in b200 and "1 published (mlperf-inference-v6.0)" in b200
    assert "implied MFU" in b200
    assert "1 measured (wan2.1-t2v-1.3b)" in next(line for line in out.splitlines() if line.startswith("h100-sxm: "))


def test_estimate_without_any_evidence_folder_is_refused(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./results, no ./t2vbench-results
    code, out, err = run_cli("estimate")
    assert code == 2 and out == "" and "--results PATH" in err and err.count("\n") == 1


def test_fleet_predict_without_the_results_folder_says_so_not_no_evidence(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./results: h200 has published evidence in the checkout's results/
    code, out, err = run_cli("fleet", "--predict", "wan2.2-t2v-a14b", "--hardware", "h200")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "./results, which is not here" in err and "no evidence for" not in err, err


def test_an_impossible_setting_is_said_not_hidden_as_missing_evidence(tmp_path, run_cli):
    path = tmp_path / "w.toml"
    path.write_text(FACTORIAL.replace("width = 1280", "width = 1281"))
    code, out, err = run_cli("estimate", "--scenario", path, "--results", "results")
    assert code == 2 and out == "" and "must be a positive multiple of 16" in err and err.count("\n") == 1
