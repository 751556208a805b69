"""Records made for the compare and report tests: copies of the golden v2 record with chosen latencies, GPU,
settings and strings, the summary recomputed by this module's own implementation of the definitions (summary_of),
so that only what a test changes differs from an honest record. GPU telemetry comes from the faked pynvml in
tests/fakes.

summary_of is a test oracle: written from the definitions in README.md and bench/core/metrics.py's docstring, not
from that module's code, and never calling it. The record validator (bench.records.schema) recomputes every summary
with bench.core.metrics.summarize; a forged record built here is accepted only where the two implementations agree,
so a bug in either shows up as a refused record (tests/test_oracle_summary.py pins both to hand arithmetic).
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "record-v2-tiny-wan.json").read_text())
GOLDEN_V3 = json.loads((DATA / "record-v3-tiny-wan.json").read_text())  # a real tiny run's record
REFERENCE = json.loads((Path(__file__).parent.parent / "results" / "reference" /
                        "mlenergy-v3_wan2.1-t2v-1.3b_1xh100-sxm_832x480-81f-15fps-50steps-bs1.json").read_text())
# A genuine run's record (NVIDIA H100 80GB HBM3, NVML telemetry): the environment forged GPU records borrow.
H100 = (Path(__file__).parent.parent / "results" / "nvidia-h100-80gb-hbm3" / "wan2.1-t2v-1.3b" /
        "832x480-81f-16fps-50steps-g5-bfloat16-1gpu" / "20261123T032044Z-db96561ab733.json")
H100_ENVIRONMENT = json.loads(H100.read_text())["environment"]
_ids = itertools.count(1)


def gpu_environment(hardware_class: str = "nvidia-h100-80gb-hbm3") -> dict:
    """The genuine H100 run's environment (CUDA torch build, driver's CUDA version), its GPU renamed to the NVIDIA
    class the forged record claims, as torch names it ('nvidia-b200' -> 'NVIDIA B200'), so the gate's evidence check
    sees the GPU the class says."""
    return {**H100_ENVIRONMENT, "device_name": hardware_class.replace("-", " ").upper()}


def _generation(index: int, start_s: float, latency_s: float, steps: int) -> dict:
    return {"index": index, "seed": 1000 + index, "latency_s": latency_s, "text_encode_s": 0.1 * latency_s,
            "denoise_s": 0.8 * latency_s, "vae_decode_s": 0.05 * latency_s, "step_s": [0.8 * latency_s / steps] * steps,
            "peak_memory_bytes": 2**30, "telemetry": {"start_s": start_s, "end_s": start_s + latency_s,
                                                       "energy_j": None, "text_encode_energy_j": None,
                                                       "denoise_energy_j": None, "vae_decode_energy_j": None}}


def record(latencies: Sequence[float] = (10.0, 11.0, 12.0), *, model: str = "testmodel",
           hardware_class: str = "nvidia-h100-80gb-hbm3", label: str | None = None, created: str | None = None,
           **settings) -> dict:
    """A complete GPU record of a made-up (non-toy, uncountable) model with these latencies in seconds."""
    data = copy.deepcopy(GOLDEN)
    data["spec"].update(name=model, tiny=False)
    data["settings"].update(device="cuda:0", dtype="bfloat16", **settings)
    # a current record: the summary's server figures came with v3 (a v2 file carrying them is refused)
    data.update(schema_version=4, hardware_class=hardware_class, label=label, run_id=f"{next(_ids):012x}", warnings=[],
                created_utc=created or data["created_utc"], peak_memory_method="cuda_max_allocated",
                environment=gpu_environment(hardware_class))
    steps, t = data["settings"]["steps"], 0.0
    data["generations"] = []
    for i, latency in enumerate(latencies):
        data["generations"].append(_generation(i, t, latency, steps))
        t += latency
    data["peak_memory_bytes"] = 2**30
    return summarized(data)


# A data-parallel run of two workers that made unequal numbers of generations, on one clock shared by both:
# worker -> [(start_s, latency_s), ...]. Worker 0 makes 3 generations back to back (0-2, 2-5, 5-9 s); worker 1 makes
# one slow generation (0.5-10.5 s). Its figures, worked out by hand, are in tests/test_parallel.py and
# tests/test_oracle_summary.py.
UNEQUAL_WORKERS = {0: [(0.0, 2.0), (2.0, 3.0), (5.0, 4.0)], 1: [(0.5, 10.0)]}


def data_parallel_record(timings: dict[int, list[tuple[float, float]]] = UNEQUAL_WORKERS) -> dict:
    """A complete record of a data-parallel CPU run of len(timings) workers (tiny-wan's 9 frames at 16 fps, 4 steps),
    each generation credited to its worker, the summary from summary_of."""
    data = copy.deepcopy(GOLDEN_V3)
    data["settings"].update(gpus_used=len(timings), options={"parallel": "data"})
    data.update(run_id=f"{next(_ids):012x}", warnings=[])
    data["generations"] = timed_generations(timings, data["settings"]["steps"])
    return summarized(data)


def timed_generations(timings: dict[int, list[tuple[float, float]]], steps: int = 4) -> list[dict]:
    """Generations of these workers, in order of start (as a record holds them), each with its worker index."""
    gens = []
    for worker, own in timings.items():
        for i, (start, latency) in enumerate(own):
            g = _generation(i, start, latency, steps)  # the index within its worker, as a worker counts
            gens.append({**g, "seed": 1000 + i * len(timings) + worker, "worker": worker})  # distinct seeds
    return sorted(gens, key=lambda g: (g["telemetry"]["start_s"], g["worker"]))


def run_messages(timings: dict[int, list[tuple[float, float]]] = UNEQUAL_WORKERS,
                 time_budget_s: float | None = None) -> list:
    """The journal messages of a data-parallel CPU run of tiny-wan in which each worker made these generations
    (worker -> [(start_s, latency_s), ...]) and finished: what bench.records.assemble.replay takes. A worker that
    made fewer than the repeats (3) finished only if a time budget stopped it; without one its record is incomplete."""
    from bench.records.journal import message

    g = GOLDEN_V3
    workers = len(timings)
    header = {"journal_version": 1, "t2vbench_version": g["t2vbench_version"], "run_id": f"{next(_ids):012x}",
              "created_utc": g["created_utc"], "command": ["t2vbench", "run", "tiny-wan", "--workers", str(workers)],
              "label": None, "spec": g["spec"], "spec_path": "", "gpus_used": workers, "parallel": "data",
              "options": {"parallel": "data"}, "output_changing": [], "weights": g["weights"], "warnings": [],
              "settings": {k: g["settings"][k] for k in ("height", "width", "num_frames", "fps", "steps",
                                                          "guidance_scale", "max_sequence_length")},
              "run": {k: g["settings"][k] for k in ("seed", "prompt", "warmup", "repeats")} | {"time_budget_s": time_budget_s}}
    telemetry = {k: g["telemetry"][k] for k in ("backend", "available", "unavailable_reason", "device",
                                                "energy_unsupported_reason", "sample_period_s")}
    msgs = [message("header", **header)]
    for worker in timings:
        msgs += [message("device", worker=worker, device="cpu", dtype="float32", environment=g["environment"],
                         hardware_class=g["hardware_class"]),
                 message("telemetry", worker=worker, **telemetry, throttle_bits={}, slowdown_reasons=[]),
                 message("loaded", worker=worker, load_s=0.5, options={})]
    gens = timed_generations(timings, header["settings"]["steps"])
    for gen in sorted(gens, key=lambda x: x["telemetry"]["end_s"]):
        msgs.append(message("generation", **gen, peak_memory_method="process_peak_rss"))  # as they arrive
    msgs += [message("done", worker=worker) for worker in timings]
    return msgs


def summarized(data: dict) -> dict:
    """The record with its summary recomputed by summary_of (the oracle) from its generations and settings."""
    s = data["settings"]
    data["summary"] = summary_of(data["generations"], s["num_frames"], s["fps"], s["gpus_used"],
                                 (s.get("options") or {}).get("parallel"))
    return data


def summary_of(generations: Sequence[dict], num_frames: int, fps: float, gpus_used: int,
               parallel: str | None = None) -> dict:
    """Every summary figure of a record's timed generations, from the definitions (a second implementation):

    - video seconds of one generation = num_frames / fps
    - GPU-seconds = timed wall seconds (sum of latencies) x GPUs one generation occupies: 1 under data parallelism
      ("data"), every GPU of the run (gpus_used) otherwise
    - video minutes per GPU-hour = (video seconds / 60) / (GPU-seconds / 3600)
    - latency percentiles: linear interpolation between order statistics (numpy's default method)
    - relative stdev = sample stdev (n - 1) / mean; 0 for one generation
    - stage means over generations; step mean over every step of every generation; other = mean - stage means
    - server figures, only where every generation has telemetry start_s/end_s: the window from the first start to
      the last end, x gpus_used GPUs; workers = distinct worker indices (absent = 0); the spread between workers =
      sample stdev / mean of each worker's own video minutes per GPU-hour (its video over its own latencies); 0 for
      one worker
    """
    latencies = np.array([float(g["latency_s"]) for g in generations])
    n = len(latencies)
    per_video = num_frames / fps
    occupied = 1 if parallel == "data" else gpus_used
    wall = float(latencies.sum())
    gpu_s = wall * occupied
    video = per_video * n
    mean = wall / n

    def rate(video_s: float, gpu_seconds: float) -> float:
        return (video_s / 60.0) / (gpu_seconds / 3600.0)

    def rel_stdev(values: np.ndarray) -> float:
        return float(np.std(values, ddof=1) / np.mean(values)) if len(values) > 1 else 0.0

    stage_means = {k: float(np.mean([g[k] for g in generations])) for k in ("text_encode_s", "denoise_s",
                                                                            "vae_decode_s")}
    steps = [float(x) for g in generations for x in g["step_s"]]
    out = {
        "generations": n,
        "video_seconds_per_generation": per_video,
        "video_seconds_total": video,
        "timed_wall_s": wall,
        "gpu_seconds": gpu_s,
        "video_minutes_per_gpu_hour": rate(video, gpu_s),
        "gpu_seconds_per_video_second": gpu_s / video,
        "latency_mean_s": mean,
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p90_s": float(np.percentile(latencies, 90)),
        "latency_min_s": float(latencies.min()),
        "latency_max_s": float(latencies.max()),
        "latency_rel_stdev": rel_stdev(latencies),
        "text_encode_mean_s": stage_means["text_encode_s"],
        "denoise_mean_s": stage_means["denoise_s"],
        "step_mean_s": float(np.mean(steps)) if steps else 0.0,
        "vae_decode_mean_s": stage_means["vae_decode_s"],
        "other_mean_s": mean - sum(stage_means.values()),
    }
    spans = [g.get("telemetry") for g in generations]
    if all(t is not None for t in spans):
        window = max(t["end_s"] for t in spans) - min(t["start_s"] for t in spans)
        by_worker: dict[int, list[float]] = {}
        for g in generations:
            by_worker.setdefault(g.get("worker") or 0, []).append(float(g["latency_s"]))
        rates = np.array([rate(per_video * len(own), sum(own)) for own in by_worker.values()])
        out.update(server_window_s=float(window), server_video_minutes_per_gpu_hour=rate(video, window * gpus_used),
                   workers=len(by_worker), per_worker_rel_spread=rel_stdev(rates))
    return out


def with_nvml(data: dict, monkeypatch, power_w: float = 650.0) -> dict:
    """The record as an NVML run would have it: energy counter per generation and per stage (power_w x each span),
    a sampled series in which the driver holds clocks down (sw_power_cap) for the middle third of the run."""
    from bench.telemetry import describe
    from bench.telemetry.nvml import NvmlBackend
    from bench.telemetry.summary import summarize
    from tests.fakes import FakeGpu, fake_pynvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeGpu("GPU-aaaa")]))
    info = describe(NvmlBackend(0), 0.1)
    end = sum(g["latency_s"] for g in data["generations"])
    n = int(end / 0.1) + 1  # one sample per sample period: no gaps
    capped = [n // 3 <= i < 2 * n // 3 for i in range(n)]
    info["series"] = {"t_s": [end * i / (n - 1) for i in range(n)], "power_w": [power_w] * n,
                      "sm_clock_mhz": [1600 if c else 1980 for c in capped], "throttle_mask": [4 if c else 0 for c in
                                                                                               capped],
                      **{k: [1] * n for k in ("mem_clock_mhz", "gpu_util_pct", "mem_util_pct", "memory_used_bytes",
                                              "temperature_c")}}
    info["cpu"] = {"package_energy_j": None, "reason": "test"}
    for g in data["generations"]:
        g["telemetry"].update(energy_j=power_w * g["latency_s"], text_encode_energy_j=power_w * g["text_encode_s"],
                              denoise_energy_j=power_w * g["denoise_s"], vae_decode_energy_j=power_w * g["vae_decode_s"])
    section, data["generations"], _ = summarize(info, data["generations"], data["summary"]
                                                ["video_seconds_per_generation"])
    data["telemetry"] = section
    return summarized(data)


def reference(model: str = "testmodel", hardware_class: str = "h100-sxm", seconds_per_video: float = 20.0,
              **changes) -> dict:
    """A published reference of a made-up model at the forged records' size (32x32, 9 frames, 16 fps, 4 steps)."""
    data = copy.deepcopy(REFERENCE)
    data.update(model=model, hardware_class=hardware_class, seconds_per_video=seconds_per_video,
                videos_per_s=1 / seconds_per_video, avg_power_w=650.0, energy_per_video_j=650.0 * seconds_per_video)
    data["settings"].update(width=32, height=32, num_frames=9, fps=16, steps=4, guidance_scale=5.0)
    data.update(changes)
    return data


def write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
