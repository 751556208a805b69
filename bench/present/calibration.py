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
    kinds = [f"  {stack.component if i == 0 else '':<14} {k.blocks}: block {_s(k.block_s)} = attention "
             f"{_s(k.attention_s)} + other {_s(k.other_s)}" for i, k in enumerate(stack.kinds)]
    whole = " + ".join(f"{k.layers} x {k.blocks}" for k in stack.kinds)
    each = "per block" if len(stack.kinds) == 1 else "per block of each kind"
    return [
        *kinds,
        f"  {'':<14} rest {_s(stack.rest_s)}; input {_shape(stack.input_shape)}",
        f"  {'':<14} one forward (rest + {whole}) {_s(stack.forward_s())}; {use} ({stack.calls} x forward) "
        f"{_s(stack.predicted_s)}",
        f"  {'':<14} check: the 2-block build less the 1-block build, without hooks: "
        f"{_s(stack.block_by_difference_s)} {each}",
    ]


def format_calibration(record: CalibrationRecord, path: Path | str) -> str:
    s = record.settings
    options = ", ".join(f"{k}={v}" for k, v in sorted(comparable_options(s.options).items())) or "plain"
    guidance = f"guidance {s.guidance_scale:g}" + (f"/{s.guidance_scale_2:g}" if s.guidance_scale_2 is not None
                                                   else "")
    first = record.denoisers[0]
    passes = f"{first.calls} denoiser call{'s' if first.calls > 1 else ''} of batch {first.input_shape[0]}"
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
    for encoder in record.text_encoders:
        lines += _stack_lines(encoder, "text encoding")
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
        "text_encoders": {t.component: _stack_json(t) | {"text_encode_s": t.predicted_s}
                          for t in record.text_encoders},
        "text_encode_s": record.text_encode_s,
        "vae_decode_s": record.vae_decode.decode_s,
        "warnings": record.warnings,
    }


def _stack_json(stack: Stack) -> dict[str, Any]:
    return {"calls": stack.calls, "batch": stack.input_shape[0], "rest_s": stack.rest_s,
            "forward_s": stack.forward_s(), "block_by_difference_s": stack.block_by_difference_s,
            "kinds": {k.blocks: {"layers": k.layers, "block_s": k.block_s, "attention_s": k.attention_s,
                                 "other_s": k.other_s} for k in stack.kinds}}
