"""Every tiny family end to end through the CLI, on the CPU, with real diffusers pipelines."""

import json

import imageio.v3 as iio
import pytest

from bench.metrics import video_minutes_per_gpu_hour
from bench.record import load_record
from bench.specs import load_spec
from tests.conftest import TINY


@pytest.mark.parametrize("name", TINY)
def test_tiny_family_runs_end_to_end(run_cli, tmp_path, name):
    code, out, err = run_cli("run", name, "--repeats", 2, "--out", tmp_path, "--json")
    assert code == 0, err
    summary = json.loads(out)
    record = load_record(summary["record"])  # strict load recomputes the summary from raw timings
    spec = load_spec(name)
    assert record.complete and record.spec.sha256 == spec.sha256
    assert len(record.generations) == 2 and len(record.warmup_latency_s) == 1
    for g in record.generations:
        assert len(g.step_s) == spec.settings.steps
        assert 0 < g.text_encode_s + g.denoise_s + g.vae_decode_s <= g.latency_s
        assert g.denoise_s > 0 and g.vae_decode_s > 0
    wall = sum(g.latency_s for g in record.generations)
    video_s = 2 * spec.settings.num_frames / spec.settings.fps
    assert record.summary["video_minutes_per_gpu_hour"] == pytest.approx(video_minutes_per_gpu_hour(video_s, wall))
    assert record.summary["video_minutes_per_gpu_hour"] == pytest.approx((video_s / 60) / (wall / 3600))
    assert record.hardware_class.startswith("cpu:")
    assert record.peak_memory_bytes > 50 * 2**20
    assert any("only 2 timed generation" in w for w in record.warnings)
    assert not record.telemetry.available and record.telemetry.unavailable_reason.startswith("the run is on the CPU")
    assert all(g.telemetry.energy_j is None for g in record.generations)


def test_default_run_prints_summary_and_record_path(run_cli, tmp_path):
    code, out, err = run_cli("run", "--out", tmp_path)
    assert code == 0, err
    assert "video min / GPU-hour" in out and "tiny-wan" in out
    path = out.strip().splitlines()[-1].removeprefix("record: ")
    assert load_record(path).settings.repeats == 3


def test_saved_video_decodes_to_num_frames(run_cli, tmp_path):
    code, out, err = run_cli("run", "tiny-cogvideox", "--repeats", 1, "--warmup", 0, "--save-video",
                             "--height", 48, "--width", 64, "--frames", 17, "--out", tmp_path, "--json")
    assert code == 0, err
    record = load_record(json.loads(out)["record"])
    frames = list(iio.imiter(record.video_path))
    assert len(frames) == 17
    assert frames[0].shape == (48, 64, 3)


@pytest.mark.parametrize("argv,fragment", [
    (["run", "tiny-wan", "--frames", 10], "4k+1"),
    (["run", "tiny-mochi", "--frames", 9], "6k+1"),
    (["run", "tiny-wan", "--height", 40], "multiple of 16"),
    (["run", "tiny-wan", "--steps", 0], "at least 1"),
    (["run", "tiny-wan", "--repeats", 0], "--repeats 0"),
    (["run", "wan2.1-t2v-13b"], "did you mean"),
    (["run", "tiny-wan", "--weights", "/nonexistent/dir"], "model_index.json"),
    (["run", "tiny-wan", "--dtype", "int8"], "--dtype int8"),
    (["run", "tiny-wan", "--device", "cuda"], "no CUDA"),
    (["run", "tiny-wan", "--steps", "many"], "invalid int value"),
    (["run", "tiny-wan", "--telemetry", "nvml"], "needs a GPU run"),
    (["run", "tiny-wan", "--telemetry", "rapl"], "--telemetry rapl"),
    (["run", "tiny-wan", "--sample-period", "0"], "--sample-period 0"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(run_cli, tmp_path, argv, fragment):
    code, out, err = run_cli(*argv, "--out", tmp_path / "out")
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_telemetry_none_is_recorded_with_its_reason(run_cli, tmp_path):
    code, out, err = run_cli("run", "tiny-ltx", "--telemetry", "none", "--repeats", 1, "--out", tmp_path, "--json")
    assert code == 0 and err == ""
    t = load_record(json.loads(out)["record"]).telemetry
    assert (t.backend, t.available, t.unavailable_reason) == ("none", False, "telemetry turned off (--telemetry none)")
    assert t.energy_method is None and t.summary.energy_per_video_j is None


def test_time_budget_times_generations_until_it_is_spent(run_cli, tmp_path):
    code, out, err = run_cli("run", "tiny-ltx", "--time-budget", 1.0, "--warmup", 1, "--out", tmp_path, "--json")
    assert code == 0, err
    record = load_record(json.loads(out)["record"])
    assert record.settings.time_budget_s == 1.0 and len(record.generations) >= 2
    last = record.generations[-1].telemetry
    assert last.start_s < 1.0 <= last.end_s + 0.05  # the last generation started inside the budget


def test_models_lists_every_spec(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    for name in ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "cogvideox-2b", "cogvideox-5b", "ltx-video", "hunyuanvideo",
                 "mochi-1", "tiny-wan", "tiny-mochi"):
        assert name in out
    assert "832x480" in out and "81@16fps" in out
