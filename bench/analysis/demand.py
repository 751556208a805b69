"""A scenario's demand costed kind by kind: each clip kind of its [[requests]] mix predicted on a hardware class from
the evidence (bench.analysis.predict, the same rungs and labels as `t2vbench predict`), and the mix as one throughput.

A fleet needs GPU-hours = sum over kinds of minutes_i / throughput_i, and minutes_i = share_i x the minutes demanded,
so the mix costs what ONE throughput costs:
    effective throughput = 1 / sum_i (share_i / throughput_i)      (the share-weighted harmonic mean)
and bench.analysis.fleet.size() takes it unchanged.

Each kind runs the scenario's video model (the first of [video] models, unless another is named) at
    frames = seconds x the model's fps, rounded to the nearest length the model takes (4k+1 for Wan)
with its width and height, and its steps and guidance where it gives them (guidance applies to every expert of a
two-expert model: a step-distilled kind runs without guidance in both).

Intervals: a predicted throughput carries its rung's validated error (Prediction.error_interval, predicted seconds /
actual - 1), so the actual throughput lies in [tp x (1 + low), tp x (1 + high)]; a measured or published figure is
taken as it is (its own spread is not carried); a predicted figure of a rung not validated yet has no interval, and
then neither has the mix. The effective throughput rises with every kind's, so the mix's interval is the mix of all
the kinds' lows and of all their highs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from bench.analysis import predict as predict_mod
from bench.analysis.predict_evidence import Evidence, Request
from bench.analysis.scenarios import RequestKind, Scenario
from bench.core.errors import UsageError
from bench.core.specs import LIMITS, Spec, load_spec
from bench.core.text import shown


@dataclasses.dataclass(frozen=True)
class KindCost:
    """One clip kind of the mix, costed: what the prediction said and how far it may be off."""

    name: str
    share: float
    setting: str  # as `t2vbench predict` names it: pixels, frames, fps, steps, guidance
    video_min_per_gpu_hour: float
    kind: str  # measured | predicted | published (the Prediction's label)
    rung: str  # measured | step-sampled | calibration | class | published
    basis: str
    interval: tuple[float, float] | None  # video-min per GPU-hour; None: a predicted figure not validated yet
    fits: bool | None  # the weights fit the class's memory (None: unknown)


@dataclasses.dataclass(frozen=True)
class MixCost:
    model: str
    hardware: str
    kinds: tuple[KindCost, ...]
    video_min_per_gpu_hour: float  # the effective throughput of the mix
    interval: tuple[float, float] | None  # None where a kind has none


def effective_throughput(shares: Sequence[float], throughputs: Sequence[float]) -> float:
    """1 / sum_i (share_i / throughput_i): the one throughput (video-min per GPU-hour) that needs the GPU-hours the
    mix needs. Shares are fractions of the video-minutes (summing to 1); raises ValueError for unequal lengths, no
    kinds, or a throughput that is not positive and finite."""
    if len(shares) != len(throughputs) or not shares:
        raise ValueError("give one throughput per share, at least one")
    if not all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in throughputs):
        raise ValueError(f"throughputs must be positive finite numbers, not {list(throughputs)}")
    return 1 / math.fsum(s / t for s, t in zip(shares, throughputs))


def frames_for(spec: Spec, seconds: float) -> int:
    """seconds x the spec's fps, rounded half up to the nearest frames_multiple x k + 1 (at least 1 frame)."""
    m = spec.frames_multiple
    k = max(0, math.floor((seconds * spec.settings.fps - 1) / m + 0.5))
    return m * k + 1


def kinds_of(s: Scenario) -> tuple[RequestKind, ...]:
    """The scenario's mix: its [[requests]], else one kind, the [video] clip. Raises UsageError where it has
    neither a mix nor a [video] clip length."""
    if s.requests:
        return s.requests
    if s.video is None or s.video.seconds is None:
        raise UsageError(f"scenario {s.name} says neither what its demand is made of nor how long a clip is: give "
                         "[[requests]] tables, or seconds in [video]")
    v = s.video
    return (RequestKind(f"{v.seconds:g} s {v.width}x{v.height}", 1.0, v.seconds, v.width, v.height),)


def cost_kinds(model: str, class_id: str, kinds: Sequence[RequestKind], evidence: Evidence) -> tuple[KindCost, ...]:
    """Each kind predicted for model on class_id from evidence. Raises UsageError naming the kind whose setting the
    model cannot take, or the evidence's refusal."""
    spec = load_spec(model)
    return tuple(_cost(spec, class_id, k, evidence) for k in kinds)


def request_for(spec: Spec, class_id: str, k: RequestKind) -> Request:
    """The prediction request of one kind (see the module docstring for its setting). Raises UsageError naming the
    kind where the model cannot take its setting."""
    frames = frames_for(spec, k.seconds)
    at = _label(spec, k, frames)
    if frames > LIMITS["num_frames"][1]:
        raise UsageError(f"{at}: more frames than the {LIMITS['num_frames'][1]:g} a model here takes: split the clip "
                         "into shorter kinds")
    overrides = {"num_frames": frames, "width": k.width, "height": k.height, "steps": k.steps,
                 "guidance_scale": k.guidance}
    if k.guidance is not None and spec.settings.guidance_scale_2 is not None:
        overrides["guidance_scale_2"] = k.guidance
    try:
        return predict_mod.request(spec.name, class_id, overrides=overrides)
    except UsageError as exc:
        raise UsageError(f"{at}: {exc}") from None


def _label(spec: Spec, k: RequestKind, frames: int) -> str:
    return (f"[[requests]] {shown(k.name)} ({k.seconds:g} s = {frames} frames at {spec.settings.fps:g} fps, "
            f"{k.width}x{k.height}) on {spec.name}")


def _cost(spec: Spec, class_id: str, k: RequestKind, evidence: Evidence) -> KindCost:
    req = request_for(spec, class_id, k)
    try:
        p = predict_mod.predict(req, evidence)
    except UsageError as exc:
        raise UsageError(f"{_label(spec, k, req.settings.num_frames)}: {exc}") from None
    tp = p.video_min_per_gpu_hour
    return KindCost(k.name, k.share, p.setting, tp.value, tp.kind, p.rung, tp.basis,
                    _interval(tp.value, tp.kind, p.error_interval), p.fits)


def _interval(tp: float, kind: str, error: tuple[float, float] | None) -> tuple[float, float] | None:
    if kind != "predicted":
        return (tp, tp)
    if error is None:
        return None
    low, high = error  # predicted seconds / actual - 1: actual throughput = predicted x (1 + error)
    return (tp * (1 + low), tp * (1 + high))


def mix(model: str, class_id: str, costs: Sequence[KindCost]) -> MixCost:
    """The kinds' costs as one effective throughput and its interval (see the module docstring)."""
    shares = [c.share for c in costs]
    point = effective_throughput(shares, [c.video_min_per_gpu_hour for c in costs])
    intervals = [c.interval for c in costs]
    interval = None if None in intervals else (effective_throughput(shares, [i[0] for i in intervals]),
                                               effective_throughput(shares, [i[1] for i in intervals]))
    return MixCost(model, class_id, tuple(costs), point, interval)


def cost_demand(s: Scenario, class_id: str, evidence: Evidence, model: str | None = None) -> MixCost:
    """The scenario's mix (kinds_of) costed on class_id, for model or else the first of its [video] models.
    Raises UsageError where the scenario names no model, or as cost_kinds."""
    if model is None:
        if s.video is None:
            raise UsageError(f"scenario {s.name} names no model to cost its demand with: add a [video] table with "
                             "models, or name one")
        model = s.video.models[0]
    return mix(model, class_id, cost_kinds(model, class_id, kinds_of(s), evidence))
