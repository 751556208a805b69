"""Reading a TOML file a user or a stranger gave: bounded in size, UTF-8, every failure one line naming the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: Path, max_bytes: int, where: str, what: str) -> tuple[dict[str, Any], bytes]:
    """The parsed table and the raw bytes of a TOML file of at most max_bytes. `where` starts each message (e.g.
    "--scenario x.toml"), `what` names the kind of file (e.g. "a scenario"). Raises UsageError."""
    if path.is_dir():
        raise UsageError(f"{where}: is a folder; give {what} TOML file")
    if not path.is_file():
        raise UsageError(f"{where}: no such file (or not a regular file); give {what} TOML file")
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise UsageError(f"{where}: larger than {max_bytes} bytes; {what} is a short TOML file")
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply; {what} is a short TOML file") from None
    except ValueError as exc:  # TOMLDecodeError, and int() refusing a 5,000-digit number
        raise UsageError(f"{where}: not valid TOML ({' '.join(str(exc).split())[:200]})") from None
