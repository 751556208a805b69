"""Evidence for `t2vbench predict`: the records, calibrations and published figures under the given paths, matched to
what is asked and turned into what the cost model fits (bench.analysis.predict_model.Observation).

Records are loaded as `compare` loads them (strictly, physics checked; incomplete ones left out); calibrations through
bench.records.calibration; published figures through bench.analysis.reference. A file
that cannot be used is skipped with its one-line reason, never fatal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.analysis import evidence
from bench.analysis import predict_model as model
from bench.analysis.collect import Seen, expand, incomplete_note, load_one
from bench.analysis.physics import computed_in_fp8, with_system_precision
from bench.analysis.predict_work import Work
from bench.analysis.reference import Reference
from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.jsonsafe import loads_strict
from bench.core.specs import Settings, Spec
from bench.records.calibration import load_calibration
from bench.records.schema import DETAIL_KEYS, ResultRecord

COST_SETTINGS = ("height", "width", "num_frames", "steps", "guidance_scale", "guidance_scale_2", "max_sequence_length")


@dataclasses.dataclass(frozen=True)
class Request:
    """What is asked: a model at settings on a class (a catalogue id, or a CPU class as records name it)."""

    spec: Spec
    hardware: str
    settings: Settings
    dtype: str = "bfloat16"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # serving options, as comparable_options
    parallel_gpus: int = 1  # GPUs one video is split over (context parallel)


@dataclasses.dataclass(frozen=True)
class Evidence:
    records: tuple[tuple[Path, ResultRecord], ...]
    calibrations: tuple[tuple[Path, Any], ...]  # bench.records.calibration.CalibrationRecord
    references: tuple[tuple[Path, Reference], ...]
    skipped: tuple[str, ...] = ()

    def without(self, paths: Sequence[Path]) -> Evidence:
        """This evidence less the files at paths (leave-one-out validation)."""
        drop = set(paths)
        return Evidence(tuple(x for x in self.records if x[0] not in drop),
                        tuple(x for x in self.calibrations if x[0] not in drop),
                        tuple(x for x in self.references if x[0] not in drop), self.skipped)


def gather(paths: Sequence[str | Path], calibration_files: Sequence[str | Path] = ()) -> Evidence:
    """Every usable record, calibration and reference under paths (files or folders), plus calibration files.
    Raises UsageError only for a path that does not exist."""
    records, calibrations, references, skipped = [], [], [], []
    seen = Seen()  # each run and published row once, as compare counts them
    for path in expand([*paths, *calibration_files]):
        try:
            item = _load(path)
        except UsageError as exc:
            skipped.append(str(exc))
            continue
        if isinstance(item, ResultRecord) and not item.complete:
            skipped.append(incomplete_note(path, item))
        elif isinstance(item, (Reference, ResultRecord)) and (repeat := seen.repeat(path, item)) is not None:
            skipped.append(repeat)
        elif isinstance(item, Reference):
            references.append((path, item))
        elif isinstance(item, ResultRecord):
            records.append((path, item))
        else:  # a calibration is judged as a record is: its provenance must name the GPU of its class
            problems = (evidence.calibration_problems(item.hardware_class, item.settings.device, item.environment)
                        + evidence.calibration_spec_problems(item))
            if problems:
                skipped.append(f"{path}: {problems[0]}: a calibration is checked as a record is")
                continue
            calibrations.append((path, item))
    return Evidence(tuple(records), tuple(calibrations), with_system_precision(references), tuple(skipped))


def _load(path: Path) -> Any:
    if path.suffix == ".json" and path.is_file() and path.stat().st_size < 8 * 1024 * 1024:
        try:
            data = loads_strict(path.read_bytes(), str(path))
        except (UsageError, OSError):
            data = None
        if isinstance(data, dict) and data.get("kind") == "calibration":
            return load_calibration(path)
    return load_one(path)


def class_of(name: str) -> str:
    """The catalogue id of a GPU class string ('nvidia-h100-80gb-hbm3' -> 'h100-sxm'), else the string itself."""
    hw = None if name.startswith("cpu:") else hardware.match_gpu(name)
    return hw.id if hw else name


def hardware_of(class_id: str) -> hardware.HardwareClass | None:
    """The catalogue class, or None for a CPU class (no peak figures)."""
    return None if class_id.startswith("cpu:") else hardware.get(class_id)


def settings_of(source: Any) -> Settings:
    """A record's or calibration's settings as bench.core.specs.Settings."""
    return Settings(**{f: getattr(source, f) for f in Settings.__dataclass_fields__})


def same_cost(a: Settings, b: Settings) -> bool:
    """Whether two settings cost the same per video (fps only names the playback rate)."""
    return all(getattr(a, f) == getattr(b, f) for f in COST_SETTINGS)


def comparable(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as they decide what a video costs: set ones, without descriptions of others or the data-parallel
    layout (each generation of a data-parallel run has one GPU, as a plain run's)."""
    return {k: v for k, v in options.items() if v not in (None, False) and k not in DETAIL_KEYS and k != "parallel"}


def options_match(asked: Mapping[str, Any], recorded: Mapping[str, Any]) -> bool:
    """Same options; an option asked as a switch (--compile) matches however the run recorded it applied."""
    a, r = comparable(asked), comparable(recorded)
    return a.keys() == r.keys() and all(v is True or str(v) == str(r[k]) for k, v in a.items())


def parallel_gpus(options: Mapping[str, Any]) -> int:
    """GPUs one video is split over: U x R for 'ulysses=U,ring=R', else 1."""
    value = str(options.get("parallel") or "")
    if not value.startswith("ulysses="):
        return 1
    from bench.run.parallel import parse_parallel

    return parse_parallel(value).workers


def sampled_steps(record: Any) -> int | None:
    """Steps a step-sampled record computed (its `sampling` section, each expert's computed steps); None for a full
    run, and for records from before step sampling existed."""
    sampling = getattr(record, "sampling", None)
    if sampling is None:
        return None
    return sum(len(e.computed_steps) for e in getattr(sampling, "experts", ()))


def record_stages(records: Sequence[ResultRecord]) -> dict[str, float]:
    """Mean seconds per video of the records' stages, pooled over their generations. A step-sampled record's summary
    already stands for full generations (its skipped steps extrapolated from the computed ones)."""
    n = sum(r.summary.generations for r in records)
    text, denoise, vae, other = (sum(getattr(r.summary, f"{k}_mean_s") * r.summary.generations for r in records) / n
                                 for k in ("text_encode", "denoise", "vae_decode", "other"))
    return {"text_s": text, "denoise_s": denoise, "vae_s": vae, "other_s": other,
            "total_s": text + denoise + vae + other}


def record_observation(records: Sequence[ResultRecord], w: Work, r: model.Rates) -> model.Observation:
    s = record_stages(records)
    t = model.terms(w, r, parallel_gpus(records[0].settings.options))
    return model.Observation(t, s["total_s"], s["text_s"], s["denoise_s"], s["vae_s"], s["other_s"])


def calibration_observation(cal: Any, w: Work, r: model.Rates) -> model.Observation:
    """A calibration's own prediction of one video at its settings: every text encoder, each expert's steps x its
    step (calls x (rest + the sum over its kinds of block of layers x block)), the VAE decode."""
    denoise = sum(steps * stack.predicted_s for steps, stack in zip(w.expert_steps, cal.denoisers, strict=True))
    text, vae = cal.text_encode_s, cal.vae_decode.decode_s
    return model.Observation(model.terms(w, r), text + denoise + vae, text, denoise, vae)


def reference_seconds(ref: Reference) -> tuple[float, int, str] | None:
    """(seconds of one video, GPUs it was split over, how to read it) of a batch-1 or throughput figure; None for a
    batched latency or no time figure."""
    if ref.settings.batch_size not in (None, 1):
        return None
    if ref.seconds_per_video is not None:
        if ref.gpus > 1 and not ref.settings.parallelism:
            return None  # e.g. MLPerf SingleStream on a 72-GPU rack: how many GPUs served one video is not stated
        how = f"latency over {ref.gpus} GPUs (sequence parallel)" if ref.gpus > 1 else "latency on 1 GPU"
        return ref.seconds_per_video, ref.gpus, how
    if ref.videos_per_s is not None:
        how = f"per-GPU figure of a {ref.gpus}-GPU system (its throughput / {ref.gpus})" if ref.gpus > 1 else \
            "throughput of 1 GPU"
        return ref.gpus / ref.videos_per_s, 1, how
    return None


def reference_observation(ref: Reference, w: Work) -> model.Observation | None:
    found = reference_seconds(ref)
    if found is None:
        return None
    total_s, gpus, _ = found
    return model.Observation(model.terms(w, model.rates(hardware.get(ref.hardware_class), computed_in_fp8(ref)), gpus),
                             total_s)


def describe_record(path: Path, records: Sequence[ResultRecord]) -> str:
    r = records[0]
    s, opts = r.settings, comparable(r.settings.options)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) or "plain"
    sampled = f", step-sampled ({sampled_steps(r)} of {s.steps} steps computed, the rest extrapolated)" \
        if sampled_steps(r) else ""
    n = sum(x.summary.generations for x in records)
    more = f" and {len(records) - 1} more" if len(records) > 1 else ""
    return (f"measured: {r.spec.name} {s.width}x{s.height} {s.num_frames}f {s.steps} steps, {shown}{sampled}, "
            f"{n} generations ({path}{more})")


def describe_reference(ref: Reference) -> str:
    found = reference_seconds(ref)
    how = f"{found[0]:,.1f} s, {found[2]}" if found else "no usable time figure"
    s = ref.settings
    return (f"published: {ref.source.id} {ref.model} {s.width}x{s.height} {s.num_frames}f {s.steps} steps on "
            f"{ref.gpus}x {ref.hardware_class}: {how}")
