"""Run a benchmark: check the config, start the worker, collect its generations, write the record.

The parent never imports torch. A worker that crashes or a Ctrl-C keeps every finished generation: the record is
written, marked incomplete, with what was measured.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import queue as queue_mod
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from bench import __version__, metrics
from bench.errors import UsageError
from bench.record import SCHEMA_VERSION, ResultRecord, record_json, write_new
from bench.specs import DEFAULT_MODEL, Settings, Spec, check_settings, load_spec
from bench.telemetry.summary import summarize as summarize_telemetry

DEFAULT_PROMPT = "a red fox walks through a snowy forest at golden hour, cinematic wide shot"
DEFAULT_OUT = Path("t2vbench-results")
DEFAULT_REPEATS = 3
BUDGET_MAX_REPEATS = 100_000


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one benchmark run needs; built by the CLI (or a test) from defaults < spec < command line."""

    model: str = DEFAULT_MODEL
    weights: str | None = None  # 'random', 'hub' or a directory; None takes the spec's default
    device: str = "auto"
    dtype: str = "auto"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # Settings field -> value
    repeats: int | None = None
    time_budget_s: float | None = None
    warmup: int = 1
    seed: int = 0
    prompt: str = DEFAULT_PROMPT
    save_video: bool = False
    out_dir: Path = DEFAULT_OUT
    telemetry: str = "auto"  # auto | nvml | amdsmi | none
    sample_period_s: float = 0.1


@dataclasses.dataclass(frozen=True)
class Outcome:
    record: ResultRecord
    path: Path
    exit_code: int  # 0 complete, 1 worker failed, 130 interrupted


def prepare(config: RunConfig) -> tuple[Spec, Settings, str]:
    """Validate the config before anything is built. Returns the spec, the settings and the weights source."""
    spec = load_spec(config.model)
    settings = spec.settings.replace(**config.overrides)
    check_settings(spec, settings)
    if config.repeats is not None and config.repeats < 1:
        raise UsageError(f"--repeats {config.repeats} is impossible: time at least 1 generation")
    if config.time_budget_s is not None and not config.time_budget_s > 0:
        raise UsageError(f"--time-budget {config.time_budget_s} is impossible: give a positive number of seconds")
    if config.warmup < 0:
        raise UsageError(f"--warmup {config.warmup} is impossible: use 0 or more")
    if config.telemetry not in ("auto", "nvml", "amdsmi", "none"):
        raise UsageError(f"--telemetry {config.telemetry}: use auto, nvml, amdsmi or none")
    if not 0.001 <= config.sample_period_s <= 60:
        raise UsageError(f"--sample-period {config.sample_period_s}: give seconds between 0.001 and 60")
    if config.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise UsageError(f"--dtype {config.dtype}: use auto, float32, bfloat16 or float16")
    weights = config.weights or spec.default_weights
    if weights not in ("random", "hub"):
        from bench.build import check_local_dir  # imports torch only when a directory is given

        check_local_dir(weights)
    elif weights == "hub" and spec.repo_id is None:
        raise UsageError(f"{spec.name} has no hub repo: use --weights random or a local diffusers directory")
    return spec, settings, weights


def _job(config: RunConfig, settings: Settings, weights: str, video_path: Path | None) -> dict[str, Any]:
    repeats = config.repeats or (BUDGET_MAX_REPEATS if config.time_budget_s else DEFAULT_REPEATS)
    return {
        "spec_name": config.model,
        "settings": dataclasses.asdict(settings),
        "weights": weights,
        "device": config.device,
        "dtype": config.dtype,
        "warmup": config.warmup,
        "repeats": repeats,
        "time_budget_s": config.time_budget_s,
        "seed": config.seed,
        "prompt": config.prompt,
        "video_path": str(video_path) if video_path else None,
        "telemetry": config.telemetry,
        "sample_period_s": config.sample_period_s,
    }


class _Collector:
    """What the worker has reported so far."""

    def __init__(self, make_bar: Any):
        self.loaded: dict[str, Any] | None = None
        self.warmups: list[float] = []
        self.generations: list[dict[str, Any]] = []
        self.video_path: str | None = None
        self.telemetry: dict[str, Any] = {}
        self.done = False
        self.error: dict[str, Any] | None = None
        self.make_bar = make_bar
        self.progress: Any = None

    def take(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "loaded":
            self.loaded = payload
            if self.make_bar is not None:  # the bar times generations, not the model load
                self.progress = self.make_bar()
        elif kind == "warmup":
            self.warmups.append(payload["latency_s"])
        elif kind == "generation":
            self.generations.append(payload)
        elif kind == "telemetry":
            self.telemetry.update(payload)
        elif kind == "video":
            self.video_path = payload["path"]
        elif kind == "done":
            self.done = True
        elif kind == "error":
            self.error = payload
        if kind in ("warmup", "generation") and self.progress is not None:
            self.progress.update(1)


def _supervise(job: dict[str, Any], collector: _Collector) -> str | None:
    """Run the worker to its end. Returns None when it finished, else why it did not."""
    from bench.worker import worker_main

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=worker_main, args=(job, q), daemon=True)
    proc.start()
    reason = None
    try:
        while not collector.done and collector.error is None:
            try:
                collector.take(*q.get(timeout=0.2))
            except queue_mod.Empty:
                if not proc.is_alive():
                    _drain(q, collector)
                    if not collector.done and collector.error is None:
                        reason = f"worker process died ({_describe_exit(proc.exitcode)})"
                    break
    except KeyboardInterrupt:
        reason = "interrupted by the user (Ctrl-C)"
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        proc.join()
        _drain(q, collector)
        q.close()
        q.join_thread()
    if collector.error is not None and not collector.error["user"]:
        reason = "the generating code failed: " + collector.error["message"].strip().splitlines()[-1]
    return reason


def _drain(q: Any, collector: _Collector) -> None:
    while True:
        try:
            collector.take(*q.get(timeout=0.05))
        except (queue_mod.Empty, EOFError, OSError):
            return


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def run(config: RunConfig, progress: bool = True) -> Outcome:
    """Benchmark one model. Raises UsageError for bad input and when nothing was measured."""
    spec, settings, weights = prepare(config)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    run_id = uuid.uuid4().hex[:12]
    stem = f"{spec.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id}"
    video_path = (config.out_dir / f"{stem}.mp4").resolve() if config.save_video else None
    if video_path is not None:
        video_path.parent.mkdir(parents=True, exist_ok=True)
    job = _job(config, settings, weights, video_path)

    make_bar = None
    if progress:
        from tqdm import tqdm

        total = job["warmup"] + job["repeats"] if config.time_budget_s is None else None
        make_bar = lambda: tqdm(total=total, desc=spec.name, unit="gen", delay=3, file=sys.stderr, leave=False)  # noqa: E731
    collector = _Collector(make_bar)
    try:
        reason = _supervise(job, collector)
    finally:
        if collector.progress is not None:
            collector.progress.close()

    if collector.error is not None and collector.error["user"]:
        raise UsageError(collector.error["message"])
    if not collector.generations:
        raise UsageError(f"no generation finished, so nothing was recorded: {reason}")
    record = build_record(spec, settings, weights, config, job, collector, run_id, now, reason)
    path = write_new(config.out_dir / f"{stem}.json", record_json(record))
    exit_code = 0 if reason is None else (130 if "interrupted" in reason else 1)
    return Outcome(record=record, path=path.resolve(), exit_code=exit_code)


def build_record(
    spec: Spec, settings: Settings, weights: str, config: RunConfig, job: dict[str, Any],
    collector: _Collector, run_id: str, now: datetime.datetime, reason: str | None,
) -> ResultRecord:
    loaded = collector.loaded or {}
    gens = [{k: v for k, v in g.items() if not k.startswith("peak_memory")} for g in collector.generations]
    gpus_used = 1  # one process drives one device; multi-GPU parallelism is not implemented yet
    summary = metrics.summarize(gens, settings.num_frames, settings.fps, gpus_used)
    warnings = metrics.quality_warnings(summary)
    section, gens, telemetry_warnings = summarize_telemetry(
        collector.telemetry, gens, metrics.video_seconds(settings.num_frames, settings.fps))
    warnings += telemetry_warnings
    if reason is not None:
        warnings.insert(0, f"incomplete: {reason}; {len(gens)} generation(s) were kept")
    last = collector.generations[-1]
    location = None if weights == "random" else (spec.repo_id if weights == "hub" else str(Path(weights).resolve()))
    return ResultRecord.model_validate({
        "schema_version": SCHEMA_VERSION,
        "t2vbench_version": __version__,
        "run_id": run_id,
        "created_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete": reason is None,
        "incomplete_reason": reason,
        "spec": {"name": spec.name, "family": spec.family, "pipeline": spec.pipeline, "repo_id": spec.repo_id,
                 "sha256": spec.sha256},
        "settings": {**dataclasses.asdict(settings), "seed": config.seed, "prompt": config.prompt,
                     "warmup": config.warmup, "repeats": job["repeats"], "time_budget_s": config.time_budget_s,
                     "device": loaded.get("device", config.device), "dtype": loaded.get("dtype", "float32"),
                     "gpus_used": gpus_used},
        "weights": {"source": weights if weights in ("random", "hub") else "local", "location": location},
        "hardware_class": loaded.get("hardware_class", "unknown"),
        "environment": loaded.get("environment", {}),
        "load_s": loaded.get("load_s", 0.0),
        "warmup_latency_s": collector.warmups,
        "generations": gens,
        "summary": summary,
        "peak_memory_bytes": last["peak_memory_bytes"],
        "peak_memory_method": last["peak_memory_method"],
        "warnings": warnings,
        "telemetry": section,
        "video_path": collector.video_path,
    })
