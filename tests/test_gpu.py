"""Checks only a GPU can answer: real NVML or amdsmi telemetry on a tiny run. Skipped where there is no GPU."""

import json
import sys

import pytest
import torch

from bench.record import load_record

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA or ROCm GPU visible to torch"),
]


def test_tiny_run_on_the_gpu_records_real_telemetry(run_cli, tmp_path):
    code, out, err = run_cli("run", "tiny-wan", "--device", "cuda", "--repeats", 5, "--out", tmp_path, "--json")
    assert code == 0, err
    record = load_record(json.loads(out)["record"])
    t = record.telemetry
    assert t.available and t.backend in ("nvml", "amdsmi"), t.unavailable_reason
    assert t.energy_method in ("counter", "power_integration")
    assert t.summary.energy_per_video_j > 0 and 10 < t.summary.avg_power_w < 2000
    assert t.summary.samples >= 1 and t.device["name"]
    assert record.settings.dtype == "bfloat16" and record.peak_memory_method == "cuda_max_allocated"


def test_real_sampler_cost(benchmark):
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
