"""`show --steps`: each step's window on the sampler's clock, checked on a genuine H100 record whose series is
rewritten by hand so that only the samples of one step carry a marked clock."""

import json
from pathlib import Path

import pytest

from bench.analysis import steps
from bench.records.io import load_record

PLAIN = Path(__file__).resolve().parent.parent / "results" / "nvidia-h100-80gb-hbm3" / "wan2.1-t2v-1.3b" / \
    "832x480-81f-16fps-50steps-g5-bfloat16-1gpu" / "20261123T032044Z-db96561ab733.json"


def _marked(tmp_path, gen=1, step=3):
    """The record with SM clock 1000 MHz and a thermal slowdown bit (0x40) in exactly the samples of one step, 2000
    MHz and no bit elsewhere; the window computed here from the JSON: start + text encoding + the steps before."""
    data = json.loads(PLAIN.read_text())
    g = data["generations"][gen]
    start = g["telemetry"]["start_s"] + g["text_encode_s"] + sum(g["step_s"][:step])
    end = start + g["step_s"][step]
    series = data["telemetry"]["series"]
    inside = [start <= t < end for t in series["t_s"]]
    series["sm_clock_mhz"] = [1000 if x else 2000 for x in inside]
    series["throttle_mask"] = [0x40 if x else 0 for x in inside]
    path = tmp_path / "marked.json"
    path.write_text(json.dumps(data))
    return load_record(path), sum(inside)


def test_a_steps_samples_are_those_inside_its_window(tmp_path):
    record, n = _marked(tmp_path)
    rows = {(r.generation, r.step): r for r in steps.profile(record)}
    assert len(rows) == 3 * 50
    marked = rows[(1, 3)]
    assert marked.samples == n >= 10 and marked.sm_clock_mhz == 1000 and marked.slowdowns == ("hw_thermal_slowdown",)
    # the neighbours see none of its samples: a window off by the text encoding (~0.1 s, one sample) would mix them
    for key in ((1, 2), (1, 4), (0, 3), (2, 3)):
        assert rows[key].sm_clock_mhz == 2000 and rows[key].slowdowns == ()


def test_the_steady_steps_leave_out_each_first_and_say_what_held_them(tmp_path):
    record, _ = _marked(tmp_path)
    d = steps.diagnose(steps.profile(record))
    assert d.steps == 3 * 49
    assert d.lowest_sm_clock_mhz == 1000 and d.slowdowns == ("hw_thermal_slowdown",)
    assert d.slowed_share == pytest.approx(1 / 147)
    g = json.loads(PLAIN.read_text())["generations"]
    # drift: per generation, the mean of its last five steps over its first five steady ones (steps 1-5), averaged
    by_gen = [sum(x["step_s"][-5:]) / sum(x["step_s"][1:6]) - 1 for x in g]
    assert d.drift == pytest.approx(sum(by_gen) / 3)


def test_a_first_step_is_never_steady(tmp_path):
    record, _ = _marked(tmp_path, gen=0, step=0)
    assert steps.diagnose(steps.profile(record)).slowdowns == ()


def test_cli_shows_the_genuine_runs_power_cap(run_cli):
    code, out, err = run_cli("show", PLAIN, "--steps")
    assert code == 0, err
    steady = next(line for line in out.splitlines() if line.startswith("steady steps"))
    assert steady.startswith("steady steps (147") and "sw_power_cap" in steady
    assert "allocator's cache" in out.splitlines()[-1]  # why the device's used memory reads above torch's peak
    code, out, _ = run_cli("show", PLAIN, "--steps", "--json")
    doc = json.loads(out)
    assert len(doc["steps"]) == 150 and doc["steady"]["slowdowns"] == ["sw_power_cap"]


def test_a_cpu_record_has_no_profile(run_cli):
    code, out, _ = run_cli("show", Path(__file__).parent / "data" / "record-v3-tiny-wan.json", "--steps")
    assert code == 0 and out.startswith("no step profile")
