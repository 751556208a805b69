"""The real hub and local-directory loading code, exercised offline on a pipeline saved by the test."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.core.errors import UsageError
from bench.core.specs import load_spec
from bench.records.io import load_record
from bench.run.build import build_pipeline
from bench.run.runner import RunConfig, prepare

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def saved_tiny_wan(tmp_path_factory):
    spec = load_spec("tiny-wan")
    pipe = build_pipeline(spec, "random", "cpu", torch.float32)
    path = tmp_path_factory.mktemp("pipe") / "tiny-wan-diffusers"
    pipe.save_pretrained(path)
    return pipe, path


def _first_param(module):
    return next(module.parameters()).detach().clone()


@pytest.mark.slow
def test_local_directory_through_the_cli(run_cli, saved_tiny_wan, tmp_path):
    _, path = saved_tiny_wan
    code, out, err = run_cli("run", "tiny-wan", "--weights", path, "--repeats", 1, "--out", tmp_path, "--json")
    assert code == 0, err
    record = load_record(json.loads(out)["record"])
    assert record.weights.source == "local" and record.weights.location == str(path.resolve())


def test_local_directory_loads_the_saved_weights(saved_tiny_wan):
    pipe, path = saved_tiny_wan
    loaded = build_pipeline(load_spec("tiny-wan"), str(path), "cpu", torch.float32)
    assert torch.equal(_first_param(loaded.transformer), _first_param(pipe.transformer))


def _cache(root, repo_id, snapshot):
    """The hub cache layout huggingface_hub reads: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(snapshot, repo / "snapshots" / commit)
    return repo / "snapshots" / commit


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty hub cache of this test's own, offline, in place of the machine's (huggingface_hub read its
    environment when imported, so its constants are set too)."""
    import huggingface_hub.constants as hc

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    return root


def test_hub_repo_id_from_the_offline_cache(saved_tiny_wan, hub_cache):
    pipe, path = saved_tiny_wan
    _cache(hub_cache, "t2vbench-test/tiny-wan", path)
    spec = dataclasses.replace(load_spec("tiny-wan"), repo_id="t2vbench-test/tiny-wan")
    loaded = build_pipeline(spec, "hub", "cpu", torch.float32)
    assert torch.equal(_first_param(loaded.transformer), _first_param(pipe.transformer))


def test_missing_hub_weights_in_the_worker_are_the_same_one_line(hub_cache):
    spec = dataclasses.replace(load_spec("tiny-wan"), repo_id="t2vbench-test/absent")
    with pytest.raises(UsageError) as caught:
        build_pipeline(spec, "hub", "cpu", torch.float32)
    text = str(caught.value)
    assert f"(t2vbench-test/absent) are not in the Hugging Face cache {hub_cache};" in text
    assert "`hf download t2vbench-test/absent`" in text and "--weights random" in text
    assert "stacktrace" not in text and "local_files_only" not in text and "\n" not in text


def test_a_hub_cache_missing_a_weights_file_says_fetch_it_again(saved_tiny_wan, hub_cache):
    """An interrupted download: model_index.json is there (so the run starts) but the transformer's weights are not."""
    _, path = saved_tiny_wan
    snapshot = _cache(hub_cache, "t2vbench-test/partial", path)
    (snapshot / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    spec = dataclasses.replace(load_spec("tiny-wan"), repo_id="t2vbench-test/partial")
    with pytest.raises(UsageError, match=r"could not load WanPipeline from 't2vbench-test/partial': .*the cached copy "
                       r"is incomplete: fetch it again with `hf download t2vbench-test/partial`, or use --weights "
                       r"random$"):
        build_pipeline(spec, "hub", "cpu", torch.float32)


@pytest.mark.parametrize("offline", ["1", None])
def test_a_run_of_weights_not_in_the_cache_is_refused_before_the_model_is_built(tmp_path, offline):
    """As a new user meets it: the CLI in its own process, HF_HOME pointing at an empty folder, with and without
    HF_HUB_OFFLINE. The repo is the one models/wan2.1-t2v-1.3b.toml names; the cache is HF_HOME/hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT), **({"HF_HUB_OFFLINE": offline} if offline else {}))
    out = subprocess.run([sys.executable, "-m", "bench.cli", "run", "wan2.1-t2v-1.3b", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    expected = (f"t2vbench: error: wan2.1-t2v-1.3b: its weights (Wan-AI/Wan2.1-T2V-1.3B-Diffusers) are not in the "
                f"Hugging Face cache {tmp_path / 'hf' / 'hub'}; fetch them first with "
                "`hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers`")
    assert lines[0].startswith(expected) and lines[0].endswith("--weights random"), lines[0]
    assert not (tmp_path / "out").exists()  # refused by the parent: no worker started, nothing written


def test_cached_hub_weights_pass_the_runs_checks(hub_cache, tmp_path):
    """The check reads the cache, so a cached repo is not refused (only model_index.json is needed to start)."""
    index = tmp_path / "index"
    index.mkdir()
    (index / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    _cache(hub_cache, "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", index)
    prepared = prepare(RunConfig(model="wan2.1-t2v-1.3b", out_dir=tmp_path / "out"))
    assert prepared.weights == "hub"
