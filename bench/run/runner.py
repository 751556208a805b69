"""Run a benchmark: check every input, start the worker, journal what it reports, write the record.

The parent never imports torch. Every message of the worker is appended to a journal beside the record as it
arrives, and the record is made from those messages: whatever stops the run after the first finished generation
(out of memory, a crash, Ctrl-C, SIGTERM, a record that fails validation, a full disk) leaves a record marked
incomplete, or the journal, which `t2vbench recover` turns into one.
"""

from __future__ import annotations

import dataclasses
import datetime
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import __version__
from bench.core.errors import Interrupted, UsageError
from bench.core.files import nearest_existing, writable_ancestor
from bench.core.specs import (
    DEFAULT_MODEL,
    Settings,
    Spec,
    check_settings,
    load_spec,
    load_spec_file,
    preset_settings,
    spec_names,
)
from bench.records.assemble import build_record, failure_reason, replay
from bench.records.io import record_json, write_new
from bench.records.journal import JOURNAL_VERSION, Header, Journal, Message, RunPlan, read_journal
from bench.records.schema import ResultRecord, SpecRef, Weights
from bench.run import options as options_mod
from bench.run import parallel
from bench.run.job import Job
from bench.run.parallel import Layout
from bench.run.progress import Progress
from bench.run.supervise import Signals, supervise
from bench.run.weights import check_hub_cached, check_local_dir
from bench.telemetry import CHOICES
from bench.telemetry.sampler import DEFAULT_PERIOD_S

DEFAULT_PROMPT = "a red fox walks through a snowy forest at golden hour, cinematic wide shot"
DEFAULT_OUT = Path("t2vbench-results")
DEFAULT_REPEATS = 3
BUDGET_MAX_REPEATS = 100_000
MAX_PROMPT_CHARS = 2000
MAX_LABEL_CHARS = 200
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", *options_mod.DTYPE_NAMES)
SAMPLE_PERIOD_RANGE_S = (0.001, 60.0)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one benchmark run needs; built by the CLI (or a test) from defaults < spec < command line."""

    model: str = DEFAULT_MODEL
    spec_file: Path | None = None  # a user's own spec instead of models/<model>.toml
    weights: str | None = None  # 'random', 'hub' or a directory; None takes the spec's default
    device: str = "auto"
    dtype: str = "auto"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # Settings field -> value
    preset: str | None = None  # a named setting of the spec ([presets.<name>]): defaults < spec < preset < overrides
    repeats: int | None = None
    time_budget_s: float | None = None
    warmup: int = 1
    seed: int = 0
    prompt: str = DEFAULT_PROMPT
    save_video: bool = False
    out_dir: Path = DEFAULT_OUT
    telemetry: str = "auto"
    sample_period_s: float = DEFAULT_PERIOD_S
    options: options_mod.Options = options_mod.Options()
    label: str | None = None
    command: tuple[str, ...] = ()
    workers: int | None = None  # data parallel: this many workers (GPUs, or CPU processes with --device cpu)
    gpus: str | None = None  # data parallel over N GPUs, or 'all'
    parallel: str | None = None  # context parallel: 'ulysses=N[,ring=M]'
    sample_steps: int | None = None  # step-sampled: each expert's first step and K more computed, the rest extrapolated


@dataclasses.dataclass(frozen=True)
class Outcome:
    record: ResultRecord
    path: Path
    exit_code: int  # 0 complete, 1 the worker failed, 128 + signal: 130 interrupted (SIGINT), 143 (SIGTERM), 129 (SIGHUP)


@dataclasses.dataclass(frozen=True)
class Prepared:
    spec: Spec
    settings: Settings
    weights: str
    warnings: list[str]
    layout: Layout
    device: str  # the device request after the layout (e.g. --gpus implies cuda)


def prepare(config: RunConfig) -> Prepared:
    """Check every input before anything is built or written. Raises UsageError (one line, the value, the fix)."""

    spec = load_spec_file(config.spec_file) if config.spec_file else load_spec(config.model)
    if config.spec_file:
        _check_own_spec(spec)
    settings = preset_settings(spec, config.preset).replace(**config.overrides)
    check_settings(spec, settings)
    _check_counts(config)
    if config.telemetry not in CHOICES:
        raise UsageError(f"--telemetry {config.telemetry}: use {', '.join(CHOICES)}")
    low, high = SAMPLE_PERIOD_RANGE_S
    if not low <= config.sample_period_s <= high:
        raise UsageError(f"--sample-period {config.sample_period_s}: give seconds from {low} to {high}")
    if config.dtype not in DTYPES:
        raise UsageError(f"--dtype {config.dtype}: use {', '.join(DTYPES)}")
    if not (config.device in DEVICES or (config.device.startswith("cuda:") and config.device[5:].isdigit())):
        raise UsageError(f"--device {config.device}: use auto, cpu, cuda or cuda:N")
    _check_text(config)
    check_out_dir(config.out_dir)
    weights = config.weights or spec.default_weights
    if weights not in ("random", "hub"):
        check_local_dir(weights)
    elif weights == "hub" and spec.repo_id is None:
        raise UsageError(f"{spec.name} has no hub repo: use --weights random or a local diffusers directory")
    lay, device = parallel.layout(config.workers, config.gpus, config.parallel, config.device, spec)
    warnings = options_mod.check(config.options, device, weights)
    if config.options.compile and config.warmup < 1:
        raise UsageError("--compile with --warmup 0 would time the compilation: use --warmup 1 or more")
    if lay.mode == "context" and config.time_budget_s is not None:
        raise UsageError("--time-budget with --parallel: every rank must make the same generations; use --repeats")
    if config.sample_steps is not None:
        _check_sampling(config, spec, settings)
    if weights == "hub":  # the last of these: fetching tens of GiB is the costliest fix, so it is asked for last
        check_hub_cached(spec.name, spec.repo_id)
    return Prepared(spec, settings, weights, warnings, lay, device)


def experts(spec: Spec) -> int:
    """How many denoisers share the steps: two where the pipeline switches at a timestep boundary (Wan 2.2 A14B)."""
    return 2 if spec.pipeline_config.get("boundary_ratio") is not None and "transformer_2" in spec.components else 1


def _check_sampling(config: RunConfig, spec: Spec, settings: Settings) -> None:
    """--sample-steps K: each expert's first step runs apart, so 1 <= K < steps - experts leaves a step to
    extrapolate; refused where steps differ in cost. Raises UsageError."""
    k, steps, n = config.sample_steps, settings.steps, experts(spec)
    if k < max(1, n) or k >= steps - n:
        most = steps - n - 1
        fix = (f"give 1 to {most}" if n == 1 else f"give {n} to {most} (one step at least for each of its {n} experts)"
               ) if most >= n else f"use more --steps (at least {n * 2 + 1}) or drop --sample-steps"
        raise UsageError(f"--sample-steps {k}: with --steps {steps} and {n} expert(s), each expert's first step runs "
                         f"apart and at least one step must be extrapolated; {fix}")
    if config.options.cache is not None:
        raise UsageError(f"--sample-steps with --cache {config.options.cache}: a step cache's work per step depends on "
                         "the activations, so skipped steps cannot be extrapolated from computed ones; drop one of them")
    if config.save_video:
        raise UsageError("--sample-steps with --save-video: a step-sampled generation skips denoising steps, so its "
                         "frames are not the model's video; drop one of them")


def _check_own_spec(spec: Spec) -> None:
    """A user's spec may not pass for a catalogued model: its records would be filed and compared as that model."""

    if spec.name in spec_names() and load_spec(spec.name).sha256 != spec.sha256:
        raise UsageError(f"--spec {spec.path}: its name '{spec.name}' is a model in models/ but the file differs; "
                         "give your spec its own name")


def _check_counts(config: RunConfig) -> None:
    if config.repeats is not None and not 1 <= config.repeats <= BUDGET_MAX_REPEATS:
        raise UsageError(f"--repeats {config.repeats}: time from 1 to {BUDGET_MAX_REPEATS} generations")
    budget = config.time_budget_s
    if budget is not None and not (budget == budget and 0 < budget <= 7 * 86400):  # budget == budget: not NaN
        raise UsageError(f"--time-budget {budget}: give seconds between 0 and 604800 (a week)")
    if not 0 <= config.warmup <= 100:
        raise UsageError(f"--warmup {config.warmup}: use 0 to 100 warm-up generations")
    if not 0 <= config.seed < 2**63 - BUDGET_MAX_REPEATS:
        raise UsageError(f"--seed {config.seed}: use a seed from 0 to 2**63 - {BUDGET_MAX_REPEATS + 1}")


def _check_text(config: RunConfig) -> None:
    if not config.prompt.strip() or len(config.prompt) > MAX_PROMPT_CHARS or "\x00" in config.prompt:
        raise UsageError(f"--prompt: give 1 to {MAX_PROMPT_CHARS} characters of text "
                         f"(got {len(config.prompt)}); the text encoder reads at most a few hundred tokens")
    if config.label is not None and (len(config.label) > MAX_LABEL_CHARS or not config.label.isprintable()):
        raise UsageError(f"--label: give at most {MAX_LABEL_CHARS} printable characters")


def check_out_dir(out: Path) -> None:
    """--out must be a writable directory, or creatable in one. Raises UsageError."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory; give a folder")
    if writable_ancestor(out) is None:
        raise UsageError(f"--out {out}: cannot write in {nearest_existing(out)}; give a folder you can write to")


def _header(config: RunConfig, p: Prepared, run_id: str, now: datetime.datetime) -> Header:
    spec, o = p.spec, config.options
    location = None if p.weights == "random" else (spec.repo_id if p.weights == "hub" else
                                                   str(Path(p.weights).resolve()))
    asked = {k: v for k, v in dataclasses.asdict(o).items() if k != "fidelity" and v not in (None, False)}
    repeats = config.repeats or (BUDGET_MAX_REPEATS if config.time_budget_s else DEFAULT_REPEATS)
    return Header(
        journal_version=JOURNAL_VERSION, t2vbench_version=__version__, run_id=run_id,
        created_utc=now.strftime("%Y-%m-%dT%H:%M:%SZ"), command=list(config.command), label=config.label,
        spec=SpecRef(name=spec.name, family=spec.family, pipeline=spec.pipeline, repo_id=spec.repo_id,
                     sha256=spec.sha256, tiny=spec.tiny),
        spec_path=str(spec.path.resolve()), settings=p.settings,
        run=RunPlan(seed=config.seed, prompt=config.prompt, warmup=config.warmup, repeats=repeats,
                    time_budget_s=config.time_budget_s),
        gpus_used=p.layout.workers, parallel=p.layout.label,
        options={**asked, **({"parallel": p.layout.label} if p.layout.label else {})},
        output_changing=o.output_changing,
        weights=Weights(source=p.weights if p.weights in ("random", "hub") else "local", location=location),
        warnings=p.warnings, sample_steps=config.sample_steps,
    )


def _jobs(config: RunConfig, p: Prepared, header: Header, video_path: Path | None) -> list[Job]:
    """One job per worker: the same settings, its own device and index."""
    plan = header.run
    rendezvous = f"tcp://127.0.0.1:{parallel.free_port()}" if p.layout.mode == "context" else None
    return [Job(spec_path=header.spec_path, settings=p.settings, weights=p.weights, dtype=config.dtype,
                seed=plan.seed, prompt=plan.prompt, warmup=plan.warmup, repeats=plan.repeats,
                time_budget_s=plan.time_budget_s, options=config.options, telemetry=config.telemetry,
                sample_period_s=config.sample_period_s, layout=p.layout, worker=i,
                device=parallel.worker_device(p.device, i, p.layout), rendezvous=rendezvous,
                video_path=str(video_path) if video_path and i == 0 else None, sample_steps=config.sample_steps)
            for i in range(p.layout.workers)]


def run(config: RunConfig, progress: bool = True) -> Outcome:
    """Benchmark one model. Raises UsageError for bad input and when nothing was measured."""
    prepared = prepare(config)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    run_id = uuid.uuid4().hex[:12]
    stem = f"{prepared.spec.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id}"
    header = _header(config, prepared, run_id, now)
    out = config.out_dir
    created = _make_dirs(out)
    video_path = (out / f"{stem}.mp4").resolve() if config.save_video else None
    try:
        journal = Journal(out / f"{stem}.journal.jsonl")
    except OSError as exc:
        _remove_empty(created)
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror})") from None
    messages: list[Message] = [header]
    journal.append(header)

    def keep(msg: Message) -> None:
        if msg.worker == 0:
            bar.update(msg)
        if msg.kind == "step":  # progress only: nothing to keep
            return
        messages.append(msg)
        journal.append(msg)

    bar = Progress(progress, prepared.spec.name, prepared.settings.steps, header.run.warmup,
                   None if config.time_budget_s else header.run.repeats)
    with Signals() as signals:
        try:
            reason = supervise(_jobs(config, prepared, header, video_path), keep, signals,
                               all_or_none=prepared.layout.mode == "context")
        except BaseException as exc:  # a bug in the parent: keep what was measured, then show the traceback
            reason = f"t2vbench failed while supervising the run ({type(exc).__name__}: {exc})"
            _finish(messages, journal, out, stem, reason, created)
            raise
        finally:
            bar.close()
        return _finish(messages, journal, out, stem, reason, created)


def _finish(messages: list[Message], journal: Journal, out: Path, stem: str, reason: str | None,
            created: list[Path]) -> Outcome:
    state = replay(messages)
    if reason == "failed":
        reason = failure_reason(state)
    if not state.generations():
        journal.remove()
        _remove_empty(created)
        failed = [w.failed for w in state.workers.values() if w.failed]
        crash = next((f for f in failed if f.reason == "crash"), None)
        interrupted = reason is not None and reason.startswith("interrupted by")
        # a signal that reaches a worker still importing torch can end it with a traceback: the user's signal, not
        # a bug of ours, so it is reported as the interruption it is
        if crash is not None and not interrupted:
            raise RuntimeError("the worker failed before any generation finished:\n" + crash.message)
        if (not failed or crash is not None) and interrupted:
            raise Interrupted(f"{reason} before any generation finished: nothing was recorded", _exit_code(reason))
        raise UsageError(reason if failed else f"no generation finished, so nothing was recorded: {reason}")
    try:
        record = build_record(state, reason)
        path = write_new(out / f"{stem}.json", record_json(record))
    except (UsageError, OSError) as exc:
        journal.close()
        saved = f"every finished generation is in {journal.path}" if journal.error is None else (
            f"the journal {journal.path} is incomplete too ({journal.error.strerror})")
        raise UsageError(f"could not write the record ({exc}); {saved}: run 't2vbench recover "
                         f"{journal.path}' once the problem is fixed") from None
    journal.remove()
    return Outcome(record=record, path=path.resolve(), exit_code=_exit_code(reason))


def _exit_code(reason: str | None) -> int:
    """0 complete; 128 + the signal's number when a signal stopped it ('interrupted by SIGINT (Ctrl-C)': 130,
    SIGTERM 143, SIGHUP 129), as a shell reports a process a signal ended; 1 when the worker failed."""
    if reason is None:
        return 0
    if reason.startswith("interrupted by SIG"):
        return 128 + signal.Signals[reason.split()[2]]
    return 1


def _make_dirs(out: Path) -> list[Path]:
    """Create out and its missing parents; returns the ones created, deepest first."""
    missing = []
    probe = out
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    out.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(created: list[Path]) -> None:
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def recover(journal_path: str | Path, judge: Callable[[ResultRecord], list[str]] = lambda record: []) -> Outcome:
    """Turn a run's journal into its record, beside it: incomplete unless the run had finished, and saying it was
    recovered. judge(record) lists what the gate would refuse (the CLI passes physics); any of it refuses the journal
    before anything is written. Raises UsageError."""
    journal_path = Path(journal_path)
    done = journal_path.parent / (journal_path.name.removesuffix(".journal.jsonl") + ".json")
    if not journal_path.exists() and done.exists():
        raise UsageError(f"{journal_path}: already recovered into {done} (a journal goes once its record is written)")
    messages = read_journal(journal_path)
    state = replay(messages)
    reason = failure_reason(state)
    if reason is None and any(w.done is None for w in state.workers.values()):
        reason = "recovered from its journal: the run ended before writing its record (was t2vbench killed?)"
    try:
        record = build_record(state, reason)
    except UsageError as exc:  # every refusal names the journal it is about
        raise UsageError(f"{journal_path}: {exc}; nothing was written") from None
    record = record.model_copy(update={"warnings": [*record.warnings, f"recovered from {journal_path.name} by "
                                                    "t2vbench recover"]})
    problems = judge(record)
    if problems:
        raise UsageError(f"{journal_path}: {problems[0]}: a journal is checked as a record is; nothing was written")
    if done.exists() or done.is_symlink():
        raise UsageError(f"{journal_path}: its record {done} exists already; move it away to recover again")
    path = write_new(done, record_json(record))
    journal_path.unlink()
    return Outcome(record=record, path=path.resolve(), exit_code=0)
