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
MAX_MEMORY_CAP_GIB = 4096.0


@dataclasses.dataclass(frozen=True)
class Options:
    """Serving options; the defaults are a plain eager run with everything on the GPU."""

    compile: bool = False  # regional torch.compile of the denoiser's repeated block
    attention_backend: str | None = None  # a diffusers AttentionBackendName value; None: the library default
    offload: str | None = None  # model | group | sequential
    vae_tiling: bool = False
    quantize: str | None = None
    cache: str | None = None
    memory_cap_gib: float | None = None  # emulate a smaller GPU: cap this process's device memory
    fidelity: bool = False  # measure PSNR/SSIM against a plain generation even for lossless options

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
    if options.offload is not None and options.offload not in OFFLOADS:
        raise UsageError(f"--offload {options.offload}: use one of {', '.join(OFFLOADS)}")
    if options.quantize is not None and options.quantize not in QUANTIZE:
        raise UsageError(f"--quantize {options.quantize}: use one of {', '.join(QUANTIZE)}")
    if options.cache is not None and options.cache not in CACHES:
        raise UsageError(f"--cache {options.cache}: use one of {', '.join(CACHES)}")
    if options.attention_backend is not None and not _is_name(options.attention_backend):
        raise UsageError(f"--attention-backend {options.attention_backend[:40]!r}: give a backend name such as "
                         "native, _native_cudnn, flash or sage")
    cap = options.memory_cap_gib
    if cap is not None and not (math.isfinite(cap) and 0 < cap <= MAX_MEMORY_CAP_GIB):
        raise UsageError(f"--memory-cap {cap}: give GiB between 0 and {MAX_MEMORY_CAP_GIB:g}, e.g. 24")
    if device == "cpu":
        for flag, value in (("--memory-cap", cap), ("--offload", options.offload)):
            if value is not None:
                raise UsageError(f"{flag} needs a GPU: it moves or caps device memory; drop it or use --device cuda")
    warnings = []
    if options.cache and weights == "random":
        warnings.append(f"--cache {options.cache} on random weights: a step cache skips work when activations change "
                        "little, which random weights do not model, so its speed-up here is NOT representative")
    return warnings


def _is_name(text: str) -> bool:
    return 0 < len(text) <= 40 and all(c.isalnum() or c == "_" for c in text) and text.isascii()


def recorded(options: Options, applied: dict[str, Any]) -> dict[str, Any]:
    """The options as the record keeps them: what was asked, overridden by what the worker actually applied."""
    asked = {k: v for k, v in dataclasses.asdict(options).items() if v not in (None, False)}
    return {**asked, **applied}
