"""Text from files and command lines made safe to print: nothing a stranger wrote reaches a terminal raw."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    """A string from a file or the command line, safe for a terminal: control characters (escape sequences,
    newlines, carriage returns) become visible \\xNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def shown(value: object, limit: int = 80) -> str:
    """A value from a file or the command line as it may be printed: bounded, and a string's control characters
    escaped by repr (a terminal never receives an escape sequence from a file)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:g}" if isinstance(value, float) else str(value) if abs(value) < 10**limit else "a huge integer"
        return text if len(text) <= limit else text[: limit - 3] + "..."
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
