"""FLOPs of one generated video, counted on the real architecture.

Each component runs once on the meta device (shapes only: no memory, no arithmetic) under torch's FlopCounterMode,
with inputs shaped as its pipeline would shape them at the given settings. Matmuls, convolutions and attention are
counted (2 FLOPs per multiply-add); elementwise work is not, which is the usual convention for MFU.
A two-expert model (Wan 2.2 A14B) counts each expert from its own config for the steps it runs, split at the
pipeline's timestep boundary exactly as WanPipeline splits them.
The tests prove the counter equal to hand-derived formulas for the Wan transformer (one expert, two experts, per-token
timesteps) and the T5 encoder.

torch and the model builder are imported inside the counting functions: listing or comparing records needs neither.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.core import notes
from bench.core.errors import UsageError
from bench.core.specs import Settings, Spec
from bench.core.text import shown


@dataclasses.dataclass(frozen=True)
class Expert:
    """One denoising network and the steps it runs. One expert for most models; Wan 2.2 A14B has two, switched at a
    timestep boundary (the high-noise `transformer` first, then the low-noise `transformer_2`)."""

    component: str
    per_call: float  # FLOPs of one forward pass
    steps: int


@dataclasses.dataclass(frozen=True)
class Flops:
    """FLOPs of one video: text encoding, denoising (all steps of every expert, all guidance passes), VAE decode."""

    text_encode: float
    experts: tuple[Expert, ...]
    calls_per_step: int  # 2 with classifier-free guidance as two passes (or a batch of 2), else 1
    vae_decode: float

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.experts)

    @property
    def denoise(self) -> float:
        return sum(e.per_call * e.steps for e in self.experts) * self.calls_per_step

    @property
    def denoiser_per_call(self) -> float:
        """FLOPs of one denoiser pass, averaged over the steps (the one expert's own figure when there is one)."""
        return self.denoise / (self.steps * self.calls_per_step) if self.steps else self.experts[0].per_call

    @property
    def total(self) -> float:
        return self.text_encode + self.denoise + self.vae_decode

    def as_dict(self) -> dict[str, Any]:
        return {"text_encode_flops": self.text_encode, "denoise_flops": self.denoise,
                "denoise_per_step_flops": self.denoiser_per_call * self.calls_per_step,
                "vae_decode_flops": self.vae_decode, "total_flops": self.total,
                "calls_per_step": self.calls_per_step, "steps": self.steps,
                "experts": [{"component": e.component, "per_call_flops": e.per_call, "steps": e.steps}
                            for e in self.experts]}


def _zeros(*shape: int, dtype: Any = None) -> Any:
    import torch

    return torch.zeros(*shape, device="meta", dtype=dtype or torch.bfloat16)


def _long(*shape: int) -> Any:
    import torch

    return _zeros(*shape, dtype=torch.long)


def _bool(*shape: int) -> Any:
    import torch

    return _zeros(*shape, dtype=torch.bool)


# Per family: (spatial compression, temporal compression) of the VAE, and the denoiser's inputs at latent size.
def _wan(cfg: Any, f: int, h: int, w: int, s: Settings, t: float) -> dict[str, Any]:
    return {"hidden_states": _zeros(1, cfg.in_channels, f, h, w), "timestep": _long(1),
            "encoder_hidden_states": _zeros(1, s.max_sequence_length, cfg.text_dim)}


def _cogvideox(cfg: Any, f: int, h: int, w: int, s: Settings, t: float) -> dict[str, Any]:
    return {"hidden_states": _zeros(1, f, cfg.in_channels, h, w), "timestep": _long(1),
            "encoder_hidden_states": _zeros(1, s.max_sequence_length, cfg.text_embed_dim)}


def _ltx(cfg: Any, f: int, h: int, w: int, s: Settings, t: float) -> dict[str, Any]:
    return {"hidden_states": _zeros(1, f * h * w, cfg.in_channels), "timestep": _zeros(1),
            "encoder_hidden_states": _zeros(1, s.max_sequence_length, cfg.caption_channels),
            "encoder_attention_mask": _bool(1, s.max_sequence_length), "num_frames": f, "height": h, "width": w,
            "rope_interpolation_scale": (t / s.fps, 32, 32)}


def _hunyuan(cfg: Any, f: int, h: int, w: int, s: Settings, t: float) -> dict[str, Any]:
    return {"hidden_states": _zeros(1, cfg.in_channels, f, h, w), "timestep": _zeros(1),
            "encoder_hidden_states": _zeros(1, s.max_sequence_length, cfg.text_embed_dim),
            "encoder_attention_mask": _zeros(1, s.max_sequence_length),
            "pooled_projections": _zeros(1, cfg.pooled_projection_dim), "guidance": _zeros(1)}


FAMILIES: dict[str, tuple[Callable[..., dict[str, Any]], str, str]] = {
    # family: (denoiser inputs, pipeline attribute of spatial compression, of temporal compression)
    "wan": (_wan, "vae_scale_factor_spatial", "vae_scale_factor_temporal"),
    "cogvideox": (_cogvideox, "vae_scale_factor_spatial", "vae_scale_factor_temporal"),
    "ltx": (_ltx, "vae_spatial_compression_ratio", "vae_temporal_compression_ratio"),
    "hunyuanvideo": (_hunyuan, "vae_scale_factor_spatial", "vae_scale_factor_temporal"),
}
HUNYUAN_TEMPLATE_TOKENS = 95  # HunyuanVideoPipeline's default prompt template: tokens cropped after the Llama pass


def _count(fn: Callable[[], Any]) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _text_flops(spec: Spec, components: dict[str, Any], settings: Settings, passes: int) -> float:
    total = 0.0
    for name, module in components.items():
        if not name.startswith("text_encoder"):
            continue
        if name == "text_encoder_2":  # CLIP pooled embedding: 77 tokens, once
            total += _count(lambda m=module: m(input_ids=_long(1, 77)))
            continue
        length = settings.max_sequence_length
        if spec.family == "hunyuanvideo":
            length += HUNYUAN_TEMPLATE_TOKENS
        total += passes * _count(lambda m=module, n=length: m(input_ids=_long(1, n)))
    return total


def expert_steps(spec: Spec, pipe: Any, steps: int) -> list[tuple[str, int]]:
    """Which denoiser runs how many of the steps. With a `boundary_ratio` (Wan 2.2 A14B), WanPipeline runs
    `transformer` while the timestep t >= boundary_ratio x num_train_timesteps and `transformer_2` below it; the
    timesteps come from the spec's own scheduler, so its flow_shift decides the split, as in the real pipeline."""
    boundary = getattr(pipe, "config", {}).get("boundary_ratio")
    if boundary is None or getattr(pipe, "transformer_2", None) is None:
        return [(spec.denoiser, steps)]
    scheduler = pipe.scheduler
    scheduler.set_timesteps(steps, device="cpu")
    high = int((scheduler.timesteps >= boundary * scheduler.config.num_train_timesteps).sum())
    return [("transformer", high), ("transformer_2", len(scheduler.timesteps) - high)]


def count_flops(spec: Spec, settings: Settings) -> Flops:
    """FLOPs of one video at `settings`. Raises UsageError for a family whose FLOPs depend on data, or a size the
    model's forward cannot take (a calibration or record claiming settings its shapes are not)."""
    import torch

    from bench.run.build import build_component, resolve_class

    if spec.family not in FAMILIES:
        raise UsageError(
            f"FLOP counting is not available for {spec.name}: its attention keeps only the prompt's real tokens "
            f"(found at run time), so FLOPs depend on the prompt; families counted: {', '.join(FAMILIES)}"
        )
    inputs, spatial_attr, temporal_attr = FAMILIES[spec.family]
    components = {n: build_component(e, "meta", torch.bfloat16) for n, e in spec.components.items()}
    pipe = resolve_class(f"diffusers.{spec.pipeline}")(**components, **spec.pipeline_config)
    spatial, temporal = int(getattr(pipe, spatial_attr)), int(getattr(pipe, temporal_attr))
    f = (settings.num_frames - 1) // temporal + 1
    h, w = settings.height // spatial, settings.width // spatial
    # Both experts of a two-expert model take guidance as two passes whenever guidance_scale > 1 (diffusers decides
    # classifier-free guidance on guidance_scale alone; guidance_scale_2 only weighs the low-noise expert's passes).
    passes = 2 if spec.cfg_doubles_denoiser and settings.guidance_scale > 1 else 1
    expand = bool(getattr(pipe, "config", {}).get("expand_timesteps"))
    try:
        experts = tuple(Expert(name, _denoiser_call(components[name], inputs, f, h, w, settings, temporal, expand), n)
                        for name, n in expert_steps(spec, pipe, settings.steps))
        vae = components["vae"]
        channels = vae.config.get("latent_channels") or vae.config.get("z_dim")
        decode = _count(lambda: vae.decode(_zeros(1, channels, f, h, w)))
    except RuntimeError as exc:  # the model's own forward refuses the shape (a small config's position table)
        raise UsageError(f"{spec.name} cannot take {settings.width}x{settings.height}, {settings.num_frames} frames: "
                         f"its forward fails at that size ({shown(str(exc), limit=120)}); give a size it takes"
                         ) from None
    return Flops(text_encode=_text_flops(spec, components, settings, passes), experts=experts,
                 calls_per_step=passes, vae_decode=decode)


def _denoiser_call(denoiser: Any, inputs: Callable[..., dict[str, Any]], f: int, h: int, w: int, s: Settings,
                   temporal: int, expand: bool) -> float:
    """FLOPs of one forward pass, each expert counted from its own config."""
    kwargs = inputs(denoiser.config, f, h, w, s, temporal)
    if expand:  # Wan 2.2 TI2V: one timestep per latent token, so the time embedding runs once per token
        pt, ph, pw = denoiser.config.patch_size
        kwargs["timestep"] = _long(1, (f // pt) * (h // ph) * (w // pw))
    return _count(lambda: denoiser(**kwargs, return_dict=False))


CACHE_VERSION = 2  # bump when the counting rules or the cache's format change (2: every stage, not the total)


def cached_flops(spec: Spec, settings: Settings) -> Flops:
    """count_flops(spec, settings), kept in a small on-disk cache (FLOPs of a spec at a setting never change for one
    diffusers; building a 14B model on the meta device takes seconds). The cache lives in $T2VBENCH_CACHE_DIR or
    ~/.cache/t2vbench; a damaged or unwritable cache is ignored. Raises as count_flops."""
    key = cache_key(spec, settings)
    path = cache_dir() / "flops.json"
    found = _from_cache(read_cache(path).get(key))
    if found is None:
        if spec.family in FAMILIES:  # seconds to a minute for a large model: say why the command is quiet
            notes.note(f"counting the FLOPs of {spec.name} at {settings.width}x{settings.height}, "
                       f"{settings.num_frames} frames, {settings.steps} steps (once; kept in {path})")
        found = count_flops(spec, settings)
        write_cache(path, {**read_cache(path), key: dataclasses.asdict(found)})
    return found


def cache_key(spec: Spec, settings: Settings) -> str:
    """The FLOP cache's key: the counting rules' version, the spec, the settings and the counting libraries."""
    raw = json.dumps([CACHE_VERSION, spec.sha256, dataclasses.asdict(settings), library_versions()], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def total_flops(spec: Spec, settings: Settings) -> float:
    """FLOPs of one whole video (cached_flops' total). Raises as count_flops."""
    return cached_flops(spec, settings).total


def _from_cache(entry: Any) -> Flops | None:
    """A cached count, or None for a missing or damaged entry (the cache is ours, but a file may be anything)."""
    try:
        experts = tuple(Expert(str(e["component"]), _positive(e["per_call"]), int(e["steps"]))
                        for e in entry["experts"])
        return Flops(_positive(entry["text_encode"]), experts, int(entry["calls_per_step"]),
                     _positive(entry["vae_decode"]))
    except (KeyError, TypeError, ValueError):
        return None


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"not a FLOP count: {value!r}")
    return float(value)


def library_versions() -> tuple[str | None, ...]:
    """The versions of the libraries whose code is counted: a cached count is valid for these only."""
    return tuple(_version(d, metadata) for d in ("diffusers", "transformers", "torch"))


def _version(dist: str, metadata: Any) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cache_dir() -> Any:
    return Path(os.environ.get("T2VBENCH_CACHE_DIR") or Path.home() / ".cache" / "t2vbench")


MAX_CACHE_BYTES = 16 * 1024 * 1024  # a cache file is ours, but bound what we parse all the same


def read_cache(path: Any) -> dict[str, Any]:
    """The entries of a cache file (key -> table); nothing for a missing, damaged or oversized file."""
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def write_cache(path: Any, cache: dict[str, Any]) -> None:
    """Replace a cache file atomically; a cache that cannot be written only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
