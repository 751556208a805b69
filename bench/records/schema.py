"""Result records: frozen, versioned, validated on load, written atomically and never overwritten.

Schema versions (bump SCHEMA_VERSION and add an `update_to_N` step for every change):
  1  first version: spec, settings, weights, raw per-generation and per-stage timings, summary, environment,
     hardware class, warnings, telemetry (GPU energy, power, clocks, throttling, sampled series; CPU package
     energy), each absent value with its reason.
  2  provenance and options: `command` (the argv that ran), `label`, `spec.tiny`, `settings.options` (serving
     options as applied, validated where they are produced), per-generation `peak_memory_bytes`, `fidelity`
     (PSNR/SSIM of output-changing options against a plain generation), `warmup_seeds`; dtype and telemetry
     backend are checked where produced instead of frozen as fixed lists here. v1 files load through update_to_2.
     Later, still 2: optional `settings.guidance_scale_2` (the low-noise expert's guidance of two-expert models such as
     Wan 2.2 A14B); absent or null when the model has none, so every earlier v2 record stays valid.
  3  several GPUs: per-generation `worker`, `workers` (each worker's device, class, telemetry, failure), server
     figures in the summary (`server_window_s`, `server_video_minutes_per_gpu_hour`, `workers`,
     `per_worker_rel_spread`); `settings.options.parallel` is 'data' or 'ulysses=U,ring=R' on multi-GPU runs.
     v2 files load through update_to_3, which adds only the new summary figures, recomputed from their raw times.
  4  step-sampled runs (--sample-steps K): `sampling` (K and, per expert, its steps and which of them were computed;
     absent on full runs), per-generation `telemetry.step_energy_j` (each step's energy from the counter, where it
     was read), and the summary's sampled figures (`sample_steps`, `extrapolated_steps`, `measured_latency_mean_s`,
     `measured_denoise_mean_s`, `extrapolated_denoise_share`, `sample_step_rel_stdev`, `extrapolated_*` energy and
     power). On a step-sampled record the summary's figures are those of the full generations, the skipped steps
     extrapolated (bench.core.metrics); the generations keep what was measured. v3 files are full runs and load
     through update_to_4, which changes only the version: a full run's record reads exactly as before.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_serializer, model_validator

from bench.core import metrics
from bench.records.fields import (
    HardwareClassName,
    Joules,
    MHz,
    OptionName,
    OptionValue,
    Seconds,
    Seed,
    Slug,
    Strict,
    Text,
    Watts,
)
from bench.records.sampling import Sampling

SCHEMA_VERSION = 4
MAX_RECORD_BYTES = 64 * 1024 * 1024  # records come from strangers: bound what we parse

# Recorded beside the serving options but describing them, not choosing them: left out of the settings key.
DETAIL_KEYS = ("quantized", "memory_cap_of_gib", "parallel_hooks")
GPU_DEVICE = re.compile(r"cuda(:\d{1,4})?")  # torch's names of a GPU device, as a record's settings.device holds
SERIES_FIELDS = ("t_s", "power_w", "sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
                 "memory_used_bytes", "temperature_c", "throttle_mask")


class SpecRef(Strict):
    name: Slug
    family: Annotated[str, Field(max_length=100)]
    pipeline: Annotated[str, Field(max_length=200)]
    repo_id: Annotated[str, Field(max_length=300)] | None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    tiny: bool  # a toy variant: proves the harness, says nothing about what video costs


class GenerationSettings(Strict):
    """The settings one generation is made at (bench.core.specs.Settings), as records of every kind keep them."""

    height: Annotated[int, Field(ge=1, le=16384)]
    width: Annotated[int, Field(ge=1, le=16384)]
    num_frames: Annotated[int, Field(ge=1, le=100000)]
    fps: Annotated[float, Field(gt=0, le=1000)]
    steps: Annotated[int, Field(ge=1, le=10000)]
    guidance_scale: Annotated[float, Field(ge=0, le=1000)]
    max_sequence_length: Annotated[int, Field(ge=1, le=100000)]
    guidance_scale_2: Annotated[float, Field(ge=0, le=1000)] | None = None  # two-expert models only (Wan 2.2 A14B)


class RunSettings(GenerationSettings):
    seed: Seed
    prompt: Text
    warmup: Annotated[int, Field(ge=0, le=10_000)]
    repeats: Annotated[int, Field(ge=1, le=100_000)]  # a time-budget run asks for the most the run allows, 100,000
    time_budget_s: Annotated[float, Field(gt=0, le=7 * 86400)] | None  # what the run accepts: up to a week
    device: Annotated[str, Field(max_length=50)]
    dtype: Slug
    gpus_used: Annotated[int, Field(ge=1, le=4096)]
    options: Annotated[dict[OptionName, OptionValue], Field(max_length=64)]  # serving options as applied

    @model_serializer(mode="wrap")
    def _omit_absent_guidance_2(self, handler: Any) -> dict[str, Any]:
        """Written only when set: a single-expert run's record reads exactly as before, also to older readers."""
        data = handler(self)
        if data.get("guidance_scale_2") is None:
            data.pop("guidance_scale_2", None)
        return data


class Weights(Strict):
    source: Literal["random", "hub", "local"]
    location: Text | None  # hub repo id or local directory; None for random


class GenerationTelemetry(Strict):
    start_s: Seconds  # since the sampler's start, so the series can be cut per generation
    end_s: Seconds
    energy_j: Joules | None
    text_encode_energy_j: Joules | None
    denoise_energy_j: Joules | None
    vae_decode_energy_j: Joules | None
    # Each denoising step's energy from the counter (v4; absent where the counter was not the energy method): they
    # add up to denoise_energy_j, and a step-sampled run extrapolates its skipped steps' energy from them.
    step_energy_j: Annotated[list[Joules], Field(max_length=10000)] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_steps(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("step_energy_j") is None:
            data.pop("step_energy_j", None)
        return data

    @model_validator(mode="after")
    def _steps_add_up(self) -> GenerationTelemetry:
        if self.step_energy_j is None:
            return self
        total = sum(self.step_energy_j)
        if self.denoise_energy_j is None or not math.isclose(total, self.denoise_energy_j, rel_tol=1e-6, abs_tol=1e-6):
            raise ValueError(f"step energies add up to {total} J but denoise_energy_j is {self.denoise_energy_j}")
        return self


class TelemetrySummary(Strict):
    energy_per_video_j: Joules | None
    energy_per_video_minute_wh: Annotated[float, Field(ge=0, le=1e9)] | None
    energy_counter_j: Joules | None
    energy_integrated_j: Joules | None
    avg_power_w: Watts | None
    peak_power_w: Watts | None
    sm_clock_mean_mhz: MHz | None
    sm_clock_max_mhz: MHz | None
    peak_temperature_c: Annotated[float, Field(ge=-50, le=200)] | None
    power_limit_w: Watts | None
    throttle_share: dict[Annotated[str, Field(max_length=100)], Annotated[float, Field(ge=0, le=1)]]
    samples: Annotated[int, Field(ge=0)]
    sampling_gaps: Annotated[int, Field(ge=0)]
    longest_gap_s: Seconds

    @classmethod
    def empty(cls) -> TelemetrySummary:
        """Nothing measured: every reading absent."""
        return cls(**{name: None for name in cls.model_fields} | {"throttle_share": {}, "samples": 0,
                                                                    "sampling_gaps": 0, "longest_gap_s": 0.0})


class CpuEnergy(Strict):
    package_energy_j: Joules | None
    reason: Text | None


class Telemetry(Strict):
    backend: Slug
    available: bool
    unavailable_reason: Text | None
    device: dict[Annotated[str, Field(max_length=100)], Text | int | float | bool | None] | None
    energy_method: Literal["counter", "power_integration"] | None
    energy_unsupported_reason: Text | None
    sample_period_s: Annotated[float, Field(gt=0, le=60)]
    summary: TelemetrySummary
    series: dict[Literal[SERIES_FIELDS], Annotated[list[float | int | None], Field(max_length=2_000_000)]] | None
    cpu: CpuEnergy

    @model_validator(mode="after")
    def _consistent(self) -> Telemetry:
        if not self.available and not self.unavailable_reason:
            raise ValueError("telemetry unavailable without a reason")
        if self.energy_method is None and self.summary.energy_per_video_j is not None:
            raise ValueError("energy given without the method that measured it")
        if self.energy_method is None and self.available and not self.energy_unsupported_reason:
            raise ValueError("no energy and no reason why")
        if self.series is not None and len({len(v) for v in self.series.values()}) > 1:
            raise ValueError("series columns differ in length")
        if self.series is not None and any(isinstance(m, float) for m in self.series.get("throttle_mask", [])):
            raise ValueError("series.throttle_mask holds a non-integer: it is a bit mask of clock-event reasons")
        if self.series:  # the sampler stamps each row on one monotonic clock: energy is integrated over these times
            t_s = self.series.get("t_s")
            if t_s is None or any(t is None for t in t_s):
                raise ValueError("series without a time (t_s) for every sample")
            back = next((i for i in range(1, len(t_s)) if t_s[i] < t_s[i - 1]), None)
            if back is not None:
                raise ValueError(f"series.t_s runs backwards at sample {back} ({t_s[back - 1]:g} s, then "
                                 f"{t_s[back]:g} s): the sampler's clock never does")
        return self


class Generation(Strict):
    index: Annotated[int, Field(ge=0)]
    seed: Seed
    latency_s: Annotated[float, Field(gt=0, le=1e7)]
    text_encode_s: Seconds
    denoise_s: Seconds
    vae_decode_s: Seconds
    step_s: Annotated[list[Seconds], Field(max_length=10000)]
    telemetry: GenerationTelemetry | None = None
    peak_memory_bytes: Annotated[int, Field(ge=0, le=2**50)] | None = None  # this generation's own peak
    worker: Annotated[int, Field(ge=0, le=4095)] = 0  # which worker (GPU) made it, under data parallelism

    @model_validator(mode="after")
    def _stages_fit(self) -> Generation:
        staged = self.text_encode_s + self.denoise_s + self.vae_decode_s
        if staged > self.latency_s * (1 + 1e-6):
            raise ValueError(f"stage times add up to {staged} s, more than latency_s {self.latency_s} s")
        if self.step_s and not math.isclose(sum(self.step_s), self.denoise_s, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"step_s adds up to {sum(self.step_s)} s but denoise_s is {self.denoise_s} s: the denoise "
                             "stage is its steps")
        steps_j = self.telemetry.step_energy_j if self.telemetry else None
        if steps_j is not None and len(steps_j) != len(self.step_s):
            raise ValueError(f"{len(steps_j)} step energies for {len(self.step_s)} steps")
        return self


class WorkerReport(Strict):
    """One worker of a multi-GPU run: where it ran, what it measured of its own GPU, and how it ended."""

    index: Annotated[int, Field(ge=0, le=4095)]
    device: Annotated[str, Field(max_length=50)]
    hardware_class: HardwareClassName
    generations: Annotated[int, Field(ge=0)]
    failed: Text | None
    telemetry: Telemetry | None


class Fidelity(Strict):
    """How far output-changing options moved the frames: the first timed generation against a plain one."""

    psnr_db: Annotated[float, Field(ge=0, le=999)]  # 999 stands for identical frames
    ssim: Annotated[float, Field(ge=-1, le=1)]
    seed: Seed
    compared: Annotated[list[Text], Field(max_length=20)]  # the output-changing options, as flags
    reference: Text


class ResultRecord(Strict):
    schema_version: Literal[4]
    t2vbench_version: Annotated[str, Field(max_length=50)]
    command: Annotated[list[Text], Field(max_length=200)]  # the command line that ran, as argv
    label: Annotated[str, Field(max_length=200)] | None
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8,32}$")]
    created_utc: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
    complete: bool
    incomplete_reason: Text | None
    spec: SpecRef
    settings: RunSettings
    weights: Weights
    hardware_class: HardwareClassName
    environment: dict[str, Text | int | None]
    load_s: Seconds
    warmup_latency_s: Annotated[list[Seconds], Field(max_length=1000)]
    warmup_seeds: Annotated[list[Seed], Field(max_length=1000)] | None = None  # absent before 2026-11-23
    generations: Annotated[list[Generation], Field(min_length=1, max_length=100000)]
    summary: metrics.Summary
    peak_memory_bytes: Annotated[int, Field(ge=0, le=2**50)]
    peak_memory_method: Literal["cuda_max_allocated", "process_peak_rss", "process_max_rss"]
    warnings: Annotated[list[Text], Field(max_length=1000)]
    telemetry: Telemetry
    fidelity: Fidelity | None = None
    video_path: Text | None = None
    workers: Annotated[list[WorkerReport], Field(max_length=4096)] | None = None  # multi-GPU runs only
    sampling: Sampling | None = None  # step-sampled runs only (--sample-steps); absent from a full run's file

    @model_serializer(mode="wrap")
    def _omit_absent_sampling(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("sampling") is None:
            data.pop("sampling", None)
        return data

    @property
    def is_sampled(self) -> bool:
        """Step-sampled (--sample-steps): part of every generation's denoise time is extrapolated, not measured."""
        return self.sampling is not None

    def latencies_s(self) -> list[float]:
        """Each timed generation's latency as a full generation: as measured, or on a step-sampled record with its
        skipped steps extrapolated (bench.core.metrics.extrapolate)."""
        if self.sampling is None:
            return [g.latency_s for g in self.generations]
        experts = self.sampling.model_dump()["experts"]
        return [metrics.extrapolate(g.model_dump(), experts)["latency_s"] for g in self.generations]

    @property
    def is_cpu(self) -> bool:
        """Run on the CPU: its device is not a GPU device ('cuda' or 'cuda:N'), or its class is a CPU class."""
        return GPU_DEVICE.fullmatch(self.settings.device) is None or self.hardware_class.startswith("cpu:")

    @property
    def is_tiny(self) -> bool:
        """Made with a tiny spec (flagged so, or named tiny-*): proves the harness, says nothing about video cost.
        Whether the flag agrees with the catalogued spec of that name is the gate's to check."""
        return self.spec.tiny or self.spec.name.startswith("tiny-")

    @property
    def is_toy(self) -> bool:
        """A CPU run or a tiny spec: never used for what video costs on GPUs."""
        return self.is_cpu or self.is_tiny

    @property
    def generations_asked(self) -> int:
        """Timed generations a finished run makes: repeats per worker under data parallelism, repeats otherwise (a
        time budget makes at most that many)."""
        s = self.settings
        return s.repeats * (s.gpus_used if s.options.get("parallel") == "data" else 1)

    def generations_short(self) -> str | None:
        """What a record claiming complete cannot hold, in words ('1 generation(s) where 3 were asked (3 repeats)'):
        other than the generations asked, or, under a time budget, more. None where the count is a finished run's.
        The one rule of completeness: the gate refuses a complete record that breaks it and the record of a run (or
        of `t2vbench recover`) that breaks it is written incomplete, saying this."""
        made, asked = len(self.generations), self.generations_asked
        if made == asked or (made < asked and self.settings.time_budget_s is not None):
            return None
        per = " x workers" if asked != self.settings.repeats else ""
        return f"{made} generation(s) where {asked} were asked ({self.settings.repeats} repeats{per})"

    @model_validator(mode="after")
    def _summary_recomputes(self) -> ResultRecord:
        """Every summary figure must follow from the raw timings (and, step-sampled, from the plan)."""
        s = self.settings
        if self.telemetry.energy_method != "counter" and any(g.telemetry and g.telemetry.step_energy_j is not None
                                                             for g in self.generations):
            raise ValueError("per-step energies come from an energy counter, but the record's energy method is "
                             f"{self.telemetry.energy_method}")
        if self.sampling is not None:
            if self.sampling.total_steps != s.steps:
                raise ValueError(f"sampling covers {self.sampling.total_steps} steps, settings.steps is {s.steps}")
            if any(len(g.step_s) != s.steps for g in self.generations):
                raise ValueError(f"a step-sampled record keeps all {s.steps} step times of every generation")
        expected = metrics.summarize([g.model_dump() for g in self.generations], s.num_frames, s.fps, s.gpus_used,
                                     s.options.get("parallel"),
                                     self.sampling.model_dump() if self.sampling is not None else None)
        problem = self.summary.mismatch(expected)
        if problem:
            raise ValueError(problem)
        return self
