"""From a run's messages (live, or read back from its journal) to a result record. Plain data in, a validated
record out: the same function serves `run` and `t2vbench recover`, so a recovered record is the record the run
would have written."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import metrics
from bench.errors import UsageError
from bench.messages import Message
from bench.record import SCHEMA_VERSION, ResultRecord, validate
from bench.telemetry.summary import summarize as summarize_telemetry

GENERATION_FIELDS = ("index", "seed", "latency_s", "text_encode_s", "denoise_s", "vae_decode_s", "step_s",
                     "telemetry", "peak_memory_bytes")


@dataclasses.dataclass
class RunState:
    """Everything a run reported, folded from its messages in order."""

    header: dict[str, Any]
    device: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    loaded: dict[str, Any] | None = None
    warmups: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    generations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    series: dict[str, list] | None = None
    cpu_energy: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    video: str | None = None
    done: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None

    def take(self, msg: Message) -> None:
        f = msg.fields
        if msg.kind in ("warmup", "generation"):
            getattr(self, msg.kind + "s").append(f)
        elif msg.kind == "series":
            self.series = self.series or {k: [] for k in f["columns"]}
            for key, values in f["columns"].items():
                self.series.setdefault(key, []).extend(values)
        elif msg.kind == "telemetry":  # the static description first, read errors at the end
            self.telemetry = {**(self.telemetry or {}), **f}
        elif msg.kind == "video":
            self.video = f["path"]
        elif msg.kind != "header":
            setattr(self, msg.kind, f)


def replay(messages: list[Message]) -> RunState:
    state = RunState(header=messages[0].fields)
    for msg in messages[1:]:
        state.take(msg)
    return state


def failure_reason(state: RunState) -> str | None:
    """Why the worker stopped early, in one line, or None."""
    if state.failed is None:
        return None
    if state.failed["reason"] == "crash":
        return "the generating code failed: " + state.failed["message"].strip().splitlines()[-1]
    return state.failed["message"]


def build_record(state: RunState, reason: str | None) -> ResultRecord:
    """The record of a run; incomplete (with the reason) when reason is not None. If the telemetry part fails
    validation the record is kept without it, saying why. Raises UsageError when no generation finished."""
    if not state.generations or state.device is None:
        raise UsageError(f"no generation finished, so there is nothing to record: {reason or 'unknown reason'}")
    data = _record_data(state, reason)
    try:
        return validate(data, "the run's record")
    except UsageError as exc:
        if data["telemetry"]["backend"] == "none":
            raise
        data["telemetry"] = _no_telemetry(f"telemetry dropped, it failed validation ({exc})", data)
        data["warnings"].append(f"telemetry was dropped: it failed validation ({exc})")
        data["generations"] = [{**g, "telemetry": None} for g in data["generations"]]
        return validate(data, "the run's record")


def _record_data(state: RunState, reason: str | None) -> dict[str, Any]:
    h, dev = state.header, state.device
    s = h["settings"]
    gens = [{k: g.get(k) for k in GENERATION_FIELDS} for g in state.generations]
    video_s = metrics.video_seconds(s["num_frames"], s["fps"])
    summary = metrics.summarize(gens, s["num_frames"], s["fps"], h["gpus_used"])
    warnings = list(h.get("warnings", [])) + metrics.quality_warnings(summary)
    telemetry, gens, more = _telemetry(state, gens, video_s)
    warnings += more
    recompiles = (state.done or {}).get("recompiles", 0)
    if recompiles:
        warnings.append(f"torch.compile recompiled {recompiles} time(s) during the timed generations: they include "
                        "compilation; fix the cause (shapes, guards) before trusting the figure")
    if reason is not None:
        warnings.insert(0, f"incomplete: {reason}; {len(gens)} generation(s) were kept")
    last = state.generations[-1]
    return {
        "schema_version": SCHEMA_VERSION, "t2vbench_version": h["t2vbench_version"], "command": h["command"],
        "label": h["label"], "run_id": h["run_id"], "created_utc": h["created_utc"],
        "complete": reason is None, "incomplete_reason": reason, "spec": h["spec"],
        "settings": {**s, **h["run"], "device": dev["device"], "dtype": dev["dtype"], "gpus_used": h["gpus_used"],
                     "options": {**h["options"], **(state.loaded or {}).get("options", {})}},
        "weights": h["weights"], "hardware_class": dev["hardware_class"], "environment": dev["environment"],
        "load_s": (state.loaded or {}).get("load_s", 0.0),
        "warmup_latency_s": [w["latency_s"] for w in state.warmups],
        "warmup_seeds": [w["seed"] for w in state.warmups],
        "generations": gens, "summary": summary,
        "peak_memory_bytes": max(g["peak_memory_bytes"] for g in gens),
        "peak_memory_method": last["peak_memory_method"],
        "warnings": warnings, "telemetry": telemetry,
        "fidelity": _fidelity(state), "video_path": state.video,
    }


def _telemetry(state: RunState, gens: list[dict[str, Any]], video_s: float
               ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    if state.telemetry is None:
        return _no_telemetry("the worker stopped before reporting telemetry", {}), gens, []
    info = {**state.telemetry, "series": state.series, "cpu": state.cpu_energy}
    return summarize_telemetry(info, gens, video_s)


def _no_telemetry(reason: str, data: dict[str, Any]) -> dict[str, Any]:
    old = data.get("telemetry") or {}
    return {"backend": "none", "available": False, "unavailable_reason": reason, "device": old.get("device"),
            "energy_method": None, "energy_unsupported_reason": reason,
            "sample_period_s": old.get("sample_period_s", 0.1),
            "summary": {"energy_per_video_j": None, "energy_per_video_minute_wh": None, "energy_counter_j": None,
                        "energy_integrated_j": None, "avg_power_w": None, "peak_power_w": None,
                        "sm_clock_mean_mhz": None, "sm_clock_max_mhz": None, "peak_temperature_c": None,
                        "power_limit_w": None, "throttle_share": {}, "samples": 0, "sampling_gaps": 0,
                        "longest_gap_s": 0.0},
            "series": None, "cpu": old.get("cpu") or {"package_energy_j": None, "reason": reason}}


def _fidelity(state: RunState) -> dict[str, Any] | None:
    if state.fidelity is None:
        return None
    return {**state.fidelity, "compared": state.header.get("output_changing", []),
            "reference": "a plain generation of the same settings and seed, in the same process"}
