"""Records made for the compare and report tests: copies of the golden v2 record with chosen latencies, GPU,
settings and strings, the summary recomputed by bench.core.metrics (as tests/test_record.py's _as_h100 does), so that
only what a test changes differs from an honest record. GPU telemetry comes from the faked pynvml in tests/fakes.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.core import metrics

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "record-v2-tiny-wan.json").read_text())
REFERENCE = json.loads((Path(__file__).parent.parent / "results" / "reference" /
                        "mlenergy-v3_wan2.1-t2v-1.3b_1xh100-sxm_832x480-81f-15fps-50steps-bs1.json").read_text())
_ids = itertools.count(1)


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
    data.update(hardware_class=hardware_class, label=label, run_id=f"{next(_ids):012x}", warnings=[],
                created_utc=created or data["created_utc"], peak_memory_method="cuda_max_allocated")
    steps, t = data["settings"]["steps"], 0.0
    data["generations"] = []
    for i, latency in enumerate(latencies):
        data["generations"].append(_generation(i, t, latency, steps))
        t += latency
    data["peak_memory_bytes"] = 2**30
    return summarized(data)


def summarized(data: dict) -> dict:
    s = data["settings"]
    data["summary"] = metrics.summarize(data["generations"], s["num_frames"], s["fps"], s["gpus_used"])
    return data


def with_nvml(data: dict, monkeypatch, power_w: float = 650.0) -> dict:
    """The record as an NVML run would have it: energy counter per generation, a sampled series in which the
    driver holds clocks down (sw_power_cap) for the middle third of the run."""
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
        g["telemetry"].update(energy_j=power_w * g["latency_s"], text_encode_energy_j=0.0, denoise_energy_j=1.0,
                              vae_decode_energy_j=0.0)
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
