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
from bench.records import journal as msgs
from bench.records.io import validate
from bench.records.journal import Message
from bench.records.schema import SCHEMA_VERSION, Generation, ResultRecord, TelemetrySummary
from bench.telemetry.sampler import DEFAULT_PERIOD_S
from bench.telemetry.summary import ENERGY_FIELDS
from bench.telemetry.summary import summarize as summarize_telemetry

GENERATION_FIELDS = tuple(Generation.model_fields)  # a generation message, as the record keeps it


@dataclasses.dataclass
class WorkerState:
    """Everything one worker reported, folded from its messages in order."""

    device: msgs.Device | None = None
    telemetry: dict[str, Any] | None = None  # the static description, read errors merged in at the end
    loaded: msgs.Loaded | None = None
    warmups: list[msgs.Warmup] = dataclasses.field(default_factory=list)
    generations: list[msgs.GenerationDone] = dataclasses.field(default_factory=list)
    series: dict[str, list] | None = None
    cpu_energy: msgs.CpuEnergyRead | None = None
    fidelity: msgs.FidelityRead | None = None
    video: str | None = None
    ready: msgs.Ready | None = None
    done: msgs.Done | None = None
    failed: msgs.Failed | None = None
    dropped: list[str] = dataclasses.field(default_factory=list)  # lines of the journal not believed, and why

    def take(self, msg: Message) -> None:
        """Fold one message in. A journal is evidence, not truth: a warm-up or generation out of its order (a line
        repeated or edited in) is dropped with a note, and a device that changes mid-run is refused."""
        if isinstance(msg, (msgs.Warmup, msgs.GenerationDone)):
            kept = self.warmups if isinstance(msg, msgs.Warmup) else self.generations
            if self.done is not None or self.failed is not None:  # a worker sends nothing after its last word
                self.dropped.append(f"worker {msg.worker}: {msg.kind} {msg.index} after the worker's "
                                    f"'{'done' if self.done else 'failed'}' line: dropped")
                return
            if msg.index != len(kept):
                self.dropped.append(f"worker {msg.worker}: {msg.kind} {msg.index} repeated or out of order "
                                    f"(expected {len(kept)}): dropped")
                return
            kept.append(msg)
        elif isinstance(msg, msgs.Device) and self.device is not None and msg != self.device:
            raise UsageError(f"worker {msg.worker} reported a second device ({self.device.device}, "
                             f"{self.device.hardware_class} then {msg.device}, {msg.hardware_class}): not the journal "
                             "of one run")
        elif isinstance(msg, msgs.SeriesChunk):
            self.series = self.series or {k: [] for k in msg.columns}
            for key, values in msg.columns.items():
                self.series.setdefault(key, []).extend(values)
        elif isinstance(msg, msgs.TelemetryInfo):  # the static description first, read errors at the end
            self.telemetry = {**(self.telemetry or {}), **msg.given()}
        elif isinstance(msg, msgs.Video):
            self.video = msg.path
        elif not isinstance(msg, (msgs.Header, msgs.Step)):
            setattr(self, msg.kind, msg)

    def generation_dicts(self, worker: int) -> list[dict[str, Any]]:
        """This worker's generations as the record keeps them."""
        return [{**g.model_dump(include=set(GENERATION_FIELDS)), "worker": worker} for g in self.generations]


@dataclasses.dataclass
class RunState:
    header: msgs.Header
    workers: dict[int, WorkerState] = dataclasses.field(default_factory=dict)

    def take(self, msg: Message) -> None:
        """Fold one message in; a timed generation the header's repeats never asked for is dropped with a note (each
        worker makes generations 0 to repeats - 1)."""
        worker = self.workers.setdefault(msg.worker, WorkerState())
        if isinstance(msg, msgs.GenerationDone) and msg.index >= self.header.run.repeats:
            worker.dropped.append(f"worker {msg.worker}: generation {msg.index} beyond the {self.header.run.repeats} "
                                  "repeats the run asked for: dropped")
        else:
            worker.take(msg)

    @property
    def data_parallel(self) -> bool:
        return self.header.parallel == "data"

    def generations(self) -> list[dict[str, Any]]:
        """The run's timed generations: every worker's under data parallelism, rank 0's otherwise."""
        if not self.data_parallel:
            return self.worker(0).generation_dicts(0)
        gens = [g for w, s in sorted(self.workers.items()) for g in s.generation_dicts(w)]
        return sorted(gens, key=lambda g: (g["telemetry"]["start_s"], g["worker"]))

    def worker(self, index: int) -> WorkerState:
        return self.workers.get(index) or WorkerState()


def replay(messages: list[Message]) -> RunState:
    state = RunState(header=messages[0])
    for msg in messages[1:]:
        state.take(msg)
    return state


def failure_reason(state: RunState) -> str | None:
    """Why a worker stopped early, in one line, or None."""
    for index, w in sorted(state.workers.items()):
        if w.failed is not None:
            message = w.failed.message
            if w.failed.reason == "crash":
                message = "the generating code failed: " + message.strip().splitlines()[-1]
            return message if len(state.workers) == 1 else f"worker {index}: {message}"
    return None


def build_record(state: RunState, reason: str | None) -> ResultRecord:
    """The record of a run; incomplete (with the reason) when reason is not None, or when its workers said they were
    done with fewer generations than asked (ResultRecord.generations_short, the rule the gate holds a complete record
    to). If the telemetry part fails validation the record is kept without it, saying why. Raises UsageError when no
    generation finished."""
    record = _build(state, reason)
    short = record.generations_short() if record.complete else None
    return record if short is None else _build(state, f"the run ended with {short}")


def _build(state: RunState, reason: str | None) -> ResultRecord:
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
        data["generations"] = [{**g, "telemetry": {**g["telemetry"], **dict.fromkeys(ENERGY_FIELDS),
                                                   "step_energy_j": None}} for g in data["generations"]]
        data["summary"] = _summary(state, data["generations"])
        for w in data["workers"] or []:
            w["telemetry"] = None
        return validate(data, "the run's record")




def _record_data(state: RunState, reason: str | None) -> dict[str, Any]:
    h, first = state.header, state.worker(0)
    s = h.settings
    video_s = metrics.video_seconds(s.num_frames, s.fps)
    gens = state.generations()
    telemetry, own, warnings = _telemetry(first, [g for g in gens if g["worker"] == 0], video_s)
    gens = [own.pop(0) if g["worker"] == 0 else g for g in gens]  # worker 0's, with energy filled in
    gens = _step_energy(gens, telemetry["energy_method"])
    summary = _summary(state, gens)
    warnings = list(h.warnings) + _sampling_lines(state, summary) + metrics.quality_warnings(summary) + warnings
    warnings += _per_worker_warnings(state)
    warnings += _recompile_warnings(state)
    warnings += [note for w in state.workers.values() for note in w.dropped]
    if reason is not None:
        warnings.insert(0, f"incomplete: {reason}; {len(gens)} generation(s) were kept")
    dev, loaded = first.device, first.loaded
    last = state.worker(gens[-1]["worker"]).generations[-1]
    return {
        "schema_version": SCHEMA_VERSION, "t2vbench_version": h.t2vbench_version, "command": h.command,
        "label": h.label, "run_id": h.run_id, "created_utc": h.created_utc,
        "complete": reason is None, "incomplete_reason": reason, "spec": h.spec,
        "settings": {**dataclasses.asdict(s), **h.run.model_dump(), "device": dev.device, "dtype": dev.dtype,
                     "gpus_used": h.gpus_used, "options": {**h.options, **(loaded.options if loaded else {})}},
        "weights": h.weights, "hardware_class": dev.hardware_class, "environment": dev.environment,
        "load_s": loaded.load_s if loaded else 0.0,
        "warmup_latency_s": [w.latency_s for w in first.warmups],
        "warmup_seeds": [w.seed for w in first.warmups],
        "generations": gens, "summary": summary,
        "peak_memory_bytes": max(g["peak_memory_bytes"] for g in gens),
        "peak_memory_method": last.peak_memory_method,
        "warnings": warnings, "telemetry": telemetry,
        "fidelity": _fidelity(state), "video_path": first.video,
        "workers": _workers(state, video_s) if len(state.workers) > 1 else None,
        "sampling": _sampling(state),
    }


def _sampling(state: RunState) -> dict[str, Any] | None:
    """A step-sampled run's plan as worker 0 made it from the pipeline's schedule (every worker makes the same)."""
    loaded = state.worker(0).loaded
    return None if loaded is None or loaded.sampling is None else loaded.sampling.model_dump()


def _summary(state: RunState, gens: list[dict[str, Any]]) -> metrics.Summary:
    h = state.header
    return metrics.summarize(gens, h.settings.num_frames, h.settings.fps, h.gpus_used, h.parallel, _sampling(state))


def _step_energy(gens: list[dict[str, Any]], method: str | None) -> list[dict[str, Any]]:
    """Per-step energies are kept where the counter is the record's energy and every one of them was read and is
    not negative (a counter running backwards); otherwise dropped, as the telemetry summary drops its readings."""
    out = []
    for g in gens:
        t = g["telemetry"]
        steps_j = t.get("step_energy_j")
        keep = (method == "counter" and steps_j is not None and t.get("denoise_energy_j") is not None
                and len(steps_j) == len(g["step_s"]) and min(steps_j, default=0.0) >= 0)
        out.append(g if keep or steps_j is None else {**g, "telemetry": {**t, "step_energy_j": None}})
    return out


def _sampling_lines(state: RunState, summary: metrics.Summary) -> list[str]:
    """What a step-sampled record says plainly among its warnings: which steps ran, what is extrapolated, from
    what, with what spread."""
    loaded = state.worker(0).loaded
    if loaded is None or loaded.sampling is None:
        return []
    spread = summary.sample_step_rel_stdev
    spread_text = "no spread: one basis step" if spread is None else f"relative stdev {spread:.1%}"
    energy = ("; energy and power are extrapolated the same way" if summary.extrapolated_energy_per_video_j is not None
              else "; energy and power are as measured (no per-step energy to extrapolate from)")
    return [f"step-sampled (--sample-steps {loaded.sampling.sample_steps}): {loaded.sampling.describe()} "
            f"({spread_text}), {summary.extrapolated_denoise_share:.0%} of the denoise time; latency and throughput "
            f"include the extrapolated steps{energy}"]


def _telemetry(w: WorkerState, gens: list[dict[str, Any]], video_s: float
               ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """A worker's telemetry section, its generations with energy filled in, and warnings."""
    if w.telemetry is None or not gens:
        return _no_telemetry("the worker stopped before reporting telemetry"), gens, []
    cpu = w.cpu_energy.model_dump(include={"package_energy_j", "reason"}) if w.cpu_energy else None
    info = {**w.telemetry, "series": w.series, "cpu": cpu}
    return summarize_telemetry(info, gens, video_s)


def _workers(state: RunState, video_s: float) -> list[dict[str, Any]]:
    out = []
    for index, w in sorted(state.workers.items()):
        own = w.generation_dicts(index)
        section = _telemetry(w, own, video_s)[0] if own else None
        failed = None if w.failed is None else w.failed.message.strip().splitlines()[-1]
        if failed is None and w.done is None:
            failed = "stopped before finishing (see the record's incomplete_reason)"
        out.append({"index": index, "device": w.device.device if w.device else "unknown",
                    "hardware_class": w.device.hardware_class if w.device else "unknown",
                    "generations": len(w.generations), "failed": failed, "telemetry": section})
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
    recompiles = sum(w.done.recompiles for w in state.workers.values() if w.done)
    if not recompiles:
        return []
    return [f"torch.compile recompiled {recompiles} time(s) during the timed generations: they include "
            "compilation; fix the cause (shapes, guards) before trusting the figure"]


def _no_telemetry(reason: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
    old = old or {}
    return {"backend": "none", "available": False, "unavailable_reason": reason, "device": old.get("device"),
            "energy_method": None, "energy_unsupported_reason": reason,
            "sample_period_s": old.get("sample_period_s", DEFAULT_PERIOD_S), "summary": TelemetrySummary.empty(),
            "series": None, "cpu": old.get("cpu") or {"package_energy_j": None, "reason": reason}}


def _fidelity(state: RunState) -> dict[str, Any] | None:
    found = state.worker(0).fidelity
    if found is None:
        return None
    reference = "a plain generation of the same settings and seed, in the same process"
    if _sampling(state) is not None:
        reference += "; both whole and untimed (the timed generations are step-sampled)"
    return {**found.model_dump(include={"psnr_db", "ssim", "seed"}), "compared": state.header.output_changing,
            "reference": reference}
