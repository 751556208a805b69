"""The stage clock on a real tiny pipeline, against a fake clock whose only movement is the device sync: every stage
must contain the work the sync waits for, and every stage's energy must be the counter's difference over it. And peak
memory is the generation's own, not what happened before it."""

import pytest
import torch

import bench.run.timing as timing
from bench.core.specs import load_spec
from bench.run.build import build_pipeline
from bench.run.job import Job
from bench.run.options import Options
from bench.run.parallel import Layout
from bench.run.timing import StageClock, call_kwargs, generate
from bench.run.worker import PeakMemory, time_generations

SYNC_S = 0.5  # what each device sync waits for: the queued GPU work it stands for
POWER_W = 100.0  # the fake energy counter's rate


class FakeClock:
    """A clock that moves only when the device is synchronized; the energy counter integrates a constant power."""

    def __init__(self):
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sync(self) -> None:
        self.t += SYNC_S

    def energy_j(self) -> float:
        return POWER_W * self.t


@pytest.fixture(scope="module")
def tiny():
    spec = load_spec("tiny-wan")
    job = Job(spec_path=str(spec.path), settings=spec.settings, weights="random", dtype="float32", seed=0,
              prompt="a cat walks", warmup=0, repeats=2, time_budget_s=None, options=Options(), telemetry="none",
              sample_period_s=0.1, layout=Layout())
    pipe = build_pipeline(spec, "random", "cpu", torch.float32)
    return pipe, job


def test_every_stage_includes_the_device_work_its_sync_waits_for(tiny, monkeypatch):
    pipe, job = tiny
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.now)
    kwargs = call_kwargs(pipe, job.settings, job.prompt)
    stage_clock = StageClock(pipe, clock.sync, clock.energy_j)
    result, frames = generate(pipe, stage_clock, kwargs, seed=0, device="cpu", t0=1000.0)
    steps = kwargs["num_inference_steps"]
    # text: sync, start, encode, sync, end -> one wait; each step ends with a sync -> one wait; vae likewise.
    # The whole call counts from just after its first sync: text's 2, one per step, vae's 2, and the closing one.
    assert result["text_encode_s"] == SYNC_S
    assert result["step_s"] == [SYNC_S] * steps
    assert result["denoise_s"] == SYNC_S * steps
    assert result["vae_decode_s"] == SYNC_S
    assert result["latency_s"] == SYNC_S * (2 + steps + 2 + 1)
    e = result["telemetry"]
    assert e["text_encode_energy_j"] == pytest.approx(POWER_W * SYNC_S)
    assert e["denoise_energy_j"] == pytest.approx(POWER_W * SYNC_S * steps)
    assert e["vae_decode_energy_j"] == pytest.approx(POWER_W * SYNC_S)
    assert e["energy_j"] == pytest.approx(POWER_W * result["latency_s"])
    assert len(frames) == kwargs["num_frames"]


def test_peak_memory_is_the_generations_own(tiny):
    """A gigabyte touched and freed before the timed generations must not show up as their peak."""
    import numpy as np

    pipe, job = tiny
    memory = PeakMemory("cpu")
    if memory.method != "process_peak_rss":
        pytest.skip("this kernel cannot reset the peak resident set (/proc/self/clear_refs)")
    before = np.ones(2**27)  # 1 GiB, every page touched
    high = memory.peak_bytes()
    del before
    sent = []
    time_generations(pipe, StageClock(pipe, lambda: None), call_kwargs(pipe, job.settings, job.prompt), job, "cpu",
                     lambda kind, **f: sent.append((kind, f)), {}, t0=0.0)
    peaks = [f["peak_memory_bytes"] for kind, f in sent if kind == "generation"]
    assert len(peaks) == 2 and all(0 < p < high - 2**29 for p in peaks), (peaks, high)
