"""Strict JSON for files that may come from strangers: UTF-8 only, no NaN or Infinity, no duplicate keys, bounded
nesting. Every refusal is one UsageError line naming the file and what is wrong."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.files import not_regular

MAX_DEPTH = 32  # a record nests about 6 deep


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"key '{key}' appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise _Refused(f"{name} is not a number a t2vbench file may hold")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return depth
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads_strict(data: bytes | str, origin: str) -> Any:
    """Parse JSON strictly. Raises UsageError('<origin>: ...') for bad encoding, syntax, NaN, duplicate keys or
    nesting deeper than MAX_DEPTH."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{origin}: not UTF-8 text (byte {exc.start}); a t2vbench file is UTF-8 JSON") from None
    if data.startswith("\ufeff"):  # json's own message tells a programmer to decode otherwise; a user needs this
        raise UsageError(f"{origin}: starts with a byte-order mark (BOM); save it as UTF-8 without one")
    try:
        value = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        raise UsageError(f"{origin}: JSON nested too deeply; not a t2vbench file") from None
    except _Refused as exc:
        raise UsageError(f"{origin}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{origin}: not valid JSON ({exc})") from None
    except ValueError:  # the only other: an integer past Python's digit limit (sys.get_int_max_str_digits)
        raise UsageError(f"{origin}: holds an integer of thousands of digits; not a t2vbench file") from None
    if _depth(value) > MAX_DEPTH:
        raise UsageError(f"{origin}: JSON nested deeper than {MAX_DEPTH} levels; not a t2vbench file")
    return value


def read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of a file a stranger may have made (a record, a reference, a calibration), read no further than
    max_bytes. Raises UsageError for a missing file, anything but a regular file (a folder, a named pipe, a device, a
    loop of links: each said as such), one that cannot be read, or a larger one, naming `what` it should have been."""
    why = not_regular(path)
    if why is not None:
        raise UsageError(f"{path}: no such {what} file" if why == "no such file" else
                         f"{path}: {why}, not a {what} file")
    try:  # non-blocking: a file swapped for a named pipe after the check above cannot hang the reader
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError(f"{path}: not a regular file, not a {what} file")
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise UsageError(f"{path}: larger than {max_bytes} bytes; not a t2vbench {what}")
    return raw
