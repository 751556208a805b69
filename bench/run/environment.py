"""What the run ran on: software versions, device, and the hardware-class string results are grouped by.

torch is imported only in the worker's calls (the parent never imports it).
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import bench
from bench.core.hardware import slug


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_class(device_name: str, device_type: str) -> str:
    """A stable class string: the GPU's marketing name as a slug, or cpu:<model>."""
    if device_type == "cpu":
        return f"cpu:{slug(device_name)}"
    return slug(device_name)


def git_commit() -> str | None:
    """The t2vbench checkout's commit, or None when installed from a wheel."""
    root = Path(bench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe(device: str) -> dict[str, Any]:
    """Environment of a run on `device` ('cpu' or 'cuda:N'); imports torch, so call it in the worker."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        name = torch.cuda.get_device_name(index)
        count = torch.cuda.device_count()
    else:
        name, count = cpu_model(), 1
    return {
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "cuda": torch.version.cuda,
        "rocm": getattr(torch.version, "hip", None),
        "device_name": name,
        "device_count": count,
        "t2vbench": bench.__version__,
        "t2vbench_commit": git_commit(),
    }
