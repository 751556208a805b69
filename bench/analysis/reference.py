"""Published figures: records of their own kind (`kind: "reference"`), never mistaken for a measurement.

A reference holds what a source published, the settings the figure was taken at and where it came from; t2vbench
measured none of it. A result record cannot load as a reference (no `kind`) nor a reference as a record (no
`schema_version`). One small JSON file per (source, model, hardware class, GPUs, settings) under results/reference/.

Figures and their units (each optional, at least one given):
- seconds_per_video: wall seconds one video takes at batch 1 with all `gpus` working on it (latency)
- videos_per_s: videos finished per second by all `gpus` together (throughput, e.g. MLPerf Offline)
- energy_per_video_j, avg_power_w: totals over all `gpus`, not per GPU
A figure of a multi-GPU system or rack is the system's own; per-GPU figures divide by `gpus` and are shown labelled
with `system`, the name the source gives the system (e.g. MLPerf's SystemName).

Accuracy (optional) is kept as the source prints it, with its scale: MLPerf's VBench score is 69.8899 in some rows
and 0.7028 in others. `Accuracy.percent()` is the one place that puts both on the 0-100 scale.

Reference versions (bump REFERENCE_VERSION and add an update step for every change):
  1  first version: source, model, hardware class, GPUs, settings, the four figures, measured or estimated.
  2  optional `system` (the source's name of the system) and `accuracy` (metric, value as printed, its scale).
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from bench.core import hardware, metrics
from bench.core.errors import UsageError
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.core.specs import Settings, load_spec, spec_names
from bench.records.fields import Slug, Strict, Text
from bench.records.io import field_error

REFERENCE_VERSION = 2
MAX_REFERENCE_BYTES = 64 * 1024  # a reference is a few hundred bytes: anything large is not one
AGREE_REL = 0.03  # two published figures of one run (latency and throughput, energy and power x time) agree this well

Date = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")]  # YYYY-MM or YYYY-MM-DD
Label = Annotated[str, Field(min_length=1, max_length=300)]


class Source(Strict):
    id: Slug  # short name shown in tables, e.g. 'mlenergy-v3'
    title: Label
    url: Annotated[str, Field(pattern=r"^https://[^\s]+$", max_length=2000)]
    publisher: Label
    published: Date | None  # when the source was published ...
    data_date: Date | None  # ... or when its data were last updated; at least one
    accessed: Date

    @model_validator(mode="after")
    def _dated(self) -> Source:
        """Dates that can be true: each on the calendar, none after the day the source was read, and that day not
        after today (a day ahead of UTC allowed for the reader's time zone)."""
        if self.published is None and self.data_date is None:
            raise ValueError("give 'published' or 'data_date': a figure without a date cannot be weighed")
        accessed = _day("accessed", self.accessed)
        for name in ("published", "data_date"):
            value = getattr(self, name)
            if value is not None and _day(name, value) > accessed:
                raise ValueError(f"{name} {value} is after accessed {self.accessed}: a source is read after it is "
                                 "published; check both dates")
        if accessed > datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1):
            raise ValueError(f"accessed {self.accessed} is in the future: give the day the source was read")
        return self


def _day(name: str, value: str) -> datetime.date:
    """The first day a YYYY-MM or YYYY-MM-DD date can mean. Raises ValueError for a day not on the calendar."""
    try:
        return datetime.date.fromisoformat(value if len(value) == 10 else value + "-01")
    except ValueError:
        raise ValueError(f"{name} {value} is not a day of the calendar") from None


class ReferenceSettings(Strict):
    height: Annotated[int, Field(ge=1, le=16384)] | None  # None: the source states none
    width: Annotated[int, Field(ge=1, le=16384)] | None
    num_frames: Annotated[int, Field(ge=1, le=1_000_000)]
    fps: Annotated[float, Field(gt=0, le=1000)]  # the source's own fps: it decides the video seconds
    steps: Annotated[int, Field(ge=1, le=10000)] | None
    guidance_scale: Annotated[float, Field(ge=0, le=1000)] | None  # None: not stated (often the pipeline default)
    batch_size: Annotated[int, Field(ge=1, le=100000)] | None
    precision: Label | None
    framework: Label | None
    parallelism: Label | None


class Accuracy(Strict):
    metric: Literal["vbench"]  # VBench total score, MLPerf text-to-video's accuracy gate
    value: Annotated[float, Field(ge=0, le=100)]  # as the source prints it
    scale: Literal["percent", "fraction"]  # 0-100 or 0-1: sources differ, so the file says which

    @model_validator(mode="after")
    def _on_its_scale(self) -> Accuracy:
        if self.scale == "fraction" and self.value > 1:
            raise ValueError(f"a fraction is at most 1, not {self.value:g}: is the scale 'percent'?")
        if self.scale == "percent" and self.value <= 1:
            raise ValueError(f"{self.value:g} percent is no plausible score: is the scale 'fraction'?")
        return self

    def percent(self) -> float:
        """The score on the 0-100 scale, whichever scale the source printed it on."""
        return self.value * 100 if self.scale == "fraction" else self.value


class Reference(Strict):
    kind: Literal["reference"]
    reference_version: Literal[2]
    measured: bool  # false for an analytic estimate
    basis: Label  # how the source got its figure, e.g. 'measured: 2 timed iterations after a 1-step warm-up'
    source: Source
    model: Slug  # a t2vbench spec name where models/ has one, else the model's published name in lower case
    model_id: Label | None  # the name the source uses (hub id), where it differs
    hardware_class: Slug
    gpus: Annotated[int, Field(ge=1, le=100000)]
    settings: ReferenceSettings
    seconds_per_video: Annotated[float, Field(gt=0, le=1e8)] | None = None
    videos_per_s: Annotated[float, Field(gt=0, le=1e6)] | None = None
    energy_per_video_j: Annotated[float, Field(gt=0, le=1e12)] | None = None
    avg_power_w: Annotated[float, Field(gt=0, le=1e8)] | None = None
    system: Label | None = None  # the source's name of the system the figure came from, shown with per-GPU figures
    accuracy: Accuracy | None = None
    notes: Annotated[list[Text], Field(max_length=20)] = []
    # Set by the readers, never read from a file: another figure of the same system computed in fp8
    # (bench.analysis.physics.with_system_precision), so this one did too, whatever its own speed allows.
    _system_fp8: bool = PrivateAttr(default=False)

    @field_validator("hardware_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in hardware.catalogue():
            raise ValueError(f"'{value}' is not in the hardware catalogue: run 't2vbench hardware' to list them")
        return value

    @model_validator(mode="after")
    def _figures_agree(self) -> Reference:
        figures = (self.seconds_per_video, self.videos_per_s, self.energy_per_video_j, self.avg_power_w)
        if all(f is None for f in figures):
            raise ValueError("no figure: give seconds_per_video, videos_per_s, energy_per_video_j or avg_power_w")
        if self.seconds_per_video is not None and self.settings.batch_size not in (None, 1):
            raise ValueError("seconds_per_video is a batch-1 latency; give videos_per_s for a batched figure")
        if self.seconds_per_video is not None and self.videos_per_s is not None:
            _agree("seconds_per_video x videos_per_s", self.seconds_per_video * self.videos_per_s, 1.0)
        wall_s = self.wall_seconds_per_video()
        if wall_s is not None and self.energy_per_video_j is not None and self.avg_power_w is not None:
            _agree("energy_per_video_j", self.energy_per_video_j, self.avg_power_w * wall_s)
        return self

    def wall_seconds_per_video(self) -> float | None:
        """Wall seconds per finished video on all `gpus` together, or None without a time figure."""
        if self.seconds_per_video is not None:
            return self.seconds_per_video
        return None if self.videos_per_s is None else 1.0 / self.videos_per_s

    def gpu_seconds_per_video(self) -> float | None:
        """GPU-seconds one video costs: seconds_per_video x gpus, or gpus / videos_per_s."""
        wall_s = self.wall_seconds_per_video()
        return None if wall_s is None else wall_s * self.gpus

    def video_seconds(self) -> float:
        """Seconds of playback of one video at the source's fps."""
        return metrics.video_seconds(self.settings.num_frames, self.settings.fps)

    def video_minutes_per_gpu_hour(self) -> float | None:
        """Throughput by bench.core.metrics' definition, or None where the source gives no time figure."""
        gpu_s = self.gpu_seconds_per_video()
        return None if gpu_s is None else metrics.video_minutes_per_gpu_hour(self.video_seconds(), gpu_s)

    def energy_per_video_minute_wh(self) -> float | None:
        """Energy per minute of video in Wh, or None where the source gives no energy."""
        if self.energy_per_video_j is None:
            return None
        return self.energy_per_video_j / 3600.0 / (self.video_seconds() / 60.0)


def reference_settings(ref: Reference) -> Settings | None:
    """The settings a published figure's FLOPs are counted at, where models/ has its spec and the source gives size
    and steps (else None); guidance the source leaves out is the spec's. FLOPs do not depend on fps, so the spec's
    own fps is kept and sources share one count."""
    s = ref.settings
    if ref.model not in spec_names() or None in (s.height, s.width, s.steps):
        return None
    return load_spec(ref.model).settings.replace(height=s.height, width=s.width, num_frames=s.num_frames,
                                                 steps=s.steps, guidance_scale=s.guidance_scale)


def published_row(ref: Reference) -> tuple:
    """What a source published, less how the file names it: model, class, GPUs, size, frames, steps, batch and the
    four figures (to 9 significant digits, past any source's printing). A copy of a row under another source id,
    title, url, system or notes is the same row; two systems' rows never agree in every figure (the committed
    references' closest same-class figures differ by more than 0.1%)."""
    s = ref.settings
    figures = (ref.seconds_per_video, ref.videos_per_s, ref.energy_per_video_j, ref.avg_power_w)
    return (ref.model, ref.hardware_class, ref.gpus, s.height, s.width, s.num_frames, s.steps, s.batch_size,
            *(None if f is None else f"{f:.9g}" for f in figures))


def reference_fp8(ref: Reference) -> bool:
    """Whether the source says its figure ran in fp8 (its peak is then the class's fp8 rate)."""
    return "fp8" in (ref.settings.precision or "").lower()  # e.g. MLPerf's TensorRT FP8 submissions


def _agree(what: str, value: float, expected: float) -> None:
    if not math.isclose(value, expected, rel_tol=AGREE_REL):
        raise ValueError(f"{what} is {value:.6g} but the other figures give {expected:.6g}: one of them is mistyped")


def parse_reference(text: str | bytes, origin: str = "reference") -> Reference:
    """Parse and validate one reference. Raises UsageError, one line naming the field and the fix."""
    data = loads_strict(text, origin)  # UTF-8 only, no NaN, no duplicate keys
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: a reference is a JSON object")
    if data.get("kind") != "reference":
        raise UsageError(
            f"{origin}: field 'kind' is {data.get('kind')!r}, not 'reference': only published figures belong in "
            "results/reference/; measured records go through 't2vbench submit'"
        )
    version = data.get("reference_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > REFERENCE_VERSION:
        raise UsageError(
            f"{origin}: field 'reference_version' is {version}, newer than this t2vbench reads "
            f"({REFERENCE_VERSION}); upgrade t2vbench"
        )
    if type(version) is int and version == 1:
        data = _update_to_2(data)
    try:
        return Reference.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc, origin, "reference") from None


def _update_to_2(data: dict) -> dict:
    """Version 1 -> 2: both new fields are optional, so a version-1 file reads as one with no system and no
    accuracy."""
    return {**data, "reference_version": 2}


def load_reference(path: str | Path) -> Reference:
    """Load one reference file: UTF-8 only, at most MAX_REFERENCE_BYTES. Raises UsageError."""
    path = Path(path)
    return parse_reference(read_bounded(path, MAX_REFERENCE_BYTES, "reference"), str(path))


def load_references(folder: str | Path) -> list[Reference]:
    """Every *.json reference under folder, sorted by path. Raises UsageError at the first bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder of references")
    return [load_reference(p) for p in sorted(folder.rglob("*.json"))]


def _num(value: float | None, fmt: str, unit: str) -> str:
    return "-" if value is None else f"{value:{fmt}} {unit}"


def format_reference(ref: Reference) -> str:
    """One line: source, model, hardware, settings, figures, and whether it was measured or estimated."""
    s = ref.settings
    size = f"{s.width}x{s.height}" if s.width and s.height else "size n/a"
    batch = f" bs{s.batch_size}" if s.batch_size else ""
    steps = f" {s.steps} steps" if s.steps else ""
    figures = ", ".join([
        _num(ref.seconds_per_video, ",.1f", "s/video"),
        _num(ref.videos_per_s, ".4g", "videos/s"),
        _num(ref.video_minutes_per_gpu_hour(), ".2f", "video-min/GPU-h"),
        _num(None if ref.energy_per_video_j is None else ref.energy_per_video_j / 1000, ",.1f", "kJ/video"),
        _num(ref.avg_power_w, ",.0f", "W"),
    ])
    kind = "published measurement" if ref.measured else "published ESTIMATE, not a measurement"
    return (f"{ref.source.id}: {ref.model} on {ref.gpus}x {ref.hardware_class}, {size} {s.num_frames}f "
            f"@{s.fps:g}fps{steps}{batch}: {figures} ({kind})")
