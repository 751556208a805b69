"""Text from files and command lines made safe to show: nothing a stranger wrote reaches a terminal or a page raw.

A string from a record, a reference or a file name may hold characters that act instead of showing: escape sequences
and other C0/C1 controls; U+202E RIGHT-TO-LEFT OVERRIDE and the other bidi embeddings, overrides and isolates
(U+202A-202E, U+2066-2069), which reorder the text after them so that a name appears to say something else;
zero-width characters and direction marks (U+200B-200F, U+FEFF), which hide differences between names; U+2028/2029.
Each is written as an escape a reader can see (\\xNN, \\uNNNN or \\UNNNNNNNN, as Python's repr writes them).
"""

from __future__ import annotations

import unicodedata


def _shown(ch: str, keep: str) -> bool:
    """Whether a character may be shown as it is: printable, a space of any width, or one of keep. Python counts every
    control (Cc), format (Cf: bidi, zero-width, tag characters), surrogate, private-use, unassigned and line or
    paragraph separator character as not printable."""
    return ch.isprintable() or ch in keep or unicodedata.category(ch) == "Zs"


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str, keep: str = "") -> str:
    """text with every character that acts instead of showing written as a visible escape (characters in keep,
    e.g. a newline on a page, are left as they are)."""
    if text.isprintable():
        return text
    return "".join(ch if _shown(ch, keep) else _escape(ch) for ch in text)


def clean(text: object) -> str:
    """A string from a file or the command line, safe for a terminal: controls (escape sequences, newlines, carriage
    returns), bidi overrides and zero-width characters become visible escapes."""
    return visible(str(text))


def shown(value: object, limit: int = 80) -> str:
    """A value from a file or the command line as it may be printed: bounded, and a string's control characters
    escaped by repr (a terminal never receives an escape sequence from a file)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:g}" if isinstance(value, float) else str(value) if abs(value) < 10**limit else "a huge integer"
        return text if len(text) <= limit else text[: limit - 3] + "..."
    text = str(value)
    return visible(repr(text if len(text) <= limit else text[: limit - 3] + "..."))
