"""`t2vbench estimate --scenario NAME`: the question t2vbench exists for, answered per hardware class.

For each class in the catalogue, the throughput of the scenario's nearest open model ([video] models, first that has
evidence on the class) at the scenario's video size comes from the best evidence there is (bench.analysis.predict:
measured > step-sampled > calibration > the class's fitted efficiency > published figures), labelled with its kind
and its interval (a measurement's 95% interval, or the error its rung showed in `predict --validate`). The fleet
(bench.analysis.fleet_estimate) is sized from it with the scenario's assumptions and their ranges. A class without
evidence gets no row, and the answer says what would give it one. The scenario's own published estimate is shown
beside, as published and as this tool reproduces it from the publication's own inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from bench.analysis import predict
from bench.analysis.demand import cost_demand
from bench.analysis.fleet_estimate import Estimate, estimate
from bench.analysis.predict_evidence import Evidence, gather
from bench.analysis.scenarios import Scenario
from bench.analysis.throughput import Throughput, from_mix, from_prediction, from_results, from_scenario
from bench.core.errors import UsageError
from bench.core.hardware import catalogue


@dataclasses.dataclass(frozen=True)
class Row:
    """One hardware class's answer."""

    hardware: str
    model: str
    estimate: Estimate
    rung: str  # the cost model's rung: measured, step-sampled, calibration, class, published
    fits: bool | None  # the model's weights in one GPU's memory (None: not known)
    mfu: float | None = None  # the prediction's implied share of the class's peak (None for a mix)
    evidence: tuple[str, ...] = ()  # what the prediction rests on, a line each (predict's evidence lines)


@dataclasses.dataclass(frozen=True)
class Headline:
    scenario: Scenario
    rows: list[Row]
    missing: list[tuple[str, str]]  # (class, why it has no row)
    as_published: Estimate | None  # the scenario's own throughput, where it gives one (Factorial's 5 per H100-hour)
    skipped: tuple[str, ...]  # evidence files that could not be used
    overridden: tuple[str, ...] = ()  # scenario fields set on the command line (--set)


def headline(s: Scenario, overridden: set[str], paths: Sequence[str | Path], results: str | None = None) -> Headline:
    """The answer for every catalogue class from the evidence under `paths`; `results` (a registry folder) refines a
    measured class's interval from its records. Raises UsageError for a scenario without [video] or a path that does
    not exist."""
    if s.video is None:
        raise UsageError(f"scenario {s.name} has no [video] table: estimate needs to know what video the demand is "
                         "(see `t2vbench fleet --explain`)")
    evidence = gather(paths)
    rows, missing = [], []
    for class_id in catalogue():
        found = _row(s, overridden, class_id, evidence, results)
        if isinstance(found, Row):
            rows.append(found)
        else:
            missing.append((class_id, found))
    if not rows and missing and not any(why.startswith("no evidence for") for _, why in missing):
        raise UsageError(missing[0][1])  # not missing evidence but an impossible setting: say so, as predict does
    published = estimate(s, from_scenario(s), overridden, command="estimate") \
        if s.throughput_video_min_per_gpu_hour is not None else None
    return Headline(s, rows, missing, published, evidence.skipped, tuple(sorted(overridden)))


def _row(s: Scenario, overridden: set[str], class_id: str, evidence: Evidence, results: str | None) -> Row | str:
    """A class's Row, or the one-line reason it has none."""
    reasons = []
    for model in s.video.models:
        try:
            mfu, lines = None, ()
            if s.requests:  # a mix: each kind costed from its own evidence
                mc = cost_demand(s, class_id, evidence, model)
                tp, rung = from_mix(s, mc), "mix: " + ", ".join(sorted({k.rung for k in mc.kinds}))
                fits = None if any(k.fits is None for k in mc.kinds) else all(k.fits for k in mc.kinds)
            else:
                req = predict.request(model, class_id, {"width": s.video.width, "height": s.video.height})
                p = predict.predict(req, evidence)
                tp, rung, fits, mfu, lines = from_prediction(req, p), p.rung, p.fits, p.mfu, p.evidence
        except UsageError as exc:
            reasons.append(str(exc))
            continue
        if rung in ("measured", "step-sampled") and results:
            tp = _with_measured_interval(tp, results, model, class_id)
        return Row(class_id, model, estimate(s, tp, overridden, command="estimate"), rung, fits, mfu, tuple(lines))
    return reasons[0] if reasons else f"no model of scenario {s.name} could be costed"


def _with_measured_interval(tp: Throughput, results: str, model: str, class_id: str) -> Throughput:
    """A measured prediction's throughput with the 95% interval of its records, where the registry holds them at one
    setting (the measured rung found records at the prediction's setting; the prediction keeps no latencies)."""
    try:
        measured = from_results(results, model, class_id)
    except UsageError:
        return tp
    return dataclasses.replace(tp, interval=measured.interval, interval_basis=measured.interval_basis)

