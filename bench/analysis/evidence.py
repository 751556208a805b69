"""What a record must show of the GPU its class names. A GPU run writes the device torch saw into `environment`
(device_name, device_count, the CUDA or ROCm version torch was built with, the torch build) and, with telemetry on,
the vendor library's own reading of the device (`telemetry.device`, the backend that read it). A record whose class
says one GPU while these say a CPU, another GPU, or another vendor's stack was edited, and the gate refuses it.
"""

from __future__ import annotations

from typing import Any

from bench.core import hardware
from bench.core.text import shown
from bench.records.schema import ResultRecord, Telemetry

# The telemetry backend (bench.telemetry.BACKENDS) and the torch build that measure each vendor's GPUs.
VENDOR_BACKEND = {"nvidia": "nvml", "amd": "amdsmi"}
VENDOR_STACK = {"nvidia": "cuda", "amd": "rocm"}  # environment key: torch.version.cuda / torch.version.hip
STACK_NAME = {"cuda": "CUDA", "rocm": "ROCm"}
CPU_TORCH_BUILD = "+cpu"  # pip's CPU-only torch wheels ('2.13.0+cpu') cannot have run on any GPU


def problems(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """One message per way the record's environment or telemetry (its own and each worker's) contradicts its GPU
    class `hw`; [] when they agree. Messages name the field and the value found."""
    return _environment(record, hw) + _telemetry(record.telemetry, hw, "telemetry") + _workers(record)


def _environment(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    env = record.environment
    out = _named_gpu("environment.device_name", env.get("device_name"), hw)
    stack = VENDOR_STACK.get(hw.vendor)
    if stack is not None and not _text(env.get(stack)):
        out.append(f"environment.{stack} is {_value(env.get(stack))}: the {hw.name} runs only under "
                   f"{STACK_NAME[stack]}, and torch records its {STACK_NAME[stack]} version")
    other = {v for k, v in VENDOR_STACK.items() if k != hw.vendor}
    for key in sorted(other):
        if _text(env.get(key)):
            out.append(f"environment.{key} is {_value(env.get(key))}: a {STACK_NAME[key]} build of torch cannot run "
                       f"the {hw.name}")
    torch = env.get("torch")
    if isinstance(torch, str) and torch.endswith(CPU_TORCH_BUILD):
        out.append(f"environment.torch is {_value(torch)}, a CPU-only build: it cannot have run on the {hw.name}")
    count = env.get("device_count")
    if isinstance(count, int) and count < record.settings.gpus_used:
        out.append(f"environment.device_count is {count} but the run used {record.settings.gpus_used} GPUs")
    return out


def _telemetry(t: Telemetry | None, hw: hardware.HardwareClass, where: str) -> list[str]:
    """A section that says it measured must have been read by the vendor's library, from a device of the class."""
    if t is None or not t.available:
        return []
    out = []
    backend = VENDOR_BACKEND.get(hw.vendor)
    if backend is not None and t.backend != backend:
        out.append(f"{where}.backend is {_value(t.backend)}, but {hw.vendor.upper()} GPUs such as the {hw.name} are "
                   f"measured through {backend}")
    name = (t.device or {}).get("name")
    if name is not None:
        out += _named_gpu(f"{where}.device.name", name, hw)
    return out


def _workers(record: ResultRecord) -> list[str]:
    """Each worker of a multi-GPU run that measured its GPU, held to its own class (where the catalogue has it)."""
    out = []
    for w in record.workers or []:
        own = hardware.match_gpu(w.hardware_class)
        if own is not None:
            out += _telemetry(w.telemetry, own, f"workers[{w.index}].telemetry")
    return out


def _named_gpu(field: str, name: Any, hw: hardware.HardwareClass) -> list[str]:
    if not _text(name):
        return [f"{field} is {_value(name)}: a {hw.name} record must name the GPU it ran on"]
    found = hardware.match_gpu(name)
    if found is None:
        return [f"{field} {_value(name)} is no GPU of the catalogue, but the record's class is {hw.id} ({hw.name})"]
    if found.id != hw.id:
        return [f"{field} {_value(name)} is a {found.id} ({found.name}), but the record's class is {hw.id} "
                f"({hw.name})"]
    return []


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _value(value: Any) -> str:
    return "absent" if value is None else shown(value)
