"""Forgeries of a record's sampled readings filed through `t2vbench submit`, each refused now
(bench.analysis.readings). Every forged record is the genuine committed H100 record's JSON edited by hand here; the
expected figures are hand arithmetic on that JSON, measured by an independent script over the committed records:
the plain run's power readings taken after a full second of sw_power_cap have a median of 694.2 W (lowest 656.8 W;
every capped reading, the first second included, as low as 426.5 W), its limit is 700 W, its SM clock samples and
NVML maximum are 1980 MHz, its memory total 85,520,809,984 bytes and its torch peak 21,289,116,160 bytes.
"""

import json
from pathlib import Path

import pytest

from bench.analysis import physics
from bench.records.io import parse_record
from tests import forge

ROOT = Path(__file__).parent.parent
GENUINE = forge.H100
COMMITTED = sorted((ROOT / "results" / "nvidia-h100-80gb-hbm3").rglob("*.json"))
ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j")
POWER_FIGURES = ("energy_counter_j", "energy_integrated_j", "energy_per_video_j", "energy_per_video_minute_wh",
                 "avg_power_w", "peak_power_w")
MEMORY_TOTAL = 85_520_809_984


def _genuine() -> dict:
    return json.loads(GENUINE.read_text())


def _problems(data: dict) -> list[str]:
    return physics.violations(parse_record(json.dumps(data)))


def _refused_by_submit(run_cli, tmp_path, data: dict, fragment: str) -> None:
    path = forge.write(tmp_path, "forged.json", data)
    code, _, err = run_cli("submit", path, "--results", tmp_path / "results")
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "results").rglob("*.json")) if (tmp_path / "results").exists() else True


def test_every_committed_record_still_files(run_cli, tmp_path):
    # catches: a rule too strict for a real run (a per-sample power check would refuse the 426.5 W readings of the
    # first second of capping; a clock or memory bound off by a unit would refuse all three)
    assert len(COMMITTED) == 3
    for path in COMMITTED:
        assert _problems(json.loads(path.read_text())) == [], path
    code, out, err = run_cli("submit", *COMMITTED, "--results", tmp_path / "results")
    assert code == 0 and out.count("filed ") == 3, out + err


# --- 1. power capped yet far below the limit ---------------------------------------------------------------------

def _power_scaled(factor: float) -> dict:
    """Every energy, the power series and the figures that follow from them times factor; throttle flags kept."""
    data = _genuine()
    for g in data["generations"]:
        g["telemetry"].update({k: g["telemetry"][k] * factor for k in ENERGY_FIELDS})
    t = data["telemetry"]
    t["series"]["power_w"] = [p * factor for p in t["series"]["power_w"]]
    t["summary"].update({k: t["summary"][k] * factor for k in POWER_FIGURES})
    return data


def test_a_power_capped_record_whose_power_was_scaled_down_is_refused(run_cli, tmp_path):
    # catches: energies and power scaled by 0.15 (6.9 kJ per video, 103 W, above the 70 W floor; counter and series
    # agree) filed beside the 97% of samples that say the 700 W cap held the clocks: 694.2 W x 0.15 = 104.1 W
    _refused_by_submit(run_cli, tmp_path, _power_scaled(0.15),
                       "its power readings after 1 s of capping have a median of 104.1 W, 85% below the 700 W limit")


@pytest.mark.parametrize("factor,refused", [(0.92, False), (0.88, True)])
def test_the_capped_median_is_held_to_90_percent_of_the_limit(factor, refused):
    # 694.2 W x 0.92 = 638.7 W >= 630 W (0.9 x 700); x 0.88 = 610.9 W < 630 W. Catches a bound on the mean of every
    # capped reading (its first-second readings pull it lower) or none at all.
    problems = _problems(_power_scaled(factor))
    assert any("sw_power_cap" in p for p in problems) is refused, problems


def test_the_limit_is_the_records_own_not_only_the_class_board_power():
    # catches: the catalogue's 700 W board power used where the device states its own limit (the class's 700 W
    # would pass 694.2 W at any stated limit). A stated 750 W: 0.9 x 750 = 675 W <= 694.2 W, passes; a stated 776 W:
    # 0.9 x 776 = 698.4 W > 694.2 W, refused by this rule, naming the record's own limit (776 W is also above the
    # class's 700 W x 1.1, which the evidence rule names separately)
    data = _genuine()
    data["telemetry"]["device"]["power_limit_w"] = 750.0
    data["telemetry"]["summary"]["power_limit_w"] = 750.0
    assert not any("sw_power_cap" in p for p in _problems(data))
    data["telemetry"]["device"]["power_limit_w"] = 776.0
    data["telemetry"]["summary"]["power_limit_w"] = 776.0
    problems = _problems(data)
    assert any("below the 776 W limit (telemetry.device.power_limit_w)" in p for p in problems), problems


# --- 2. clocks above the device's and the class's maximum --------------------------------------------------------

def _clocks_scaled(factor: float, device_max_mhz: float | None = None) -> dict:
    data = _genuine()
    t = data["telemetry"]
    t["series"]["sm_clock_mhz"] = [round(c * factor) for c in t["series"]["sm_clock_mhz"]]
    clocks = t["series"]["sm_clock_mhz"]
    t["summary"]["sm_clock_mean_mhz"] = sum(clocks) / len(clocks)
    if device_max_mhz is not None:
        t["device"]["max_sm_clock_mhz"] = device_max_mhz
        t["summary"]["sm_clock_max_mhz"] = float(device_max_mhz)
    return data


def test_a_sampled_clock_above_the_devices_own_maximum_is_refused(run_cli, tmp_path):
    # catches: clocks edited up (1980 x 1.2 = 2376 MHz) with the summary's mean recomputed, the device's 1980 kept
    _refused_by_submit(run_cli, tmp_path, _clocks_scaled(1.2), "telemetry.series.sm_clock_mhz reaches 2376 MHz, "
                                                               "above the 1980 MHz maximum its own device reports")


def test_a_clock_above_the_class_maximum_boost_is_refused(run_cli, tmp_path):
    # catches: the same with the device's maximum edited to match: 2376 MHz is above the H100 SXM's 1980 MHz
    _refused_by_submit(run_cli, tmp_path, _clocks_scaled(1.2, 2376), "telemetry.device.max_sm_clock_mhz is 2376 MHz, "
                                                                     "above the 1980 MHz maximum SM clock")
    # a run held below its maximum is what power capping does: lower clocks are never refused
    assert _problems(_clocks_scaled(0.8)) == []


# --- 3. memory beyond the device's -------------------------------------------------------------------------------

def test_a_peak_allocation_above_the_devices_memory_is_refused(run_cli, tmp_path):
    # catches: torch's peak (21.3 GB) edited to 90 GB, more than the device's 85,520,809,984 bytes
    data = _genuine()
    data["peak_memory_bytes"] = 90_000_000_000
    _refused_by_submit(run_cli, tmp_path, data, "peak_memory_bytes 9e+10 (cuda_max_allocated, one GPU's) is more "
                                                "than its device's memory_total_bytes (8.552e+10 bytes)")
    data["peak_memory_bytes"] = MEMORY_TOTAL  # all of it: possible
    assert not any("peak_memory_bytes" in p for p in _problems(data))


def test_without_the_devices_total_the_peak_is_held_to_the_class_memory():
    # 1.1 x 80 GiB = 94,489,280,512 bytes, the evidence rule's high end for an 80 GB class
    data = _genuine()
    del data["telemetry"]["device"]["memory_total_bytes"]
    data["peak_memory_bytes"] = 94_489_280_512
    assert not any("peak_memory_bytes" in p for p in _problems(data))
    data["peak_memory_bytes"] = 94_500_000_000
    assert any("more than the NVIDIA H100 SXM5 80GB's 80 GB" in p for p in _problems(data))


def test_sampled_memory_use_above_the_devices_total_is_refused():
    data = _genuine()
    data["telemetry"]["series"]["memory_used_bytes"][100] = MEMORY_TOTAL + 1
    assert any("telemetry.series.memory_used_bytes reaches 8.552e+10 bytes, more than the device's" in p
               for p in _problems(data))


def test_a_series_whose_clock_runs_backwards_is_refused(run_cli, tmp_path):
    # catches: sample times reordered (t_s 10 and 11 swapped): energy is integrated over these times, and out of
    # order they give negative intervals the sampler's monotonic clock never makes
    data = _genuine()
    t_s = data["telemetry"]["series"]["t_s"]
    t_s[10], t_s[11] = t_s[11], t_s[10]
    _refused_by_submit(run_cli, tmp_path, data, f"series.t_s runs backwards at sample 11 ({t_s[10]:g} s, then")
    data = _genuine()
    data["telemetry"]["series"]["t_s"][5] = None  # a sample with no time
    _refused_by_submit(run_cli, tmp_path, data, "series without a time (t_s) for every sample")
