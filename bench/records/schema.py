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
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from bench.core import metrics
from bench.core.errors import UsageError
from bench.core.files import write_atomic
from bench.core.jsonsafe import loads_strict

SCHEMA_VERSION = 3
MAX_RECORD_BYTES = 64 * 1024 * 1024  # records come from strangers: bound what we parse

Seconds = Annotated[float, Field(ge=0, le=1e7)]
Joules = Annotated[float, Field(ge=0, le=1e12)]
Watts = Annotated[float, Field(ge=0, le=1e5)]
MHz = Annotated[float, Field(ge=0, le=1e5)]
Text = Annotated[str, Field(max_length=4096)]
# Names that end up in file names and registry paths: a safe slug, never a path.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
HardwareClassName = Annotated[str, Field(pattern=r"^(cpu:)?[a-z0-9][a-z0-9.-]{0,150}$")]
OptionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
OptionValue = Annotated[str, Field(max_length=200)] | int | float | bool | None
# Recorded beside the serving options but describing them, not choosing them: left out of the settings key.
DETAIL_KEYS = ("quantized", "memory_cap_of_gib", "parallel_hooks")
GPU_DEVICE = re.compile(r"cuda(:\d{1,4})?")  # torch's names of a GPU device, as a record's settings.device holds
SERIES_FIELDS = ("t_s", "power_w", "sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
                 "memory_used_bytes", "temperature_c", "throttle_mask")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SpecRef(_Strict):
    name: Slug
    family: Annotated[str, Field(max_length=100)]
    pipeline: Annotated[str, Field(max_length=200)]
    repo_id: Annotated[str, Field(max_length=300)] | None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    tiny: bool  # a toy variant: proves the harness, says nothing about what video costs


class RunSettings(_Strict):
    height: Annotated[int, Field(ge=1, le=16384)]
    width: Annotated[int, Field(ge=1, le=16384)]
    num_frames: Annotated[int, Field(ge=1, le=100000)]
    fps: Annotated[float, Field(gt=0, le=1000)]
    steps: Annotated[int, Field(ge=1, le=10000)]
    guidance_scale: Annotated[float, Field(ge=0, le=1000)]
    max_sequence_length: Annotated[int, Field(ge=1, le=100000)]
    guidance_scale_2: Annotated[float, Field(ge=0, le=1000)] | None = None  # two-expert models only (Wan 2.2 A14B)
    seed: int
    prompt: Text
    warmup: Annotated[int, Field(ge=0)]
    repeats: Annotated[int, Field(ge=1)]
    time_budget_s: Seconds | None
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


class Weights(_Strict):
    source: Literal["random", "hub", "local"]
    location: Text | None  # hub repo id or local directory; None for random


class GenerationTelemetry(_Strict):
    start_s: Seconds  # since the sampler's start, so the series can be cut per generation
    end_s: Seconds
    energy_j: Joules | None
    text_encode_energy_j: Joules | None
    denoise_energy_j: Joules | None
    vae_decode_energy_j: Joules | None


class TelemetrySummary(_Strict):
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


class CpuEnergy(_Strict):
    package_energy_j: Joules | None
    reason: Text | None


class Telemetry(_Strict):
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
        return self


class Generation(_Strict):
    index: Annotated[int, Field(ge=0)]
    seed: int
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
        return self


class WorkerReport(_Strict):
    """One worker of a multi-GPU run: where it ran, what it measured of its own GPU, and how it ended."""

    index: Annotated[int, Field(ge=0, le=4095)]
    device: Annotated[str, Field(max_length=50)]
    hardware_class: HardwareClassName
    generations: Annotated[int, Field(ge=0)]
    failed: Text | None
    telemetry: Telemetry | None


class Fidelity(_Strict):
    """How far output-changing options moved the frames: the first timed generation against a plain one."""

    psnr_db: Annotated[float, Field(ge=0, le=999)]  # 999 stands for identical frames
    ssim: Annotated[float, Field(ge=-1, le=1)]
    seed: int
    compared: Annotated[list[Text], Field(max_length=20)]  # the output-changing options, as flags
    reference: Text


class ResultRecord(_Strict):
    schema_version: Literal[3]
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
    warmup_seeds: Annotated[list[int], Field(max_length=1000)] | None = None  # absent before 2026-11-23
    generations: Annotated[list[Generation], Field(min_length=1, max_length=100000)]
    summary: metrics.Summary
    peak_memory_bytes: Annotated[int, Field(ge=0, le=2**50)]
    peak_memory_method: Literal["cuda_max_allocated", "process_peak_rss", "process_max_rss"]
    warnings: Annotated[list[Text], Field(max_length=1000)]
    telemetry: Telemetry
    fidelity: Fidelity | None = None
    video_path: Text | None = None
    workers: Annotated[list[WorkerReport], Field(max_length=4096)] | None = None  # multi-GPU runs only

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

    @model_validator(mode="after")
    def _summary_recomputes(self) -> ResultRecord:
        """Every summary figure must follow from the raw timings."""
        s = self.settings
        expected = metrics.summarize([g.model_dump() for g in self.generations], s.num_frames, s.fps, s.gpus_used,
                                     s.options.get("parallel"))
        problem = self.summary.mismatch(expected)
        if problem:
            raise ValueError(problem)
        return self


def settings_key(record: ResultRecord) -> str:
    """The settings a measurement depends on, as a path-safe key: records with different keys are never merged.

    Seed, prompt, repeats and warm-up do not change what a generation costs; pixels, frames, fps, steps, guidance,
    dtype, GPUs and every serving option do. Example: '832x480-81f-16fps-50steps-g5-bfloat16-1gpu'.
    """
    s = record.settings
    parts = [f"{s.width}x{s.height}", f"{s.num_frames}f", f"{s.fps:g}fps", f"{s.steps}steps",
             f"g{s.guidance_scale:g}", s.dtype, f"{s.gpus_used}gpu"]
    if s.guidance_scale_2 is not None:  # the low-noise expert's guidance: a different setting, never merged
        parts.insert(5, f"g2={s.guidance_scale_2:g}")
    for name, value in sorted(s.options.items()):
        if value not in (None, False) and name not in DETAIL_KEYS:
            parts.append(name if value is True else f"{name}={value}")
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", "-".join(parts))


def update_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: no command line or label was kept; options did not exist; tiny specs were named tiny-*."""
    out = {**data, "schema_version": 2, "command": [], "label": None}
    spec = data.get("spec")
    if isinstance(spec, dict):
        out["spec"] = {**spec, "tiny": str(spec.get("name", "")).startswith("tiny-")}
    if isinstance(data.get("settings"), dict):
        out["settings"] = {**data["settings"], "options": {}}
    return out


def update_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3: single-GPU runs; the summary gains the server figures, recomputed from the raw times. Figures the
    file already has are left as they are, so a forged one is still caught by the validation that follows."""
    out = {**data, "schema_version": 3}
    try:
        s = data["settings"]
        expected = metrics.summarize(data["generations"], s["num_frames"], s["fps"], s["gpus_used"])
        out["summary"] = {**{k: v for k, v in expected.model_dump().items() if k not in data["summary"]}, **data["summary"]}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        pass  # malformed: validation names the field
    return out


MIGRATIONS = {1: update_to_2, 2: update_to_3}  # version N -> the step that makes it N + 1


def parse_record(text: str | bytes, origin: str = "record") -> ResultRecord:
    """Parse, migrate and validate a record. Raises UsageError naming the field and the fix."""
    data = loads_strict(text, origin)
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: a record is a JSON object; give the file t2vbench run wrote")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"{origin}: field 'schema_version' is missing or not a positive integer")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{origin}: schema_version {version} is newer than this t2vbench reads ({SCHEMA_VERSION}); "
            "upgrade t2vbench"
        )
    while data["schema_version"] < SCHEMA_VERSION:
        data = MIGRATIONS[data["schema_version"]](data)
    return validate(data, origin)


def validate(data: dict[str, Any], origin: str = "record") -> ResultRecord:
    """A current-version record from plain data. Raises UsageError naming the first bad field."""
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc, origin, "record") from None


def field_error(exc: ValidationError, origin: str, what: str) -> UsageError:
    """A pydantic validation error as one line naming the first bad field."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or what
    return UsageError(f"{origin}: field '{field}': {err['msg']}")


def load_record(path: str | Path) -> ResultRecord:
    """Load a record file strictly: bounded size, strict JSON, schema, summaries recomputed from the raw data.
    What physics forbids is the gate's to judge (bench.analysis.physics.load_checked). Raises UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such record file")
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise UsageError(f"{path}: larger than {MAX_RECORD_BYTES} bytes; not a t2vbench record")
    return parse_record(path.read_bytes(), str(path))


def record_json(record: ResultRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def write_new(path: Path, text: str) -> Path:
    """Write a record atomically, group-readable, never over an existing file (raises FileExistsError)."""

    return write_atomic(path, text)
