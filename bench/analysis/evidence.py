"""What a record must show of the GPU its class names. A GPU run writes the device torch saw into `environment`
(device_name, device_count, the CUDA or ROCm version torch was built with, the torch build) and, with telemetry on,
the vendor library's own reading of the device (`telemetry.device`, the backend that read it). A record whose class
says one GPU while these say a CPU, another GPU, or another vendor's stack was edited, and the gate refuses it.

Names are three strings an editor can change together, so the device's own facts are held to the class too:
- memory: NVML's memory_total_bytes within MEMORY_SPAN of the class's memory_gb, counted in GB (1e9 bytes) at the low
  end and GiB (2**30 bytes) at the high end, as vendors' "GB" are often GiB. The genuine H100 80GB record reads
  85,520,809,984 bytes (79.6 GiB, 1.07 x 80e9); an H100's 85.5e9 bytes are far from a B200's 180 GB or an H200's 141.
- power: the board's power limit and its default (NVML's power_limit_w, default_power_limit_w) at most the class's
  board power x POWER_MARGIN: a 700 W H100 renamed a 350 W H100 PCIe cannot say so.
- compute capability: NVML's reading equal to the class's from NVIDIA's CUDA GPU list, where the catalogue has it: an
  A100 (8.0) or an L40S (8.9) run renamed an H100 (9.0) still says which chip ran it. (An H100 PCIe and SXM share
  9.0: the power limit above tells those apart.)
- the class string is the slug of the name the run took it from (bench.run.environment.hardware_class: NVML's name,
  else torch's), never a suffixed or prefixed variant that would open a new registry folder.
"""

from __future__ import annotations

from typing import Any

from bench.core import hardware
from bench.core.errors import UsageError
from bench.core.specs import load_spec
from bench.core.text import shown
from bench.records.calibration import CalibrationRecord
from bench.records.schema import GPU_DEVICE, ResultRecord, Telemetry
from bench.run.calibrate_shapes import STACKS

# The telemetry backend (bench.telemetry.BACKENDS) and the torch build that measure each vendor's GPUs.
VENDOR_BACKEND = {"nvidia": "nvml", "amd": "amdsmi"}
VENDOR_STACK = {"nvidia": "cuda", "amd": "rocm"}  # environment key: torch.version.cuda / torch.version.hip
STACK_NAME = {"cuda": "CUDA", "rocm": "ROCm"}
# The local version tag of pip's torch wheels names the stack they were built for ('2.11.0+cu130', '2.5.1+rocm6.2',
# '2.13.0+cpu'); a build for none of the class's vendor cannot have run on its GPU. Untagged builds (NGC, source) pass.
VENDOR_TORCH_TAG = {"nvidia": "cu", "amd": "rocm"}
TORCH_TAG_BUILD = {"cu": "a CUDA build", "rocm": "a ROCm build", "cpu": "a CPU-only build", "xpu": "an Intel XPU build"}
POWER_MARGIN = 1.10  # average board power may exceed the catalogue's board power by this much (boost, sensors)
MEMORY_SPAN = (0.9, 1.1)  # of memory_gb x 1e9 bytes at the low end, of memory_gb x 2**30 bytes at the high end


def problems(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    """One message per way the record's environment or telemetry (its own and each worker's) contradicts its GPU
    class `hw`; [] when they agree. Messages name the field and the value found."""
    return _environment(record, hw) + _telemetry(record.telemetry, hw, "telemetry") + _workers(record)


def calibration_problems(hardware_class: str, device: str, environment: dict[str, Any]) -> list[str]:
    """What a calibration's own provenance contradicts (the checks a record's environment gets): a GPU class needs a
    GPU device string and an environment that names that GPU and its vendor's stack; a CPU class a CPU device."""
    on_gpu = GPU_DEVICE.fullmatch(device) is not None
    if hardware_class.startswith("cpu:"):
        return [] if not on_gpu else [f"device {_value(device)} is a GPU but the class {_value(hardware_class)} a CPU"]
    hw = hardware.match_gpu(hardware_class)
    if hw is None:
        return [f"hardware class {_value(hardware_class)} is not in the catalogue: it cannot be checked"]
    out = [] if on_gpu else [f"device {_value(device)} is not a GPU device, but the class is {hw.id}"]
    return out + _stack(environment, hardware_class, [environment.get("device_name")], hw)


def calibration_spec_problems(calibration: CalibrationRecord) -> list[str]:
    """What a calibration claims of its model that models/ contradicts: a spec of another content under the name (the
    record's rule, bench.analysis.registry), or a stack that is not the spec's component of that class, or a count of
    blocks other than the spec's (calibrate reads it from the spec's config; predict multiplies each block's time by
    it)."""
    try:
        spec = load_spec(calibration.spec.name)
    except UsageError:
        return [f"model {_value(calibration.spec.name)} is not in models/: its calibration cannot be checked"]
    if spec.sha256 != calibration.spec.sha256:
        return [f"made with a spec of {_value(spec.name)} that differs from models/{spec.name}.toml (another "
                "architecture under the same name, or an older spec): calibrate again with the spec in models/"]
    out = []
    for stack in [*calibration.denoisers, *calibration.text_encoders]:
        component = spec.components.get(stack.component) or {}
        if str(component.get("class", "")).rpartition(".")[2] != stack.class_name:
            out.append(f"stack {_value(stack.component)} is a {_value(stack.class_name)}, not the spec's component")
            continue
        config = component.get("config") or {}
        for kind, shaped in zip(stack.kinds, STACKS.get(stack.class_name, ())):
            expected = config.get(shaped.layers_key)
            if isinstance(expected, int) and kind.layers != expected:
                out.append(f"{stack.component} has {kind.layers} {kind.blocks} but models/{spec.name}.toml gives "
                           f"{shaped.layers_key} = {expected}: the calibration was edited")
    return out


def _environment(record: ResultRecord, hw: hardware.HardwareClass) -> list[str]:
    env = record.environment
    out = _stack(env, record.hardware_class, [(record.telemetry.device or {}).get("name"), env.get("device_name")], hw)
    count = env.get("device_count")
    if isinstance(count, int) and count < record.settings.gpus_used:
        out.append(f"environment.device_count is {count} but the run used {record.settings.gpus_used} GPUs")
    return out


def _stack(env: dict[str, Any], hardware_class: str, names: list[Any], hw: hardware.HardwareClass) -> list[str]:
    """The GPU the environment names, the class string made from it, and the vendor's stack and torch build."""
    out = _named_gpu("environment.device_name", env.get("device_name"), hw)
    names = [n for n in names if _text(n)]
    if names and hardware_class not in {hardware.slug(str(n)) for n in names}:
        out.append(f"hardware_class {_value(hardware_class)} is not {_value(hardware.slug(str(names[0])))}, "
                   f"the class of the GPU the record names ({_value(names[0])}): the class was edited")
    stack = VENDOR_STACK.get(hw.vendor)
    if stack is not None and not _text(env.get(stack)):
        out.append(f"environment.{stack} is {_value(env.get(stack))}: the {hw.name} runs only under "
                   f"{STACK_NAME[stack]}, and torch records its {STACK_NAME[stack]} version")
    other = {v for k, v in VENDOR_STACK.items() if k != hw.vendor}
    for key in sorted(other):
        if _text(env.get(key)):
            out.append(f"environment.{key} is {_value(env.get(key))}: a {STACK_NAME[key]} build of torch cannot run "
                       f"the {hw.name}")
    tag = str(env.get("torch") or "").partition("+")[2]
    wrong = [t for t in TORCH_TAG_BUILD if tag.startswith(t) and t != VENDOR_TORCH_TAG.get(hw.vendor)]
    if wrong:
        out.append(f"environment.torch is {_value(env.get('torch'))}, {TORCH_TAG_BUILD[wrong[0]]}: it cannot have run "
                   f"on the {hw.name}")
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
    out += _named_gpu(f"{where}.device.name", (t.device or {}).get("name"), hw)
    return out + _device_facts(t.device or {}, hw, f"{where}.device")


def _device_facts(device: dict[str, Any], hw: hardware.HardwareClass, where: str) -> list[str]:
    """The vendor library's memory and power readings, held to the class (see the module's docstring)."""
    out = []
    memory = device.get("memory_total_bytes")
    low, high = MEMORY_SPAN[0] * hw.memory_gb * 1e9, MEMORY_SPAN[1] * hw.memory_gb * 2**30
    if isinstance(memory, (int, float)) and not low <= memory <= high:
        out.append(f"{where}.memory_total_bytes is {memory:.4g} ({memory / 2**30:.1f} GiB), but a {hw.name} has "
                   f"{hw.memory_gb:g} GB: the device is not of the record's class {hw.id}")
    capability = device.get("compute_capability")
    if hw.compute_capability is not None and capability is not None and capability != hw.compute_capability:
        out.append(f"{where}.compute_capability is {_value(capability)}, but a {hw.name} is compute capability "
                   f"{hw.compute_capability} (NVIDIA's CUDA GPU list): the device is not of the record's class {hw.id}")
    for key in ("power_limit_w", "default_power_limit_w"):
        watts = device.get(key)
        if isinstance(watts, (int, float)) and watts > hw.board_power_w * POWER_MARGIN:
            out.append(f"{where}.{key} is {watts:g} W, above the {hw.name}'s {hw.board_power_w:g} W board power: "
                       f"the device is not of the record's class {hw.id}")
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
