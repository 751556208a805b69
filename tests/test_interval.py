"""Fleet intervals (interval arithmetic at the corners), the tornado, and the mismatch line, against hand arithmetic."""

import json

import pytest

from bench.analysis import fleet_estimate, interval
from bench.analysis.fleet import Figure
from bench.analysis.scenarios import load_scenario
from bench.analysis.throughput import Made, Throughput
from tests.test_fleet import HAND

RECORD = "results/nvidia-h100-80gb-hbm3/wan2.1-t2v-1.3b/832x480-81f-16fps-50steps-g5-bfloat16-1gpu/" \
         "20261123T032044Z-db96561ab733.json"


def _hand(tmp_path, ranges=""):
    path = tmp_path / "hand.toml"
    path.write_text(HAND + ranges)
    return load_scenario(str(path))


def _figures(price=None, power=None, rental=None):
    return {"unit_price_usd": Figure(price, "test"), "board_power_w": Figure(power, "test"),
            "rental_usd_per_gpu_hour": Figure(rental, "test")}


def test_corner_ranges_against_hand_arithmetic(tmp_path):
    # HAND: demand 1e6 video-min a day, 3 candidates, utilization 0.6, peak-to-average 1.5, throughput 10:
    # peak = 1e6 x 3 x 1.5 / (24 x 10 x 0.6) = 4.5e6 / 144 = 31,250.
    s = _hand(tmp_path, "\n[ranges]\nutilization = [0.5, 0.75]\nunit_price_usd = [0.5, 2]\n")
    tp = Throughput(10.0, "record", "test", interval=(8.0, 12.5), interval_basis="measured: test")
    est = fleet_estimate.estimate(s, tp, set())
    # the scenario's own figures are used (no hardware in HAND): price none, rental $2
    assert est.fleet["peak_fleet_gpus"] == pytest.approx(31_250)
    # least: the fastest throughput AND the highest utilization at once: 4.5e6 / (24 x 12.5 x 0.75) = 20,000;
    # greatest: 4.5e6 / (24 x 8 x 0.5) = 46,875. Moving one input at a time reaches only 25,000 and 39,062.5,
    # so an implementation that took the tornado's extremes for the range fails here.
    assert est.ranges["peak_fleet_gpus"] == pytest.approx((20_000, 46_875))
    # rented $ per kept video-minute = 3 x $2 / (throughput x utilization): 6 / 9.375 = 0.64 .. 6 / 4 = 1.5
    assert est.ranges["rented_usd_per_kept_video_minute"] == pytest.approx((0.64, 1.5))
    assert est.ranges["capex_usd"] is None  # no price: unknown, not zero


def test_a_factor_range_applies_to_the_figure_used(tmp_path):
    s = _hand(tmp_path, "\n[ranges]\nunit_price_usd = [0.5, 2]\n")
    figures = _figures(price=2000.0)
    ranged = interval.inputs(s, 10.0, None, "", figures)
    assert [(i.name, i.low, i.high) for i in ranged] == [("unit_price_usd", 1000.0, 4000.0)]
    # capex = 31,250 x price: 31.25M .. 125M (the peak fleet does not move)
    assert interval.ranges(s, 10.0, figures, ranged)["capex_usd"] == pytest.approx((31.25e6, 125e6))


def test_tornado_orders_by_swing_and_leaves_out_inputs_that_do_not_move_the_peak(tmp_path):
    s = _hand(tmp_path, "\n[ranges]\nutilization = [0.5, 0.75]\npeak_to_average = [1, 3]\npue = [1, 2]\n")
    est = fleet_estimate.estimate(s, Throughput(10.0, "given", "test"), set())
    rows = [(r["assumption"], r["peak_fleet_gpus_at_low"], r["peak_fleet_gpus_at_high"]) for r in est.sensitivity]
    # peak-to-average 1..3: 31,250 x 1/1.5 = 20,833 .. 62,500 (swing 41,667) comes before the +-50% throughput
    # (2 x 31,250 = 62,500 .. 31,250 / 1.5 = 20,833: the same swing, the tie kept in order) and utilization
    # (0.6/0.5 x 31,250 = 37,500 .. 0.6/0.75 x 31,250 = 25,000); pue moves no GPU count and is left out.
    names = [r[0] for r in rows]
    peak = next(r for r in rows if r[0] == "peak_to_average")
    assert peak[1:] == pytest.approx((20_833.33, 62_500), abs=0.01)
    assert "pue" not in names
    assert names.index("utilization") > names.index("peak_to_average")
    util = next(r for r in rows if r[0] == "utilization")
    assert util[1:] == pytest.approx((37_500, 25_000))
    assert est.moves_most in ("peak_to_average", "throughput_video_min_per_gpu_hour")  # the two 41,667 swings


def test_no_range_at_all_is_a_point(tmp_path):
    s = _hand(tmp_path)
    est = fleet_estimate.estimate(s, Throughput(10.0, "given", "test"), set())
    assert est.inputs == [] and est.ranges["peak_fleet_gpus"] == pytest.approx((31_250, 31_250))


def test_mismatch_names_the_nearest_open_model_and_the_command(run_cli):
    code, out, err = run_cli("fleet", "--record", RECORD)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("MISMATCH:")
    for fragment in ("wan2.1-t2v-1.3b", "832x480", "1280x720", "wan2.2-t2v-a14b",
                     "t2vbench estimate --scenario factorial-2024",
                     "t2vbench fleet --scenario factorial-2024 --predict wan2.2-t2v-a14b --hardware h100-sxm"):
        assert fragment in first
    code, out, _ = run_cli("fleet", "--json", "--record", RECORD)
    doc = json.loads(out)
    assert doc["mismatch"] == first
    # the record's 3 generations give a 95% interval around the measured throughput
    low, high = doc["throughput"]["interval"]
    assert low < doc["throughput"]["video_min_per_gpu_hour"] < high


def test_no_mismatch_for_the_scenarios_own_figure_or_its_own_video():
    s = load_scenario("factorial-2024")
    assert fleet_estimate.mismatch(s, Throughput(5.0, "scenario", "test")) is None
    same = Throughput(0.3, "predicted", "test", made=Made("wan2.2-t2v-a14b", 1280, 720, 81 / 16, 40))
    assert fleet_estimate.mismatch(s, same) is None
    other = Throughput(0.3, "predicted", "test", made=Made("wan2.2-t2v-a14b", 832, 480, 81 / 16, 40))
    assert "832x480" in fleet_estimate.mismatch(s, other)
