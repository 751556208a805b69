"""Build a diffusers pipeline from a spec: random weights from config, a hub repo id, or a local directory.

Random weights have the released architecture's shapes, so they cost the same FLOPs and nearly the same time;
their output is noise. Nothing here passes trust_remote_code.

tokenizers and transformers are imported where an offline tokenizer is built.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import torch

from bench.core.errors import UsageError
from bench.core.specs import Spec
from bench.run.options import DTYPE_NAMES
from bench.run.weights import download_command, not_cached

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
# Enough words that prompts tokenize to distinct ids; anything else maps to [UNK].
_WORDS = (
    "a an the of in on at with and to is cat dog fox bird fish horse person man woman child city street forest "
    "beach ocean mountain river sky sun moon night day rain snow walks runs flies swims jumps sits under over "
    "red blue green golden white black slow motion cinematic shot close up wide camera pans light"
).split()


def resolve_class(dotted: str) -> type:
    """'diffusers.WanPipeline' -> the class. Only the diffusers and transformers libraries are allowed."""
    module, _, name = dotted.rpartition(".")
    if module not in ("diffusers", "transformers"):
        raise ValueError(f"component class {dotted!r} is not from diffusers or transformers")
    return getattr(importlib.import_module(module), name)


def make_tokenizer(model_max_length: int = 512) -> Any:
    """A word-level tokenizer built in memory, so random-weight pipelines need no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    vocab = {tok: i for i, tok in enumerate(specials + _WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=model_max_length,
    )


@contextlib.contextmanager
def _default_device_and_dtype(device: str, dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly on the device in the target dtype: no fp32 copy of a 14B model in host RAM."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _keep_fp32(model: torch.nn.Module) -> None:
    """Cast the modules the library keeps in fp32 (as from_pretrained would), so layouts match real loads."""
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    for name, module in model.named_modules():
        if any(k in name.split(".") for k in keep):
            module.float()


def build_component(entry: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    """One pipeline component from its spec entry, with random weights."""
    kind = entry["class"]
    config = dict(entry.get("config", {}))
    if kind == "tokenizer":
        return make_tokenizer(entry.get("model_max_length", 512))
    cls = resolve_class(kind)
    if "config_class" in entry:  # a transformers model: config object first
        config_obj = resolve_class(entry["config_class"])(**config)
        with _default_device_and_dtype(device, dtype):
            model = cls(config_obj)
    elif hasattr(cls, "set_timesteps"):  # a scheduler: no weights
        return cls.from_config(config)
    else:
        with _default_device_and_dtype(device, dtype):
            model = cls.from_config(config)
    if dtype != torch.float32:
        _keep_fp32(model)
    return model.eval().requires_grad_(False)


def build_random(spec: Spec, device: str, dtype: torch.dtype, park: str | None = None) -> Any:
    """The pipeline with every component built from its config, and the pipeline's own config from the spec's
    [pipeline_config] (Wan 2.2: `boundary_ratio` switches from `transformer` to `transformer_2`; `expand_timesteps`).

    park: move each component there as soon as it is built (offloading: random init runs on the GPU, where it takes
    seconds, not minutes, and only the largest component must fit it at once)."""
    pipeline_cls = resolve_class(f"diffusers.{spec.pipeline}")
    components = {}
    for name, entry in spec.components.items():
        component = build_component(entry, device, dtype)
        components[name] = component.to(park) if park and isinstance(component, torch.nn.Module) else component
    if park and device.startswith("cuda"):
        torch.cuda.empty_cache()
    return pipeline_cls(**components, **spec.pipeline_config)


def count_params_meta(spec: Spec) -> dict[str, int]:
    """Parameter count of every model component, built on the meta device (no memory, no time)."""
    built = {name: build_component(entry, "meta", torch.float32) for name, entry in spec.components.items()}
    return {name: sum(p.numel() for p in m.parameters()) for name, m in built.items() if isinstance(m, torch.nn.Module)}


def load_pretrained(spec: Spec, location: str, dtype: torch.dtype, from_hub: bool) -> Any:
    """Load from the hub cache (location a repo id) or a local diffusers directory, never from the network (a run
    times loading, not downloading: bench.run.weights). Errors become one UsageError line."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    pipeline_cls = resolve_class(f"diffusers.{spec.pipeline}")
    try:
        return pipeline_cls.from_pretrained(location, torch_dtype=dtype, local_files_only=True)
    except LocalEntryNotFoundError:
        raise UsageError(not_cached(spec.name, location)) from None
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        fix = (f"the cached copy is incomplete: fetch it again with `{download_command(location)}`" if from_hub else
               "check the directory (written by save_pretrained)")
        raise UsageError(f"could not load {spec.pipeline} from '{location}': {first}; {fix}, "
                         "or use --weights random") from None


def build_pipeline(spec: Spec, weights: str, device: str, dtype: torch.dtype, park: str | None = None) -> Any:
    """The pipeline on its device (or parked on `park`, e.g. 'cpu' for offloading), progress bars off.
    weights: 'random', 'hub' or a local directory."""
    if weights == "random":
        pipe = build_random(spec, device, dtype, park)
    else:
        location = spec.repo_id if weights == "hub" else weights
        if location is None:
            raise UsageError(f"{spec.name} has no hub repo; use --weights random or a local directory")
        pipe = load_pretrained(spec, location, dtype, from_hub=weights == "hub").to(park or device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
