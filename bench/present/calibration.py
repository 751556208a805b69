"""What `t2vbench calibrate` prints: a few lines of text, or one JSON object. Functions return; the CLI prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core.text import clean
from bench.records.calibration import CalibrationRecord, Stack, comparable_options

GIB = 2**30


def _s(seconds: float) -> str:
    return f"{seconds:.4g} s"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / GIB:.2f} GiB" if n_bytes >= GIB else f"{n_bytes / 2**20:.1f} MiB"


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))


def _stack_lines(stack: Stack, use: str) -> list[str]:
    return [
        f"  {stack.component:<14} block {_s(stack.block_s)} = attention {_s(stack.attention_s)} + other "
        f"{_s(stack.other_s)}; rest {_s(stack.rest_s)}; input {_shape(stack.input_shape)}",
        f"  {'':<14} one forward of {stack.layers} blocks (rest + {stack.layers} x block) {_s(stack.forward_s())}; "
        f"{use} ({stack.calls} x forward) {_s(stack.predicted_s)}",
        f"  {'':<14} check: the 2-block build less the 1-block build, without hooks: "
        f"{_s(stack.block_by_difference_s)} per block",
    ]


def format_calibration(record: CalibrationRecord, path: Path | str) -> str:
    s = record.settings
    options = ", ".join(f"{k}={v}" for k, v in sorted(comparable_options(s.options).items())) or "plain"
    guidance = f"guidance {s.guidance_scale:g}" + (f"/{s.guidance_scale_2:g}" if s.guidance_scale_2 is not None
                                                   else "")
    passes = "2 denoiser passes" if record.denoisers[0].calls == 2 else f"{record.denoisers[0].calls} denoiser pass"
    lines = [
        f"{clean(record.spec.name)} on {clean(record.hardware_class)} ({clean(s.device)}, {s.dtype}, weights: "
        f"random, options: {clean(options)})",
        f"  {s.width}x{s.height}, {s.num_frames} frames, {s.max_sequence_length} text tokens, {guidance}: "
        f"{passes} per step; medians of {s.repeats} repeat{'s' if s.repeats > 1 else ''} after {s.warmup} "
        "warm-up",
        f"  whole model not built: each stack was built with 1 and 2 of its blocks (the whole model's weights: "
        f"{_size(record.whole_weights_bytes)} in {s.dtype})",
    ]
    for expert in record.denoisers:
        lines += _stack_lines(expert, "denoise step" + (" of this expert" if len(record.denoisers) > 1 else ""))
    lines += _stack_lines(record.text_encoder, "text encoding")
    vae = record.vae_decode
    lines.append(f"  {'vae decode':<14} {_s(vae.decode_s)} (latent {_shape(vae.latent_shape)})")
    lines += [f"  warning: {clean(w)}" for w in record.warnings]
    lines.append(f"calibration: {clean(str(path))}")
    return "\n".join(lines)


def calibration_summary(record: CalibrationRecord, path: Path | str) -> dict[str, Any]:
    """The --json summary: where the record is, and the predicted figures (seconds) beside its medians."""
    return {
        "calibration": str(path),
        "hardware_class": record.hardware_class,
        "dtype": record.settings.dtype,
        "options": record.settings.options,
        "whole_model_built": False,
        "whole_weights_bytes": record.whole_weights_bytes,
        "denoisers": {d.component: _stack_json(d) | {"step_s": d.predicted_s} for d in record.denoisers},
        "text_encoder": _stack_json(record.text_encoder) | {"text_encode_s": record.text_encoder.predicted_s},
        "vae_decode_s": record.vae_decode.decode_s,
        "warnings": record.warnings,
    }


def _stack_json(stack: Stack) -> dict[str, Any]:
    return {"layers": stack.layers, "calls": stack.calls, "block_s": stack.block_s, "attention_s": stack.attention_s,
            "other_s": stack.other_s, "rest_s": stack.rest_s, "forward_s": stack.forward_s(),
            "block_by_difference_s": stack.block_by_difference_s}
