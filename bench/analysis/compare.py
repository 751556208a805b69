"""Hardware classes side by side: one row per (model, settings key, hardware class) of measured records, and one
row per published reference beside them, never merged with a measurement.

Per row: seconds per video; video minutes per GPU-hour (bench.core.metrics) with a 95% interval (Student t over the
per-generation latencies of the merged records, bench.core.stats); energy per video-minute; dollars per video-minute
owned and rented (bench.analysis.fleet.cost_per_video_minute under a scenario); MFU against the counted FLOPs (bench.analysis.physics)
at the class's peak; peak memory; and the throughput ratio to the --baseline class's row of the same model and
settings key (and, for published rows, the same source), "not significant" where the two 95% intervals overlap.
A step-sampled record (part of its denoise time extrapolated) has its own settings key, so it is never pooled with a
full run's; its row is marked "step-sampled" and its interval and energy are the extrapolated ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from bench.analysis import fleet, physics, throughput
from bench.analysis.collect import Loaded, load, skipped_note
from bench.analysis.physics import computed_in_fp8, faster_than_bf16, system_of
from bench.analysis.reference import Reference, reference_fp8, reference_settings
from bench.analysis.scenarios import Scenario, load_scenario
from bench.core import hardware, metrics, stats
from bench.core.errors import UsageError
from bench.records.key import settings_key
from bench.records.schema import ResultRecord

DEFAULT_BASELINE = "h100-sxm"  # the unit of the question: video minutes per H100-hour
DEFAULT_SCENARIO = "factorial-2024"
KIND_ORDER = {"measured": 0, "published": 1, "estimate": 2}
STAGES = ("text_encode", "denoise", "vae_decode", "other")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the comparison. Units are in the names; None is n/a."""

    kind: str  # "measured", "published" (a source's measurement) or "estimate" (a source's analytic figure)
    source: str  # "N records" for measured rows, the source id for published ones
    model: str
    hardware: str  # catalogue class id; a record's own class where the catalogue has none
    gpus: int
    settings_key: str
    toy: str  # "toy spec", "CPU run" or both: proves the harness, says nothing about what video costs; "" if real
    generations: int | None  # n behind the interval (None: a published figure, no spread)
    seconds_per_video: float | None
    video_min_per_gpu_hour: float | None
    interval_low: float | None  # 95% interval of video_min_per_gpu_hour
    interval_high: float | None  # math.inf where the latency interval reaches zero
    energy_wh_per_video_minute: float | None
    owned_usd_per_video_minute: float | None
    rented_usd_per_video_minute: float | None
    mfu: float | None
    bound_video_min_per_gpu_hour: float | None  # at 100% of the class's peak (roofline)
    peak_memory_bytes: int | None
    stages_s: dict[str, float] | None  # mean seconds: text_encode, denoise, vae_decode, other
    paths: tuple[str, ...]
    labels: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    ratio: float | None = None  # video_min_per_gpu_hour over the baseline row's
    ratio_note: str = ""  # "baseline", "significant", "not significant", "no spread"
    measure: str = ""  # measured rows: "measured" (full runs) or "step-sampled" (skipped steps extrapolated)
    system: str = ""  # published rows: the source's name of the system a per-GPU figure was divided out of


@dataclasses.dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    baseline: str
    scenario: Scenario
    skipped: tuple[str, ...]
    hidden_toy_records: int
    allow_toy: bool
    loaded: Loaded


def _class_of(record: ResultRecord) -> tuple[str, hardware.HardwareClass | None]:
    hw = None if record.is_cpu else hardware.match_gpu(record.hardware_class)
    return (hw.id if hw else record.hardware_class), hw


def _costs(s: Scenario, hw: hardware.HardwareClass | None, tput: float | None) -> tuple[float | None, float | None]:
    """Owned and rented $ per video-minute, each figure by fleet's precedence (scenario file, then catalogue)."""
    if hw is None or not tput:
        return None, None
    tp = throughput.Throughput(tput, "record", "compare", hw)
    figures = {name: f.value for name, f in fleet.gpu_figures(s, tp, set(), False).items()}
    cost = fleet.cost_per_video_minute(s, tput, **figures)
    return cost["owned_usd_per_video_minute"], cost["rented_usd_per_video_minute"]


def _peak(hw: hardware.HardwareClass | None, dtype: str) -> float | None:
    try:
        return None if hw is None else hw.peak_flops(dtype)
    except UsageError:  # no tensor rate for this dtype (float32): MFU n/a, not a guess
        return None


def _roofline(flops: float | None, peak: float | None, gpu_s_per_video: float | None,
              video_s: float) -> tuple[float | None, float | None]:
    """(MFU, bound video-min per GPU-hour): counted FLOPs over GPU-seconds x peak FLOP/s."""
    if flops is None or peak is None or not gpu_s_per_video:
        return None, None
    return flops / (gpu_s_per_video * peak), metrics.video_minutes_per_gpu_hour(video_s, flops / peak)


def _interval(latencies: list[float], video_s: float, gpus: float) -> tuple[float | None, float | None]:
    """The 95% t interval of the mean latency, turned into throughput (a decreasing function of latency)."""
    iv = stats.mean_interval(latencies)
    if iv.half_width is None:
        return None, None
    high = float("inf") if iv.low <= 0 else metrics.video_minutes_per_gpu_hour(video_s, iv.low * gpus)
    return metrics.video_minutes_per_gpu_hour(video_s, iv.high * gpus), high


def pooled(records: Sequence[ResultRecord]) -> dict[str, float]:
    """The records' own summary figures added up (bench.core.metrics' definitions applied to the sums): generations,
    video and GPU seconds, throughput, mean latency and stage means, and the GPUs one generation occupies."""
    total = {k: sum(getattr(r.summary, k) for r in records) for k in ("generations", "video_seconds_total", "gpu_seconds",
                                                             "timed_wall_s")}
    n = total["generations"]
    out = {**total, "video_minutes_per_gpu_hour": metrics.video_minutes_per_gpu_hour(total["video_seconds_total"],
                                                                                      total["gpu_seconds"]),
           "latency_mean_s": total["timed_wall_s"] / n, "gpus_per_generation": total["gpu_seconds"] /
           total["timed_wall_s"]}
    for stage in STAGES:
        out[f"{stage}_mean_s"] = sum(getattr(r.summary, f"{stage}_mean_s") * r.summary.generations for r in records) / n
    return out


def measured_row(group: list[tuple[Path, ResultRecord]], s: Scenario) -> Row:
    """One row from records of one model, settings key and class: their generations pooled."""
    first = group[0][1]
    class_id, hw = _class_of(first)
    pool = pooled([r for _, r in group])
    video_s, gpus = first.summary.video_seconds_per_generation, pool["gpus_per_generation"]
    low, high = _interval([latency for _, r in group for latency in r.latencies_s()], video_s, gpus)
    mfu, bound = _roofline(physics.record_flops(first), _peak(hw, first.settings.dtype), pool["latency_mean_s"] * gpus,
                           video_s)
    return Row(
        kind="measured", source=f"{len(group)} record{'s' if len(group) > 1 else ''}", model=first.spec.name,
        hardware=class_id, gpus=first.settings.gpus_used, settings_key=settings_key(first), toy=_toy(first),
        generations=int(pool["generations"]), seconds_per_video=pool["latency_mean_s"],
        video_min_per_gpu_hour=pool["video_minutes_per_gpu_hour"], interval_low=low, interval_high=high,
        energy_wh_per_video_minute=_energy(group), **_cost_fields(s, hw, pool["video_minutes_per_gpu_hour"]), mfu=mfu,
        bound_video_min_per_gpu_hour=bound, peak_memory_bytes=max(r.peak_memory_bytes for _, r in group),
        stages_s={k: pool[f"{k}_mean_s"] for k in STAGES}, paths=tuple(str(p) for p, _ in group),
        labels=tuple(dict.fromkeys(r.label for _, r in group if r.label)),
        warnings=tuple(dict.fromkeys(w for _, r in group for w in r.warnings)),
        measure="step-sampled" if first.is_sampled else "measured",
    )


def _toy(record: ResultRecord) -> str:
    caveats = ["toy spec"] * record.is_tiny + ["CPU run"] * record.is_cpu
    return " on a ".join(caveats)


def _cost_fields(s: Scenario, hw: hardware.HardwareClass | None, tput: float | None) -> dict[str, float | None]:
    owned, rented = _costs(s, hw, tput)
    return {"owned_usd_per_video_minute": owned, "rented_usd_per_video_minute": rented}


def energy_per_video_minute_wh(record: ResultRecord) -> float | None:
    """A record's Wh per video-minute: as measured, or on a step-sampled record extrapolated like its time (n/a where
    it had no per-step energy to extrapolate from)."""
    if record.is_sampled:
        return record.summary.extrapolated_energy_per_video_minute_wh
    return record.telemetry.summary.energy_per_video_minute_wh


def _energy(group: list[tuple[Path, ResultRecord]]) -> float | None:
    """Wh per video-minute over the pooled records (each record's figure weighted by its video seconds); n/a
    unless every record measured energy."""
    pairs = [(energy_per_video_minute_wh(r), r.summary.video_seconds_total) for _, r in group]
    if any(wh is None for wh, _ in pairs):
        return None
    return sum(wh * v for wh, v in pairs) / sum(v for _, v in pairs)


def reference_key(ref: Reference) -> str:
    """A settings key for a published figure, shaped like bench.records.key.settings_key where the source says enough."""
    s = ref.settings
    parts = [f"{s.width}x{s.height}" if s.width and s.height else "nosize", f"{s.num_frames}f", f"{s.fps:g}fps"]
    parts += [f"{s.steps}steps"] if s.steps else []
    parts += [f"g{s.guidance_scale:g}"] if s.guidance_scale is not None else []
    parts.append(f"{ref.gpus}gpu")
    parts += [f"bs{s.batch_size}"] if s.batch_size not in (None, 1) else []
    return "-".join(parts)


def _reference_flops(ref: Reference) -> float | None:
    """Counted FLOPs of one video at the reference's settings (bench.analysis.reference.reference_settings), or None."""
    settings = reference_settings(ref)
    return None if settings is None else physics.spec_flops(ref.model, settings)


def reference_row(path: Path, ref: Reference, s: Scenario) -> Row:
    hw = hardware.get(ref.hardware_class)
    tput = ref.video_minutes_per_gpu_hour()
    fp8 = computed_in_fp8(ref)  # its label, faster than bf16, or its system's fp8 (physics.computed_in_fp8)
    flops = _reference_flops(ref)
    mfu, bound = _roofline(flops, _peak(hw, "fp8" if fp8 else "bfloat16"), ref.gpu_seconds_per_video(),
                           ref.video_seconds())
    warnings: tuple[str, ...] = ()
    if fp8 and not reference_fp8(ref):
        bf16 = _roofline(flops, _peak(hw, "bfloat16"), ref.gpu_seconds_per_video(), ref.video_seconds())[0]
        if faster_than_bf16(ref):
            warnings = (f"{bf16:.0%} of {hw.id}'s bf16 peak, which is impossible: it must have computed in fp8 "
                        "whatever its precision label says, so its MFU and bound are against the fp8 peak",)
        else:  # fp8 by with_system_precision: another row of its system is
            warnings = (f"another figure of the same system ({system_of(ref)[1]}) is faster than {hw.id}'s bf16 peak "
                        "allows, so the system computed in fp8 whatever its precision label says; this figure's MFU "
                        f"and bound are against the fp8 peak too ({bf16:.0%} of bf16)",)
    return Row(
        kind="published" if ref.measured else "estimate", source=ref.source.id, model=ref.model, hardware=hw.id,
        gpus=ref.gpus, settings_key=reference_key(ref), toy="", generations=None,
        seconds_per_video=ref.wall_seconds_per_video(), video_min_per_gpu_hour=tput, interval_low=None,
        interval_high=None, energy_wh_per_video_minute=ref.energy_per_video_minute_wh(), **_cost_fields(s, hw, tput),
        mfu=mfu, bound_video_min_per_gpu_hour=bound, peak_memory_bytes=None, stages_s=None, paths=(str(path),),
        system=ref.system or "", warnings=warnings,
    )


def _ratio_group(row: Row) -> tuple[str, ...]:
    # a published figure is set against the same source's: two sources differ in method, not only in hardware
    return (row.kind, row.model, row.settings_key) if row.kind == "measured" else \
        (row.kind, row.source, row.model, row.settings_key)


def _ratio(row: Row, base: Row) -> Row:
    if row is base:
        return dataclasses.replace(row, ratio=1.0, ratio_note="baseline")
    if not row.video_min_per_gpu_hour or not base.video_min_per_gpu_hour:
        return row
    ratio = row.video_min_per_gpu_hour / base.video_min_per_gpu_hour
    if None in (row.interval_low, base.interval_low):
        note = "no spread"
    else:
        apart = not stats.overlap((row.interval_low, row.interval_high), (base.interval_low, base.interval_high))
        note = "significant" if apart else "not significant"
    return dataclasses.replace(row, ratio=ratio, ratio_note=note)


def with_ratios(rows: Sequence[Row], baseline: str) -> list[Row]:
    """Each row's throughput ratio to the baseline class's row in its group (see _ratio_group); rows of a group
    without a baseline row, or alone in it, get none."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(_ratio_group(row), []).append(row)
    out = []
    for row in rows:
        group = groups[_ratio_group(row)]
        base = next((r for r in group if r.hardware == baseline), None)
        out.append(row if base is None or len(group) < 2 else _ratio(row, base))
    return out


def _sort_key(row: Row, baseline: str) -> tuple:
    return (row.model, row.settings_key, KIND_ORDER[row.kind], row.source if row.kind != "measured" else "",
            row.hardware != baseline, row.hardware)


def _check_baseline(baseline: str, rows: Sequence[Row]) -> None:
    if baseline not in {r.hardware for r in rows}:
        hardware.get(baseline)  # an unknown class: one line with 'did you mean'


def build(loaded: Loaded, baseline: str = DEFAULT_BASELINE, scenario: str = DEFAULT_SCENARIO,
          allow_toy: bool = False) -> Comparison:
    """The comparison of what `load` found. Raises UsageError for an unknown baseline class or scenario."""
    s = load_scenario(scenario)
    groups: dict[tuple[str, str, str], list[tuple[Path, ResultRecord]]] = {}
    for path, record in loaded.records:
        groups.setdefault((record.spec.name, settings_key(record), _class_of(record)[0]), []).append((path, record))
    measured = [measured_row(g, s) for g in groups.values()]
    hidden = sum(len(r.paths) for r in measured if r.toy and not allow_toy)
    rows = [r for r in measured if allow_toy or not r.toy] + [reference_row(p, ref, s) for p, ref in loaded.references]
    _check_baseline(baseline, rows)
    rows = sorted(with_ratios(rows, baseline), key=lambda r: _sort_key(r, baseline))
    return Comparison(tuple(rows), baseline, s, loaded.skipped, hidden, allow_toy, loaded)


def compare(paths: Sequence[str | Path], baseline: str = DEFAULT_BASELINE, scenario: str = DEFAULT_SCENARIO,
            allow_toy: bool = False, verb: str = "compare") -> Comparison:
    """Load paths (files or folders) and compare. Raises UsageError for a missing path or nothing to compare (one
    line, worded for the command: `verb`)."""
    loaded = load(paths)
    result = build(loaded, baseline, scenario, allow_toy)
    if not result.rows:
        found = loaded.records or loaded.references or loaded.skipped
        hint = f"; {result.hidden_toy_records} toy or CPU record(s) hidden: --allow-toy shows them" \
            if result.hidden_toy_records else "" if found else ": no .json file there"
        raise UsageError(f"nothing to {verb} under {', '.join(map(str, paths))}{hint}{skipped_note(result.skipped)}")
    return result
