import functools

import pytest

from bench import cli

TINY = ["tiny-wan", "tiny-cogvideox", "tiny-ltx", "tiny-hunyuanvideo", "tiny-mochi"]


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
