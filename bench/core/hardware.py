"""The hardware catalogue: per class, memory, peak dense FLOP/s, bandwidth, board power, price, the dated rental
$ per GPU-hour, the idle power floor and the maximum SM clock, each sourced."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import sys
from pathlib import Path

from bench.core.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOGUE = Path(__file__).parent / "data" / "hardware.toml"


def slug(text: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


@dataclasses.dataclass(frozen=True)
class HardwareClass:
    id: str
    name: str
    vendor: str
    match: str
    memory_gb: float
    bf16_tflops: float
    memory_tbs: float
    board_power_w: float
    source: str
    date: str
    fp8_tflops: float | None = None
    price_usd: float | None = None
    rental_usd_per_gpu_hour: float | None = None  # on-demand list price of one named cloud, per GPU
    rental_source: str | None = None  # the cloud, its page, the instance and where the price was read
    rental_date: str | None = None  # YYYY-MM-DD the price was last read; rental prices move monthly
    idle_power_w: float | None = None  # lowest plausible draw while a process holds the GPU; None: no floor known
    idle_source: str | None = None  # where the floor comes from, or how it was derived from a sourced one
    max_sm_clock_mhz: float | None = None  # the highest SM clock the class runs at (its maximum boost); None: unsourced
    clock_source: str | None = None  # where the maximum clock comes from
    compute_capability: str | None = None  # NVIDIA's "major.minor" for the class's chip (what NVML reports); None: AMD
    capability_source: str | None = None  # where the compute capability comes from

    def __post_init__(self) -> None:
        # the catalogue is ours: a floor without its source, or one above the board power, is a bug, not a user error
        if (self.idle_power_w is None) != (self.idle_source is None):
            raise ValueError(f"{self.id}: idle_power_w and idle_source go together")
        if (self.max_sm_clock_mhz is None) != (self.clock_source is None):
            raise ValueError(f"{self.id}: max_sm_clock_mhz and clock_source go together")
        if (self.compute_capability is None) != (self.capability_source is None):
            raise ValueError(f"{self.id}: compute_capability and capability_source go together")
        if self.idle_power_w is not None and not 0 < self.idle_power_w < self.board_power_w:
            raise ValueError(f"{self.id}: idle_power_w {self.idle_power_w} W is not below the board power")

    def peak_flops(self, dtype: str = "bfloat16") -> float:
        """Peak dense FLOP/s for a dtype. Raises UsageError where the class has no such tensor rate."""
        if dtype in ("bfloat16", "float16", "bf16", "fp16"):
            return self.bf16_tflops * 1e12
        if dtype in ("fp8", "float8") and self.fp8_tflops is not None:
            return self.fp8_tflops * 1e12
        raise UsageError(f"{self.id} has no dense {dtype} tensor rate in the catalogue; use bfloat16")


@functools.cache  # read once: match_gpu runs per record when a results folder is scanned
def catalogue() -> dict[str, HardwareClass]:
    data = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    return {key: HardwareClass(id=key, **fields) for key, fields in data.items()}


def get(class_id: str) -> HardwareClass:
    """A class by id. Raises UsageError with 'did you mean' for an unknown id."""
    classes = catalogue()
    if class_id not in classes:
        close = difflib.get_close_matches(class_id, list(classes), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        shown = repr(class_id if len(class_id) <= 80 else class_id[:77] + "...")  # repr: no terminal escapes
        raise UsageError(f"unknown hardware class {shown}: {hint}run 't2vbench hardware' to list them")
    return classes[class_id]


def match_gpu(name: str) -> HardwareClass | None:
    """The catalogue class of a GPU by its reported name ('NVIDIA H100 80GB HBM3'), or None."""
    s = slug(name.removeprefix("cpu:"))
    for hw in catalogue().values():
        if re.search(hw.match, s):
            return hw
    return None
