"""The one table of run options: every `t2vbench run` flag, where its value lands in a RunConfig, and its name in a
sweep file. The run parser, the roofline's settings flags, the sweep keys and their type checks are all built from
it, so a flag exists in one place. Serving options come from the fields of bench.run.options.Options.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.run.options import Options
from bench.run.runner import DEFAULT_OUT, DEFAULT_PROMPT, RunConfig
from bench.telemetry import CHOICES
from bench.telemetry.sampler import DEFAULT_PERIOD_S

GROUPS = {"general": None, "settings": "generation settings (default: the spec's; a --preset, then these flags)",
          "devices": "several devices (one node)",
          "serving": "serving options (each recorded; output-changing ones get a fidelity figure)"}


@dataclasses.dataclass(frozen=True)
class RunFlag:
    flag: str  # e.g. '--memory-cap'
    kind: type  # bool (a switch), int, float, str or Path
    target: str  # a RunConfig field, 'overrides.<Settings field>' or 'options.<Options field>'
    help: str
    group: str = "general"
    key: str | None = None  # its name in a sweep file; None: not a sweep key
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The argparse destination: the target's last part (unique across the table)."""
        return self.target.rpartition(".")[2]


def _serving() -> list[RunFlag]:
    out = []
    for field in dataclasses.fields(Options):
        m = field.metadata
        flag = m["flag"] or "--" + field.name.replace("_", "-")
        out.append(RunFlag(flag, m["kind"], f"options.{field.name}", m["help"], "serving",
                           flag.removeprefix("--").replace("-", "_"), m["choices"], m["metavar"]))
    return out


def _setting(flag: str, kind: type, field: str, help: str = "") -> RunFlag:
    return RunFlag(flag, kind, f"overrides.{field}", help, "settings", flag.removeprefix("--").replace("-", "_"))


# In the order a sweep cell's flags are written (its id does not depend on it).
RUN_FLAGS: tuple[RunFlag, ...] = (
    _setting("--height", int, "height"),
    _setting("--width", int, "width"),
    _setting("--frames", int, "num_frames"),
    _setting("--fps", float, "fps", "playback rate used for video seconds"),
    _setting("--steps", int, "steps"),
    _setting("--guidance", float, "guidance_scale"),
    _setting("--guidance-2", float, "guidance_scale_2", "two-expert models: the low-noise expert's"),
    RunFlag("--preset", str, "preset", "a named setting of the spec (e.g. mlperf-v6); the flags above override it",
            "settings", "preset"),
    RunFlag("--spec", Path, "spec_file", "your own spec TOML file instead of a name from models/"),
    RunFlag("--weights", str, "weights", "random | hub | PATH to a local diffusers directory (default: the spec's)",
            key="weights"),
    RunFlag("--device", str, "device", "auto | cpu | cuda | cuda:N (default auto)", key="device"),
    RunFlag("--dtype", str, "dtype", "auto | float32 | bfloat16 | float16 (auto: bf16 on GPU, fp32 on CPU)",
            key="dtype"),
    RunFlag("--repeats", int, "repeats", "timed generations (default 3; with --time-budget, the most)", key="repeats"),
    RunFlag("--time-budget", float, "time_budget_s", "time generations for this many seconds", key="time_budget"),
    RunFlag("--warmup", int, "warmup", "untimed warm-up generations (default 1)", key="warmup"),
    RunFlag("--seed", int, "seed", "the first timed generation's seed (default 0)", key="seed"),
    RunFlag("--prompt", str, "prompt", f"default: {DEFAULT_PROMPT!r}", key="prompt"),
    RunFlag("--label", str, "label", "a note kept in the record (e.g. 'rack 3, new driver')"),
    RunFlag("--save-video", bool, "save_video", "write the last generation as an mp4 beside the record",
            key="save_video"),
    RunFlag("--sample-steps", int, "sample_steps", "step-sampled: compute each expert's first step and K more of the "
            "real schedule, skip the rest and extrapolate their time and energy from the K (labelled step-sampled)",
            key="sample_steps", metavar="K"),
    RunFlag("--out", Path, "out_dir", f"folder for records and videos (default {DEFAULT_OUT})"),
    RunFlag("--telemetry", str, "telemetry", f"{' | '.join(CHOICES)} (auto probes NVML, then amdsmi)",
            key="telemetry"),
    RunFlag("--sample-period", float, "sample_period_s", f"seconds between telemetry samples (default "
            f"{DEFAULT_PERIOD_S})", key="sample_period"),
    RunFlag("--gpus", str, "gpus", "data parallel: one worker per GPU (N or all), each making its own videos",
            "devices"),
    # A sweep's `gpus` is the worker count of one run (--workers): 1 is a plain run.
    RunFlag("--workers", int, "workers", "data parallel over N workers (with --device cpu: the same path on the CPU)",
            "devices", "gpus"),
    RunFlag("--parallel", str, "parallel", "context parallel: ulysses=N[,ring=M] GPUs make each video together",
            "devices", "parallel"),
    *_serving(),
)
BY_KEY = {f.key: f for f in RUN_FLAGS if f.key}
assert len({f.dest for f in RUN_FLAGS}) == len(RUN_FLAGS), "two run flags share a destination"


def add_flags(parser: argparse.ArgumentParser, groups: tuple[str, ...] = tuple(GROUPS)) -> None:
    """Add the table's flags of these groups to a parser; every default is None (the RunConfig's default applies)."""
    for name in groups:
        title = GROUPS[name]
        where = parser if title is None else parser.add_argument_group(title)
        for f in RUN_FLAGS:
            if f.group != name:
                continue
            if f.kind is bool:
                where.add_argument(f.flag, dest=f.dest, action="store_true", help=f.help)
            else:
                where.add_argument(f.flag, dest=f.dest, type=f.kind, help=f.help or None,
                                   metavar=f.metavar or f.flag[2:].upper().replace("-", "_"))


def overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings overrides among parsed values (argparse destinations)."""
    return {f.dest: values[f.dest] for f in RUN_FLAGS
            if f.target.startswith("overrides.") and values.get(f.dest) is not None}


def run_config(model: str, values: Mapping[str, Any], **fixed: Any) -> RunConfig:
    """The RunConfig these values (argparse destinations; None or False: not given) ask for, over the defaults."""
    parts: dict[str, dict[str, Any]] = {"overrides": {}, "options": {}, "": {}}
    for f in RUN_FLAGS:
        value = values.get(f.dest)
        if value is not None and value is not False:
            group, _, field = f.target.rpartition(".")
            parts[group][field] = value
    return RunConfig(model=model, overrides=parts["overrides"], options=Options(**parts["options"]),
                     **{**parts[""], **fixed})
