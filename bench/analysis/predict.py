"""`t2vbench predict MODEL --hardware CLASS`: seconds per video, video minutes per GPU-hour, energy per video and
whether it fits memory, from the best evidence on that class, and which evidence it was. The rungs, best first:

  measured        a complete record of this model, settings, dtype and serving options on this class: no prediction
  step-sampled    such a record that computed only some of the steps: its mean step x every step
  calibration     `t2vbench calibrate` of this model on this class (same dtype and options), scaled to the settings
  class           the efficiency measured on this class: records and calibrations of other models, settings or
                  options, fitted stage by stage (bench.analysis.predict_model)
  published       published figures on this class (one scale over their totals); a published figure of exactly this
                  model and setting is shown as published, not predicted

Efficiency never crosses classes: a class without evidence is refused, naming the command that would give some
(the validation shows why: ML.ENERGY's B200 runs 1.2-1.4x its H100 where the peak ratio says 2.3x).
Every figure carries its kind (measured, predicted, published) and its basis; a prediction carries the error its
rung showed in `t2vbench predict --validate` (PREDICT_ERRORS, kept equal to it by tests/test_predict.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.analysis import predict_evidence as ev
from bench.analysis.physics import computed_in_fp8
from bench.analysis.predict_figures import (
    BYTES_PER_PARAM,
    GIB,
    PREDICT_ERRORS,
    Figure,
    Prediction,
    assemble,
    energy_figure,
    fitted,
    mean_power,
    peak_memory,
    rates_of,
)
from bench.analysis.predict_work import Work, work
from bench.analysis.reference import reference_settings
from bench.core.errors import UsageError
from bench.core.specs import Settings, check_settings, load_spec, preset_settings
from bench.records.calibration import matching
from bench.records.key import settings_key
from bench.records.schema import ResultRecord
from bench.run.calibrate import FAMILIES as CALIBRATED_FAMILIES
from bench.run.options import Options
from bench.run.options import check as check_options

__all__ = ["GIB", "PREDICT_ERRORS", "Figure", "Prediction", "predict", "request", "run_predict"]


def request(model_name: str, hardware_id: str, overrides: dict[str, Any] | None = None, preset: str | None = None,
            options: dict[str, Any] | None = None, parallel: str | None = None, dtype: str | None = None
            ) -> ev.Request:
    """The request a command line makes (options: serving options by name, as bench.run.options.Options has them).
    Raises UsageError for an unknown model, class, preset, setting or option value."""
    spec = load_spec(model_name)
    class_id = hardware_id if hardware_id.startswith("cpu:") else ev.hardware_of(hardware_id).id
    settings = preset_settings(spec, preset).replace(**(overrides or {}))
    check_settings(spec, settings)
    chosen = dtype or ("float32" if class_id.startswith("cpu:") else "bfloat16")
    if chosen not in BYTES_PER_PARAM:
        raise UsageError(f"--dtype {chosen}: use {', '.join(BYTES_PER_PARAM)}")
    if options and set(options) <= {f.name for f in dataclasses.fields(Options)}:
        check_options(Options(**options), "cuda", "random")  # names and choices, as run checks them
    gpus = ev.parallel_gpus({"parallel": parallel}) if parallel else 1
    return ev.Request(spec, class_id, settings, chosen, ev.comparable(options or {}), gpus)


def predict(req: ev.Request, evidence: ev.Evidence) -> Prediction:
    """The figures from the best rung that has evidence. Raises UsageError when none has (one line, naming the
    command that would give some) or the model's FLOPs cannot be counted where a prediction needs them."""
    for rung in (_measured, _step_sampled, _calibration, _class_efficiency, _published):
        found = rung(req, evidence)
        if found is None:
            continue
        published = _usable_references(req, evidence, exact=True)
        if published and found.rung not in ("measured", "published"):
            ref, _, (total_s, _, how) = published[0]
            note = f"{ref.source.id} published {total_s:,.1f} s for this model and setting on this class ({how}; " \
                   "another software stack, shown for comparison)"
            found = dataclasses.replace(found, caveats=(*found.caveats, note))
        if found.mfu is not None and found.mfu > 1:  # no rung may answer what physics forbids
            raise UsageError(f"the {found.rung} rung predicts {found.mfu:.0%} of {req.hardware}'s peak FLOP/s for "
                             f"{req.spec.name}, which is impossible: its evidence ({'; '.join(found.evidence)[:200]}) "
                             "cannot stand for this model here")
        return found
    raise UsageError(refusal(req))


def refusal(req: ev.Request) -> str:
    """One line: no evidence, and the command that would give some there; a model whose weights alone exceed one
    GPU of the class is pointed at a calibration (one block fits) or an offloaded step-sampled run, never at a plain
    run that would be refused."""
    name, where = req.spec.name, req.hardware
    hw = ev.hardware_of(where)
    params = req.spec.published_params
    too_big = hw is not None and params is not None and params * BYTES_PER_PARAM.get(req.dtype, 2) > hw.memory_gb * 1e9
    run = f"'t2vbench run {name} --weights random --sample-steps 5" + (" --offload group'" if too_big else "'")
    how = f"'t2vbench calibrate {name}' on {where} (one block fits), or {run} there" if _calibratable(req.spec.family) \
        else f"{run} on {where}"
    return (f"no evidence for {name} on {where}: no record, calibration or published figure of that class was found; "
            f"measure some with {how} (then pass the folder with --results)")


def _calibratable(family: str) -> bool:
    return family in CALIBRATED_FAMILIES


def _on_class(req: ev.Request, evidence: ev.Evidence) -> list[tuple[Path, ResultRecord]]:
    cpu = req.hardware.startswith("cpu:")
    return [(p, r) for p, r in evidence.records if ev.class_of(r.hardware_class) == req.hardware
            and r.settings.dtype == req.dtype and (cpu or not r.is_toy)]


def _exact(req: ev.Request, evidence: ev.Evidence, sampled: bool) -> list[tuple[Path, ResultRecord]]:
    return [(p, r) for p, r in _on_class(req, evidence) if r.spec.name == req.spec.name
            and ev.same_cost(ev.settings_of(r.settings), req.settings) and ev.options_match(req.options,
                                                                                               r.settings.options)
            and ev.parallel_gpus(r.settings.options) == req.parallel_gpus and bool(ev.sampled_steps(r)) == sampled]


def _measured(req: ev.Request, evidence: ev.Evidence) -> Prediction | None:
    group = _exact(req, evidence, sampled=False)
    if not group:
        return None
    records = [r for _, r in group]
    stages = ev.record_stages(records)
    energies = [r.telemetry.summary.energy_per_video_j for r in records]
    energy = Figure(None, "measured", "not measured (no energy counter)") if None in energies else Figure(
        sum(e * r.summary.generations for e, r in zip(energies, records)) / sum(r.summary.generations
                                                                               for r in records),
        "measured", "the records' energy counter")
    return assemble(req, "measured", "measured", [ev.describe_record(group[0][0], records)], stages, energy,
                    peak_memory(records), None)


def _step_sampled(req: ev.Request, evidence: ev.Evidence) -> Prediction | None:
    group = _exact(req, evidence, sampled=True)
    if not group:
        return None
    records = [r for _, r in group]
    stages = ev.record_stages(records)
    extrapolated = [getattr(r.summary, "extrapolated_energy_per_video_j", None) for r in records]
    if None in extrapolated:
        power = mean_power([r.telemetry.summary.avg_power_w for r in records], "the records' average power")
        energy = energy_figure(req, stages["total_s"], power)
    else:
        energy = Figure(sum(e * r.summary.generations for e, r in zip(extrapolated, records)) /
                        sum(r.summary.generations for r in records), "predicted",
                        "the records' step energies, skipped steps extrapolated")
    return assemble(req, "step-sampled", "predicted", [ev.describe_record(group[0][0], records)], stages, energy,
                    peak_memory(records), _work_or_none(req))


def _calibration(req: ev.Request, evidence: ev.Evidence) -> Prediction | None:
    found = [(p, c) for p, c in _calibrations_on(req, evidence) if c.spec.name == req.spec.name]
    if not found:
        return None
    w = work(req.spec, req.settings)
    observations = [ev.calibration_observation(c, _calibrated_work(req, p, c), rates_of(req)) for p, c in found]
    found_p = fitted(req, "calibration", w, observations, [f"calibration: {p}" for p, _ in found], [None], ())
    if found_p.mfu is not None and found_p.mfu > 1:  # the one rung no gate has judged against the FLOP bound
        raise UsageError(f"calibration {found[0][0]} implies {found_p.mfu:.0%} of {req.hardware}'s peak FLOP/s for "
                         f"{req.spec.name}, which is impossible: it was not measured on that class; drop it")
    return found_p


def _calibrated_work(req: ev.Request, path: Path, calibration: Any) -> Work:
    """The work of one video at the settings a calibration of this model was made at. Raises UsageError naming the
    calibration where its settings are a size the model cannot take (its shapes were not made at them)."""
    try:
        return work(req.spec, ev.settings_of(calibration.settings))
    except UsageError as exc:
        raise UsageError(f"calibration {path} claims settings its model cannot take: {exc}") from None


def _calibrations_on(req: ev.Request, evidence: ev.Evidence) -> list[tuple[Path, Any]]:
    return [(p, c) for p, c in evidence.calibrations if ev.class_of(c.hardware_class) == req.hardware
            and matching(c, c.hardware_class, req.dtype, req.options) is None]


def _class_efficiency(req: ev.Request, evidence: ev.Evidence) -> Prediction | None:
    groups: dict[tuple[str, str], list[tuple[Path, ResultRecord]]] = {}
    for p, r in _on_class(req, evidence):
        groups.setdefault((r.spec.name, settings_key(r)), []).append((p, r))
    same = {k: g for k, g in groups.items() if ev.options_match(req.options, g[0][1].settings.options)}
    caveats = () if same or not groups else (
        "no evidence on this class ran with the asked serving options: the fit is over runs with others "
        f"({', '.join(sorted({k[1] for k in groups}))}); options are not modelled",)
    observations, lines, powers = [], [], []
    for group in (same or groups).values():
        w = _evidence_work(group[0][1].spec.name, ev.settings_of(group[0][1].settings))
        if w is not None:
            records = [r for _, r in group]
            observations.append(ev.record_observation(records, w, rates_of(req)))
            lines.append(ev.describe_record(group[0][0], records))
            powers += [r.telemetry.summary.avg_power_w for r in records]
    for p, c in _calibrations_on(req, evidence):
        w = _evidence_work(c.spec.name, ev.settings_of(c.settings))
        if w is not None:
            observations.append(ev.calibration_observation(c, w, rates_of(req)))
            lines.append(f"calibration: {c.spec.name} ({p})")
    if not observations:
        return None
    return fitted(req, "class", work(req.spec, req.settings), observations, lines, powers, caveats)


def _usable_references(req: ev.Request, evidence: ev.Evidence, exact: bool = False) -> list[tuple[Any, Settings, Any]]:
    """Published measurements on the class with a countable setting and a usable time figure: (reference, its
    settings, (seconds, GPUs, how to read it)); with exact, only those of the asked model, setting and GPUs."""
    usable = []
    for _, ref in evidence.references:
        settings = reference_settings(ref) if ref.measured and ref.hardware_class == req.hardware else None
        found = ev.reference_seconds(ref) if settings is not None else None
        if found is not None:
            usable.append((ref, settings, found))
    if not exact:
        return usable
    same = [u for u in usable if u[0].model == req.spec.name and ev.same_cost(u[1], req.settings)
            and u[2][1] == req.parallel_gpus]
    return sorted(same, key=lambda u: u[2][0])  # fastest first: the median of several systems is the middle one


def _published(req: ev.Request, evidence: ev.Evidence) -> Prediction | None:
    usable = _usable_references(req, evidence)
    exact = _usable_references(req, evidence, exact=True)
    if exact:
        return _published_exact(req, exact)
    same_gpus = [u for u in usable if u[2][1] == req.parallel_gpus]  # parallel runs fit parallel requests
    observations, lines, powers = [], [], []
    for ref, settings, _ in same_gpus or usable:
        w = _evidence_work(ref.model, settings)
        obs = ev.reference_observation(ref, w) if w is not None else None
        if obs is not None:
            observations.append(obs)
            lines.append(ev.describe_reference(ref))
            powers.append(None if ref.avg_power_w is None else ref.avg_power_w / ref.gpus)
    if not observations:
        return None
    return fitted(req, "published", work(req.spec, req.settings), observations, lines, powers, ())


def _published_exact(req: ev.Request, exact: list[tuple[Any, Settings, Any]]) -> Prediction:
    """A published figure of exactly this model and setting; of several systems (MLPerf's submitters), the median,
    with the others' spread as its interval: the actual figure of another system lies anywhere in it."""
    ref, _, (total_s, _, how) = exact[(len(exact) - 1) // 2]
    energy = Figure(ref.energy_per_video_j, "published",  # over every GPU the video occupied
                    ref.source.id if ref.energy_per_video_j is not None else f"{ref.source.id} gives none")
    found = assemble(req, "published", "published", [ev.describe_reference(ref)], {"total_s": total_s}, energy, None,
                     _work_or_none(req), basis=f"{ref.source.id}: {how}", fp8=computed_in_fp8(ref))
    if len(exact) == 1:
        return found
    fastest_s, slowest_s = exact[0][2][0], exact[-1][2][0]
    note = (f"{len(exact)} published systems of this model and setting on this class took {fastest_s:,.1f} to "
            f"{slowest_s:,.1f} s per video per GPU; the median is shown, the spread is its interval")
    return dataclasses.replace(found, error_interval=(total_s / slowest_s - 1, total_s / fastest_s - 1),
                               caveats=(*found.caveats, note))


def _evidence_work(name: str, settings: Settings) -> Work | None:
    """The work of an evidence run, or None where its model is not one of ours or cannot be counted (Mochi)."""
    try:
        return work(load_spec(name), settings)
    except UsageError:
        return None


def _work_or_none(req: ev.Request) -> Work | None:
    return _evidence_work(req.spec.name, req.settings)


def run_predict(model_name: str, hardware_id: str, paths: Sequence[str | Path], calibrations: Sequence[str | Path] = (),
                **asked: Any) -> tuple[Prediction, tuple[str, ...]]:
    """predict() from a command line's values: the prediction and the files skipped. Raises UsageError."""
    req = request(model_name, hardware_id, **asked)
    evidence = ev.gather(paths, calibrations)
    try:
        return predict(req, evidence), evidence.skipped
    except UsageError as exc:  # a refusal says which files were left out, or a skipped forgery looks like no data
        if not evidence.skipped:
            raise
        raise UsageError(f"{exc}; {len(evidence.skipped)} file(s) skipped, e.g. {evidence.skipped[0]}") from None



def run_seconds(config: Any, hardware_id: str, evidence: ev.Evidence) -> float | None:
    """Predicted wall seconds of a `t2vbench run` (a bench.run.runner.RunConfig) on a class: its warm-up and timed
    generations, a step-sampled run computing each expert's first step and sample_steps more; model building and
    process start are not included. None where the evidence cannot predict it (a sweep's dry run shows '-')."""
    options = {k: v for k, v in dataclasses.asdict(config.options).items() if v not in (None, False)}
    try:
        req = request(config.model, hardware_id, overrides=config.overrides, preset=config.preset, options=options,
                      parallel=config.parallel, dtype=None if config.dtype == "auto" else config.dtype)
        stages = predict(req, evidence).stages_s
    except UsageError:
        return None
    denoise = stages["denoise_s"]
    sampled = getattr(config, "sample_steps", None)
    if sampled:
        experts = 2 if "transformer_2" in req.spec.components else 1
        denoise *= min(1.0, (sampled + experts) / req.settings.steps)
    generations = config.warmup + (config.repeats or 3)
    return generations * (stages["total_s"] - stages["denoise_s"] + denoise)
