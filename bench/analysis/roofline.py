"""The physical bound: FLOPs per video over a hardware class's peak FLOP/s, and MFU of a measured record.

Also the Factorial Funds analytic Sora model (March 2024), rebuilt from its own inputs, as a named analytic source.
"""

from __future__ import annotations

from typing import Any

from bench.analysis import physics
from bench.analysis.flops import Flops, cached_flops
from bench.analysis.physics import load_checked
from bench.core import hardware, metrics
from bench.core.errors import UsageError
from bench.core.hardware import HardwareClass
from bench.core.specs import check_settings, load_spec, preset_settings
from bench.records.schema import ResultRecord

DEFAULT_CLASS = "h100-sxm"  # the class roofline bounds without --hardware or --record
SECONDS_PER_MONTH = 30 * 86400  # the report's H100-months are 30-day months

# Factorial Funds' inputs (see shared/CONTEXT.md): DiT-XL/2 at 512x512, scaled to a ~20B model, 1 minute of video.
FF_DIT_XL2_FORWARD_FLOPS = 524.6e9
FF_MODEL_SCALE = 30  # ~20B parameters vs DiT-XL/2's 675M
FF_LATENT_FRAMES_PER_MINUTE = 180  # 60 s x 24 fps = 1,440 frames, 8x temporal compression
FF_STEPS = 250
FF_TRAINING_DIT_FLOPS = 1e21
FF_TRAINING_DATA_SCALE = (4, 10)
FF_TRAINING_FRAME_SCALE = 90  # 180 latent frames / 2 (half the data is images)
FF_H100_PEAK_FLOPS = 989.4e12


def bound(flops: Flops, hw: HardwareClass, video_s: float, dtype: str = "bfloat16") -> dict[str, float]:
    """Seconds per video and video minutes per GPU-hour at 100% of the class's peak dense FLOP/s."""
    peak = hw.peak_flops(dtype)
    seconds = flops.total / peak
    return {
        "peak_flops": peak,
        "bound_seconds_per_video": seconds,
        "bound_video_minutes_per_gpu_hour": metrics.video_minutes_per_gpu_hour(video_s, seconds),
        "flops_per_video_minute": flops.total / (video_s / 60),
    }


def mfu(record: ResultRecord, flops: Flops, hw: HardwareClass) -> dict[str, float | None]:
    """Model FLOP utilization of each stage of a measured record: achieved FLOP/s over the peak FLOP/s of the GPUs
    one generation occupies, the peak the gate bounds the record by (physics.peak_flops), so a record load_checked
    accepted never shows more than 100%. On a context-parallel record this is its parallel efficiency against the
    single-GPU bound: N GPUs at 100% would make each video N times faster than one. A step-sampled record's stage
    means are its full generations' (skipped steps extrapolated)."""
    peak = physics.peak_flops(record, hw) * physics.gpus_per_generation(record)
    s = record.summary

    def ratio(work: float, seconds: float) -> float | None:
        return work / seconds / peak if seconds > 0 else None

    return {
        "text_encode_mfu": ratio(flops.text_encode, s.text_encode_mean_s),
        "denoise_mfu": ratio(flops.denoise, s.denoise_mean_s),
        "vae_decode_mfu": ratio(flops.vae_decode, s.vae_decode_mean_s),
        "total_mfu": ratio(flops.total, s.latency_mean_s),
    }


def mfu_basis(record: ResultRecord) -> dict[str, Any]:
    """What a record's MFU stands on: how many of the generations it asked for it holds, whether its steps were
    sampled, and a note that says so wherever the MFU is shown (None for a complete full run)."""
    made, asked = len(record.generations), record.generations_asked
    notes = [f"from an incomplete record ({made} of {asked} generations)"] * (not record.complete)
    if record.sampling is not None:
        notes.append(f"step-sampled: {record.sampling.describe()}")
    return {"complete": record.complete, "generations": made, "generations_asked": asked,
            "step_sampled": record.is_sampled, "note": "; ".join(notes) or None}


def _record_class(record: ResultRecord, path: str, class_id: str | None) -> HardwareClass:
    """The class a record's MFU is measured against: its own GPU's. Raises UsageError for a CPU record, a class the
    catalogue lacks, or --hardware naming another class."""
    if record.is_cpu:
        raise UsageError(f"--record {path} ran on the CPU ({record.hardware_class}): MFU is a share of a GPU's peak; "
                         "give a GPU record")
    hw = hardware.match_gpu(record.hardware_class)
    if hw is None:
        raise UsageError(f"--record {path} ran on {record.hardware_class}, which is not in the catalogue: add the "
                         "class with its source to bench/core/data/hardware.toml")
    if class_id is not None and class_id != hw.id:
        raise UsageError(f"--record {path} ran on {hw.id}, not --hardware {class_id}: its MFU is against its own "
                         f"GPU's peak; leave out --hardware or pass --hardware {hw.id}")
    return hw


def factorial_sora() -> dict[str, Any]:
    """The Factorial Funds Sora arithmetic, from its published inputs (100% utilization, no CFG doubling)."""
    per_minute = FF_DIT_XL2_FORWARD_FLOPS * FF_MODEL_SCALE * FF_LATENT_FRAMES_PER_MINUTE * FF_STEPS
    seconds = per_minute / FF_H100_PEAK_FLOPS
    training = [FF_TRAINING_DIT_FLOPS * FF_MODEL_SCALE * d * FF_TRAINING_FRAME_SCALE for d in FF_TRAINING_DATA_SCALE]
    return {
        "source": "Factorial Funds, 'Under the hood: how OpenAI's Sora model works' (March 2024), rebuilt",
        "flops_per_video_minute": per_minute,
        "h100_seconds_per_video_minute": seconds,
        "video_minutes_per_h100_hour": 3600 / seconds,
        "video_minutes_per_h100_day": 86400 / seconds,
        "training_flops": training,
        "training_h100_months": [c / (FF_H100_PEAK_FLOPS * SECONDS_PER_MONTH) for c in training],
        "breakeven_video_minutes": [c / per_minute for c in training],
    }


def analyze(model: str, class_id: str | None = None, dtype: str = "bfloat16",
            overrides: dict[str, Any] | None = None, record_path: str | None = None,
            preset: str | None = None) -> dict[str, Any]:
    """FLOPs, bound and (with a record) MFU of a model at its canonical settings, a named preset of its spec, or
    the overrides (which win over the preset). With a record: its settings and its own class (class_id None or the
    same), the MFU labelled where the record is incomplete or step-sampled. class_id None without a record is
    DEFAULT_CLASS. Raises UsageError for an unknown preset or class, or a record another model or class made."""

    spec = load_spec(model)
    record = load_checked(record_path) if record_path else None
    if record is not None:
        if record.spec.name != model:
            raise UsageError(f"--record {record_path} measured {record.spec.name}, not {model}")
        hw = _record_class(record, record_path, class_id)
        settings = physics.record_settings(record)
    else:
        hw = hardware.get(class_id or DEFAULT_CLASS)
        settings = preset_settings(spec, preset).replace(**(overrides or {}))
    check_settings(spec, settings)
    flops = cached_flops(spec, settings)
    return {
        "model": model, "hardware": hw.id, "dtype": dtype,
        "setting": f"{settings.width}x{settings.height}, {settings.num_frames} frames @ {settings.fps:g} fps, "
                   f"{settings.steps} steps, guidance {settings.guidance_scale:g}"
                   + ("" if settings.guidance_scale_2 is None else f" (low-noise expert {settings.guidance_scale_2:g})"),
        "flops": flops.as_dict(),
        "bound": bound(flops, hw, metrics.video_seconds(settings.num_frames, settings.fps), dtype),
        "mfu": mfu(record, flops, hw) if record is not None else None,
        "mfu_basis": mfu_basis(record) if record is not None else None,
        "record": record_path,
        "factorial_sora": factorial_sora(),
    }
