"""What the worker tells the parent, as typed messages of plain values (no torch objects: the parent never imports
torch), and the journal they are appended to as they arrive.

Every message is one JSON line in the journal: {"kind": ..., **fields}. The first line is the run's header, written by
the parent before the worker starts, so a journal alone is enough to rebuild the record (`t2vbench recover`).

  header      run id, time, command line, label, spec, settings, options, layout, weights, --sample-steps (parent)
Every other message carries `worker`, the index of the worker that sent it (0 on single-GPU runs).
  device      device, dtype, environment, hardware class: sent before the model is built
  telemetry   the telemetry backend's static description
  loaded      seconds to build or load the pipeline; the serving options as applied; a step-sampled run's plan
  warmup      one untimed generation: index, seed, latency
  generation  one timed generation: raw stage timings, energy readings (also per step), peak memory
  series      a chunk of the sampled telemetry series (streamed during the run)
  cpu_energy  CPU package energy over the timed generations
  fidelity    PSNR/SSIM of the first timed generation against a plain one of the same seed
  video       path of the saved mp4
  step        one denoising step finished (progress only: not journaled)
  ready       warm-up done; the worker waits for the parent's start signal (multi-worker runs)
  done        the worker finished
  failed      the worker stopped early: why ('user', 'oom' or 'crash') and a message
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_serializer

from bench.core.errors import UsageError
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.core.specs import Settings
from bench.core.text import shown
from bench.records.fields import OptionName, OptionValue, Text
from bench.records.io import field_error
from bench.records.sampling import Sampling
from bench.records.schema import CpuEnergy, SpecRef, Weights

JOURNAL_VERSION = 1
MAX_JOURNAL_BYTES = 256 * 1024 * 1024
Worker = Annotated[int, Field(ge=0, le=4095)]
Series = dict[Annotated[str, Field(max_length=40)], list[float | int | None]]


class _Plain(BaseModel):
    """A journal model; fields named in `_unless_set` are written only when set (added after journals existed:
    lines without them read as before, and a run without them writes what it always wrote)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    _unless_set: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self._unless_set:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class _Message(_Plain):
    """One line of the journal. `worker` is set by the parent from the pipe the message came up (0: one worker)."""

    worker: Worker = 0

    def line(self) -> str:
        """One journal line: sorted keys, as journals have always been written (tools and tests grep them)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, allow_nan=False) + "\n"


class RunPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    seed: int
    prompt: Text
    warmup: int
    repeats: int
    time_budget_s: float | None


class GenerationReadings(_Plain):
    """A generation's place on the sampler's clock and its energy counter readings, as read: the parent decides
    which energy the record keeps (a counter may run backwards; bench.telemetry.summary drops it then)."""

    _unless_set = ("step_energy_j",)
    start_s: float
    end_s: float
    energy_j: float | None
    text_encode_energy_j: float | None
    denoise_energy_j: float | None
    vae_decode_energy_j: float | None
    step_energy_j: list[float] | None = None  # each step's, where every reading was there


class Header(_Message):
    _unless_set = ("sample_steps",)
    kind: Literal["header"] = "header"
    journal_version: int
    t2vbench_version: str
    run_id: str
    created_utc: str
    command: list[Text]
    label: Text | None
    spec: SpecRef
    spec_path: Text
    settings: Settings
    run: RunPlan
    gpus_used: int
    parallel: str | None
    options: dict[OptionName, OptionValue]
    output_changing: list[Text]
    weights: Weights
    warnings: list[Text]
    sample_steps: int | None = None  # --sample-steps K: a step-sampled run


class Device(_Message):
    kind: Literal["device"] = "device"
    device: str
    dtype: str
    environment: dict[str, Text | int | None]
    hardware_class: str


class TelemetryInfo(_Message):
    """The backend's static description (bench.telemetry.describe), or at the end its read errors alone."""

    kind: Literal["telemetry"] = "telemetry"
    backend: str | None = None
    available: bool | None = None
    unavailable_reason: Text | None = None
    device: dict[str, Text | int | float | bool | None] | None = None
    energy_unsupported_reason: Text | None = None
    throttle_bits: dict[str, int] | None = None
    slowdown_reasons: list[str] | None = None
    sample_period_s: float | None = None
    read_errors: dict[str, Text] | None = None

    def given(self) -> dict[str, Any]:
        """The fields this message sets (a later one adds to an earlier one)."""
        return {k: v for k, v in self.model_dump(exclude={"kind", "worker"}).items() if v is not None}


class Loaded(_Message):
    _unless_set = ("sampling",)
    kind: Literal["loaded"] = "loaded"
    load_s: float
    options: dict[OptionName, OptionValue]
    sampling: Sampling | None = None  # a step-sampled run's plan, made from the built pipeline's schedule


class Warmup(_Message):
    kind: Literal["warmup"] = "warmup"
    index: int
    seed: int
    latency_s: float


class GenerationDone(_Message):
    """One timed generation as the worker measured it (the record's Generation, before energy is chosen)."""

    kind: Literal["generation"] = "generation"
    index: int
    seed: int
    latency_s: float
    text_encode_s: float
    denoise_s: float
    vae_decode_s: float
    step_s: list[float]
    telemetry: GenerationReadings
    peak_memory_bytes: int
    peak_memory_method: Literal["cuda_max_allocated", "process_peak_rss", "process_max_rss"]


class SeriesChunk(_Message):
    kind: Literal["series"] = "series"
    columns: Series


class CpuEnergyRead(CpuEnergy, _Message):
    kind: Literal["cpu_energy"] = "cpu_energy"


class FidelityRead(_Message):
    kind: Literal["fidelity"] = "fidelity"
    psnr_db: float
    ssim: float
    seed: int


class Video(_Message):
    kind: Literal["video"] = "video"
    path: Text


class Step(_Message):
    kind: Literal["step"] = "step"
    step: int


class Ready(_Message):
    kind: Literal["ready"] = "ready"


class Done(_Message):
    kind: Literal["done"] = "done"
    recompiles: int = 0


class Failed(_Message):
    kind: Literal["failed"] = "failed"
    reason: Literal["user", "oom", "crash"]
    message: str


Message = Annotated[
    Header | Device | TelemetryInfo | Loaded | Warmup | GenerationDone | SeriesChunk
    | CpuEnergyRead | FidelityRead | Video | Step | Ready | Done | Failed,
    Field(discriminator="kind"),
]
_MESSAGE = TypeAdapter(Message)
KINDS = tuple(m.model_fields["kind"].default for m in Message.__origin__.__args__)


def message(kind: str, **fields: Any) -> Message:
    """The typed message of `kind` from plain values, read as the journal will read it back (so what cannot be written
    as JSON fails here, in the sender). Raises ValueError for an unknown kind or a field of the wrong type (a bug)."""
    return _MESSAGE.validate_json(json.dumps({"kind": kind, **fields}, allow_nan=False))


def encode(msg: Message) -> bytes:
    return msg.line().encode("utf-8")


def decode(data: bytes) -> Message:
    return _MESSAGE.validate_json(data)


class Journal:
    """An append-only JSON-lines file; each message is flushed and fsynced before the next is read.

    A journal that cannot be written (disk full, file system gone) stops trying and keeps the error: the run goes
    on in memory and the record is still attempted at the end.
    """

    def __init__(self, path: Path):
        self.path = path
        self.error: OSError | None = None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)  # umask decides group access
        self._file = os.fdopen(fd, "w", encoding="utf-8")

    def append(self, msg: Message) -> None:
        if self.error is not None:
            return
        try:
            self._file.write(msg.line())
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            self.error = exc

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or exc

    def remove(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def read_journal(path: str | Path) -> list[Message]:
    """The messages of a journal file. A last line cut short by a crash is dropped; anything else malformed is a
    UsageError naming the line."""
    path = Path(path)
    lines = read_bounded(path, MAX_JOURNAL_BYTES, "journal").split(b"\n")  # a named pipe is said, never read
    truncated = lines[-1] != b""
    messages = []
    for number, raw in enumerate(lines[:-1] if not truncated else lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = loads_strict(raw, f"{path}:{number}")
        except UsageError:
            if truncated and number == len(lines):  # the write a crash interrupted
                break
            raise
        if not isinstance(obj, dict) or obj.get("kind") not in KINDS:
            raise UsageError(f"{path}:{number}: not a t2vbench journal line (unknown or missing 'kind')")
        if obj["kind"] == "header" and messages:  # the parent writes one, first: a second is another run's
            raise UsageError(f"{path}:{number}: a second header (run_id {shown(obj.get('run_id'))}): "
                             "lines of another run were added; a journal holds one run")
        if obj["kind"] == "header" and obj.get("journal_version") != JOURNAL_VERSION:
            raise UsageError(f"{path}: journal_version {obj.get('journal_version')!r} is not "
                             f"{JOURNAL_VERSION}; use the t2vbench version that wrote it")
        try:
            messages.append(_MESSAGE.validate_json(raw))  # JSON mode: nested settings read as the dataclass
        except ValidationError as exc:
            raise field_error(exc, f"{path}:{number}", obj["kind"]) from None
    if not messages or messages[0].kind != "header":
        raise UsageError(f"{path}: a journal starts with its run's header; this file does not")
    return messages
