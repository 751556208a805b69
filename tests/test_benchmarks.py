"""Benchmarks of the harness itself. In the normal test run each executes once, as a test of its output only (no
timing is checked: the default run must not depend on the machine's speed); with
    python -m pytest tests/test_benchmarks.py --benchmark-enable -n 0
(as .ci/run runs it, after the test runs) they measure, and the harness check fails when instrumenting a generation
(stage clocks, per-step callback, device syncs) costs more than 5% over a bare pipeline call: medians of interleaved
rounds at the same settings."""

import statistics
import time

import pytest
import torch

from bench.core.specs import load_spec
from bench.run.build import build_pipeline
from bench.run.timing import StageClock, call_kwargs, generate

MAX_OVERHEAD = 1.05
ROUNDS = 30


@pytest.fixture(scope="module")
def tiny_wan():
    spec = load_spec("tiny-wan")
    bare = build_pipeline(spec, "random", "cpu", torch.float32)
    timed = build_pipeline(spec, "random", "cpu", torch.float32)  # same shapes, so the same work
    clock = StageClock(timed, lambda: None)
    return bare, timed, clock, call_kwargs(bare, spec.settings, "a cat walks")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_harness_overhead_over_a_bare_pipeline_call(benchmark, tiny_wan, request):
    bare, timed, clock, kwargs = tiny_wan
    # pytest-benchmark's own rule (an explicit --benchmark-enable wins over addopts' --benchmark-disable); the
    # overhead check runs whenever benchmarks were asked for, also where xdist made pytest-benchmark stand down
    enabled = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    bare_call = lambda: bare(**kwargs, generator=torch.Generator().manual_seed(0))  # noqa: E731
    harness_call = lambda: generate(timed, clock, kwargs, 0, "cpu")  # noqa: E731
    timing, frames = benchmark(harness_call)
    assert len(frames) == kwargs["num_frames"] and len(timing["step_s"]) == kwargs["num_inference_steps"]
    if not enabled:
        return
    bare_s, harness_s = [], []
    for _ in range(ROUNDS):  # interleaved, so drift in the machine's speed hits both alike
        bare_s.append(_seconds(bare_call))
        harness_s.append(_seconds(harness_call))
    ratio = statistics.median(harness_s) / statistics.median(bare_s)
    benchmark.extra_info["harness_over_bare_median"] = ratio
    print(f"\nharness / bare pipeline call, median of {ROUNDS} interleaved rounds: {ratio:.3f}")
    assert ratio <= MAX_OVERHEAD, f"the harness costs {ratio - 1:.1%} over a bare call (target < 5%)"


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
