import json
from pathlib import Path

import pytest

from bench.analysis.reference import (
    MAX_REFERENCE_BYTES,
    REFERENCE_VERSION,
    Accuracy,
    format_reference,
    load_reference,
    load_references,
    parse_reference,
)
from bench.core.errors import UsageError
from bench.records.io import parse_record

SHIPPED = Path(__file__).resolve().parent.parent / "results" / "reference"
WAN13_H100 = SHIPPED / "mlenergy-v3_wan2.1-t2v-1.3b_1xh100-sxm_832x480-81f-15fps-50steps-bs1.json"
MLPERF_B200 = SHIPPED / "mlperf-inference-v6.0_wan2.2-t2v-a14b_8xb200_1280x720-81f-16fps-20steps.json"
XDIT_8 = SHIPPED / "xdit-docs_hunyuanvideo_8xh100-sxm_1280x720-129f-24fps-50steps-bs1.json"
FACTORIAL = SHIPPED / "factorial-funds-2024_sora_1xh100-sxm_nosize-1440f-24fps-250steps.json"
V61 = "mlperf-inference-v6.1_wan2.2-t2v-a14b_{}_1280x720-81f-16fps-20steps_{}.json"
MI355X_OFFLINE = SHIPPED / V61.format("8xmi355x", "amd-8xmi355x-2xepyc-9575f_offline")
B300_OFFLINE = SHIPPED / V61.format("8xb300", "nvidia-b300-sxm-270gbx8-trt_offline")
GB200_SS = SHIPPED / V61.format("72xgb200", "nvidia-gb200-nvl72-gb200-186gb-aarch64x72-trt_singlestream")


def _data(path: Path = WAN13_H100) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _refused(data: dict | str | bytes, fragment: str) -> str:
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    with pytest.raises(UsageError, match=fragment) as exc:
        parse_reference(text)
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- shipped files ---------------------------------------------------------------------------------------------


def test_every_shipped_reference_loads():
    refs = load_references(SHIPPED)
    assert len(refs) == len(list(SHIPPED.glob("*.json"))) == 23 + 28
    assert all(r.kind == "reference" and r.reference_version == REFERENCE_VERSION for r in refs)
    assert {r.source.id for r in refs} == {"mlenergy-v3", "mlperf-inference-v6.0", "mlperf-inference-v6.1",
                                           "xdit-docs", "factorial-funds-2024"}


def test_one_file_per_source_model_hardware_gpus_and_settings():
    keys = [(r.source.url, r.model, r.hardware_class, r.gpus, r.settings) for r in load_references(SHIPPED)]
    assert len(set(keys)) == len(keys)


def test_only_the_factorial_figure_is_an_estimate():
    estimates = [r for r in load_references(SHIPPED) if not r.measured]
    assert [(r.source.id, r.model) for r in estimates] == [("factorial-funds-2024", "sora")]
    assert "ESTIMATE" in format_reference(estimates[0])


def test_mlenergy_wan_files_say_the_fps_is_mlenergys():
    for ref in load_references(SHIPPED):
        if ref.source.id == "mlenergy-v3" and ref.model.startswith("wan"):
            assert ref.settings.fps == 15
            assert any("fps 15 is ML.ENERGY's own choice" in n for n in ref.notes)


# --- derived throughput, checked against hand computations --------------------------------------------------------


def test_wan13_h100_batch1_by_hand():
    ref = load_reference(WAN13_H100)
    # 81 frames / 15 fps = 5.4 s of video; 95.357 GPU-s: (5.4 / 60) / (95.357 / 3600) = 3.398
    assert ref.seconds_per_video == pytest.approx(95.357, abs=1e-3)
    assert ref.video_seconds() == pytest.approx(5.4)
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(0.09 * 3600 / 95.35738, rel=1e-6)
    assert round(ref.video_minutes_per_gpu_hour(), 2) == 3.40  # CONTEXT.md's 3.44 is the batch-32 row
    # 64.67 kJ / 3600 / (5.4 s / 60) = 199.6 Wh per video-minute
    assert ref.energy_per_video_minute_wh() == pytest.approx(64671.5085 / 3600 / 0.09, rel=1e-6)


def test_wan13_h100_batch32_is_where_344_comes_from():
    ref = load_reference(SHIPPED / "mlenergy-v3_wan2.1-t2v-1.3b_1xh100-sxm_832x480-81f-15fps-50steps-bs32.json")
    assert ref.seconds_per_video is None and ref.settings.batch_size == 32
    # 1 GPU / 0.010628 videos/s = 94.09 GPU-s per video -> 0.09 * 3600 / 94.09 = 3.443
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(0.09 * 3600 * ref.videos_per_s, rel=1e-9)
    assert round(ref.video_minutes_per_gpu_hour(), 2) == 3.44


def test_mlperf_offline_throughput_is_spread_over_all_gpus():
    ref = load_reference(MLPERF_B200)
    assert (ref.gpus, ref.videos_per_s, ref.settings.fps, ref.settings.steps) == (8, 0.0464402, 16, 20)
    # 8 GPUs / 0.0464402 videos/s = 172.3 GPU-s per video of 81/16 = 5.0625 s: (5.0625/60) / (172.26/3600) = 1.763
    assert ref.gpu_seconds_per_video() == pytest.approx(8 / 0.0464402)
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(1.7633, abs=1e-4)


def test_multi_gpu_latency_counts_every_gpu():
    ref = load_reference(XDIT_8)
    # 337.58 s on 8 GPUs = 2700.64 GPU-s for 129 / 24 = 5.375 s of video: 0.1194 video-min per GPU-hour
    assert ref.gpu_seconds_per_video() == pytest.approx(2700.64)
    assert ref.video_minutes_per_gpu_hour() == pytest.approx((5.375 / 60) / (2700.64 / 3600), rel=1e-9)


def test_factorial_assumption_is_five_minutes_per_h100_hour():
    ref = load_reference(FACTORIAL)
    assert ref.video_seconds() == 60.0
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(5.0)
    assert ref.energy_per_video_minute_wh() is None


def test_energy_only_reference_has_no_throughput():
    data = _data()
    for key in ("seconds_per_video", "videos_per_s", "avg_power_w"):
        del data[key]
    ref = parse_reference(json.dumps(data))
    assert ref.video_minutes_per_gpu_hour() is None and ref.energy_per_video_j == pytest.approx(64671.5085)


# --- refusals: one line, naming the field -------------------------------------------------------------------------


def test_unknown_field_is_named():
    data = _data()
    data["settings"]["teacache"] = True
    _refused(data, "settings.teacache")


def test_nan_is_refused():
    text = WAN13_H100.read_text(encoding="utf-8").replace('"gpus": 1', '"gpus": 1, "avg_power_w_x": NaN', 1)
    _refused(text, "NaN is not a number")


def test_nan_in_a_figure_is_refused_even_as_a_string_trick():
    data = _data()
    data["seconds_per_video"] = "NaN"
    _refused(data, "seconds_per_video")


def test_negative_seconds_are_refused():
    data = _data()
    data["seconds_per_video"] = -95.4
    _refused(data, "field 'seconds_per_video'.*greater than 0")


def test_missing_source_url_is_named():
    data = _data()
    del data["source"]["url"]
    _refused(data, "field 'source.url': Field required")


def test_non_https_url_is_refused():
    data = _data()
    data["source"]["url"] = "javascript:alert(1)"
    _refused(data, "source.url")


def test_duplicate_key_is_refused():
    text = WAN13_H100.read_text(encoding="utf-8").replace('"gpus": 1', '"gpus": 1, "gpus": 8', 1)
    _refused(text, "'gpus' appears twice")


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(WAN13_H100.read_text(encoding="utf-8").replace("Initiative", "Initiativ\u00e9").encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8"):
        load_reference(path)


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(" " * (MAX_REFERENCE_BYTES + 1), encoding="utf-8")
    with pytest.raises(UsageError, match="larger than"):
        load_reference(path)


@pytest.mark.parametrize("kind", ["measurement", None, "Reference"])
def test_kind_other_than_reference_is_refused(kind):
    data = _data()
    data["kind"] = kind
    _refused(data, "field 'kind'.*not 'reference'")


def test_missing_kind_is_refused():
    data = _data()
    del data["kind"]
    _refused(data, "field 'kind'")


def test_a_reference_never_loads_as_a_measurement():
    with pytest.raises(UsageError, match=r"^record: a published figure \(kind 'reference'\), not a result record;"):
        parse_record(WAN13_H100.read_text(encoding="utf-8"))


def test_newer_version_asks_for_an_upgrade():
    data = _data()
    data["reference_version"] = REFERENCE_VERSION + 1
    _refused(data, "reference_version.*upgrade")


def test_unknown_hardware_class_is_named():
    data = _data()
    data["hardware_class"] = "h100"
    _refused(data, "field 'hardware_class'.*t2vbench hardware")


def test_float_gpu_count_is_refused():
    data = _data()
    data["gpus"] = 1.0
    _refused(data, "field 'gpus'")


def test_no_figure_at_all_is_refused():
    data = _data()
    for key in ("seconds_per_video", "videos_per_s", "energy_per_video_j", "avg_power_w"):
        del data[key]
    _refused(data, "no figure")


def test_latency_and_throughput_that_disagree_are_refused():
    data = _data()
    data["seconds_per_video"] = 59.4  # a typo: 0.0105 videos/s means 95.4 s
    _refused(data, "seconds_per_video x videos_per_s")


def test_energy_that_does_not_match_power_times_time_is_refused():
    data = _data()
    data["avg_power_w"] = 67.8  # per-GPU vs total or a dropped digit: 67.8 W x 95.4 s is not 64.7 kJ
    _refused(data, "energy_per_video_j")


def test_latency_figure_for_a_batch_is_refused():
    data = _data()
    data["settings"]["batch_size"] = 4
    _refused(data, "batch-1 latency")


@pytest.mark.parametrize("field, value, fragment", [
    # ML.ENERGY's Wan 1.3B row as shipped: published 2025-12-01, data 2026-02-16, read 2026-11-23
    ("published", "2026-12-01", "published 2026-12-01 is after accessed 2026-11-23"),  # read before it existed
    ("data_date", "2026-12", "data_date 2026-12 is after accessed 2026-11-23"),  # a month after the day it was read
    ("published", "2025-02-31", "published 2025-02-31 is not a day of the calendar"),  # the pattern let it through
    ("accessed", "2999-01-01", "accessed 2999-01-01 is in the future"),
])
def test_a_source_read_before_it_was_dated_or_on_no_calendar_day_is_refused(field, value, fragment):
    # catches: dates checked only by their pattern, so a reference read before its own publication, or on 31 February,
    # was loaded and weighed by its date
    data = _data()
    assert (data["source"]["published"], data["source"]["data_date"], data["source"]["accessed"]) == (
        "2025-12-01", "2026-02-16", "2026-11-23")
    data["source"][field] = value
    _refused(data, fragment)


def test_a_source_published_in_the_month_it_was_read_loads():
    data = _data()
    data["source"].update(published="2026-11", data_date=None)  # any day of November up to the 23rd it was read
    assert parse_reference(json.dumps(data)).source.published == "2026-11"


def test_undated_source_is_refused():
    data = _data()
    data["source"]["published"] = data["source"]["data_date"] = None
    _refused(data, "field 'source'.*published")


def test_bad_date_is_named():
    data = _data()
    data["source"]["accessed"] = "23/11/2026"
    _refused(data, "source.accessed")


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        load_references(tmp_path / "absent")


def test_loader_stops_at_a_bad_file_and_names_it(tmp_path):
    (tmp_path / "good.json").write_text(WAN13_H100.read_text(encoding="utf-8"), encoding="utf-8")
    bad = _data()
    bad["settings"]["fps"] = 0
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(UsageError, match=r"bad\.json: field 'settings\.fps'"):
        load_references(tmp_path)


# --- MLPerf Inference v6.1 text-to-video: one file per summary.csv row ------------------------------------------------

V61_SYSTEMS = [  # (submitter, GPUs, class) of each text-to-video system in summary.csv, MI350P left out (no class)
    ("AMD", 8, "mi350x"), ("AMD", 8, "mi355x"), ("Cisco", 8, "b300"), ("Dell", 72, "gb300"),
    ("GigaComputing", 8, "b300"), ("GigaComputing", 8, "b300"), ("HPE", 8, "mi355x"), ("NVIDIA", 8, "b300"),
    ("NVIDIA", 72, "gb200"), ("NVIDIA", 72, "gb300"), ("Oracle", 8, "mi355x"), ("Oracle", 4, "gb300"),
    ("Oracle", 72, "gb300"), ("VibeHPC", 8, "b300"),
]


def _v61() -> list:
    return [r for r in load_references(SHIPPED) if r.source.id == "mlperf-inference-v6.1"]


def test_every_v61_system_has_an_offline_and_a_singlestream_file():
    refs = _v61()
    offline = [r for r in refs if r.videos_per_s is not None]
    single = [r for r in refs if r.seconds_per_video is not None]
    assert len(refs) == 28 and len(offline) == len(single) == 14
    submitter = lambda r: r.source.publisher.removeprefix("MLCommons (submitter: ").removesuffix(")")  # noqa: E731
    assert sorted((submitter(r), r.gpus, r.hardware_class) for r in offline) == sorted(V61_SYSTEMS)
    for r in refs:
        scenario = "Offline" if r.videos_per_s is not None else "SingleStream"
        assert r.system == f"{submitter(r)}: {r.source.title.split(': ', 1)[1]}, {scenario}"
        assert f"/wan-2.2-t2v-a14b/{scenario}/performance/run_1" in r.source.url
        s = r.settings
        assert (s.width, s.height, s.num_frames, s.fps, s.steps, s.guidance_scale) == (1280, 720, 81, 16, 20, 4.0)


def test_mi355x_offline_is_2_78_video_minutes_per_gpu_hour():
    ref = load_reference(MI355X_OFFLINE)
    assert (ref.gpus, ref.videos_per_s, ref.hardware_class) == (8, 0.0731282, "mi355x")
    # 81 frames / 16 fps = 5.0625 s = 0.084375 video-min; 8 GPUs / 0.0731282 videos/s = 109.40 GPU-s = 0.030388 GPU-h
    assert ref.gpu_seconds_per_video() == pytest.approx(8 / 0.0731282)
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(0.084375 / (8 / 0.0731282 / 3600), rel=1e-9)
    assert round(ref.video_minutes_per_gpu_hour(), 2) == 2.78


def test_a_rack_singlestream_latency_is_charged_to_every_gpu_of_the_rack():
    ref = load_reference(GB200_SS)
    assert (ref.gpus, ref.seconds_per_video, ref.hardware_class) == (72, 5.731549943319444, "gb200")
    # 5.7315 s x 72 GPUs = 412.67 GPU-s per video: 0.084375 / (412.67 / 3600) = 0.7361 video-min per GPU-hour
    assert ref.video_minutes_per_gpu_hour() == pytest.approx(0.084375 / (5.731549943319444 * 72 / 3600), rel=1e-9)
    assert ref.settings.parallelism is None and any("upper bound" in n for n in ref.notes)


# --- accuracy: printed on two scales, read on one ---------------------------------------------------------------------

def test_accuracy_on_both_scales_reads_as_percent():
    amd, nvidia = load_reference(MI355X_OFFLINE).accuracy, load_reference(B300_OFFLINE).accuracy
    assert (amd.scale, amd.value, amd.percent()) == ("percent", 69.8899, 69.8899)  # "vbench_score: 69.8899"
    assert (nvidia.scale, nvidia.value) == ("fraction", 0.7024464645142161)  # printed bare: "0.7024464645142161"
    assert nvidia.percent() == pytest.approx(70.24464645142161, rel=1e-12)


def test_every_mlperf_score_reads_on_one_scale_and_the_two_under_the_gate_say_so():
    gate = 70.48 * 0.99  # 99% of the bf16 reference VBench score, the v6.1 checker's accuracy target
    scored = [r for r in load_references(SHIPPED) if r.accuracy is not None]
    assert len(scored) == 30 and {r.accuracy.scale for r in scored} == {"percent", "fraction"}
    assert all(69 < r.accuracy.percent() < 71 for r in scored)  # a fraction left unconverted would read 0.70
    under = sorted(r.system for r in scored if r.accuracy.percent() < gate)
    assert under == ["Dell: Dell PowerEdge XE9712, SingleStream",  # 0.6970976320484682 in summary.csv
                     "Oracle: NVIDIA GB300 NVL72 (72x GB300-288GB_aarch64, TensorRT), Offline"]  # 0.6948773298873472
    assert all(any("below the closed division's" in n for n in r.notes) for r in scored if r.accuracy.percent() < gate)


@pytest.mark.parametrize("accuracy,fragment", [
    ({"metric": "vbench", "value": 70.2, "scale": "fraction"}, "fraction is at most 1"),
    ({"metric": "vbench", "value": 0.702, "scale": "percent"}, "is the scale 'fraction'"),
    ({"metric": "vbench", "value": 70.2, "scale": "permille"}, "accuracy.scale"),
    ({"metric": "clip", "value": 70.2, "scale": "percent"}, "accuracy.metric"),
    ({"metric": "vbench", "value": 170.2, "scale": "percent"}, "accuracy.value"),
])
def test_accuracy_on_the_wrong_scale_is_refused(accuracy, fragment):
    data = _data(MI355X_OFFLINE)
    data["accuracy"] = accuracy
    _refused(data, fragment)


def test_accuracy_percent_is_the_one_normalisation():
    assert Accuracy(metric="vbench", value=0.5, scale="fraction").percent() == 50.0
    assert Accuracy(metric="vbench", value=50.0, scale="percent").percent() == 50.0


# --- version 1 -> 2 -------------------------------------------------------------------------------------------------

def test_a_version_1_file_reads_as_version_2_without_system_or_accuracy():
    data = _data()
    assert data["reference_version"] == 1  # the ML.ENERGY files are kept at version 1 on purpose
    ref = parse_reference(json.dumps(data))
    assert (ref.reference_version, ref.system, ref.accuracy) == (2, None, None)
    assert ref.seconds_per_video == pytest.approx(95.357, abs=1e-3)


def test_a_version_2_field_needs_version_2_readers_not_a_silent_drop():
    data = _data(MI355X_OFFLINE)
    data["system"] = "x" * 301
    _refused(data, "field 'system'")
