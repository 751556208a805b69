"""Where a run's weights come from, checked before anything is built: a local diffusers directory must be one, and
a hub repo must already be in the Hugging Face cache.

A run times loading the model (the record's load figure); a download inside it would be timed as loading, and a
14B model is tens of GiB. So hub weights are fetched first, with the command the refusal names, and a run never
downloads. The cache is huggingface_hub's own (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), read
through its try_to_load_from_cache, which reads the disk only: no network, whatever HF_HUB_OFFLINE says.

huggingface_hub is imported inside the functions (it is light, and imports no torch).
"""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import UsageError

INDEX = "model_index.json"  # every diffusers pipeline directory and hub repo has it


def check_local_dir(path: str) -> None:
    """Refuse a --weights path that is not a diffusers pipeline directory, before anything runs. Raises UsageError."""
    if not (Path(path) / INDEX).is_file():
        raise UsageError(
            f"--weights {path}: not a diffusers pipeline directory (no {INDEX}); "
            "give a folder written by save_pretrained, 'hub' or 'random'"
        )


def check_hub_cached(model: str, repo_id: str) -> None:
    """Refuse hub weights that are not in the Hugging Face cache, naming the repo, the cache and the command that
    fetches them. Raises UsageError."""
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, INDEX), str):  # None, or "known to be absent"
        raise UsageError(not_cached(model, repo_id))


def not_cached(model: str, repo_id: str) -> str:
    """The one line that says the weights are missing and how to get them (also for a cache found incomplete)."""
    from huggingface_hub import constants

    return (f"{model}: its weights ({repo_id}) are not in the Hugging Face cache {constants.HF_HUB_CACHE}; fetch them "
            f"first with `{download_command(repo_id)}` (a run times loading, never downloads; HF_HOME or HF_HUB_CACHE "
            "move the cache), or time the architecture with random weights: --weights random")


def download_command(repo_id: str) -> str:
    """The installed huggingface_hub's download command, read from its console scripts: `hf` (its CLI since v0.34.0,
    release notes), else the older `huggingface-cli`."""
    from importlib.metadata import entry_points

    scripts = {e.name for e in entry_points(group="console_scripts") if e.value.startswith("huggingface_hub")}
    return f"{'huggingface-cli' if 'hf' not in scripts and 'huggingface-cli' in scripts else 'hf'} download {repo_id}"
