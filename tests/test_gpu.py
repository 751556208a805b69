"""Checks only a GPU can answer: real NVML or amdsmi telemetry on a tiny run, GPU-only options, the CUDA peak-memory
reset. Device-specific: skipped where torch sees no CUDA or ROCm GPU."""

import json
import sys

import pytest

from bench.records.io import load_record
from tests.conftest import cuda_available

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not cuda_available(), reason="no CUDA or ROCm GPU visible to torch")]


def _run(run_cli, tmp_path, *argv):
    code, out, err = run_cli("run", "tiny-wan", "--device", "cuda", "--out", tmp_path, "--json", *argv)
    assert code == 0, err
    return load_record(json.loads(out)["record"])


def test_tiny_run_on_the_gpu_records_real_telemetry(run_cli, tmp_path):
    record = _run(run_cli, tmp_path, "--repeats", 5)
    t = record.telemetry
    assert t.available and t.backend in ("nvml", "amdsmi"), t.unavailable_reason
    assert t.energy_method in ("counter", "power_integration")
    assert t.summary.energy_per_video_j > 0 and 10 < t.summary.avg_power_w < 2000
    assert t.summary.samples >= 1 and t.device["name"]
    times = t.series["t_s"]
    assert times == sorted(set(times)) and len(times) == t.summary.samples  # streamed chunks, each sample once
    assert record.settings.dtype == "bfloat16" and record.peak_memory_method == "cuda_max_allocated"
    assert not record.hardware_class.startswith("cpu:") and record.settings.device.startswith("cuda")


def test_lossless_attention_backend_is_lossless_on_the_gpu(run_cli, tmp_path):
    """float32, so only the kernel's order of arithmetic differs (cuDNN's fused kernels refuse tiny heads)."""
    record = _run(run_cli, tmp_path, "--repeats", 1, "--dtype", "float32", "--attention-backend", "_native_math",
                  "--fidelity")
    assert record.settings.options["attention_backend"] == "_native_math"
    assert record.fidelity.psnr_db > 60 and record.fidelity.ssim > 0.999


def test_memory_cap_and_group_offload_run_and_are_recorded(run_cli, tmp_path):
    record = _run(run_cli, tmp_path, "--repeats", 1, "--memory-cap", 2, "--offload", "group")
    assert record.settings.options["memory_cap_gib"] == 2 and record.settings.options["offload"] == "group"
    assert record.peak_memory_bytes < 2 * 2**30


def test_peak_memory_is_reset_for_each_generation_on_the_gpu():
    import torch

    from bench.core.specs import load_spec
    from bench.run.build import build_pipeline
    from bench.run.job import Job
    from bench.run.options import Options
    from bench.run.parallel import Layout
    from bench.run.timing import StageClock, call_kwargs
    from bench.run.worker import time_generations

    spec = load_spec("tiny-wan")
    job = Job(spec_path=str(spec.path), settings=spec.settings, weights="random", dtype="bfloat16", seed=0,
              prompt="a cat", warmup=0, repeats=2, time_budget_s=None, options=Options(), telemetry="none",
              sample_period_s=0.1, layout=Layout())
    pipe = build_pipeline(spec, "random", "cuda:0", torch.bfloat16)
    big = torch.empty(2**31, dtype=torch.uint8, device="cuda:0")  # 2 GiB before the timed generations
    del big
    sent = []
    time_generations(pipe, StageClock(pipe, torch.cuda.synchronize), call_kwargs(pipe, job.settings, job.prompt), job, "cuda:0",
                     lambda kind, **f: sent.append((kind, f)), {}, t0=0.0)
    peaks = [f["peak_memory_bytes"] for kind, f in sent if kind == "generation"]
    assert len(peaks) == 2 and all(0 < p < 2**30 for p in peaks), peaks


def test_real_sampler_cost(benchmark):
    import torch

    from bench.telemetry import open_backend
    from bench.telemetry.sampler import DEFAULT_PERIOD_S, Sampler

    backend = open_backend("auto", "cuda:0", is_rocm=bool(torch.version.hip))
    if backend.name == "none":
        pytest.skip(backend.reason)
    sampler = Sampler(backend)
    benchmark(sampler.sample_once)
    if benchmark.stats:
        print(f"\nsampler overhead at {DEFAULT_PERIOD_S} s: {benchmark.stats.stats.median / DEFAULT_PERIOD_S:.3%}",
              file=sys.stderr)
    assert sampler.series["power_w"][-1] is not None
