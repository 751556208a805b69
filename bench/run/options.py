"""Serving options of a run: what real deployments change to go faster or fit a smaller GPU, each a measured
variable that lands in the record's settings (and so in the key that decides which records may be compared).

Checked in two places: here, without torch (names, ranges, combinations), before anything starts; and in the worker
(`apply`), against the installed torch and diffusers and the built model, before the first generation. Each refusal
is one line naming the option and the fix.

Lossless options keep the output up to floating-point order (kernel swaps, compilation, offloading, VAE tiling);
output-changing ones (step caches, fp8 weights, quantized attention) get a fidelity figure: PSNR/SSIM of their frames
against a plain generation of the same settings and seed, made in the same process.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from bench.core.errors import UsageError

OFFLOADS = ("model", "group", "sequential")
QUANTIZE = ("fp8",)  # diffusers layerwise casting: fp8 (e4m3) storage of the denoiser's weights, bf16 compute
CACHES = ("first-block", "faster", "pab", "magcache")
# Attention backends whose kernels change the arithmetic beyond reordering (quantized Q/K or P/V).
LOSSY_ATTENTION_PREFIXES = ("sage", "_sage")
# The diffusers attention backends with a CPU kernel (torch's SDPA, its math kernel, flex attention); every other
# backend (cuDNN, flash, sage, xformers, aiter, ...) needs a GPU, so a CPU run refuses it before anything is built.
CPU_ATTENTION_BACKENDS = ("native", "_native_math", "flex")
MAX_MEMORY_CAP_GIB = 4096.0
DTYPE_NAMES = ("float32", "bfloat16", "float16")  # what --dtype accepts besides auto; bench.run.build maps them


def _flag(help: str, kind: type = bool, choices: tuple[str, ...] = (), flag: str | None = None,
          metavar: str | None = None) -> dict[str, Any]:
    """How a serving option appears on the command line and in sweep files (bench.run.flags reads this)."""
    return {"help": help, "kind": kind, "choices": choices, "flag": flag, "metavar": metavar}


@dataclasses.dataclass(frozen=True)
class Options:
    """Serving options; the defaults are a plain eager run with everything on the GPU. A new option is a field here
    (with its flag) and its application in bench.run.serving; the run and roofline parsers, sweep keys and the
    choice checks all follow from these fields."""

    compile: bool = dataclasses.field(default=False, metadata=_flag(
        "regional torch.compile of the denoiser's repeated block"))
    attention_backend: str | None = dataclasses.field(default=None, metadata=_flag(
        "a diffusers attention backend: native, _native_cudnn, flash, sage, ... (None: the library default)", str))
    offload: str | None = dataclasses.field(default=None, metadata=_flag(
        f"{' | '.join(OFFLOADS)}: keep weights in host RAM", str, OFFLOADS))
    vae_tiling: bool = dataclasses.field(default=False, metadata=_flag("decode the video in tiles (less memory)"))
    quantize: str | None = dataclasses.field(default=None, metadata=_flag(
        f"{' | '.join(QUANTIZE)}: fp8 storage of the denoiser's weights", str, QUANTIZE))
    cache: str | None = dataclasses.field(default=None, metadata=_flag(
        f"{' | '.join(CACHES)}: a diffusers step cache (output-changing)", str, CACHES))
    memory_cap_gib: float | None = dataclasses.field(default=None, metadata=_flag(
        "cap this process's GPU memory, to emulate a smaller card (e.g. 24)", float, flag="--memory-cap",
        metavar="GIB"))
    fidelity: bool = dataclasses.field(default=False, metadata=_flag(
        "measure PSNR/SSIM against a plain generation even for lossless options"))

    @property
    def output_changing(self) -> list[str]:
        """The options that can change the frames, as flags."""
        out = []
        if self.cache:
            out.append(f"--cache {self.cache}")
        if self.quantize:
            out.append(f"--quantize {self.quantize}")
        if self.attention_backend and self.attention_backend.startswith(LOSSY_ATTENTION_PREFIXES):
            out.append(f"--attention-backend {self.attention_backend}")
        return out

    def needs_reference(self) -> bool:
        return self.fidelity or bool(self.output_changing)


def check(options: Options, device: str, weights: str) -> list[str]:
    """Refuse impossible options before anything is built; returns warnings for allowed but weak choices.
    device is the requested one ('auto', 'cpu', 'cuda:N'). Raises UsageError."""
    for field in dataclasses.fields(Options):
        value, choices = getattr(options, field.name), field.metadata["choices"]
        if choices and value is not None and value not in choices:
            raise UsageError(f"--{field.name.replace('_', '-')} {value}: use one of {', '.join(choices)}")
    if options.attention_backend is not None and not _is_name(options.attention_backend):
        raise UsageError(f"--attention-backend {options.attention_backend[:40]!r}: give a backend name such as "
                         "native, _native_cudnn, flash or sage")
    cap = options.memory_cap_gib
    if cap is not None and not (math.isfinite(cap) and 0 < cap <= MAX_MEMORY_CAP_GIB):
        raise UsageError(f"--memory-cap {cap}: give GiB between 0 and {MAX_MEMORY_CAP_GIB:g}, e.g. 24")
    refuse_gpu_only(options, device)
    warnings = []
    if options.cache and weights == "random":
        warnings.append(f"--cache {options.cache} on random weights: a step cache skips work when activations change "
                        "little, which random weights do not model, so its speed-up here is NOT representative")
    return warnings


def refuse_gpu_only(options: Options, device: str) -> None:
    """Offloading and a memory cap move or cap device memory, and most attention backends have GPU kernels only:
    refused on the CPU. Raises UsageError."""
    if device != "cpu":
        return
    backend = options.attention_backend
    if backend is not None and backend not in CPU_ATTENTION_BACKENDS:
        raise UsageError(f"--attention-backend {backend} has no CPU kernel: on the CPU use "
                         f"{', '.join(CPU_ATTENTION_BACKENDS[:-1])} or {CPU_ATTENTION_BACKENDS[-1]} (or run where torch "
                         "sees a GPU, with --device cuda)")
    for flag, value in (("--memory-cap", options.memory_cap_gib), ("--offload", options.offload)):
        if value is not None:
            raise UsageError(f"{flag} needs a GPU: it moves or caps device memory; drop it (or run where torch sees a "
                             "GPU, with --device cuda)")


def _is_name(text: str) -> bool:
    return 0 < len(text) <= 40 and all(c.isalnum() or c == "_" for c in text) and text.isascii()


def recorded(options: Options, applied: dict[str, Any]) -> dict[str, Any]:
    """The options as the record keeps them: what was asked, overridden by what the worker actually applied."""
    asked = {k: v for k, v in dataclasses.asdict(options).items() if v not in (None, False)}
    return {**asked, **applied}
