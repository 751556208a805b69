"""What reaches a terminal from a file: every character that acts instead of showing is written as a visible escape."""

import pytest

from bench.core.text import clean, shown


@pytest.mark.parametrize("raw,expected", [
    ("evil\u202elive", "evil\\u202elive"),          # right-to-left override: would show "evil" as "live"
    ("a\u2066b\u2069c", "a\\u2066b\\u2069c"),        # bidi isolates
    ("x\u200by\u200dz\ufeff", "x\\u200by\\u200dz\\ufeff"),  # zero-width space and joiner, BOM
    ("\x1b[2Jcleared", "\\x1b[2Jcleared"),           # an escape sequence that would clear the screen
    ("line\nbreak\rover", "line\\x0abreak\\x0dover"),
    ("\x9b31m", "\\x9b31m"),                         # C1 control sequence introducer
    ("tag\U000e0041", "tag\\U000e0041"),             # a tag character, invisible
    ("café 80 GB \u00a0ok", "café 80 GB \u00a0ok"),  # printable text and spaces stay as they are
])
def test_clean_makes_acting_characters_visible(raw, expected):
    assert clean(raw) == expected


def test_shown_quotes_and_escapes_a_strangers_value():
    assert shown("a\u202eb") == "'a\\u202eb'"
    assert shown("x" * 100, limit=10) == "'xxxxxxx...'"
    assert shown(2.5) == "2.5"
