"""Characters from files made visible on the page and its plots (bench.core.text says which and why); tabs and
newlines stay, as the page lays them out."""

from __future__ import annotations

from markupsafe import Markup

from bench.core.text import visible as visible_text


def visible(value: object) -> object:
    """value with every character that acts instead of showing written as a visible escape, e.g. U+202E as the six
    characters \\u202e; a value with none is returned as it is (not only strings: the report's template passes every
    value). Markup stays Markup: the escapes are ASCII letters, digits and backslashes, which make no tag."""
    text = str(value)
    if text.isprintable():
        return value
    out = visible_text(text, keep="\t\n")
    return Markup(out) if isinstance(value, Markup) else out
