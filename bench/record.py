"""Result records: frozen, versioned, validated on load, written atomically and never overwritten.

Schema versions (bump SCHEMA_VERSION and add an `update_to_N` step for every change):
  1  first version: spec, settings, weights, raw per-generation and per-stage timings, summary, environment,
     hardware class, warnings, telemetry (GPU energy, power, clocks, throttling, sampled series; CPU package
     energy), each absent value with its reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench import metrics
from bench.errors import UsageError

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 64 * 1024 * 1024  # records come from strangers: bound what we parse

Seconds = Annotated[float, Field(ge=0, le=1e7)]
Joules = Annotated[float, Field(ge=0, le=1e12)]
Watts = Annotated[float, Field(ge=0, le=1e5)]
MHz = Annotated[float, Field(ge=0, le=1e5)]
Text = Annotated[str, Field(max_length=4096)]
SERIES_FIELDS = ("t_s", "power_w", "sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
                 "memory_used_bytes", "temperature_c", "throttle_mask")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SpecRef(_Strict):
    name: Annotated[str, Field(max_length=200)]
    family: Annotated[str, Field(max_length=100)]
    pipeline: Annotated[str, Field(max_length=200)]
    repo_id: Annotated[str, Field(max_length=300)] | None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RunSettings(_Strict):
    height: Annotated[int, Field(ge=1, le=16384)]
    width: Annotated[int, Field(ge=1, le=16384)]
    num_frames: Annotated[int, Field(ge=1, le=100000)]
    fps: Annotated[float, Field(gt=0, le=1000)]
    steps: Annotated[int, Field(ge=1, le=10000)]
    guidance_scale: Annotated[float, Field(ge=0, le=1000)]
    max_sequence_length: Annotated[int, Field(ge=1, le=100000)]
    seed: int
    prompt: Text
    warmup: Annotated[int, Field(ge=0)]
    repeats: Annotated[int, Field(ge=1)]
    time_budget_s: Seconds | None
    device: Annotated[str, Field(max_length=50)]
    dtype: Literal["float32", "bfloat16", "float16"]
    gpus_used: Annotated[int, Field(ge=1, le=4096)]


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


class CpuEnergy(_Strict):
    package_energy_j: Joules | None
    reason: Text | None


class Telemetry(_Strict):
    backend: Literal["nvml", "amdsmi", "none"]
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

    @model_validator(mode="after")
    def _stages_fit(self) -> Generation:
        staged = self.text_encode_s + self.denoise_s + self.vae_decode_s
        if staged > self.latency_s * (1 + 1e-6):
            raise ValueError(f"stage times add up to {staged} s, more than latency_s {self.latency_s} s")
        return self


class ResultRecord(_Strict):
    schema_version: Literal[1]
    t2vbench_version: Annotated[str, Field(max_length=50)]
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8,32}$")]
    created_utc: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
    complete: bool
    incomplete_reason: Text | None
    spec: SpecRef
    settings: RunSettings
    weights: Weights
    hardware_class: Annotated[str, Field(min_length=1, max_length=200)]
    environment: dict[str, Text | int | None]
    load_s: Seconds
    warmup_latency_s: Annotated[list[Seconds], Field(max_length=1000)]
    generations: Annotated[list[Generation], Field(min_length=1, max_length=100000)]
    summary: dict[str, float]
    peak_memory_bytes: Annotated[int, Field(ge=0, le=2**50)]
    peak_memory_method: Literal["cuda_max_allocated", "process_max_rss"]
    warnings: Annotated[list[Text], Field(max_length=1000)]
    telemetry: Telemetry
    video_path: Text | None = None

    @model_validator(mode="after")
    def _summary_recomputes(self) -> ResultRecord:
        """Every summary figure must follow from the raw timings."""
        s = self.settings
        expected = metrics.summarize(
            [g.model_dump() for g in self.generations], s.num_frames, s.fps, s.gpus_used
        )
        if set(expected) != set(self.summary):
            raise ValueError(f"summary keys differ from {sorted(expected)}")
        for key, value in expected.items():
            if not math.isclose(self.summary[key], value, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(f"summary.{key} is {self.summary[key]} but the raw timings give {value}")
        return self


def settings_key(record: ResultRecord) -> str:
    """The settings a measurement depends on, as a path-safe key: records with different keys are never merged.

    Seed, prompt, repeats and warm-up do not change what a generation costs; pixels, frames, fps, steps, guidance,
    dtype, GPUs and every serving option do. Example: '832x480-81f-16fps-50steps-g5-bfloat16-1gpu'.
    """
    s = record.settings
    parts = [f"{s.width}x{s.height}", f"{s.num_frames}f", f"{s.fps:g}fps", f"{s.steps}steps",
             f"g{s.guidance_scale:g}", s.dtype, f"{s.gpus_used}gpu"]
    for name, value in sorted((getattr(s, "options", None) or {}).items()):
        if value not in (None, False):
            parts.append(name if value is True else f"{name}={value}")
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", "-".join(parts))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a record may hold")


def parse_record(text: str, origin: str = "record") -> ResultRecord:
    """Parse and validate a record. Raises UsageError naming the field and the fix."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise UsageError(f"{origin}: not valid JSON ({exc}); submit the file t2vbench run wrote") from None
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: a record is a JSON object; submit the file t2vbench run wrote")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{origin}: field 'schema_version' is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{origin}: schema_version {version} is newer than this t2vbench reads ({SCHEMA_VERSION}); "
            "upgrade t2vbench"
        )
    # Older versions would be migrated here, one update_to_N step at a time; version 1 is the first.
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "record"
        raise UsageError(f"{origin}: field '{field}': {err['msg']}") from None


def load_record(path: str | Path) -> ResultRecord:
    """Load a record file strictly; refuses files larger than MAX_RECORD_BYTES."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such record file")
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise UsageError(f"{path}: larger than {MAX_RECORD_BYTES} bytes; not a t2vbench record")
    return parse_record(path.read_text(encoding="utf-8"), str(path))


def record_json(record: ResultRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def write_new(path: Path, text: str) -> Path:
    """Write text to path atomically; never overwrites (raises FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if path exists: no overwrite, and readers never see a partial file
    finally:
        os.unlink(tmp)
    return path
