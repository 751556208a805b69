"""What `t2vbench calibrate` builds and feeds, family by family: where each class keeps its blocks, and the inputs
each part gets from its diffusers pipeline at the chosen settings (diffusers 0.42 pipelines, read for this module):

- latent: the pipeline's own VAE compression attributes (read from the pipeline built on the meta device, so the
  spec's defaults are the class's), frames (F - 1) // temporal + 1, height and width // spatial, the VAE's latent
  channels; the VAE decodes one such latent.
- guidance: WanPipeline calls the transformer twice per step (prompt, then negative prompt, batch 1 each);
  CogVideoXPipeline and LTXPipeline once on a batch of 2 (torch.cat([latents] * 2)); HunyuanVideoPipeline's guidance
  is embedded (a `guidance` input, one call of batch 1; true CFG needs true_cfg_scale, which no setting gives).
- text: T5-type encoders take the prompt padded to max_sequence_length, one call per prompt (the negative prompt is a
  second call where guidance is on); HunyuanVideo's Llama takes max_sequence_length + the prompt template's
  crop_start tokens (the template is cropped after the pass) and its CLIP 77 tokens, once.

Mochi is refused: its attention keeps only the prompt's real tokens, so what a step costs depends on the prompt,
and `predict` cannot count its work (bench.analysis.flops refuses it for the same reason).

torch and diffusers are imported inside the functions: the CLI imports this module through bench.run.calibrate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from bench.core.specs import Settings, Spec

CLIP_TOKENS = 77  # HunyuanVideoPipeline.encode_prompt passes max_sequence_length=77 to its CLIP
TIMESTEP = 999  # a timestep of the first step: any value costs the same


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of block of a stacked class: its count's config field, its ModuleList, its attention modules."""

    layers_key: str
    blocks: str  # attribute path of the ModuleList
    attention: tuple[str, ...]  # module paths inside one block
    older: str | None = None  # its path in older library versions


def blocks_of(model: Any, kind: Kind) -> Any:
    """The ModuleList of a kind of block, where this version of its library keeps it."""
    try:
        return model.get_submodule(kind.blocks)
    except AttributeError:
        if kind.older is None:
            raise
        return model.get_submodule(kind.older)


_T5 = (Kind("num_layers", "encoder.block", ("layer.0.SelfAttention",)),)
STACKS: dict[str, tuple[Kind, ...]] = {
    "WanTransformer3DModel": (Kind("num_layers", "blocks", ("attn1", "attn2")),),
    "HunyuanVideoTransformer3DModel": (Kind("num_layers", "transformer_blocks", ("attn",)),
                                       Kind("num_single_layers", "single_transformer_blocks", ("attn",))),
    "CogVideoXTransformer3DModel": (Kind("num_layers", "transformer_blocks", ("attn1",)),),
    "LTXVideoTransformer3DModel": (Kind("num_layers", "transformer_blocks", ("attn1", "attn2")),),
    "UMT5EncoderModel": _T5,
    "T5EncoderModel": _T5,
    "LlamaModel": (Kind("num_hidden_layers", "layers", ("self_attn",)),),
    # transformers 5 dropped CLIPTextModel's text_model wrapper
    "CLIPTextModel": (Kind("num_hidden_layers", "encoder.layers", ("self_attn",), "text_model.encoder.layers"),),
}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """The VAE's latent of one video (channels, frames, height, width) and the compressions it came from."""

    latent: tuple[int, int, int, int]
    spatial: int
    temporal: int


@dataclasses.dataclass(frozen=True)
class Call:
    """How the denoiser is called per step: `calls` forwards of batch `batch`."""

    calls: int
    batch: int


Inputs = Callable[[Any, Geometry, Settings, dict[str, Any], int, str, Any], dict[str, Any]]


def _wan(config: Any, g: Geometry, s: Settings, pipeline_config: dict[str, Any], batch: int, device: str,
         dtype: Any) -> dict[str, Any]:
    """Latents in the transformer's dtype, one timestep (one per token with expand_timesteps), the prompt's
    embeddings padded to max_sequence_length."""
    import torch

    _, f, h, w = g.latent
    timestep: Any = torch.tensor([TIMESTEP] * batch, device=device)
    if pipeline_config.get("expand_timesteps"):
        pt, ph, pw = config.patch_size
        timestep = torch.full((batch, (f // pt) * (h // ph) * (w // pw)), TIMESTEP, device=device)
    return {"hidden_states": torch.randn(batch, config.in_channels, f, h, w, device=device, dtype=dtype),
            "timestep": timestep,
            "encoder_hidden_states": torch.randn(batch, s.max_sequence_length, config.text_dim, device=device,
                                                 dtype=dtype),
            "return_dict": False}


def _hunyuan(config: Any, g: Geometry, s: Settings, pipeline_config: dict[str, Any], batch: int, device: str,
             dtype: Any) -> dict[str, Any]:
    """Latents (B, C, F, H, W); the timestep and guidance x 1000 in the transformer's dtype; the Llama embeddings
    cropped to max_sequence_length with their mask; CLIP's pooled embedding."""
    import torch

    _, f, h, w = g.latent
    n = s.max_sequence_length
    return {"hidden_states": torch.randn(batch, config.in_channels, f, h, w, device=device, dtype=dtype),
            "timestep": torch.full((batch,), TIMESTEP, device=device, dtype=dtype),
            "encoder_hidden_states": torch.randn(batch, n, config.text_embed_dim, device=device, dtype=dtype),
            "encoder_attention_mask": torch.ones(batch, n, device=device, dtype=torch.long),
            "pooled_projections": torch.randn(batch, config.pooled_projection_dim, device=device, dtype=dtype),
            "guidance": torch.full((batch,), s.guidance_scale * 1000.0, device=device, dtype=dtype),
            "return_dict": False}


def _cogvideox(config: Any, g: Geometry, s: Settings, pipeline_config: dict[str, Any], batch: int, device: str,
               dtype: Any) -> dict[str, Any]:
    """Latents (B, F, C, H, W), latent frames padded to patch_size_t (CogVideoX 1.5); the rotary embeddings the
    pipeline makes where the transformer uses them."""
    import torch

    _, f, h, w = g.latent
    p_t = config.patch_size_t
    f += (-f) % p_t if p_t else 0
    kwargs = {"hidden_states": torch.randn(batch, f, config.in_channels, h, w, device=device, dtype=dtype),
              "encoder_hidden_states": torch.randn(batch, s.max_sequence_length, config.text_embed_dim,
                                                   device=device, dtype=dtype),
              "timestep": torch.full((batch,), TIMESTEP, device=device, dtype=torch.long),
              "image_rotary_emb": None, "return_dict": False}
    if config.use_rotary_positional_embeddings:
        from types import SimpleNamespace

        from diffusers import CogVideoXPipeline

        holder = SimpleNamespace(vae_scale_factor_spatial=g.spatial, transformer=SimpleNamespace(config=config))
        kwargs["image_rotary_emb"] = CogVideoXPipeline._prepare_rotary_positional_embeddings(
            holder, s.height, s.width, f, torch.device(device))
    return kwargs


def _ltx(config: Any, g: Geometry, s: Settings, pipeline_config: dict[str, Any], batch: int, device: str,
         dtype: Any) -> dict[str, Any]:
    """Latents packed into tokens (B, F/pt x H/p x W/p, C); the prompt's embeddings and mask; the latent size and
    the rope scale (temporal compression / frame rate, spatial compression twice)."""
    import torch

    _, f, h, w = g.latent
    tokens = (f // config.patch_size_t) * (h // config.patch_size) * (w // config.patch_size)
    n = s.max_sequence_length
    return {"hidden_states": torch.randn(batch, tokens, config.in_channels, device=device, dtype=dtype),
            "encoder_hidden_states": torch.randn(batch, n, config.caption_channels, device=device, dtype=dtype),
            "timestep": torch.full((batch,), float(TIMESTEP), device=device),
            "encoder_attention_mask": torch.ones(batch, n, device=device, dtype=torch.bool),
            "num_frames": f, "height": h, "width": w,
            "rope_interpolation_scale": (g.temporal / s.fps, g.spatial, g.spatial), "return_dict": False}


@dataclasses.dataclass(frozen=True)
class Family:
    inputs: Inputs
    spatial_attr: str  # the pipeline's attribute of the VAE's spatial compression
    temporal_attr: str  # and of its temporal compression
    batched_guidance: bool  # guidance as one call on a batch of 2, not two calls


FAMILIES = {
    "wan": Family(_wan, "vae_scale_factor_spatial", "vae_scale_factor_temporal", False),
    "hunyuanvideo": Family(_hunyuan, "vae_scale_factor_spatial", "vae_scale_factor_temporal", False),
    "cogvideox": Family(_cogvideox, "vae_scale_factor_spatial", "vae_scale_factor_temporal", True),
    "ltx": Family(_ltx, "vae_spatial_compression_ratio", "vae_temporal_compression_ratio", True),
}
REFUSED = {"mochi": "its attention keeps only the prompt's real tokens, so a step's cost depends on the prompt and "
                    "predict cannot count its work"}


def guided(spec: Spec, settings: Settings) -> bool:
    """Classifier-free guidance as two passes: diffusers decides it on guidance_scale alone (both experts)."""
    return spec.cfg_doubles_denoiser and settings.guidance_scale > 1


def denoiser_call(spec: Spec, settings: Settings) -> Call:
    """Forwards per step and their batch: guidance doubles one or the other, as the family's pipeline does."""
    if not guided(spec, settings):
        return Call(1, 1)
    return Call(1, 2) if FAMILIES[spec.family].batched_guidance else Call(2, 1)


def geometry(spec: Spec, settings: Settings) -> Geometry:
    """The latent the pipeline makes at settings, from the compressions the pipeline itself reads off its VAE
    (built on the meta device with the denoiser: no memory, no weights)."""
    import torch

    from bench.run.build import build_component, resolve_class

    built = {"vae", spec.denoiser}
    parts = {n: build_component(e, "meta", torch.bfloat16) if n in built else None
             for n, e in spec.components.items()}
    pipe = resolve_class(f"diffusers.{spec.pipeline}")(**parts, **spec.pipeline_config)
    family = FAMILIES[spec.family]
    spatial, temporal = int(getattr(pipe, family.spatial_attr)), int(getattr(pipe, family.temporal_attr))
    vae = parts["vae"].config
    channels = int(vae.get("latent_channels") or vae.get("z_dim"))
    latent = (channels, (settings.num_frames - 1) // temporal + 1, settings.height // spatial,
              settings.width // spatial)
    return Geometry(latent, spatial, temporal)


def text_encoders(spec: Spec) -> list[str]:
    """The text encoders in the order the pipeline runs them."""
    return [n for n in ("text_encoder", "text_encoder_2") if n in spec.components]


def text_inputs(class_name: str, config: Any, settings: Settings, device: str) -> dict[str, Any]:
    """One prompt as its pipeline tokenizes it for this encoder (ids first: they are the recorded input)."""
    import torch

    if class_name == "CLIPTextModel":
        return {"input_ids": torch.randint(0, config.vocab_size, (1, CLIP_TOKENS), device=device),
                "output_hidden_states": False}
    length = settings.max_sequence_length + (hunyuan_template_tokens() if class_name == "LlamaModel" else 0)
    ids = torch.randint(0, config.vocab_size, (1, length), device=device)
    if class_name == "T5EncoderModel":  # CogVideoX and LTX pass the ids alone
        return {"input_ids": ids}
    extra = {"output_hidden_states": True} if class_name == "LlamaModel" else {}  # Hunyuan takes a hidden state
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **extra}


def hunyuan_template_tokens() -> int:
    """The tokens of HunyuanVideoPipeline's default prompt template, run through the Llama and then cropped."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE

    return int(DEFAULT_PROMPT_TEMPLATE["crop_start"])
