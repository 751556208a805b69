"""Demand as people make it: a mix of clip kinds ([[requests]]) costed kind by kind, a daily arrival profile
(hourly_profile) instead of a peak-to-average ratio, and the commented template `fleet --template` writes."""

import json
import statistics

import pytest

from bench.analysis import demand, fleet
from bench.analysis.predict import predict, request
from bench.analysis.scenarios import RequestKind, file_format, load_scenario
from bench.analysis.scenarios.fields import FIELDS
from bench.analysis.scenarios.mix import REQUEST_FIELDS
from bench.analysis.scenarios.template import template_text
from bench.core.errors import UsageError
from bench.core.specs import load_spec
from tests.test_fleet import HAND, _figures
from tests.test_predict import PLAIN, committed

# 24 hours: one at 0.1 (the peak), twelve at 0.05, ten at 0.03, one at 0: 0.1 + 0.6 + 0.3 + 0 = 1
PROFILE = [0.0, *[0.03] * 10, *[0.05] * 12, 0.1]
VIDEO = """
[video]
description = "the committed evidence's model"
width = 832
height = 480
models = ["wan2.1-t2v-1.3b"]
"""
MIX = """
[[requests]]
share = 0.5
seconds = 5
width = 832
height = 480

[[requests]]
name = "long"
share = 0.3
seconds = 10
width = 832
height = 480

[[requests]]
name = "distilled"
share = 0.2
seconds = 5
width = 832
height = 480
steps = 4
guidance = 1
"""


def _load(tmp_path, text, overrides=None):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_scenario(str(path), overrides)


def _without_peak(text=HAND):
    return text.replace("peak_to_average = 1.5\n", "")


# --- the mix as one throughput -----------------------------------------------------------------------------------------

def test_the_mix_is_the_share_weighted_harmonic_mean():
    # half the minutes at 10 and half at 2 video-min per GPU-hour: 0.05 + 0.25 GPU-hours per minute
    assert demand.effective_throughput([0.5, 0.5], [10, 2]) == pytest.approx(1 / (0.05 + 0.25))
    assert demand.effective_throughput([0.5, 0.5], [10, 2]) != pytest.approx((10 + 2) / 2)  # not the mean
    assert demand.effective_throughput([1.0], [7.0]) == pytest.approx(7.0)
    for bad in ([10, 0], [10, float("inf")], [10]):
        with pytest.raises(ValueError):
            demand.effective_throughput([0.5, 0.5], bad)


def test_the_mix_interval_mixes_all_lows_and_all_highs():
    def kind(name, share, tp, interval):
        return demand.KindCost(name, share, "", tp, "predicted", "class", "", interval, None)

    m = demand.mix("m", "h100-sxm", [kind("a", 0.25, 8, (6, 10)), kind("b", 0.75, 4, (4, 4))])
    assert m.video_min_per_gpu_hour == pytest.approx(1 / (0.25 / 8 + 0.75 / 4))
    assert m.interval == pytest.approx((1 / (0.25 / 6 + 0.75 / 4), 1 / (0.25 / 10 + 0.75 / 4)))
    unvalidated = demand.mix("m", "h100-sxm", [kind("a", 0.5, 8, None), kind("b", 0.5, 4, (3, 5))])
    assert unvalidated.interval is None


@pytest.mark.parametrize("model, seconds, frames", [
    ("wan2.1-t2v-1.3b", 5, 81),   # 16 fps: 80 frames, the nearest 4k+1 is 81
    ("wan2.1-t2v-1.3b", 10, 161),
    ("wan2.1-t2v-1.3b", 60, 961),
    ("hunyuanvideo", 5, 121),     # 24 fps: 120 frames -> 121
    ("ltx-video", 5, 121),        # 24 fps, 8k+1: 120 -> 121
    ("ltx-video", 4, 97),         # 96 -> 97
    ("cogvideox-5b", 6, 49),      # 8 fps, 8k+1: 48 -> 49
    ("wan2.1-t2v-1.3b", 0.01, 1),
])
def test_a_clip_length_becomes_a_frame_count_the_model_takes(model, seconds, frames):
    assert demand.frames_for(load_spec(model), seconds) == frames


# --- the daily profile -------------------------------------------------------------------------------------------------

def test_a_profile_sets_the_peak_to_average_ratio(tmp_path):
    s = _load(tmp_path, _without_peak() + f"hourly_profile = {PROFILE}\n")
    assert s.hourly_profile == tuple(PROFILE)
    assert s.peak_to_average == pytest.approx(24 * 0.1)
    # HAND: 1e6 min/day at 10 video-min/GPU-h, 3 candidates, 0.6 utilization: 1e6/240 x 3 / 0.6 average GPUs
    out = fleet.size(s, 10, _figures())
    assert out["peak_fleet_gpus"] == pytest.approx(1e6 / 240 * 3 / 0.6 * 2.4)


def test_set_peak_to_average_overrides_a_profiles_ratio(tmp_path):
    s = _load(tmp_path, _without_peak() + f"hourly_profile = {PROFILE}\n", {"peak_to_average": 3.0})
    assert s.peak_to_average == 3.0 and s.hourly_profile == tuple(PROFILE)


@pytest.mark.parametrize("extra, fragment", [
    (f"hourly_profile = {PROFILE[:23]}\n", "must be a list of 24 shares"),
    (f"hourly_profile = {[*PROFILE[:23], 0.2]}\n", "add up to 1.1"),
    (f"hourly_profile = {[-0.1, *PROFILE[1:23], 0.2]}\n", "hour 00 = -0.1 must be a share in [0, 1]"),
    ("", "missing field 'peak_to_average'"),
])
def test_a_bad_profile_is_refused(tmp_path, extra, fragment):
    with pytest.raises(UsageError, match="hourly_profile|peak_to_average") as exc:
        _load(tmp_path, _without_peak() + extra)
    assert fragment in str(exc.value)


def test_peak_to_average_and_a_profile_are_not_both_given(tmp_path):
    with pytest.raises(UsageError, match="give 'peak_to_average' or 'hourly_profile', not both"):
        _load(tmp_path, HAND + f"hourly_profile = {PROFILE}\n")


# --- the mix's form ----------------------------------------------------------------------------------------------------

def test_requests_are_parsed_with_default_names(tmp_path):
    s = _load(tmp_path, HAND + VIDEO + MIX)
    assert s.requests == (RequestKind("5 s 832x480", 0.5, 5.0, 832, 480),
                          RequestKind("long", 0.3, 10.0, 832, 480),
                          RequestKind("distilled", 0.2, 5.0, 832, 480, 4, 1.0))


@pytest.mark.parametrize("old, new, fragment", [
    ("share = 0.3", "share = 0.2", "shares add up to 0.9, not 1"),
    ("share = 0.3", "share = -0.3", "field 'share' = -0.3 must be a number in (0, 1]"),
    ("share = 0.3", "share = 0.3\nsecnds = 10", "unknown field 'secnds' (did you mean seconds?)"),
    ("width = 832\nheight = 480\nsteps", "width = 832.5\nheight = 480\nsteps", "'width' = 832.5 must be a whole"),
    ('name = "long"', 'name = "distilled"', "two [[requests]] are named 'distilled'"),
    ("seconds = 10\n", "", "missing field 'seconds'"),
])
def test_a_bad_mix_is_refused(tmp_path, old, new, fragment):
    with pytest.raises(UsageError, match="requests") as exc:
        _load(tmp_path, HAND + VIDEO + MIX.replace(old, new, 1))
    assert fragment in str(exc.value)


def test_at_most_fifty_kinds(tmp_path):
    kinds = "".join(f"[[requests]]\nshare = 0.0196078431372549\nseconds = 5\nwidth = 832\nheight = 480\nname = 'k{i}'\n"
                    for i in range(51))
    with pytest.raises(UsageError, match="1 to 50 of them"):
        _load(tmp_path, HAND + kinds)


# --- each kind costed from its own evidence ----------------------------------------------------------------------------

def test_each_kind_is_costed_from_its_own_evidence_and_the_mix_is_their_harmonic_mean(tmp_path):
    s = _load(tmp_path, HAND + VIDEO + MIX)
    evidence = committed()
    m = demand.cost_demand(s, "h100-sxm", evidence)
    assert (m.model, m.hardware) == ("wan2.1-t2v-1.3b", "h100-sxm")
    short, long, distilled = m.kinds
    assert [k.name for k in m.kinds] == ["5 s 832x480", "long", "distilled"]
    assert [k.share for k in m.kinds] == [0.5, 0.3, 0.2]
    assert "81 frames @ 16 fps, 50 steps" in short.setting and "161 frames" in long.setting
    assert "4 steps, guidance 1" in distilled.setting
    # the 5 s kind is the committed record's setting: measured, its throughput from the record's own latencies
    raw = json.loads(PLAIN.read_text())
    latency_s = statistics.fmean(g["latency_s"] for g in raw["generations"])
    assert (short.kind, short.rung) == ("measured", "measured")
    assert short.video_min_per_gpu_hour == pytest.approx(81 / 16 / 60 / (latency_s / 3600))
    assert short.interval == (short.video_min_per_gpu_hour, short.video_min_per_gpu_hour)
    # the others are predictions, each equal to predict() asked for that setting directly
    for k, overrides in ((long, {"num_frames": 161}), (distilled, {"steps": 4, "guidance_scale": 1.0})):
        p = predict(request("wan2.1-t2v-1.3b", "h100-sxm", overrides=overrides), evidence)
        assert (k.kind, k.rung) == ("predicted", p.rung) and k.video_min_per_gpu_hour == p.video_min_per_gpu_hour.value
        low, high = p.error_interval  # predicted seconds / actual - 1: the actual seconds are seconds / (1 + error)
        video_min = p.video_min_per_gpu_hour.value * p.seconds_per_video.value / 3600
        assert k.interval == pytest.approx((video_min / (p.seconds_per_video.value / (1 + low) / 3600),
                                            video_min / (p.seconds_per_video.value / (1 + high) / 3600)))
    assert distilled.video_min_per_gpu_hour > 5 * short.video_min_per_gpu_hour  # 4 steps, one pass, not 50 x 2
    tps = [k.video_min_per_gpu_hour for k in m.kinds]
    assert m.video_min_per_gpu_hour == pytest.approx(1 / (0.5 / tps[0] + 0.3 / tps[1] + 0.2 / tps[2]))
    lows, highs = [k.interval[0] for k in m.kinds], [k.interval[1] for k in m.kinds]
    assert m.interval == pytest.approx((1 / (0.5 / lows[0] + 0.3 / lows[1] + 0.2 / lows[2]),
                                        1 / (0.5 / highs[0] + 0.3 / highs[1] + 0.2 / highs[2])))


@pytest.mark.parametrize("kind, fragment", [
    (RequestKind("odd", 1.0, 5, 833, 480), "'odd' (5 s = 81 frames at 16 fps, 833x480) on wan2.1-t2v-1.3b: --width 833"),
    (RequestKind("long", 1.0, 200, 832, 480), "3201 frames at 16 fps"),
])
def test_a_kind_the_model_cannot_take_is_refused_by_name(kind, fragment):
    with pytest.raises(UsageError) as exc:
        demand.request_for(load_spec("wan2.1-t2v-1.3b"), "h100-sxm", kind)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_a_scenario_without_a_mix_is_one_kind_of_its_video(tmp_path):
    one = demand.kinds_of(_load(tmp_path, HAND + VIDEO + "seconds = 5\n"))
    assert one == (RequestKind("5 s 832x480", 1.0, 5.0, 832, 480),)
    with pytest.raises(UsageError, match="neither what its demand is made of nor how long a clip is"):
        demand.kinds_of(_load(tmp_path, HAND + VIDEO))
    with pytest.raises(UsageError, match="names no model"):
        demand.cost_demand(_load(tmp_path, HAND + MIX), "h100-sxm", committed())


# --- the template ------------------------------------------------------------------------------------------------------

def test_the_template_round_trips_to_a_fleet(tmp_path, run_cli):
    path = tmp_path / "mine.toml"
    code, out, err = run_cli("fleet", "--template", path)
    assert code == 0 and path.read_text() == template_text() and "mine.toml" in out, err
    s = load_scenario(str(path))
    # the preset's numbers as written (its peak-to-average 2; the example profile and mix are commented out)
    assert (s.ai_video_minutes_per_day, s.candidates_per_kept_video, s.utilization) == (10.7e6, 2, 0.5)
    assert s.peak_to_average == 2 and s.hourly_profile is None and s.requests == ()
    out = fleet.size(s, s.throughput_video_min_per_gpu_hour, _figures(price=30000))
    assert out["peak_fleet_gpus"] == pytest.approx(10.7e6 / (24 * 5) * 2 / 0.5 * 2)  # the preset's 713k
    # uncommenting the example profile (and dropping peak_to_average) gives its evening peak: 24 x 0.075
    text = path.read_text().replace("\npeak_to_average = 2.0\n", "\n")
    lines, inside = [], False
    for line in text.splitlines():
        inside = inside or line.startswith("# hourly_profile = [")
        lines.append(line[2:] if inside else line)
        inside = inside and line != "# ]"
    text = "\n".join(lines)
    (tmp_path / "day.toml").write_text(text)
    assert load_scenario(str(tmp_path / "day.toml")).peak_to_average == pytest.approx(24 * 0.075)
    # uncommenting the example mix gives four kinds summing to 1, each a setting the first model takes
    fields = ("# name =", "# share =", "# seconds =", "# width =", "# height =", "# steps =", "# guidance =")
    mix = "\n".join(line[2:] if line == "# [[requests]]" or line.startswith(fields) else line
                     for line in path.read_text().splitlines())
    (tmp_path / "mix.toml").write_text(mix)
    kinds = load_scenario(str(tmp_path / "mix.toml")).requests
    assert len(kinds) == 4 and sum(k.share for k in kinds) == pytest.approx(1)
    spec = load_spec(s.video.models[0])
    for kind in kinds:
        demand.request_for(spec, "h100-sxm", kind)


def test_the_template_names_every_field():
    text = template_text()
    for name in FIELDS:
        assert f"{name} =" in text or f"[{name}]" in text or f"[[{name}]]" in text, name
    for name in REQUEST_FIELDS:
        assert f"#   {name} (" in text, name


def test_the_template_goes_to_stdout_and_never_over_a_file(tmp_path, run_cli):
    assert run_cli("fleet", "--template") == (0, template_text(), "")
    assert run_cli("fleet", "--template", "-")[1] == template_text()
    path = tmp_path / "mine.toml"
    path.write_text("mine")
    code, _, err = run_cli("fleet", "--template", path)
    assert code == 2 and "exists" in err and err.count("\n") == 1 and path.read_text() == "mine"
    code, _, err = run_cli("fleet", "--template", tmp_path / "mine")
    assert code == 2 and "ending in .toml" in err and not (tmp_path / "mine").exists()


def test_the_file_format_documents_the_mix_and_the_profile():
    text = file_format()
    assert "hourly_profile" in text and "[[requests]]" in text
    for name in REQUEST_FIELDS:
        assert f" {name} " in text
