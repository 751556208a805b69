"""Serving options on tiny models on the CPU: each runs and is recorded (and so lands in the settings key), or is
refused in one line; the fidelity guard tells a lossless option from an output-changing one."""

import json

import pytest

from bench.records.io import load_record
from bench.records.key import settings_key
from tests.conftest import cuda_available

# On float32 CPU runs a lossless option only reorders arithmetic: frames agree to ~1e-7, PSNR well above 100 dB.
# fp8 weights or skipped attention move them by far more than that.
LOSSLESS_PSNR_DB = 80.0


def _run(run_cli, tmp_path, *argv):
    code, out, err = run_cli("run", "tiny-wan", "--device", "cpu", "--repeats", 1, "--out", tmp_path, "--json", *argv)
    assert code == 0, err
    return load_record(json.loads(out)["record"])


@pytest.mark.parametrize("argv,recorded", [
    (["--attention-backend", "_native_math"], {"attention_backend": "_native_math"}),
    pytest.param(["--vae-tiling"], {"vae_tiling": True}, marks=pytest.mark.slow),
])
def test_lossless_options_are_recorded_and_shown_lossless(run_cli, tmp_path, argv, recorded):
    record = _run(run_cli, tmp_path, *argv, "--fidelity")
    assert record.settings.options == recorded
    assert record.fidelity.psnr_db > LOSSLESS_PSNR_DB and record.fidelity.ssim > 0.9999
    assert record.fidelity.compared == [] and record.fidelity.seed == record.generations[0].seed
    for name in recorded:
        assert name in settings_key(record)


@pytest.mark.parametrize("argv,recorded,flag", [
    (["--quantize", "fp8"], {"quantize": "fp8"}, "--quantize fp8"),
    pytest.param(["--cache", "pab"], {"cache": "pab"}, "--cache pab", marks=pytest.mark.slow),
])
def test_output_changing_options_get_a_fidelity_figure_below_the_lossless_bound(run_cli, tmp_path, argv, recorded,
                                                                                flag):
    record = _run(run_cli, tmp_path, *argv)  # no --fidelity needed: output-changing options always get one
    assert {k: record.settings.options[k] for k in recorded} == recorded
    assert record.fidelity is not None and record.fidelity.compared == [flag]
    assert 0 < record.fidelity.psnr_db < LOSSLESS_PSNR_DB


@pytest.mark.slow
def test_step_cache_on_random_weights_carries_a_loud_label(run_cli, tmp_path):
    record = _run(run_cli, tmp_path, "--cache", "first-block")
    assert any("NOT representative" in w for w in record.warnings)
    assert record.fidelity is not None


@pytest.mark.slow
def test_regional_compile_is_lossless_and_its_cold_start_is_kept_apart(run_cli, tmp_path):
    record = _run(run_cli, tmp_path, "--compile", "--fidelity")
    assert record.settings.options["compile"] == "regional:WanTransformerBlock"
    assert record.fidelity.psnr_db > LOSSLESS_PSNR_DB
    # compilation happens in the warm-up, kept apart from the timed generations, and none recompiles in them (the
    # worker counts torch.compile's graphs across the timed generations). How much longer the cold start takes is a
    # time, which a test does not assert: under CI load a timed generation once took 4.1 s beside a 6.1 s cold start.
    assert len(record.warmup_latency_s) == record.settings.warmup and len(record.generations) == record.settings.repeats
    assert not any("recompiled" in w for w in record.warnings)


def test_models_memory_table_says_what_fits(run_cli):
    code, out, _ = run_cli("models", "--memory")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("wan2.1-t2v-14b "))
    assert "weights only" in out
    # 14.29B + 5.68B (UMT5-XXL) + VAE in bf16 = ~37 GiB: no on a 24 or 32 GB card as is, yes with group offload
    cells = row.split()
    assert cells[1] == "37.4" and cells[2:5] == ["no", "yes", "yes"]


@pytest.mark.skipif(cuda_available(), reason="device-specific: asserts what a GPU-less host answers")
def test_a_gpu_only_attention_backend_on_a_cpu_host_names_the_cpu_ones_before_building(run_cli, tmp_path):
    """--device auto: the parent cannot know it means the CPU; the worker's first check refuses before building."""
    code, _, err = run_cli("run", "tiny-wan", "--attention-backend", "_native_cudnn", "--out", tmp_path / "out")
    assert code == 2 and err.strip().splitlines() == [
        "t2vbench: error: --attention-backend _native_cudnn has no CPU kernel: on the CPU use native, _native_math or "
        "flex (or run where torch sees a GPU, with --device cuda)"], err
    assert "building" not in err and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["native", "_native_math", "flex"])
def test_every_attention_backend_the_refusal_names_runs_on_the_cpu(run_cli, tmp_path, backend):
    assert _run(run_cli, tmp_path, "--attention-backend", backend).settings.options == {"attention_backend": backend}
