"""From a run's messages (live, or read back from its journal) to a result record. Plain data in, a validated
record out: the same function serves `run` and `t2vbench recover`, so a recovered record is the record the run
would have written.

Every message carries the index of the worker that sent it. A single-GPU run has worker 0 only; under data
parallelism every worker's generations are the run's; under context parallelism all ranks make the same generation
and rank 0's timings are the run's, while every rank's telemetry is kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.core import metrics
from bench.core.errors import UsageError
from bench.records.journal import Message
from bench.records.schema import SCHEMA_VERSION, ResultRecord, validate
from bench.telemetry.summary import summarize as summarize_telemetry

GENERATION_FIELDS = ("index", "seed", "latency_s", "text_encode_s", "denoise_s", "vae_decode_s", "step_s",
                     "telemetry", "peak_memory_bytes")


@dataclasses.dataclass
class WorkerState:
    """Everything one worker reported, folded from its messages in order."""

    device: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    loaded: dict[str, Any] | None = None
    warmups: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    generations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    series: dict[str, list] | None = None
    cpu_energy: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    video: str | None = None
    ready: dict[str, Any] | None = None
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
        else:
            setattr(self, msg.kind, f)


@dataclasses.dataclass
class RunState:
    header: dict[str, Any]
    workers: dict[int, WorkerState] = dataclasses.field(default_factory=dict)

    def take(self, msg: Message) -> None:
        if msg.kind == "header":
            return
        fields = dict(msg.fields)
        index = fields.pop("worker", 0)
        self.workers.setdefault(index, WorkerState()).take(Message(msg.kind, fields))

    @property
    def data_parallel(self) -> bool:
        return self.header.get("parallel") == "data"

    def generations(self) -> list[dict[str, Any]]:
        """The run's timed generations: every worker's under data parallelism, rank 0's otherwise."""
        if not self.data_parallel:
            return [{**g, "worker": 0} for g in self.worker(0).generations]
        gens = [{**g, "worker": w} for w, s in sorted(self.workers.items()) for g in s.generations]
        return sorted(gens, key=lambda g: (g["telemetry"]["start_s"], g["worker"]))

    def worker(self, index: int) -> WorkerState:
        return self.workers.get(index) or WorkerState()


def replay(messages: list[Message]) -> RunState:
    state = RunState(header=messages[0].fields)
    for msg in messages[1:]:
        state.take(msg)
    return state


def failure_reason(state: RunState) -> str | None:
    """Why a worker stopped early, in one line, or None."""
    for index, w in sorted(state.workers.items()):
        if w.failed is not None:
            message = w.failed["message"]
            if w.failed["reason"] == "crash":
                message = "the generating code failed: " + message.strip().splitlines()[-1]
            return message if len(state.workers) == 1 else f"worker {index}: {message}"
    return None


def build_record(state: RunState, reason: str | None) -> ResultRecord:
    """The record of a run; incomplete (with the reason) when reason is not None. If the telemetry part fails
    validation the record is kept without it, saying why. Raises UsageError when no generation finished."""
    if not state.generations() or state.worker(0).device is None:
        raise UsageError(f"no generation finished, so there is nothing to record: {reason or 'unknown reason'}")
    data = _record_data(state, reason)
    try:
        return validate(data, "the run's record")
    except UsageError as exc:
        if data["telemetry"]["backend"] == "none":
            raise
        why = f"telemetry dropped, it failed validation ({exc})"
        data["telemetry"] = _no_telemetry(why, data["telemetry"])
        data["warnings"].append(f"telemetry was dropped: it failed validation ({exc})")
        data["generations"] = [{**g, "telemetry": {**g["telemetry"], **dict.fromkeys(_ENERGY_FIELDS)}}
                               for g in data["generations"]]
        for w in data["workers"] or []:
            w["telemetry"] = None
        return validate(data, "the run's record")


_ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j")


def _record_data(state: RunState, reason: str | None) -> dict[str, Any]:
    h, first = state.header, state.worker(0)
    s = h["settings"]
    video_s = metrics.video_seconds(s["num_frames"], s["fps"])
    made = state.generations()
    gens = [{k: g.get(k) for k in (*GENERATION_FIELDS, "worker")} for g in made]
    telemetry, own, warnings = _telemetry(first, [g for g in gens if g["worker"] == 0], video_s)
    gens = [own.pop(0) if g["worker"] == 0 else g for g in gens]  # worker 0's, with energy filled in
    summary = metrics.summarize(gens, s["num_frames"], s["fps"], h["gpus_used"], h.get("parallel"))
    warnings = list(h.get("warnings", [])) + metrics.quality_warnings(summary) + warnings
    warnings += _per_worker_warnings(state)
    warnings += _recompile_warnings(state)
    if reason is not None:
        warnings.insert(0, f"incomplete: {reason}; {len(gens)} generation(s) were kept")
    dev = first.device
    return {
        "schema_version": SCHEMA_VERSION, "t2vbench_version": h["t2vbench_version"], "command": h["command"],
        "label": h["label"], "run_id": h["run_id"], "created_utc": h["created_utc"],
        "complete": reason is None, "incomplete_reason": reason, "spec": h["spec"],
        "settings": {**s, **h["run"], "device": dev["device"], "dtype": dev["dtype"], "gpus_used": h["gpus_used"],
                     "options": {**h["options"], **(first.loaded or {}).get("options", {})}},
        "weights": h["weights"], "hardware_class": dev["hardware_class"], "environment": dev["environment"],
        "load_s": (first.loaded or {}).get("load_s", 0.0),
        "warmup_latency_s": [w["latency_s"] for w in first.warmups],
        "warmup_seeds": [w["seed"] for w in first.warmups],
        "generations": gens, "summary": summary,
        "peak_memory_bytes": max(g["peak_memory_bytes"] for g in gens),
        "peak_memory_method": made[-1]["peak_memory_method"],
        "warnings": warnings, "telemetry": telemetry,
        "fidelity": _fidelity(state), "video_path": first.video,
        "workers": _workers(state, video_s) if len(state.workers) > 1 else None,
    }


def _telemetry(w: WorkerState, gens: list[dict[str, Any]], video_s: float
               ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """A worker's telemetry section, its generations with energy filled in, and warnings."""
    if w.telemetry is None or not gens:
        return _no_telemetry("the worker stopped before reporting telemetry"), gens, []
    info = {**w.telemetry, "series": w.series, "cpu": w.cpu_energy}
    return summarize_telemetry(info, gens, video_s)


def _workers(state: RunState, video_s: float) -> list[dict[str, Any]]:
    out = []
    for index, w in sorted(state.workers.items()):
        dev = w.device or {}
        own = [{**{k: g.get(k) for k in GENERATION_FIELDS}, "worker": index} for g in w.generations]
        section = _telemetry(w, own, video_s)[0] if own else None
        failed = None if w.failed is None else w.failed["message"].strip().splitlines()[-1]
        if failed is None and w.done is None:
            failed = "stopped before finishing (see the record's incomplete_reason)"
        out.append({"index": index, "device": dev.get("device", "unknown"),
                    "hardware_class": dev.get("hardware_class", "unknown"), "generations": len(w.generations),
                    "failed": failed, "telemetry": section})
    return out


def _per_worker_warnings(state: RunState) -> list[str]:
    """Under data parallelism each worker's figure is a measurement of its own: each needs enough generations."""
    if not state.data_parallel:
        return []
    fewest = min(len(w.generations) for w in state.workers.values())
    if fewest >= metrics.MIN_GENERATIONS:
        return []
    return [f"a worker timed only {fewest} generation(s): use --repeats {metrics.MIN_GENERATIONS} or more so every "
            "worker's figure can be trusted"]


def _recompile_warnings(state: RunState) -> list[str]:
    recompiles = sum((w.done or {}).get("recompiles", 0) for w in state.workers.values())
    if not recompiles:
        return []
    return [f"torch.compile recompiled {recompiles} time(s) during the timed generations: they include "
            "compilation; fix the cause (shapes, guards) before trusting the figure"]


def _no_telemetry(reason: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
    old = old or {}
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
    found = state.worker(0).fidelity
    if found is None:
        return None
    return {**found, "compared": state.header.get("output_changing", []),
            "reference": "a plain generation of the same settings and seed, in the same process"}
