"""The figures of a prediction, each with its kind ('measured', 'predicted', 'published') and basis: seconds per video
and per stage, video minutes per GPU-hour, energy per video, memory against the class's, the implied MFU and the
error its rung showed in validation. bench.analysis.predict picks the evidence; this module turns it into figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bench.analysis import predict_evidence as ev
from bench.analysis import predict_model as model
from bench.analysis.predict_work import Work
from bench.core import metrics
from bench.core.specs import Settings
from bench.records.schema import ResultRecord
from bench.run import memory

GIB = memory.GIB
BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2, "float16": 2}
# The error each rung showed in `predict --validate` (low, high: predicted / actual - 1); None: not validated yet.
PREDICT_ERRORS: dict[str, tuple[float, float] | None] = {
    "measured": None, "step-sampled": (-0.0023, 0.0005), "calibration": None,
    "class": (-0.125, 0.231), "published": (-0.133, 0.143)}


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure and what it is: 'measured', 'predicted' or 'published', and what it rests on."""

    value: float | None
    kind: str
    basis: str


@dataclasses.dataclass(frozen=True)
class Prediction:
    model: str
    hardware: str
    setting: str
    rung: str
    evidence: tuple[str, ...]
    seconds_per_video: Figure
    video_min_per_gpu_hour: Figure
    energy_per_video_j: Figure
    memory_bytes: Figure
    memory_capacity_bytes: float | None
    stages_s: dict[str, float]
    mfu: float | None
    error_interval: tuple[float, float] | None
    caveats: tuple[str, ...] = ()

    @property
    def fits(self) -> bool | None:
        if self.memory_bytes.value is None or self.memory_capacity_bytes is None:
            return None
        return self.memory_bytes.value <= self.memory_capacity_bytes


def rates_of(req: ev.Request) -> model.Rates:
    return model.rates(ev.hardware_of(req.hardware))


def fitted(req: ev.Request, rung: str, w: Work, observations: Sequence[model.Observation], lines: list[str],
           powers: Sequence[float | None], caveats: tuple[str, ...]) -> Prediction:
    """A prediction from the cost model fitted to observations on the class (bench.analysis.predict_model.fit)."""
    scales = model.fit(observations)
    s = model.seconds(model.terms(w, rates_of(req), req.parallel_gpus), scales)
    stages = {"text_s": s.text_s, "denoise_s": s.denoise_s, "vae_s": s.vae_s, "other_s": s.other_s,
              "total_s": s.total_s}
    power = mean_power(powers, "the evidence's average power")
    against = ("the cost model's H100 profile at this class's peak (x1: as efficient as the profiled H100 run)"
               if not rates_of(req).nominal else "that of nominal rates (no peak figures here)")
    fit_line = ("fitted stage by stage" if scales.staged else "one scale over totals") + \
        f" on {len(observations)} run(s): denoising takes x{scales.denoise:.3g} the time of {against}"
    if not scales.staged:
        stages = {"total_s": s.total_s}  # one scale over totals: the split is the profile's, not evidence
    return assemble(req, rung, "predicted", [*lines, fit_line], stages, energy_figure(req, s.total_s, power),
                    weights(req, w), w, caveats=caveats)


def mean_power(values: Sequence[float | None], basis: str) -> tuple[float, str] | None:
    known = [v for v in values if v is not None]
    return (sum(known) / len(known), basis) if known else None


def energy_figure(req: ev.Request, seconds_s: float, power: tuple[float, str] | None) -> Figure:
    """Energy of one video over every GPU it occupies: the evidence's power per GPU, else the board power."""
    hw = ev.hardware_of(req.hardware)
    if power is None and hw is None:
        return Figure(None, "predicted", "no power figure for a CPU class")
    watts, basis = power if power else (hw.board_power_w, f"{hw.id}'s board power: an upper bound")
    return Figure(watts * seconds_s * req.parallel_gpus, "predicted", f"{watts:.0f} W per GPU, {basis}")


def peak_memory(records: Sequence[ResultRecord]) -> Figure:
    top = max(records, key=lambda r: r.peak_memory_bytes)
    return Figure(float(top.peak_memory_bytes), "measured", f"peak of the records ({top.peak_memory_method})")


def weights(req: ev.Request, w: Work) -> Figure:
    """Weights on one GPU under the asked offload (bench.run.memory); activations, context and decode add more."""
    per = BYTES_PER_PARAM[req.dtype]
    parts = {n: c * (1 if req.options.get("quantize") == "fp8" and n.startswith("transformer") else per)
             for n, c in w.params.items()}
    offload = req.options.get("offload")
    total = memory.gpu_bytes(parts, offload, memory.blocks(req.spec))
    how = f", --offload {offload}" if offload else ""
    return Figure(float(total), "predicted", f"weights only ({req.dtype}{how}): activations and the decode add more")


def assemble(req: ev.Request, rung: str, kind: str, lines: list[str], stages: dict[str, float], energy: Figure,
             mem: Figure | None, w: Work | None, caveats: tuple[str, ...] = (), basis: str | None = None,
             fp8: bool = False) -> Prediction:
    """The Prediction of a rung: throughput by bench.core.metrics' definition, memory (weights where no record
    measured it), MFU at the class's peak, and the rung's validated error for a predicted figure."""
    total_s = stages["total_s"]
    gpu_s = total_s * req.parallel_gpus
    video_s = metrics.video_seconds(req.settings.num_frames, req.settings.fps)
    hw = ev.hardware_of(req.hardware)
    if mem is None:
        mem = weights(req, w) if w is not None else Figure(None, "predicted", "parameters not counted")
    r = model.rates(hw, fp8) if hw is not None else rates_of(req)
    parallel = f" over {req.parallel_gpus} GPUs" if req.parallel_gpus > 1 else ""
    return Prediction(
        model=req.spec.name, hardware=req.hardware, setting=_setting(req.settings) + parallel, rung=rung,
        evidence=tuple(lines), seconds_per_video=Figure(total_s, kind, basis or _RUNG_BASIS[rung]),
        video_min_per_gpu_hour=Figure(metrics.video_minutes_per_gpu_hour(video_s, gpu_s), kind,
                                      f"{video_s:g} video-s per {gpu_s:,.1f} GPU-s"),
        energy_per_video_j=energy, memory_bytes=mem, memory_capacity_bytes=hw.memory_gb * GIB if hw else None,
        stages_s=stages,
        mfu=model.efficiency(w, r, total_s, req.parallel_gpus) if w is not None else None,
        error_interval=PREDICT_ERRORS.get(rung) if kind == "predicted" else None, caveats=caveats)


_RUNG_BASIS = {"measured": "mean of the timed generations", "step-sampled": "the record's full generations, skipped steps extrapolated",
               "calibration": "calibration of this model, scaled by the cost model",
               "class": "cost model fitted to measured runs on this class",
               "published": "cost model fitted to published figures on this class"}


def _setting(s: Settings) -> str:
    g2 = "" if s.guidance_scale_2 is None else f"/{s.guidance_scale_2:g}"
    return f"{s.width}x{s.height}, {s.num_frames} frames @ {s.fps:g} fps, {s.steps} steps, guidance {s.guidance_scale:g}{g2}"
