"""The cost model of `t2vbench predict`: seconds of one video from its work (bench.analysis.predict_work) on a class.

    text_s      = text FLOPs      / (peak x TEXT_EFFICIENCY)
    denoise_s   = (attention FLOPs / (peak x ATTENTION_EFFICIENCY) + dense FLOPs / (peak x MATMUL_EFFICIENCY)
                   + elements x BYTES_PER_ELEMENT / memory bandwidth) / context-parallel GPUs
    vae_s       = VAE FLOPs       / (peak x VAE_EFFICIENCY)
    seconds     = text_s x text scale + denoise_s x denoise scale + vae_s x VAE scale + other seconds

The constants are a profile: how fast each kind of work runs relative to the others, from the H100 measurements
(below). On every class a scale per stage is fitted to the evidence on that class: stage by stage where the evidence
times stages (records, calibrations), one scale for all where it gives only a total (published figures). A scale of
1 means "as fast as the profiled H100 run". Text encoding and VAE decode are never split across GPUs (Amdahl); the
communication of context parallelism is not modelled.

Why three terms in the denoiser: the FLOPs alone (one efficiency) put Wan2.1-14B at 5.9x the 1.3B's time on one
H100 where ML.ENERGY measured 4.9x; the 1.3B's narrow blocks (width 1,536 vs 5,120) spend more of their time on
per-element work (norms, modulation, rotary embedding: bytes, not FLOPs), which the elements term prices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from bench.analysis.predict_work import Work
from bench.core.hardware import HardwareClass

# The profile, from one H100 80GB HBM3 (results/nvidia-h100-80gb-hbm3/wan2.1-t2v-1.3b/
# 832x480-81f-16fps-50steps-g5-bfloat16-1gpu, plain eager, 2026-11-23; tests/test_predict.py derives each again):
ATTENTION_EFFICIENCY = 0.60  # measured: cuDNN attention at that run's shape, 11.1 ms per call of 6.59e12 FLOPs
MATMUL_EFFICIENCY = 0.75  # assumed (large bf16 GEMMs); 0.6 or 0.9 moves the validated ratios by 4% at most
TEXT_EFFICIENCY = 0.0860  # measured: 9.69e12 FLOPs in 0.1138 s
VAE_EFFICIENCY = 0.1343  # measured: 2.754e14 FLOPs in 2.0729 s
BYTES_PER_ELEMENT = 426.0  # the rest of that run's 64.26 s of denoising (19.35 s) over 1.521e11 elements at 3.35 TB/s
PROFILE_PEAK_FLOPS = 989.4e12  # the profiled class's (h100-sxm) dense bf16 peak and memory bandwidth: a class with no
PROFILE_BANDWIDTH_BYTES_S = 3.35e12  # figures (a CPU) keeps this ratio, its scale fitted to its own evidence


@dataclasses.dataclass(frozen=True)
class Rates:
    """What a class does per second at 100%: dense FLOP/s at the dtype used, memory bytes/s."""

    peak_flops: float
    bandwidth_bytes_s: float
    nominal: bool = False  # True where the catalogue has no figures (a CPU): only ratios between terms mean anything


def rates(hw: HardwareClass | None, fp8: bool = False) -> Rates:
    """A class's rates (fp8 where the work runs in fp8 and the class has an fp8 rate); None: nominal (CPU)."""
    if hw is None:
        return Rates(PROFILE_PEAK_FLOPS, PROFILE_BANDWIDTH_BYTES_S, nominal=True)
    peak = hw.fp8_tflops if fp8 and hw.fp8_tflops else hw.bf16_tflops
    return Rates(peak * 1e12, hw.memory_tbs * 1e12)


@dataclasses.dataclass(frozen=True)
class Terms:
    """Seconds of each stage at scale 1 (the profile's speed on this class)."""

    text_s: float
    attention_s: float
    dense_s: float
    elementwise_s: float
    vae_s: float

    @property
    def denoise_s(self) -> float:
        return self.attention_s + self.dense_s + self.elementwise_s

    @property
    def total_s(self) -> float:
        return self.text_s + self.denoise_s + self.vae_s


def terms(w: Work, r: Rates, parallel_gpus: int = 1) -> Terms:
    """The profile's seconds for work w on rates r, the denoiser split over parallel_gpus (context parallel)."""
    return Terms(text_s=w.text_flops / (r.peak_flops * TEXT_EFFICIENCY),
                 attention_s=w.attention_flops / (r.peak_flops * ATTENTION_EFFICIENCY) / parallel_gpus,
                 dense_s=w.dense_flops / (r.peak_flops * MATMUL_EFFICIENCY) / parallel_gpus,
                 elementwise_s=w.elements * BYTES_PER_ELEMENT / r.bandwidth_bytes_s / parallel_gpus,
                 vae_s=w.vae_flops / (r.peak_flops * VAE_EFFICIENCY))


@dataclasses.dataclass(frozen=True)
class Observation:
    """Measured seconds of one video for which the profile gives `terms`: per stage where known, else the total."""

    terms: Terms
    total_s: float
    text_s: float | None = None  # None: only the total is known (a published figure)
    denoise_s: float | None = None
    vae_s: float | None = None
    other_s: float = 0.0

    @property
    def staged(self) -> bool:
        return None not in (self.text_s, self.denoise_s, self.vae_s)


@dataclasses.dataclass(frozen=True)
class Scales:
    """The fitted slowness of a class against the profile, per stage; other_s: fixed seconds per video."""

    text: float
    denoise: float
    vae: float
    other_s: float = 0.0
    staged: bool = True  # False: one scale for every stage (totals only)


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fit(observations: Sequence[Observation]) -> Scales:
    """Scales that fit the observations in the least-squares sense of log(measured / modelled): stage by stage when
    every observation times its stages, else one scale over totals. Raises ValueError for no observation."""
    if not observations:
        raise ValueError("no observation to fit")
    if all(o.staged for o in observations):
        def stage(name: str) -> float:
            pairs = [(getattr(o, f"{name}_s"), getattr(o.terms, f"{name}_s")) for o in observations]
            usable = [m / t for m, t in pairs if m > 0 and t > 0]
            return _geomean(usable) if usable else 1.0

        other = sum(o.other_s for o in observations) / len(observations)
        return Scales(stage("text"), stage("denoise"), stage("vae"), other, staged=True)
    s = _geomean([o.total_s / o.terms.total_s for o in observations])
    return Scales(s, s, s, 0.0, staged=False)


@dataclasses.dataclass(frozen=True)
class Seconds:
    """Predicted seconds of one video, per stage."""

    text_s: float
    denoise_s: float
    vae_s: float
    other_s: float

    @property
    def total_s(self) -> float:
        return self.text_s + self.denoise_s + self.vae_s + self.other_s


def seconds(t: Terms, s: Scales) -> Seconds:
    return Seconds(t.text_s * s.text, t.denoise_s * s.denoise, t.vae_s * s.vae, s.other_s)


def efficiency(w: Work, r: Rates, predicted_s: float, parallel_gpus: int = 1) -> float | None:
    """Model FLOP utilization the prediction implies (FLOPs over GPU-seconds x peak); None on a nominal class."""
    return None if r.nominal else w.total_flops / (predicted_s * parallel_gpus * r.peak_flops)
