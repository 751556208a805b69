"""Run a benchmark: check every input, start the worker, journal what it reports, write the record.

The parent never imports torch. Every message of the worker is appended to a journal beside the record as it
arrives, and the record is made from those messages: whatever stops the run after the first finished generation
(out of memory, a crash, Ctrl-C, SIGTERM, a record that fails validation, a full disk) leaves a record marked
incomplete, or the journal, which `t2vbench recover` turns into one.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from bench import __version__, options as options_mod
from bench.assemble import build_record, failure_reason, replay
from bench.errors import UsageError
from bench.messages import JOURNAL_VERSION, Journal, Message, decode, message
from bench.record import ResultRecord, record_json, write_new
from bench.telemetry.sampler import DEFAULT_PERIOD_S
from bench.specs import DEFAULT_MODEL, Settings, Spec, check_settings, load_spec, load_spec_file, preset_settings

DEFAULT_PROMPT = "a red fox walks through a snowy forest at golden hour, cinematic wide shot"
DEFAULT_OUT = Path("t2vbench-results")
DEFAULT_REPEATS = 3
BUDGET_MAX_REPEATS = 100_000
MAX_PROMPT_CHARS = 2000
MAX_LABEL_CHARS = 200
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
SAMPLE_PERIOD_RANGE_S = (0.001, 60.0)
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


@dataclasses.dataclass(frozen=True)
class Outcome:
    record: ResultRecord
    path: Path
    exit_code: int  # 0 complete, 1 the worker failed, 130 interrupted (SIGINT), 143 terminated (SIGTERM)


@dataclasses.dataclass(frozen=True)
class Prepared:
    spec: Spec
    settings: Settings
    weights: str
    warnings: list[str]


def prepare(config: RunConfig) -> Prepared:
    """Check every input before anything is built or written. Raises UsageError (one line, the value, the fix)."""
    from bench.telemetry import CHOICES

    spec = load_spec_file(config.spec_file) if config.spec_file else load_spec(config.model)
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
        from bench.build import check_local_dir

        check_local_dir(weights)
    elif weights == "hub" and spec.repo_id is None:
        raise UsageError(f"{spec.name} has no hub repo: use --weights random or a local diffusers directory")
    warnings = options_mod.check(config.options, config.device, weights)
    if config.options.compile and config.warmup < 1:
        raise UsageError("--compile with --warmup 0 would time the compilation: use --warmup 1 or more")
    return Prepared(spec, settings, weights, warnings)


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
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe == out and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory; give a folder")
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write in {probe}; give a folder you can write to")


def _header(config: RunConfig, p: Prepared, run_id: str, now: datetime.datetime) -> dict[str, Any]:
    spec, o = p.spec, config.options
    location = None if p.weights == "random" else (spec.repo_id if p.weights == "hub" else
                                                   str(Path(p.weights).resolve()))
    asked = {k: v for k, v in dataclasses.asdict(o).items() if k != "fidelity" and v not in (None, False)}
    repeats = config.repeats or (BUDGET_MAX_REPEATS if config.time_budget_s else DEFAULT_REPEATS)
    return {
        "journal_version": JOURNAL_VERSION, "t2vbench_version": __version__, "run_id": run_id,
        "created_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "command": list(config.command), "label": config.label,
        "spec": {"name": spec.name, "family": spec.family, "pipeline": spec.pipeline, "repo_id": spec.repo_id,
                 "sha256": spec.sha256, "tiny": spec.tiny},
        "spec_path": str(spec.path.resolve()),
        "settings": dataclasses.asdict(p.settings),
        "run": {"seed": config.seed, "prompt": config.prompt, "warmup": config.warmup, "repeats": repeats,
                "time_budget_s": config.time_budget_s},
        "gpus_used": 1,
        "options": asked, "output_changing": o.output_changing,
        "weights": {"source": p.weights if p.weights in ("random", "hub") else "local", "location": location},
        "warnings": p.warnings,
    }


def _job(config: RunConfig, weights: str, header: dict[str, Any], video_path: Path | None) -> dict[str, Any]:
    return {
        "spec_path": header["spec_path"], "settings": header["settings"], "weights": weights,
        "device": config.device, "dtype": config.dtype, **header["run"], "options": dataclasses.asdict(config.options),
        "video_path": str(video_path) if video_path else None, "telemetry": config.telemetry,
        "sample_period_s": config.sample_period_s,
    }


class _Signals:
    """Turns SIGINT, SIGTERM and SIGHUP into a flag the supervising loop checks: an interrupt never lands in the
    middle of a journal write, and none is lost."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for s in HANDLED_SIGNALS:
            self._old[s] = signal.signal(s, self._take)
        return self

    def _take(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _supervise(job: dict[str, Any], on_message: Any, signals: _Signals, bar: Any) -> str | None:
    """Run the worker to its end, passing each message on. Returns None when it finished, else why it did not."""
    from bench.worker import worker_main

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)  # a pipe, not a Queue: no semaphores left behind
    proc = ctx.Process(target=worker_main, args=(job, send), daemon=True, name="t2vbench-worker")
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(HANDLED_SIGNALS))  # the worker starts with them blocked
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    send.close()
    finished = False
    try:
        reason = _pump(proc, receive, on_message, signals, bar)
        finished = reason is None or reason == "failed"
        return reason
    finally:
        if finished:  # let it exit on its own: a terminated worker leaves its semaphores to the resource tracker
            proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        proc.join()
        _drain(receive, on_message)
        receive.close()


def _pump(proc: Any, receive: Any, on_message: Any, signals: _Signals, bar: Any) -> str | None:
    while True:
        if signals.received is not None:
            name = signal.Signals(signals.received).name
            return f"interrupted by {name}" + (" (Ctrl-C)" if name == "SIGINT" else "")
        try:
            ready = receive.poll(0.2)
            msg = decode(receive.recv_bytes()) if ready else None
        except (EOFError, OSError):
            msg, ready = None, False
        if msg is not None:
            on_message(msg)
            bar.update(msg)
            if msg.kind == "done":
                return None
            if msg.kind == "failed":
                return "failed"
        elif not proc.is_alive():
            _drain(receive, on_message)
            return f"worker process died ({_describe_exit(proc.exitcode)})"


def _drain(receive: Any, on_message: Any) -> None:
    try:
        while receive.poll(0.05):
            on_message(decode(receive.recv_bytes()))
    except (EOFError, OSError):
        return


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Progress:
    """A progress bar over generations (warm-up included) on stderr; silent when off."""

    def __init__(self, enabled: bool, name: str, total: int | None):
        self.enabled, self.name, self.total, self.bar = enabled, name, total, None

    def update(self, msg: Message) -> None:
        if not self.enabled:
            return
        if msg.kind == "loaded" and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.name, unit="gen", delay=3, file=sys.stderr, leave=False)
        elif msg.kind in ("warmup", "generation") and self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    messages = [message("header", **header)]
    journal.append(messages[0])

    def keep(msg: Message) -> None:
        messages.append(msg)
        journal.append(msg)

    total = header["run"]["warmup"] + header["run"]["repeats"] if config.time_budget_s is None else None
    bar = _Progress(progress, prepared.spec.name, total)
    with _Signals() as signals:
        try:
            reason = _supervise(_job(config, prepared.weights, header, video_path), keep, signals, bar)
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
    if not state.generations:
        journal.remove()
        _remove_empty(created)
        if state.failed and state.failed["reason"] == "crash":
            raise RuntimeError("the worker failed before any generation finished:\n" + state.failed["message"])
        raise UsageError(reason if state.failed else f"no generation finished, so nothing was recorded: {reason}")
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
    if reason is None:
        return 0
    if reason.startswith("interrupted by SIGINT"):
        return 130
    if reason.startswith("interrupted by"):
        return 143
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


def recover(journal_path: str | Path) -> Outcome:
    """Turn a run's journal into its record, beside it, marked incomplete. Raises UsageError."""
    from bench.messages import read_journal

    journal_path = Path(journal_path)
    messages = read_journal(journal_path)
    state = replay(messages)
    reason = failure_reason(state) if state.failed else None
    if reason is None and state.done is None:
        reason = "recovered from its journal: the run ended before writing its record (was t2vbench killed?)"
    record = build_record(state, reason)
    stem = journal_path.name.removesuffix(".journal.jsonl")
    path = write_new(journal_path.parent / f"{stem}.json", record_json(record))
    journal_path.unlink()
    return Outcome(record=record, path=path.resolve(), exit_code=0)
