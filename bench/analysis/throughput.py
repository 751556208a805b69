"""Where the fleet's throughput comes from, and whether it may be trusted.

Six kinds, and only two of them are measurements:
    given     --throughput N (with --hardware CLASS, the GPU it is for)
    scenario  the scenario's own throughput_video_min_per_gpu_hour on its own hardware class
    scaled    the scenario's throughput moved to another class by the ratio of peak bf16 FLOP/s (an assumption)
    record    one result record's measured throughput               (measured)
    results   the median over a results folder's records of one model, class and setting   (measured)
    bound     the roofline bound: 100% of the class's peak FLOP/s at the model's canonical setting
    predicted the cost model's figure from the best evidence on the class (bench.analysis.predict): measured,
              step-sampled, predicted or published, as the prediction says, with the error its rung showed

Each also says what it was made on (model and setting, where known), so a fleet whose scenario describes other video
can say so, and where the value may lie (`interval`): a measurement's 95% interval of its mean latency, a
prediction's validated error; none for a given, scenario or bound figure (a scenario's [ranges] may give one).

A record is refused when it is incomplete, and (unless --allow-toy, which turns the refusal into a warning) when it
was made on a CPU or with a toy spec: neither says anything about what video costs on a GPU. A step-sampled record
(`run --sample-steps`: part of each generation's denoise time extrapolated) is used, and its source says
"step-sampled"; its settings key differs from a full run's, so a median never mixes the two.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from bench.analysis import demand, predict, roofline
from bench.analysis.collect import Seen, skipped_note
from bench.analysis.flops import cached_flops
from bench.analysis.physics import load_checked
from bench.analysis.predict_evidence import Evidence, gather
from bench.analysis.registry import scan
from bench.analysis.scenarios import check_number
from bench.core import hardware, metrics, stats
from bench.core.errors import UsageError
from bench.core.specs import load_spec
from bench.core.text import shown
from bench.records.key import settings_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.analysis.demand import MixCost
    from bench.analysis.predict import Prediction
    from bench.analysis.predict_evidence import Request
    from bench.analysis.scenarios import Scenario
    from bench.records.schema import ResultRecord

MEASURED_KINDS = ("record", "results")
TOY_HINT = "measure a real model on a GPU, or pass --allow-toy to size a fleet from it anyway"


@dataclasses.dataclass(frozen=True)
class Made:
    """What a throughput was made on: the model and the video it generated."""

    model: str
    width: int
    height: int
    video_s: float  # seconds of video per generation
    steps: int

    def describe(self) -> str:
        return f"{self.model} at {self.width}x{self.height}, {self.video_s:.3g} s clips, {self.steps} steps"


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Video minutes per GPU-hour, what kind of figure it is and where it came from, and the GPU it is for."""

    video_min_per_gpu_hour: float
    kind: str  # one of the kinds in the module docstring
    source: str
    hardware: hardware.HardwareClass | None = None
    measured_power_w: float | None = None  # the records' measured average board power per GPU, where they have one
    settings_key: str | None = None  # bench.records.key.settings_key of the measured records
    warnings: tuple[str, ...] = ()
    made: Made | None = None  # None: not made on a model (given, a scenario's own figure)
    interval: tuple[float, float] | None = None  # where the value may lie, video-min per GPU-hour
    interval_basis: str = ""  # what the interval is, e.g. "measured: 95% interval of the mean latency"
    evidence: str = "assumed"  # the ladder's word: measured, step-sampled, predicted, published, bound, assumed

    @property
    def measured(self) -> bool:
        return self.kind in MEASURED_KINDS


def made_of(r: ResultRecord) -> Made:
    st = r.settings
    return Made(r.spec.name, st.width, st.height, metrics.video_seconds(st.num_frames, st.fps), st.steps)


def measured_interval(value: float, latencies_s: list[float]) -> tuple[tuple[float, float] | None, str]:
    """The throughput's range from the 95% interval of the mean latency behind it (throughput is its inverse)."""
    ci = stats.mean_interval(latencies_s)
    if ci.low is None or ci.low <= 0:
        return None, f"no interval: {ci.n} generation{'s' if ci.n != 1 else ''}"
    return (value * ci.mean / ci.high, value * ci.mean / ci.low), \
        f"measured: 95% interval of the mean latency of {ci.n} generations"


def _checked(value: float, where: str) -> float:
    return check_number(value, "throughput_video_min_per_gpu_hour", where)


def given(value: float, class_id: str | None) -> Throughput:
    value = _checked(value, "--throughput")
    hw = hardware.get(class_id) if class_id else None
    on = f" on {hw.id}" if hw else ""
    return Throughput(value, "given", f"given: {value:g} video-min per GPU-hour{on} (not measured)", hw)


def from_scenario(s: Scenario, class_id: str | None = None) -> Throughput:
    """The scenario's throughput; on another class than its own, scaled by peak bf16 FLOP/s and labelled so."""
    value = s.throughput_video_min_per_gpu_hour
    if value is None:
        raise UsageError(f"scenario {s.name} gives no throughput: pass --throughput, --record, --results or --bound")
    own = hardware.get(s.hardware) if s.hardware else None
    target = hardware.get(class_id) if class_id else own
    if target is None or (own is not None and target.id == own.id):
        on = f" on {own.id}" if own else ""
        return Throughput(value, "scenario", f"scenario {s.name}: {value:g} video-min per GPU-hour{on} (not measured)",
                          own)
    if own is None:
        raise UsageError(f"--hardware {target.id}: scenario {s.name} names no hardware class to scale its throughput "
                         "from; pass --throughput N for that GPU")
    ratio = target.bf16_tflops / own.bf16_tflops
    scaled = _checked(value * ratio, f"scenario {s.name} scaled to {target.id}")
    return Throughput(scaled, "scaled", f"scenario {s.name}: {value:g} video-min per GPU-hour on {own.id}, SCALED to "
                      f"{target.id} by peak bf16 FLOP/s ({target.bf16_tflops:g}/{own.bf16_tflops:g} = {ratio:.3g}x): "
                      f"{scaled:.4g} (an assumption, not a measurement)", target)


def _trust(r: ResultRecord, label: str, allow_toy: bool) -> list[str]:
    """Refuse what a fleet must not be sized from; return the warnings --allow-toy turns refusals into."""

    if not r.complete:
        reason = f" ({shown(r.incomplete_reason)})" if r.incomplete_reason else ""
        raise UsageError(f"{label} is incomplete{reason}: a fleet is sized from complete runs only; rerun it")
    problems = []
    if r.is_cpu:
        problems.append(f"was made on a CPU ({shown(r.hardware_class)})")
    if r.is_tiny:
        problems.append(f"was made with the toy spec {shown(r.spec.name)}")
    if problems and not allow_toy:
        raise UsageError(f"{label} {problems[0]}: it says nothing about what video costs on GPUs; {TOY_HINT}")
    return [f"{label} {' and '.join(problems)}: this fleet is a toy, not an estimate (--allow-toy)"] if problems \
        else []


def _setting(r: ResultRecord) -> str:
    st = r.settings
    return f"{st.width}x{st.height}, {st.num_frames} frames @ {st.fps:g} fps, {st.steps} steps"


def _power_per_gpu(r: ResultRecord) -> float | None:
    # The telemetry's average is what its backend measured; on a multi-GPU run that is not one GPU's draw. A
    # step-sampled run's measured average covers its skipped steps too: its extrapolated average stands for the run.
    if r.settings.gpus_used != 1:
        return None
    return r.summary.extrapolated_avg_power_w if r.is_sampled else r.telemetry.summary.avg_power_w


_SAMPLED_MEDIAN = (", STEP-SAMPLED (each generation computed a few denoising steps and its others are extrapolated "
                   "from them; each record says its basis and spread)")


def _sampled(r: ResultRecord) -> str:
    """How a step-sampled record's figure was made, for its source line; '' for a full run."""
    s = r.summary
    if not r.is_sampled:
        return ""
    spread = "n/a" if s.sample_step_rel_stdev is None else f"{s.sample_step_rel_stdev:.1%}"
    return (f", STEP-SAMPLED ({s.extrapolated_steps} of {r.settings.steps} denoising steps extrapolated from "
            f"{s.sample_steps} computed ones, spread {spread}: {s.extrapolated_denoise_share:.0%} of the denoise time)")


def from_record(path: str, class_id: str | None = None, allow_toy: bool = False) -> Throughput:
    """One record's measured throughput, on the catalogue class of the GPU it ran on."""

    label = f"record {shown(Path(path).name)}"
    r = load_checked(path)
    warnings = _trust(r, label, allow_toy)
    hw = None if r.is_cpu else hardware.match_gpu(r.hardware_class)
    if class_id:
        asked = hardware.get(class_id)
        if hw is None:
            raise UsageError(f"--hardware {asked.id}: the record's GPU {shown(r.hardware_class)} is not in the "
                             "catalogue and a record's GPU cannot be relabelled; drop --hardware and give figures "
                             "with --set")
        if asked.id != hw.id:
            raise UsageError(f"--hardware {asked.id} disagrees with the record's GPU {shown(r.hardware_class)} "
                             f"({hw.id}); drop --hardware")
    value = _checked(per_gpu(r), f"{label}: its throughput")
    measured = "step-sampled" if r.is_sampled else "measured"
    source = (f"{label}: {shown(r.spec.name)} ({_setting(r)}) on {shown(r.hardware_class)}, {value:.4g} video-min per "
              f"GPU-hour {measured}{_sampled(r)}")
    if hw is None:
        source += "; that GPU is not in the hardware catalogue"
    interval, basis = measured_interval(value, r.latencies_s())
    return Throughput(value, "record", source, hw, _power_per_gpu(r), settings_key(r), tuple(warnings), made_of(r),
                      interval, basis, "step-sampled" if r.is_sampled else "measured")


def per_gpu(r: ResultRecord) -> float:
    """Video-min per GPU-hour a fleet can count on: on a multi-GPU record the server's, over the window every GPU was
    held (a GPU waiting for a slower one counts), else the record's own figure."""
    if r.settings.gpus_used > 1 and r.summary.server_video_minutes_per_gpu_hour is not None:
        return r.summary.server_video_minutes_per_gpu_hour
    return r.summary.video_minutes_per_gpu_hour


def _scan(root: Path) -> tuple[list[tuple[Path, ResultRecord]], list[str]]:
    """Every loadable measured record under root (references, journals and toy/ left out), each run once as compare
    counts it (collect.Seen: a copy under a new run id would move the median), and one line per file left out."""

    records, skipped = scan(root)
    seen, kept = Seen(), []
    for path, record in records:
        repeat = seen.repeat(path, record)
        if repeat is None:
            kept.append((path, record))
        else:
            skipped.append(repeat)
    return kept, skipped


def _one_setting(groups: dict[str, list], settings: str | None, what: str) -> str:
    if settings is not None:
        if settings not in groups:
            raise UsageError(f"--settings {shown(settings)}: no {what} at that setting; settings: {', '.join(groups)}")
        return settings
    if len(groups) > 1:
        listing = "; ".join(f"{k} ({len(v)} record{'s' if len(v) != 1 else ''})" for k, v in list(groups.items())[:6])
        raise UsageError(f"{what} were made at {len(groups)} settings and a median over different settings is a wrong "
                         f"number: {listing}; choose one with --settings KEY")
    return next(iter(groups))


def from_results(root: str, model: str, class_id: str, settings: str | None = None,
                 allow_toy: bool = False) -> Throughput:
    """The median measured throughput of complete records of `model` on `class_id` at one setting, under root."""

    hw = hardware.get(class_id)
    folder = Path(root)
    if not folder.is_dir():
        raise UsageError(f"--results {shown(root)}: not a folder; give the results folder (e.g. ./results)")
    records, bad = _scan(folder)
    matching = [(p, r) for p, r in records if r.spec.name == model and (m := hardware.match_gpu(r.hardware_class))
                and m.id == hw.id]
    complete = [(p, r) for p, r in matching if r.complete]
    what = f"records of {shown(model)} on {hw.id} under {shown(root)}"
    if not complete:
        raise UsageError(f"no complete {what}: run and submit one first{skipped_note(bad)}")
    warnings = [w for p, r in complete for w in _trust(r, f"record {shown(p.name)}", allow_toy)]
    warnings += [f"skipped {line}" for line in bad]  # one line per file, as every reader of many files says it
    if len(matching) > len(complete):
        warnings.append(f"skipped {len(matching) - len(complete)} incomplete record(s)")
    groups: dict[str, list[ResultRecord]] = {}
    for _, r in complete:
        groups.setdefault(settings_key(r), []).append(r)
    key = _one_setting(groups, settings, what)
    chosen = groups[key]
    values = [_checked(per_gpu(r), f"a record of {model}") for r in chosen]
    median = statistics.median(values)
    powers = [_power_per_gpu(r) for r in chosen]
    power = statistics.median(powers) if all(p is not None for p in powers) else None
    sampled = chosen[0].is_sampled  # the settings key says sampled=K: all of them or none
    kind = "step-sampled record(s)" if sampled else "record(s)"
    # the median's range: the widest of the records' own 95% intervals (a record of one generation has none)
    ranges = [measured_interval(v, r.latencies_s())[0] for v, r in zip(values, chosen)]
    known = [x for x in ranges if x is not None]
    interval = (min(lo for lo, _ in known), max(hi for _, hi in known)) if known else None
    basis = "measured: the widest of the records' 95% intervals" if known else "no interval: single generations"
    return Throughput(median, "results", f"results {shown(root)}: median of {len(values)} {model} {kind} on {hw.id} at "
                      f"{key}, {median:.4g} video-min per GPU-hour {'step-sampled' if sampled else 'measured'}"
                      f"{_SAMPLED_MEDIAN if sampled else ''}", hw, power, key, tuple(warnings), made_of(chosen[0]),
                      interval, basis, "step-sampled" if sampled else "measured")


def from_bound(model: str, class_id: str, allow_toy: bool = False, dtype: str = "bfloat16") -> Throughput:
    """The roofline bound: 100% of the class's peak FLOP/s at the model's canonical settings (not measured)."""

    spec, hw = load_spec(model), hardware.get(class_id)
    warnings = []
    if spec.tiny:
        if not allow_toy:
            raise UsageError(f"--bound {model}: a toy spec's bound says nothing about what video costs; bound a real "
                             "model, or pass --allow-toy")
        warnings.append(f"--bound {model} is a toy spec: this fleet is a toy, not an estimate (--allow-toy)")
    st = spec.settings
    b = roofline.bound(cached_flops(spec, st), hw, metrics.video_seconds(st.num_frames, st.fps), dtype)
    value = _checked(b["bound_video_minutes_per_gpu_hour"], f"--bound {model}")
    made = Made(spec.name, st.width, st.height, metrics.video_seconds(st.num_frames, st.fps), st.steps)
    return Throughput(value, "bound", f"roofline bound: {model} at its canonical setting on {hw.id} at 100% of peak "
                      f"{dtype}, {value:.4g} video-min per GPU-hour (an upper limit, not a measurement)", hw,
                      warnings=tuple(warnings), made=made, evidence="bound")


def from_prediction(req: Request, p: Prediction) -> Throughput:
    """The cost model's throughput (bench.analysis.predict), labelled with its rung's kind and validated error."""
    value = _checked(p.video_min_per_gpu_hour.value, f"the prediction for {p.model} on {p.hardware}")
    st = req.settings
    made = Made(p.model, st.width, st.height, metrics.video_seconds(st.num_frames, st.fps), st.steps)
    evidence = p.rung if p.rung in ("measured", "step-sampled") else \
        "published" if p.video_min_per_gpu_hour.kind == "published" else "predicted"
    interval, basis = None, f"{evidence}: no interval"
    if p.error_interval is not None:
        lo, hi = p.error_interval  # predicted / actual - 1, so actual throughput = predicted x (1 + error)
        interval = (value * (1 + lo), value * (1 + hi))
        basis = f"{evidence}: the '{p.rung}' rung's error in `t2vbench predict --validate`, {lo:+.1%} to {hi:+.1%}" \
            if evidence != "published" else f"published: the spread of the systems published, {lo:+.1%} to {hi:+.1%}"
    hw = hardware.match_gpu(p.hardware) if not p.hardware.startswith("cpu:") else None
    source = (f"cost model ({p.rung} rung): {p.model} ({p.setting}) on {p.hardware}, {value:.4g} video-min per GPU-hour "
              f"{evidence}; {p.video_min_per_gpu_hour.basis}")
    return Throughput(value, "predicted", source, hw, made=made, interval=interval, interval_basis=basis,
                      evidence=evidence)


def select(s: Scenario, *, throughput: float | None = None, record: str | None = None, results: str | None = None,
           bound: str | None = None, model: str | None = None, hardware_id: str | None = None,
           settings: str | None = None, allow_toy: bool = False, predicted: str | None = None,
           evidence: Sequence[str] = ("results",)) -> Throughput:
    """The throughput the options ask for (at most one source; none: the scenario's own). `predicted` names a model
    for the cost model to predict on hardware_id (default h100-sxm) from the files under `evidence`, at the scenario's
    [video] size where it has one. Raises UsageError."""
    if settings is not None and not results:
        raise UsageError("--settings chooses among the records of --results; use it with --results")
    if model is not None and not results:
        raise UsageError("--model names the model of --results; for the bound use --bound MODEL")
    if throughput is not None:
        return given(throughput, hardware_id or s.hardware)
    if record:
        return from_record(record, hardware_id, allow_toy)
    if results:
        if not (model and hardware_id):
            raise UsageError("--results needs --model and --hardware")
        return from_results(results, model, hardware_id, settings, allow_toy)
    if bound:
        return from_bound(bound, hardware_id or "h100-sxm", allow_toy)
    if predicted:
        found = [p for p in evidence if Path(p).exists()]
        if not found:  # else "no evidence for MODEL on CLASS" blames the class when the folder itself is missing
            raise UsageError(f"fleet --predict reads ./{', ./'.join(evidence)}, which is not here: run it from the "
                             "t2vbench checkout (its results/ holds the records and published figures)")
        return predict_for(s, predicted, hardware_id or "h100-sxm", gather(found))
    return from_scenario(s, hardware_id)


def from_mix(s: Scenario, mc: MixCost) -> Throughput:
    """A [[requests]] mix costed kind by kind (bench.analysis.demand) as one throughput: the share-weighted harmonic
    mean, labelled with the weakest kind of evidence among its kinds."""
    value = _checked(mc.video_min_per_gpu_hour, f"the mix of scenario {s.name} on {mc.hardware}")
    kinds = {k.kind for k in mc.kinds}
    evidence = next((k for k in ("predicted", "published", "step-sampled") if k in kinds), "measured")
    parts = "; ".join(f"{k.share:.0%} {k.name}: {k.video_min_per_gpu_hour:.3g} {k.kind} ({k.rung})" for k in mc.kinds)
    basis = f"{evidence}: each kind's interval (its rung's validated error), mixed" if mc.interval else \
        f"{evidence}: no interval (a kind has none)"
    v = s.video
    made = Made(mc.model, v.width, v.height, v.seconds or 0.0, 0) if v else None  # the scenario's own video
    return Throughput(value, "predicted", f"cost model, the scenario's mix of {len(mc.kinds)} kinds on {mc.hardware}"
                      f" ({mc.model}), {value:.4g} video-min per GPU-hour {evidence}: {parts}",
                      hardware.match_gpu(mc.hardware), made=made, interval=mc.interval, interval_basis=basis,
                      evidence=evidence)


def predict_for(s: Scenario, model: str, class_id: str, evidence: Evidence) -> Throughput:
    """The cost model's throughput of `model` on `class_id` at the scenario's video size (the model's own setting
    otherwise), or of its [[requests]] mix kind by kind. Raises UsageError where the class has no evidence or a size
    is impossible for the model."""
    if s.requests:
        return from_mix(s, demand.cost_demand(s, class_id, evidence, model))
    spec = load_spec(model)
    overrides = {"width": s.video.width, "height": s.video.height} if s.video else {}
    if spec.tiny and overrides:
        overrides = {}  # a toy spec is costed at its own tiny size
    req = predict.request(model, class_id, overrides)
    return from_prediction(req, predict.predict(req, evidence))
