"""The real hub and local-directory loading code, exercised offline on a pipeline saved by the test."""

import dataclasses
import json

import pytest
import torch

from bench.core.specs import load_spec
from bench.records.io import load_record
from bench.run.build import build_pipeline


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


def test_hub_repo_id_from_the_offline_cache(saved_tiny_wan, tmp_path, monkeypatch):
    pipe, path = saved_tiny_wan
    # The hub cache layout: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "hub" / "models--t2vbench-test--tiny-wan"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    import shutil

    shutil.copytree(path, repo / "snapshots" / commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    spec = dataclasses.replace(load_spec("tiny-wan"), repo_id="t2vbench-test/tiny-wan")
    loaded = build_pipeline(spec, "hub", "cpu", torch.float32)
    assert torch.equal(_first_param(loaded.transformer), _first_param(pipe.transformer))


def test_missing_hub_repo_offline_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    from bench.core.errors import UsageError

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = dataclasses.replace(load_spec("tiny-wan"), repo_id="t2vbench-test/absent")
    with pytest.raises(UsageError, match="could not load WanPipeline from 't2vbench-test/absent'"):
        build_pipeline(spec, "hub", "cpu", torch.float32)
