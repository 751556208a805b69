"""What `t2vbench predict` prints: a prediction as a short table (every figure with its kind and basis) or JSON, and
the validation as a table of cases with their errors and a summary. Functions return text; only the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.analysis.predict import GIB, Figure, Prediction
from bench.analysis.predict_validate import GOAL, GOAL_GROUPS, Case
from bench.core.text import clean
from bench.present.text import table

HEADER = ["figure", "value", "kind", "basis"]


def _value(f: Figure, fmt: str, unit: str, scale: float = 1.0) -> str:
    return "n/a" if f.value is None else f"{f.value / scale:{fmt}} {unit}".rstrip()


def _memory(p: Prediction) -> str:
    if p.memory_bytes.value is None:
        return "n/a"
    of = "" if p.memory_capacity_bytes is None else \
        f" of {p.memory_capacity_bytes / GIB:.0f} GiB: {'fits' if p.fits else 'does NOT fit'}"
    return f"{p.memory_bytes.value / GIB:.1f} GiB{of}"


def _interval(p: Prediction) -> str:
    """The validated error of the rung, turned into the range the actual seconds fell in for its cases."""
    if p.error_interval is None or p.seconds_per_video.value is None:
        return "not validated yet" if p.seconds_per_video.kind == "predicted" else ""
    low, high = p.error_interval
    s = p.seconds_per_video.value
    if p.seconds_per_video.kind == "published":  # several published systems: the median, and their spread
        return f"the published systems took {s / (1 + high):,.4g} to {s / (1 + low):,.4g} s (the median is shown)"
    return (f"{low:+.1%} to {high:+.1%} in `predict --validate`: actual {s / (1 + high):,.4g} to "
            f"{s / (1 + low):,.4g} s if it errs as those cases did")


def format_prediction(p: Prediction, skipped: Sequence[str] = ()) -> str:
    kind = {"measured": "MEASURED", "published": "PUBLISHED"}.get(p.seconds_per_video.kind, "PREDICTED")
    rows = [["seconds / video", _value(p.seconds_per_video, ",.4g", "s"), p.seconds_per_video.kind,
             p.seconds_per_video.basis],
            ["video-min / GPU-hour", _value(p.video_min_per_gpu_hour, ".3g", ""), p.video_min_per_gpu_hour.kind,
             p.video_min_per_gpu_hour.basis],
            ["energy / video", _value(p.energy_per_video_j, ",.1f", "kJ", 1000), p.energy_per_video_j.kind,
             p.energy_per_video_j.basis],
            ["memory", _memory(p), p.memory_bytes.kind, p.memory_bytes.basis]]
    lines = [f"{p.model} on {p.hardware}: {p.setting}", f"{kind} from rung '{p.rung}'", table(rows, HEADER)]
    stages = {k: v for k, v in p.stages_s.items() if k != "total_s"}
    if stages:
        lines.append("stages (s, " + p.seconds_per_video.kind + ")  " +
                     " | ".join(f"{k.removesuffix('_s')} {v:,.4g}" for k, v in stages.items()))
    if p.mfu is not None:
        lines.append(f"implied MFU  {p.mfu:.1%} ({p.seconds_per_video.kind})")
    interval = _interval(p)
    if interval:
        lines.append(f"{'spread' if p.seconds_per_video.kind == 'published' else 'error of this rung'}  {interval}")
    lines += ["evidence:"] + [f"  {clean(e)}" for e in p.evidence]
    lines += [f"caveat: {clean(c)}" for c in p.caveats]
    lines += [f"skipped: {clean(s)}" for s in skipped]
    return "\n".join(lines)


def _figure_json(f: Figure) -> dict[str, Any]:
    return {"value": f.value, "kind": f.kind, "basis": f.basis}


def prediction_json(p: Prediction, skipped: Sequence[str] = ()) -> dict[str, Any]:
    return {"model": p.model, "hardware": p.hardware, "setting": p.setting, "rung": p.rung,
            "seconds_per_video": _figure_json(p.seconds_per_video),
            "video_min_per_gpu_hour": _figure_json(p.video_min_per_gpu_hour),
            "energy_per_video_j": _figure_json(p.energy_per_video_j),
            "memory_bytes": _figure_json(p.memory_bytes), "memory_capacity_bytes": p.memory_capacity_bytes,
            "fits": p.fits, "stages_s": p.stages_s, "mfu": p.mfu,
            "error_interval": list(p.error_interval) if p.error_interval else None,
            "evidence": list(p.evidence), "caveats": list(p.caveats), "skipped": list(skipped)}


def _number(value: float, unit: str) -> str:
    return f"{value:.3f}x" if unit == "x" else f"{value:,.4g} s"


def format_validation(cases: Sequence[Case], summary: dict[str, Any]) -> str:
    """Every case (predicted, actual, error, basis), then per group its error range and the goal."""
    rows = [[c.group, c.name, _number(c.predicted, c.unit), _number(c.actual, c.unit), f"{c.error:+.1%}", c.basis]
            for c in cases]
    lines = [table(rows, ["group", "case", "predicted", "actual", "error", "basis"]), ""]
    for group, g in summary["groups"].items():
        lines.append(f"{group}: {g['cases']} case(s), error {g['min_error']:+.1%} to {g['max_error']:+.1%}, "
                     f"{g['within_goal']} within {GOAL:.0%}")
    if summary["goal_cases"]:
        lines.append(f"goal (same-stack ratios: {', '.join(GOAL_GROUPS)}): {summary['goal_within']} of "
                     f"{summary['goal_cases']} within {GOAL:.0%}; largest error {summary['goal_max_abs_error']:.1%}")
    return "\n".join(lines)


def validation_json(cases: Sequence[Case], summary: dict[str, Any]) -> dict[str, Any]:
    return {"cases": [{"group": c.group, "name": c.name, "predicted": c.predicted, "actual": c.actual,
                       "unit": c.unit, "error": c.error, "basis": c.basis} for c in cases], "summary": summary}
