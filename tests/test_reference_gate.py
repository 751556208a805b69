"""The physics gate on published figures (bench.analysis.physics.check_reference), seen where the readers load them.

Every forged reference is a committed one with a figure edited here. The bounds are worked by hand from the
catalogue's rates (bench/core/data/hardware.toml: H100 SXM and H200 989.4 bf16 / 1978.9 fp8 TFLOP/s dense, 700 W,
idle floor 70 W; B300 2250 / 4500 TFLOP/s) and the FLOP counts in tests/data/flops-golden.json.
"""

import json
from pathlib import Path

import pytest

from bench.analysis.collect import load
from bench.analysis.predict_evidence import gather
from bench.analysis.reference import load_references

SHIPPED = Path(__file__).resolve().parent.parent / "results" / "reference"
H200_OFFLINE = SHIPPED / "mlperf-inference-v6.0_wan2.2-t2v-a14b_8xh200_1280x720-81f-16fps-20steps.json"
XDIT_8 = SHIPPED / "xdit-docs_hunyuanvideo_8xh100-sxm_1280x720-129f-24fps-50steps-bs1.json"
WAN13_H100 = SHIPPED / "mlenergy-v3_wan2.1-t2v-1.3b_1xh100-sxm_832x480-81f-15fps-50steps-bs1.json"
HUNYUAN_8XH100 = SHIPPED / "mlenergy-v3_hunyuanvideo_8xh100-sxm_1280x720-129f-15fps-50steps-bs1.json"
FACTORIAL = SHIPPED / "factorial-funds-2024_sora_1xh100-sxm_nosize-1440f-24fps-250steps.json"
VIBEHPC_B300 = SHIPPED / ("mlperf-inference-v6.1_wan2.2-t2v-a14b_8xb300_1280x720-81f-16fps-20steps_"
                          "vibehpc-b300-sxm-270gbx8-trt_offline.json")

H_FP8 = 1978.9e12  # H100 SXM and H200 dense fp8 FLOP/s, the classes' fastest rate
B300_BF16, B300_FP8 = 2250e12, 4500e12
BOARD_W, IDLE_W, MARGIN = 700.0, 70.0, 1.10
# flops-golden.json: text encoding + calls per step x per call x steps (both experts) + VAE decode
A14B_FLOPS = 9689446219776.0 + 2 * 6523436592005120.0 * (7 + 13) + 639218375884800.0  # 1280x720 81f 20 steps
HUNYUAN_FLOPS = 4977375252480.0 + 1 * 1.2068592207003648e16 * 50 + 2999972184883200.0  # 1280x720 129f 50 steps
A14B_H200_FLOOR_S = A14B_FLOPS / H_FP8  # ~132.2 GPU-seconds per video
HUNYUAN_H100_FLOOR_S = HUNYUAN_FLOPS / H_FP8  # ~306.4 GPU-seconds per video


def _forge(tmp_path: Path, source: Path, name: str = "forged.json", drop: tuple[str, ...] = (), **fields) -> Path:
    data = json.loads(source.read_text(encoding="utf-8"))
    for key in drop:
        data.pop(key)
    data.update(fields)
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _skipped(path: Path) -> tuple[str, ...]:
    """What compare's loader and predict's evidence gathering both say of the file: its skipped lines."""
    loaded, evidence = load([path]), gather([path])
    assert loaded.skipped == evidence.skipped
    assert (len(loaded.references), len(evidence.references)) == ((0, 0) if loaded.skipped else (1, 1))
    return loaded.skipped


# --- committed references --------------------------------------------------------------------------------------


def test_every_committed_reference_passes_the_gate():
    # bug caught: a gate too strict for real sources (e.g. one GPU's time charged for an 8-GPU latency) would
    # silently drop published evidence from compare, predict and estimate
    loaded = load([SHIPPED])
    assert loaded.skipped == ()
    assert len(loaded.references) == len(load_references(SHIPPED)) == 51


def test_the_b300_row_that_says_fp32_is_bounded_at_the_fp8_rate():
    # bug caught: a bound at the rate the file's precision label names. VibeHPC's row says 'fp32' weights; at the
    # bf16 rate it would be 114% MFU, at the fp8 rate (the class's fastest) it is 57%, a real TensorRT run
    gpu_s = 8 / 0.0783824
    assert gpu_s < A14B_FLOPS / B300_BF16 and gpu_s > A14B_FLOPS / B300_FP8
    assert _skipped(VIBEHPC_B300) == ()


# --- time: no faster than the counted FLOPs at the class's fastest rate ------------------------------------------


def test_the_red_team_forgery_one_gpu_a_million_videos_per_s_is_skipped(tmp_path):
    # bug caught: references trusted without physics; this copy was a 'published' rung at 45802% MFU in predict and
    # 26438889377.6% MFU in compare
    path = _forge(tmp_path, H200_OFFLINE, gpus=1, videos_per_s=1e6)
    (line,) = _skipped(path)
    assert line.startswith(f"{path}: videos_per_s 1e+06 on 1 GPU(s)")
    assert f"{A14B_H200_FLOOR_S:.3g} s" in line and "MFU above 100% is impossible" in line
    assert "\n" not in line


@pytest.mark.parametrize("gpus", [1, 8])
def test_a_throughput_figure_is_bounded_per_gpu(tmp_path, gpus):
    # bug caught: videos_per_s not spread over the system's GPUs (the 8-GPU case would be bounded 8x too loosely or
    # tightly), or a bound at the bf16 rate (the 1% slower case would be refused: the bf16 floor is twice this one)
    bound_vps = gpus / A14B_H200_FLOOR_S
    assert len(_skipped(_forge(tmp_path, H200_OFFLINE, gpus=gpus, videos_per_s=bound_vps * 1.01))) == 1
    assert _skipped(_forge(tmp_path, H200_OFFLINE, gpus=gpus, videos_per_s=bound_vps * 0.99)) == ()


def test_a_latency_on_eight_gpus_is_bounded_by_all_eight(tmp_path):
    # bug caught: a latency on N GPUs compared with one GPU's floor (the genuine-looking 39 s would be refused) or
    # with N x N GPUs' (the impossible 37.9 s would pass)
    wall_floor_s = HUNYUAN_H100_FLOOR_S / 8  # ~38.3 s
    assert len(_skipped(_forge(tmp_path, XDIT_8, seconds_per_video=wall_floor_s * 0.99))) == 1
    assert _skipped(_forge(tmp_path, XDIT_8, seconds_per_video=wall_floor_s * 1.01)) == ()


def test_a_model_that_cannot_be_counted_gets_no_time_bound(tmp_path):
    # bug caught: a bound invented where no FLOPs can be counted (Sora is not in models/), or a crash on it
    assert _skipped(_forge(tmp_path, FACTORIAL, seconds_per_video=0.001)) == ()


# --- energy and power: between the idle floor and the board power of all GPUs ------------------------------------


def test_one_joule_per_video_is_skipped(tmp_path):
    # bug caught: the red team's energy_per_video_j 1 was shown as 0.00329 Wh/video-min
    seconds = 95.35738396644592
    path = _forge(tmp_path, WAN13_H100, drop=("avg_power_w",), energy_per_video_j=1)
    (line,) = _skipped(path)
    assert f"{1 / seconds:.4g} W, below 1 x h100-sxm's idle floor of 70 W" in line


@pytest.mark.parametrize(("factor", "refused"), [(1.01, True), (0.99, False)])
def test_energy_above_the_board_power_is_skipped(tmp_path, factor, refused):
    # bug caught: no upper bound, or one without the margin (0.99 x 700 W x 1.1 would be refused)
    ceiling_j = BOARD_W * MARGIN * 95.35738396644592  # 73,425 J in 95.4 s on one H100
    path = _forge(tmp_path, WAN13_H100, drop=("avg_power_w",), energy_per_video_j=ceiling_j * factor)
    assert len(_skipped(path)) == int(refused)


def test_an_eight_gpu_system_draws_at_least_eight_idle_floors(tmp_path):
    # bug caught: a system's energy (all 8 GPUs held) held to one GPU's floor: 2 x 70 W x 269.5 s passes that one
    seconds = 269.5456430912018
    path = _forge(tmp_path, HUNYUAN_8XH100, drop=("avg_power_w",), energy_per_video_j=2 * IDLE_W * seconds)
    (line,) = _skipped(path)
    assert "below 8 x h100-sxm's idle floor of 70 W" in line
    path = _forge(tmp_path, HUNYUAN_8XH100, drop=("avg_power_w",), energy_per_video_j=8.1 * IDLE_W * seconds)
    assert _skipped(path) == ()


def test_average_power_above_every_board_is_skipped(tmp_path):
    # bug caught: avg_power_w not checked where no energy is given
    path = _forge(tmp_path, WAN13_H100, drop=("energy_per_video_j",), avg_power_w=8 * BOARD_W)
    (line,) = _skipped(path)
    assert "avg_power_w 5600 is 5600 W, above 1 x 700 W board power" in line


# --- the schema's part: GPUs and class ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "fragment"), [({"gpus": 0}, "gpus"), ({"hardware_class": "h999"}, "h999")])
def test_no_gpus_or_an_unknown_class_is_skipped_with_one_line(tmp_path, fields, fragment):
    # bug caught: a reference with 0 GPUs (a division by zero in per-GPU figures) or a class the catalogue lacks
    (line,) = _skipped(_forge(tmp_path, H200_OFFLINE, **fields))
    assert fragment in line and "\n" not in line


# --- the readers ---------------------------------------------------------------------------------------------------


def test_predict_does_not_take_a_forged_rung(tmp_path, run_cli):
    # bug caught: predict printed 1.153 s/video and 'implied MFU 45802.7%' from the forgery, labelled published
    _forge(tmp_path, H200_OFFLINE, gpus=1, videos_per_s=1e6)
    code, out, err = run_cli("predict", "wan2.2-t2v-a14b", "--hardware", "h200", "--results", tmp_path)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "1 file(s) skipped" in err and "forged.json" in err


def test_compare_skips_the_forgery_beside_the_genuine_row(tmp_path, run_cli):
    # bug caught: compare printed an MFU of 26438889377.6% for the forgery
    _forge(tmp_path, H200_OFFLINE, "genuine.json")
    _forge(tmp_path, H200_OFFLINE, gpus=1, videos_per_s=1e6)
    code, out, err = run_cli("compare", tmp_path, "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and len(rows) == 1 and rows[0]["gpus"] == 8
    assert err.count("t2vbench: skipped: ") == 1 and "forged.json" in err


def test_estimate_sizes_no_h200_fleet_from_a_forgery_and_says_it_skipped_it(tmp_path, run_cli):
    # bug caught: estimate sized the H200 fleet from the forgery, and never said a file was left out
    _forge(tmp_path, H200_OFFLINE, gpus=1, videos_per_s=1e6)
    code, out, err = run_cli("estimate", "--results", tmp_path, "--json")
    assert code == 0 and json.loads(out)["rows"] == []
    assert err.count("\n") == 1 and err.startswith(f"t2vbench: skipped: {tmp_path / 'forged.json'}: videos_per_s")


def test_estimate_refuses_a_results_path_that_does_not_exist(tmp_path, run_cli):
    # bug caught: estimate dropped the missing path silently and answered from no evidence, exit 0
    code, out, err = run_cli("estimate", "--results", tmp_path / "nonexist")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "nonexist" in err and "no such file or folder" in err


# --- energy without a time figure ---------------------------------------------------------------------------------

UNTIMED = ("seconds_per_video", "videos_per_s")


@pytest.mark.parametrize(("factor", "refused"), [(0.99, True), (1.01, False)])
def test_an_energy_without_a_time_has_the_floor_of_its_flops_at_the_idle_power(tmp_path, factor, refused):
    # bug caught: with no time figure the energy had no floor at all (10 J per video was shown): one video takes at
    # least HUNYUAN_H100_FLOOR_S GPU-seconds, each drawing at least 70 W: 70 x 306.4 = 21,448 J
    floor_j = IDLE_W * HUNYUAN_H100_FLOOR_S
    path = _forge(tmp_path, HUNYUAN_8XH100, drop=UNTIMED + ("avg_power_w",), energy_per_video_j=floor_j * factor)
    skipped = _skipped(path)
    assert len(skipped) == int(refused)
    if refused:
        assert f"energy_per_video_j {floor_j * factor:.4g} is below {floor_j:.4g} J" in skipped[0]


@pytest.mark.parametrize(("factor", "refused"), [(0.99, True), (1.01, False)])
def test_energy_over_power_is_a_time_held_to_the_flop_bound(tmp_path, factor, refused):
    # bug caught: energy and power given without a time imply one (E / P wall seconds on all 8 GPUs) that went
    # unchecked: at 4,800 W a wall time of 306.4 / 8 = 38.3 s x factor; 0.99 is faster than the FLOPs allow
    power_w = 4800.0
    energy_j = power_w * HUNYUAN_H100_FLOOR_S / 8 * factor
    path = _forge(tmp_path, HUNYUAN_8XH100, drop=UNTIMED, avg_power_w=power_w, energy_per_video_j=energy_j)
    skipped = _skipped(path)
    assert len(skipped) == int(refused)
    if refused:
        assert f"over avg_power_w 4800 on 8 GPU(s) is {HUNYUAN_H100_FLOOR_S * factor:.3g} GPU-seconds" in skipped[0]
