"""What physics forbids a record to claim. A record can be internally consistent and still be impossible: faster
than its GPU's peak FLOP/s allows, drawing more energy than its board can or less than a held GPU draws at rest, a
GPU class on a CPU run, or a telemetry summary that its own series contradicts. `load_checked` refuses those (the run
that writes a record skips this).

Where each bound comes from:
- time: no stage of a generation (text encoding, denoising, VAE decode, the whole) takes less than its counted FLOPs
  (bench.analysis.flops, counted from the model itself) at the class's peak dense FLOP/s (bench/core/data/
  hardware.toml, each rate sourced there) on the GPUs one generation occupies: MFU never above 100%.
- energy, above: at most the class's board power (the catalogue's, sourced there) x POWER_MARGIN x the GPUs one
  generation occupies, over each span the record gives an energy for (generation, stage, denoising step), and for the
  telemetry summary's average power.
- energy, below: at least the class's idle floor (`idle_power_w`, with its source in `idle_source`, e.g. ML.ENERGY's
  70 W lowest plausible power of a held H100, H200 or B200) over each span, and for the average power; skipped
  where the catalogue has no floor for the class. The energies are one GPU's (each generation's worker's counter;
  rank 0's under context parallelism), so the floor is one GPU's.
- both energy bounds allow for the counter's update period (COUNTER_UPDATE_S): a difference of two readings covers
  up to that much more or less than the span between them.
- environment: bench.analysis.evidence (the GPU the environment and the telemetry name, and its own readings).
- readings: bench.analysis.readings (sampled clocks, power under the power cap and memory against the device's own
  limits and the class's).
- a step-sampled record's plan: its experts and their steps are its model's at its settings (`_plan`).
- generations and workers (who made each, seeds, copied step times, each GPU listed once): bench.analysis.workers.
- fields that contradict each other (complete with a reason, a budget that could not have let the generations start,
  energy without the telemetry or the series that measured it): bench.analysis.consistency.

A published figure (bench.analysis.reference) gets the same bounds before any reader uses it (`check_reference`):
its figures are its whole system's, all `gpus` of it, so one video costs `gpu_seconds_per_video` GPU-seconds (a
latency on N GPUs x N, or N over a system's videos per second), which may not be less than the counted FLOPs at one
GPU's fastest dense rate (fp8 where the class has one: what a file says it ran in cannot be checked); its energy per
video and average power lie between the idle floor and the board power (x POWER_MARGIN) of all its GPUs, each of them
held. Without a time figure, energy over average power is the wall time the file implies, held to the same FLOP
bound; and any energy per video is at least the idle floor over the fewest GPU-seconds the FLOPs allow. The schema
already refuses a class outside the catalogue and fewer than one GPU.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.analysis import consistency, evidence, readings, workers
from bench.analysis.evidence import POWER_MARGIN
from bench.analysis.flops import Flops, cached_flops
from bench.analysis.reference import Reference, reference_fp8, reference_settings
from bench.core import hardware, metrics
from bench.core.errors import UsageError
from bench.core.specs import Settings, load_spec, spec_names
from bench.records.io import load_record
from bench.records.schema import GPU_DEVICE, Generation, ResultRecord
from bench.telemetry.summary import check_summary

MAX_MFU = 1.0  # achieved FLOP/s over the class's peak dense FLOP/s
# NVML's energy counter is updated every 20-100 ms on recent GPUs (PETSc, PetscLogGpuEnergyMeter: "for newer GPUs,
# energy readings are updated every 20-100ms"; Zeus 0.6.1 reads 0 J over windows shorter than its update period).
COUNTER_UPDATE_S = 0.1
STAGES = (("a generation", "total", "latency_s"), ("a generation's text encoding", "text_encode", "text_encode_s"),
          ("a generation's denoising", "denoise", "denoise_s"), ("a generation's VAE decode", "vae_decode",
                                                                  "vae_decode_s"))


def load_checked(path: str | Path) -> ResultRecord:
    """A record file as the gate judges it: loaded strictly, then refused if physics forbids what it claims.
    Raises UsageError naming the file and the first impossibility."""
    record = load_record(path)
    problems = violations(record)
    if problems:
        raise UsageError(f"{path}: {problems[0]}")
    return record


def violations(record: ResultRecord) -> list[str]:
    """One message per impossibility; an empty list for a record physics allows."""
    problems = _device_class(record)
    hw = None if record.hardware_class.startswith("cpu:") else hardware.match_gpu(record.hardware_class)
    if hw is not None:
        problems += evidence.problems(record, hw)
    problems += _telemetry(record)  # a summary its own series contradicts is named before the bounds it breaks
    if hw is not None:
        problems += _energy(record, hw) + _bound(record, hw) + readings.problems(record, hw)
    return problems + _plan(record) + workers.problems(record) + consistency.problems(record)


def _device_class(record: ResultRecord) -> list[str]:
    on_cpu = GPU_DEVICE.fullmatch(record.settings.device) is None
    if on_cpu != record.hardware_class.startswith("cpu:"):
        return [f"device '{record.settings.device}' does not match hardware class '{record.hardware_class}'"]
    return []


def gpus_per_generation(record: ResultRecord) -> int:
    """GPUs one generation occupies (one under data parallelism)."""
    return metrics.gpus_per_generation(record.settings.gpus_used, record.settings.options.get("parallel"))


def _energy(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """The run's average power (the first worker's), then each span's energy, between the idle floor of one GPU and
    the board power of the GPUs a generation occupies; the first that is not."""
    gpus = gpus_per_generation(record)
    high_w, low_w = hw.board_power_w * gpus * POWER_MARGIN, hw.idle_power_w
    board = f"{gpus} x {hw.board_power_w:.0f} W board power"
    floor = None if low_w is None else f"{hw.id}'s idle floor of {low_w:g} W ({hw.idle_source or 'no source given'})"
    avg = record.telemetry.summary.avg_power_w
    if avg is not None and avg > high_w:
        return [f"average power {avg:.0f} W is above {board}"]
    if avg is not None and low_w is not None and avg < low_w:
        return [f"average power {avg:.0f} W is below {floor}"]
    for what, energy_j, seconds in _spans(record.generations):
        if energy_j > high_w * (seconds + COUNTER_UPDATE_S):
            return [f"{what} used {energy_j:.4g} J in {seconds:.3g} s, more than {board} allows"]
        if low_w is not None and energy_j < low_w * (seconds - COUNTER_UPDATE_S):
            return [f"{what} used {energy_j:.4g} J in {seconds:.3g} s ({energy_j / seconds:.0f} W), below {floor}"]
    return []


def _spans(generations: list[Generation]) -> Iterator[tuple[str, float, float]]:
    """(what, energy in J, seconds) of every span a generation gives an energy for: the generation, its stages, each
    denoising step."""
    for g in generations:
        t = g.telemetry
        if t is None:
            continue
        name = f"generation {g.index}" + (f" of worker {g.worker}" if g.worker else "")
        stages = ((name, t.energy_j, g.latency_s), (f"{name}'s text encoding", t.text_encode_energy_j,
                                                    g.text_encode_s),
                  (f"{name}'s denoising", t.denoise_energy_j, g.denoise_s),
                  (f"{name}'s VAE decode", t.vae_decode_energy_j, g.vae_decode_s))
        steps = zip(t.step_energy_j or [], g.step_s)
        yield from ((w, j, s) for w, j, s in stages if j is not None)
        yield from ((f"{name}'s step {i + 1}", j, s) for i, (j, s) in enumerate(steps))


def peak_flops(record: ResultRecord, hw: hardware.HardwareClass) -> float:
    """The peak dense FLOP/s of one GPU of class hw that bounds the record: fp8 where its denoiser ran in fp8 and
    the class has an fp8 rate, bfloat16 otherwise (no tensor rate is higher for float32 or float16)."""
    fp8 = record.settings.options.get("quantize") == "fp8" and hw.fp8_tflops
    return hw.peak_flops("fp8" if fp8 else "bfloat16")


def _bound(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """No stage of a full generation (a step-sampled one's skipped steps extrapolated) is faster than its counted
    FLOPs at 100% of the peak of the GPUs it occupies."""
    count = record_count(record)
    if count is None:
        return []
    peak = peak_flops(record, hw) * gpus_per_generation(record)
    experts = record.sampling.model_dump()["experts"] if record.sampling is not None else None
    for g in record.generations:
        full = g.model_dump() if experts is None else metrics.extrapolate(g.model_dump(), experts)
        for what, stage, key in STAGES:
            work = getattr(count, stage)
            floor_s = work / peak
            if full[key] * MAX_MFU < floor_s:
                return [f"{what} took {full[key]:.3g} s, faster than the physical bound of {floor_s:.3g} s "
                        f"({work:.3g} FLOPs at {hw.id}'s peak): MFU above 100% is impossible"]
    return []


def _plan(record: ResultRecord) -> list[str]:
    """A step-sampled record's experts are its model's: the denoisers, in order, with the steps each runs at the
    record's settings, as the FLOP count splits them on the model's own scheduler; where FLOPs are not counted, the
    one denoiser of a model without a boundary_ratio. (The computed steps follow from these and K: Sampling.)"""
    if record.sampling is None:
        return []
    own = [(e.component, e.steps) for e in record.sampling.experts]
    count = record_count(record)
    spec = load_spec(record.spec.name) if count is None and record.spec.name in spec_names() else None
    if count is not None:
        model = [(e.component, e.steps) for e in count.experts if e.steps]
    elif spec is not None and "boundary_ratio" not in spec.pipeline_config:
        model = [(spec.denoiser, record.settings.steps)]
    else:
        return []
    if own != model:
        return [f"sampling names experts {own}, but {record.spec.name} at {record.settings.steps} steps runs {model}: "
                "the plan is not the model's"]
    return []


def record_settings(record: ResultRecord) -> Settings:
    """The generation settings a record was made at."""
    return Settings(**{f: getattr(record.settings, f) for f in Settings.__dataclass_fields__})


def record_count(record: ResultRecord) -> Flops | None:
    """FLOPs of one video of the record's spec at its settings, per stage; None where the spec is not one of ours
    or its family cannot be counted."""
    return spec_count(record.spec.name, record_settings(record))


def record_flops(record: ResultRecord) -> float | None:
    """FLOPs of one whole video of the record's spec at its settings (record_count's total), or None."""
    count = record_count(record)
    return None if count is None else count.total


@functools.lru_cache(maxsize=64)
def spec_count(name: str, settings: Any) -> Flops | None:
    """FLOPs of one video of the models/ spec `name` at `settings` (a bench.core.specs.Settings), per stage, counted
    once per process; None for a name models/ does not have or a family that cannot be counted."""

    if name not in spec_names():  # a name from a file is never turned into a path
        return None
    try:
        return cached_flops(load_spec(name), settings)
    except UsageError:  # a family the counter does not cover (Mochi)
        return None


def spec_flops(name: str, settings: Any) -> float | None:
    """spec_count's total FLOPs of one video, or None."""
    count = spec_count(name, settings)
    return None if count is None else count.total


def _telemetry(record: ResultRecord) -> list[str]:
    """The record's telemetry summary (worker 0's) and each other worker's, recomputed from its own series and the
    generations it made; the first section's first contradiction, or []."""
    sections = [("telemetry", 0, record.telemetry)]
    sections += [(f"workers[{w.index}].telemetry", w.index, w.telemetry) for w in record.workers or [] if w.index]
    video_s = record.summary.video_seconds_per_generation
    for where, worker, t in sections:
        gens = [g.model_dump() for g in record.generations if g.worker == worker]
        if t is not None and t.available and gens:
            found = check_summary(t.model_dump(), gens, video_s)
            if found:
                return [f"{where}: {found[0]}"]
    return []


def check_reference(ref: Reference, origin: str) -> Reference:
    """A published figure as the gate judges it. Raises UsageError naming origin and the first impossibility."""
    problems = reference_violations(ref)
    if problems:
        raise UsageError(f"{origin}: {problems[0]}")
    return ref


def reference_violations(ref: Reference) -> list[str]:
    """One message per impossibility of a published figure; an empty list for one physics allows."""
    hw = hardware.get(ref.hardware_class)
    return _reference_bound(ref, hw) + _reference_power(ref, hw) + _reference_energy_floor(ref, hw)


def computed_in_fp8(ref: Reference) -> bool:
    """Whether a published figure's compute ran in fp8: its precision says so, it is faster than the counted FLOPs at
    the class's bf16 peak allow (VibeHPC's B300 Offline row says 'fp32', its weights, and runs at 114% of bf16), or
    another figure of its system is (with_system_precision). The one rule compare's MFU and the cost model's rates
    follow, so neither ever implies more than 100% of a peak."""
    if reference_fp8(ref) or ref._system_fp8:
        return True
    return faster_than_bf16(ref)


def faster_than_bf16(ref: Reference) -> bool:
    """The figure's counted FLOPs need more than the class's bf16 peak over its GPU-seconds (fp8 classes only)."""
    hw = hardware.get(ref.hardware_class)
    gpu_s, settings = ref.gpu_seconds_per_video(), reference_settings(ref)
    count = None if gpu_s is None or settings is None or hw.fp8_tflops is None else spec_count(ref.model, settings)
    return count is not None and count.total > gpu_s * hw.peak_flops("bfloat16") * MAX_MFU


MLPERF_SCENARIO = re.compile(r", (Offline|SingleStream|MultiStream|Server)$")  # the rows name it after the system


def system_of(ref: Reference) -> tuple[str, str, str, str] | None:
    """What makes figures one system's: the source, the system's name less its MLPerf scenario, the model and the
    class (a submission's Offline and SingleStream rows), or None for a figure that names no system."""
    if ref.system is None:
        return None
    return ref.source.id, MLPERF_SCENARIO.sub("", ref.system), ref.model, ref.hardware_class


def with_system_precision(refs: Sequence[tuple[Path, Reference]]) -> tuple[tuple[Path, Reference], ...]:
    """The references, each of a system that has a figure computed in fp8 (computed_in_fp8: its label, or faster than
    bf16 allows) marked as computed in fp8 too: a system runs one build, one precision, in every scenario it submits,
    so VibeHPC's B300 SingleStream row (68% of bf16, possible alone) computed in fp8 as its Offline row (114% of bf16)
    must have. Readers of references apply this once to everything they loaded."""
    own = [computed_in_fp8(ref) for _, ref in refs]  # each figure judged once
    fp8 = {system_of(ref) for (_, ref), is_fp8 in zip(refs, own) if is_fp8} - {None}
    out = []
    for (path, ref), is_fp8 in zip(refs, own):
        if not is_fp8 and system_of(ref) in fp8:
            ref = ref.model_copy()
            ref._system_fp8 = True
        out.append((path, ref))
    return tuple(out)


def _time_figure(ref: Reference) -> str:
    if ref.seconds_per_video is not None:
        figure = f"seconds_per_video {ref.seconds_per_video:.4g}"
    elif ref.videos_per_s is not None:
        figure = f"videos_per_s {ref.videos_per_s:.4g}"
    else:
        figure = f"energy_per_video_j {ref.energy_per_video_j:.4g} over avg_power_w {ref.avg_power_w:.4g}"
    return f"{figure} on {ref.gpus} GPU(s)"


def _gpu_seconds(ref: Reference) -> float | None:
    """GPU-seconds per video from the time figure, or, where the source gives none, from the time its energy and
    average power imply (both totals over all `gpus`: energy / power is the wall seconds per video)."""
    gpu_s = ref.gpu_seconds_per_video()
    if gpu_s is None and ref.energy_per_video_j is not None and ref.avg_power_w:
        gpu_s = ref.energy_per_video_j / ref.avg_power_w * ref.gpus
    return gpu_s


def _fastest_floor(ref: Reference, hw: hardware.HardwareClass) -> tuple[Flops, str, float] | None:
    """The counted FLOPs of one video, the class's fastest dense dtype and the GPU-seconds they take at its peak;
    None where FLOPs cannot be counted (a model models/ lacks, a source without size or steps)."""
    settings = reference_settings(ref)
    count = None if settings is None else spec_count(ref.model, settings)
    if count is None:
        return None
    # the class's fastest dense rate, whatever the file says it ran in: a precision label is the file's word (a
    # forger writes 'fp8'), and a source's is often the weights' (VibeHPC's B300 MLPerf row says 'fp32' and runs at
    # 114% of the bf16 peak, 57% of the fp8 one)
    dtype = "fp8" if hw.fp8_tflops else "bfloat16"
    return count, dtype, count.total / hw.peak_flops(dtype)


def _reference_bound(ref: Reference, hw: hardware.HardwareClass) -> list[str]:
    """A video's GPU-seconds (given, or implied by energy over power) no fewer than its counted FLOPs at one GPU's
    peak; no bound where FLOPs cannot be counted."""
    gpu_s, floor = _gpu_seconds(ref), _fastest_floor(ref, hw)
    if gpu_s is None or floor is None:
        return []
    count, dtype, floor_s = floor
    if gpu_s * MAX_MFU < floor_s:
        return [f"{_time_figure(ref)} is {gpu_s:.3g} GPU-seconds per video, less than the physical bound of "
                f"{floor_s:.3g} s ({count.total:.3g} FLOPs at {hw.id}'s {dtype} peak, its fastest): MFU above 100% "
                "is impossible"]
    return []


def _reference_energy_floor(ref: Reference, hw: hardware.HardwareClass) -> list[str]:
    """An energy per video has a floor, with or without a time figure: a video takes at least its counted FLOPs at
    one GPU's fastest peak in GPU-seconds, and each of them draws at least the class's idle floor."""
    floor = None if ref.energy_per_video_j is None or hw.idle_power_w is None else _fastest_floor(ref, hw)
    if floor is None:
        return []
    count, dtype, floor_s = floor
    floor_j = hw.idle_power_w * floor_s
    if ref.energy_per_video_j < floor_j:
        return [f"energy_per_video_j {ref.energy_per_video_j:.4g} is below {floor_j:.4g} J: one video takes at least "
                f"{floor_s:.3g} GPU-seconds ({count.total:.3g} FLOPs at {hw.id}'s {dtype} peak), each at no less than "
                f"its idle floor of {hw.idle_power_w:g} W ({hw.idle_source})"]
    return []


def _reference_power(ref: Reference, hw: hardware.HardwareClass) -> list[str]:
    """The average power, and the energy per video over the wall seconds per video, between the idle floor and the
    board power of all `gpus`; the first that is not."""
    high_w = hw.board_power_w * ref.gpus * POWER_MARGIN
    low_w = None if hw.idle_power_w is None else hw.idle_power_w * ref.gpus
    wall_s = ref.wall_seconds_per_video()
    powers = [] if ref.avg_power_w is None else [(f"avg_power_w {ref.avg_power_w:.4g}", ref.avg_power_w)]
    if ref.energy_per_video_j is not None and wall_s is not None:
        powers.append((f"energy_per_video_j {ref.energy_per_video_j:.4g} over {wall_s:.4g} s per video",
                       ref.energy_per_video_j / wall_s))
    for what, power_w in powers:
        if power_w > high_w:
            return [f"{what} is {power_w:.4g} W, above {ref.gpus} x {hw.board_power_w:.0f} W board power"]
        if low_w is not None and power_w < low_w:
            return [f"{what} is {power_w:.4g} W, below {ref.gpus} x {hw.id}'s idle floor of {hw.idle_power_w:g} W "
                    f"({hw.idle_source})"]
    return []
