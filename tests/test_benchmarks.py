"""Benchmarks (pytest-benchmark). In the normal test run they execute once as tests; for figures run
    pytest tests/test_benchmarks.py --benchmark-enable
Targets, not timed assertions: the harness's instrumentation should cost under 5% of a tiny generation."""

import pytest
import torch

from bench.build import build_pipeline
from bench.specs import load_spec
from bench.timing import StageClock, call_kwargs, generate


@pytest.fixture(scope="module")
def tiny_wan():
    spec = load_spec("tiny-wan")
    job = {"settings": {**spec.settings.__dict__}, "prompt": "a cat walks"}
    bare = build_pipeline(spec, "random", "cpu", torch.float32)
    timed = build_pipeline(spec, "random", "cpu", torch.float32)
    clock = StageClock(timed, lambda: None)
    return bare, timed, clock, call_kwargs(bare, job)


MEDIANS: dict[str, float] = {}


def _keep_median(benchmark, name):
    if benchmark.stats:  # None when benchmarks are disabled (the normal test run)
        MEDIANS[name] = benchmark.stats.stats.median


def test_bench_bare_pipeline_call(benchmark, tiny_wan):
    bare, _, _, kwargs = tiny_wan
    out = benchmark(lambda: bare(**kwargs, generator=torch.Generator().manual_seed(0)))
    _keep_median(benchmark, "bare")
    assert out.frames.shape[1] == kwargs["num_frames"]


def test_bench_harness_generation(benchmark, tiny_wan):
    _, timed, clock, kwargs = tiny_wan
    timing, frames = benchmark(lambda: generate(timed, clock, kwargs, 0, "cpu"))
    _keep_median(benchmark, "harness")
    if "bare" in MEDIANS:
        benchmark.extra_info["harness_over_bare_median"] = MEDIANS["harness"] / MEDIANS["bare"]
        print(f"\nharness / bare pipeline call, median: {MEDIANS['harness'] / MEDIANS['bare']:.3f}")
    assert len(frames) == kwargs["num_frames"] and len(timing["step_s"]) == kwargs["num_inference_steps"]


def test_bench_sampler_cost_per_sample(benchmark, monkeypatch):
    """One telemetry sample through the NVML backend (NVML faked, so this is the harness's own Python cost;
    on a GPU the driver calls add to it). Overhead at the default period = cost / 0.1 s."""
    import sys

    from bench.telemetry.nvml import NvmlBackend
    from bench.telemetry.sampler import DEFAULT_PERIOD_S, Sampler
    from tests.fakes import FakeGpu, fake_pynvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeGpu("GPU-aaaa")]))
    sampler = Sampler(NvmlBackend(0))
    benchmark(sampler.sample_once)
    if benchmark.stats:
        benchmark.extra_info["overhead_at_default_period"] = benchmark.stats.stats.median / DEFAULT_PERIOD_S
    assert sampler.series["power_w"][-1] == 650.0
