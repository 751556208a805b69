import functools

import pytest

from bench import cli

TINY = ["tiny-wan", "tiny-cogvideox", "tiny-ltx", "tiny-hunyuanvideo", "tiny-mochi"]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The FLOP cache of this test session, never the user's (bench.analysis.flops.total_flops)."""
    import os

    os.environ["T2VBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    from tests.golden_work import seed_work_cache

    seed_work_cache()


@functools.cache
def cuda_available() -> bool:
    """Whether this host has a CUDA or ROCm GPU visible to torch (device-specific tests say which they need)."""
    import torch

    return torch.cuda.is_available()


@pytest.fixture
def run_cli(capsys):
    """Call the CLI in-process; returns (exit code, stdout, stderr)."""

    def call(*argv: str):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def no_runs(monkeypatch):
    """Fail the test if a sweep starts any cell."""
    from bench.run import sweep_launch

    def refuse(*args, **kwargs):
        raise AssertionError(f"a cell was started: {args}")

    monkeypatch.setattr(sweep_launch.subprocess, "Popen", refuse)
