"""Every tiny family end to end through the CLI with real diffusers pipelines, and every input refused before
anything is built. Runs pin --device cpu where they assert CPU facts, so the suite holds on a GPU host too."""

import dataclasses
import json
from pathlib import Path

import imageio.v3 as iio
import pytest

from bench.core.errors import UsageError
from bench.core.metrics import video_minutes_per_gpu_hour
from bench.core.specs import load_spec
from bench.records.io import load_record
from bench.run.runner import RunConfig, prepare
from tests.conftest import TINY, cuda_available


def _run_json(run_cli, *argv):
    code, out, err = run_cli("run", *argv, "--json")
    assert code == 0, err
    return load_record(json.loads(out)["record"])


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == "tiny-wan" else pytest.mark.slow) for n in TINY])
def test_tiny_family_runs_end_to_end(run_cli, tmp_path, name):
    record = _run_json(run_cli, name, "--device", "cpu", "--repeats", 2, "--out", tmp_path)
    spec = load_spec(name)
    assert record.complete and record.spec.sha256 == spec.sha256 and record.spec.tiny
    assert len(record.generations) == 2 and len(record.warmup_latency_s) == 1
    for g in record.generations:
        assert len(g.step_s) == spec.settings.steps
        assert 0 < g.text_encode_s + g.denoise_s + g.vae_decode_s <= g.latency_s
        assert g.denoise_s > 0 and g.vae_decode_s > 0
        assert g.peak_memory_bytes > 50 * 2**20  # a process holding torch and a pipeline
    wall = sum(g.latency_s for g in record.generations)
    video_s = 2 * spec.settings.num_frames / spec.settings.fps
    assert record.summary.video_minutes_per_gpu_hour == pytest.approx(video_minutes_per_gpu_hour(video_s, wall))
    assert record.summary.video_minutes_per_gpu_hour == pytest.approx((video_s / 60) / (wall / 3600))
    assert record.hardware_class.startswith("cpu:") and record.settings.device == "cpu"
    assert any("only 2 timed generation" in w for w in record.warnings)
    assert not record.telemetry.available and record.telemetry.unavailable_reason.startswith("the run is on the CPU")
    assert all(g.telemetry.energy_j is None for g in record.generations)


@pytest.mark.slow  # an end-to-end run: CI's slow pass runs it (the default run stays under 2 min)
def test_provenance_seeds_and_file_mode(run_cli, tmp_path):
    record = _run_json(run_cli, "tiny-wan", "--device", "cpu", "--warmup", 2, "--repeats", 3, "--seed", 10,
                       "--label", "rack 3, driver 580", "--out", tmp_path)
    assert record.label == "rack 3, driver 580"
    assert record.command[:2] == ["t2vbench", "run"] and "--label" in record.command
    assert record.environment["torch"] and record.environment["device_name"]
    assert [g.seed for g in record.generations] == [10, 11, 12]
    assert record.warmup_seeds == [9, 8]  # never a timed seed: the timed generations are not cache-warm replays
    path = next(tmp_path.glob("*.json"))
    assert path.stat().st_mode & 0o044 == 0o044  # readable by group and others under the usual umask
    assert not list(tmp_path.glob("*.journal.jsonl"))  # the journal goes once the record is written


def test_default_run_prints_summary_and_record_path(run_cli, tmp_path):
    code, out, err = run_cli("run", "--out", tmp_path)  # no --device: whatever this host has
    assert code == 0, err
    assert "video min / GPU-hour" in out and "tiny-wan" in out
    record = load_record(out.strip().splitlines()[-1].removeprefix("record: "))
    assert record.settings.repeats == 3
    assert record.hardware_class.startswith("cpu:") == (record.settings.device == "cpu")


@pytest.mark.slow
def test_show_prints_what_run_printed(run_cli, tmp_path):
    code, out, _ = run_cli("run", "tiny-wan", "--device", "cpu", "--repeats", 1, "--out", tmp_path)
    path = out.strip().splitlines()[-1].removeprefix("record: ")
    code2, shown, _ = run_cli("show", path)
    assert code == code2 == 0 and shown == out


@pytest.mark.slow
def test_saved_video_decodes_to_num_frames(run_cli, tmp_path):
    record = _run_json(run_cli, "tiny-cogvideox", "--device", "cpu", "--repeats", 1, "--warmup", 0, "--save-video",
                       "--height", 48, "--width", 64, "--frames", 17, "--out", tmp_path)
    frames = list(iio.imiter(record.video_path))
    assert len(frames) == 17
    assert frames[0].shape == (48, 64, 3)


_file = Path(__file__)  # an existing file: --out cannot be it, nor a folder under it


@pytest.mark.parametrize("argv,fragment", [
    (["tiny-wan", "--frames", 10], "4k+1"),
    (["tiny-mochi", "--frames", 9], "6k+1"),
    (["tiny-wan", "--height", 40], "multiple of 16"),
    (["tiny-wan", "--steps", 0], "--steps 0 is out of range"),
    (["tiny-wan", "--steps", 10**20], "--steps 100000000000000000000 is out of range"),
    (["tiny-wan", "--height", 10**11], "--height 100000000000 is out of range"),
    (["tiny-wan", "--fps", "inf"], "--fps inf is out of range"),
    (["tiny-wan", "--fps", "nan"], "--fps nan is out of range"),
    (["tiny-wan", "--guidance", "-1"], "--guidance -1.0 is out of range"),
    (["tiny-wan", "--time-budget", "inf"], "--time-budget inf"),
    (["tiny-wan", "--time-budget", "nan"], "--time-budget nan"),
    (["tiny-wan", "--repeats", 0], "--repeats 0"),
    (["tiny-wan", "--warmup", -1], "--warmup -1"),
    (["tiny-wan", "--seed", -1], "--seed -1"),
    (["tiny-wan", "--prompt", "x" * 100_000], "--prompt: give 1 to 2000 characters"),
    (["tiny-wan", "--prompt", " "], "--prompt: give 1 to 2000 characters"),
    (["tiny-wan", "--label", "a\x1b[2Jb"], "--label: give at most 200 printable characters"),
    (["wan2.1-t2v-13b"], "did you mean"),
    (["../../../etc/passwd"], "unknown model"),
    (["tiny-wan", "--weights", "/nonexistent/dir"], "model_index.json"),
    (["tiny-wan", "--dtype", "int8"], "--dtype int8"),
    (["tiny-wan", "--device", "tpu"], "--device tpu"),
    (["tiny-wan", "--steps", "many"], "invalid int value: 'many' (see t2vbench run --help)"),
    (["tiny-wan", "--bogus"], "unrecognized arguments: --bogus (see t2vbench run --help)"),  # said 't2vbench t2vbench'
    (["tiny-wan", "--telemetry", "rapl"], "--telemetry rapl"),
    (["tiny-wan", "--sample-period", "0"], "--sample-period 0"),
    (["tiny-wan", "--compile", "--warmup", "0"], "would time the compilation"),
    (["tiny-wan", "--cache", "bogus"], "--cache bogus"),
    (["tiny-wan", "--offload", "disk"], "--offload disk"),
    (["tiny-wan", "--device", "cpu", "--offload", "group"], "--offload needs a GPU"),
    (["tiny-wan", "--device", "cpu", "--memory-cap", "24"], "--memory-cap needs a GPU"),
    (["tiny-wan", "--memory-cap", "inf"], "--memory-cap inf"),
    (["tiny-wan", "--attention-backend", "x; rm -rf /"], "--attention-backend"),
    (["tiny-wan", "--device", "cpu", "--attention-backend", "_native_cudnn"], "has no CPU kernel: on the CPU use native, _native_math or flex"),
    (["tiny-wan", "--device", "cpu", "--attention-backend", "flash"], "--attention-backend flash has no CPU kernel"),
    (["tiny-wan", "--out", _file], "exists and is not a directory"),
    (["tiny-wan", "--out", _file / "sub"], "cannot write in"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(run_cli, tmp_path, argv, fragment):
    out_dir = tmp_path / "out"
    argv = [*argv, "--out", out_dir] if "--out" not in argv else argv
    code, out, err = run_cli("run", *argv)
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert "\x1b" not in err  # control characters from the command line are shown escaped
    assert not out_dir.exists()


def test_every_input_is_refused_before_anything_starts(tmp_path):
    """prepare() starts nothing and writes nothing: the refusals above come from it, not from a worker."""
    for bad in ({"overrides": {"steps": 10**20}}, {"time_budget_s": float("inf")}, {"prompt": "x" * 10**5},
                {"out_dir": _file}, {"warmup": -1}, {"telemetry": "rapl"}):
        with pytest.raises(UsageError):
            prepare(dataclasses.replace(RunConfig(out_dir=tmp_path / "o"), **bad))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,fragment", [
    (["tiny-wan", "--telemetry", "nvml", "--device", "cpu"], "--telemetry nvml: needs a GPU run"),
    pytest.param(["tiny-wan", "--attention-backend", "flash_nonexistent"], "this diffusers offers",
                 marks=pytest.mark.slow),
    pytest.param(["tiny-wan", "--device", "cpu", "--cache", "magcache"], "calibrated for this model",
                 marks=pytest.mark.slow),
])
def test_what_only_the_worker_can_check_is_still_one_line_and_nothing_written(run_cli, tmp_path, argv, fragment):
    code, _, err = run_cli("run", *argv, "--out", tmp_path / "out")
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(cuda_available(), reason="device-specific: asserts the refusal a GPU-less host gives")
def test_cuda_without_a_gpu_is_refused(run_cli, tmp_path):
    code, _, err = run_cli("run", "tiny-wan", "--device", "cuda", "--out", tmp_path / "out")
    assert code == 2 and "no CUDA" in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_telemetry_none_is_recorded_with_its_reason(run_cli, tmp_path):
    record = _run_json(run_cli, "tiny-ltx", "--telemetry", "none", "--repeats", 1, "--out", tmp_path)
    t = record.telemetry
    assert (t.backend, t.available, t.unavailable_reason) == ("none", False, "telemetry turned off (--telemetry none)")
    assert t.energy_method is None and t.summary.energy_per_video_j is None


@pytest.mark.slow
def test_time_budget_stops_timing_once_the_budget_is_spent(run_cli, tmp_path):
    """Structural, whatever this machine's speed: every generation started inside the budget, every one but the
    last also ended inside it (else no next one would have started), and the last ran past it."""
    budget = 0.5
    record = _run_json(run_cli, "tiny-ltx", "--device", "cpu", "--time-budget", budget, "--warmup", 1,
                       "--out", tmp_path)
    gens = [g.telemetry for g in record.generations]
    assert record.settings.time_budget_s == budget and gens
    assert all(g.start_s < budget for g in gens)
    assert all(g.end_s < budget for g in gens[:-1])
    assert gens[-1].end_s >= budget


def test_models_lists_every_spec(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    for name in ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "cogvideox-2b", "cogvideox-5b", "ltx-video", "hunyuanvideo",
                 "mochi-1", "tiny-wan", "tiny-mochi", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b", "tiny-wan2.2-a14b",
                 "tiny-wan2.2-ti2v"):
        assert name in out
    assert "832x480" in out and "81@16fps" in out


def test_the_parent_never_imports_torch(tmp_path):
    """The worker imports torch; the parent reads plain JSON messages, so an interrupt while it unpacks one cannot
    land in a seconds-long torch import (and `show`, `compare` of a CPU record stay light)."""
    import subprocess
    import sys

    script = ("import sys; from bench.cli import main\n"
              f"code = main(['run', 'tiny-wan', '--device', 'cpu', '--repeats', '1', '--out', {str(tmp_path)!r}])\n"
              "print('exit', code, 'torch imported:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "exit 0 torch imported: False", out.stderr[-500:]
