"""What the worker tells the parent, as typed messages of plain values (no torch objects: the parent never imports
torch), and the journal they are appended to as they arrive.

Every message is one JSON line in the journal: {"kind": ..., **fields}. The first line is the run's header, written by
the parent before the worker starts, so a journal alone is enough to rebuild the record (`t2vbench recover`).

  header      run id, time, command line, label, spec, settings, options, layout, weights (parent)
Every other message carries `worker`, the index of the worker that sent it (0 on single-GPU runs).
  device      device, dtype, environment, hardware class: sent before the model is built
  telemetry   the telemetry backend's static description
  loaded      seconds to build or load the pipeline; the serving options as applied
  warmup      one untimed generation: index, seed, latency
  generation  one timed generation: raw stage timings, energy readings, peak memory
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

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.jsonsafe import loads_strict

JOURNAL_VERSION = 1
MAX_JOURNAL_BYTES = 256 * 1024 * 1024
KINDS = ("header", "device", "telemetry", "loaded", "warmup", "generation", "series", "cpu_energy", "fidelity", "video",
         "step", "ready", "done", "failed")


@dataclasses.dataclass(frozen=True)
class Message:
    kind: str
    fields: dict[str, Any]

    def line(self) -> str:
        return json.dumps({"kind": self.kind, **self.fields}, sort_keys=True, allow_nan=False) + "\n"


def message(kind: str, **fields: Any) -> Message:
    """A message; raises ValueError for an unknown kind (a bug, not a user error)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    return Message(kind, fields)


def encode(msg: Message) -> bytes:
    return msg.line().encode("utf-8")


def decode(data: bytes) -> Message:
    obj = json.loads(data.decode("utf-8"))
    return Message(obj.pop("kind"), obj)


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
    if not path.is_file():
        raise UsageError(f"{path}: no such journal file")
    if path.stat().st_size > MAX_JOURNAL_BYTES:
        raise UsageError(f"{path}: larger than {MAX_JOURNAL_BYTES} bytes; not a t2vbench journal")
    lines = path.read_bytes().split(b"\n")
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
        kind = obj.pop("kind")
        messages.append(Message(kind, obj))
    if not messages or messages[0].kind != "header":
        raise UsageError(f"{path}: a journal starts with its run's header; this file does not")
    if messages[0].fields.get("journal_version") != JOURNAL_VERSION:
        raise UsageError(f"{path}: journal_version {messages[0].fields.get('journal_version')!r} is not "
                         f"{JOURNAL_VERSION}; use the t2vbench version that wrote it")
    return messages
