"""Progress notes from deep inside a command (a FLOP count that takes a minute), for the person waiting. Where they
go is the CLI's choice (STYLE: only the CLI prints): it sets a sink when stderr is a terminal, so a program reading
a command's one-line refusal never gets a note before it. Without a sink a note goes nowhere."""

from __future__ import annotations

from collections.abc import Callable

_sink: list[Callable[[str], None]] = []  # at most one: the CLI's


def set_sink(sink: Callable[[str], None] | None) -> None:
    """Send notes to sink from now on (None: drop them)."""
    _sink[:] = [sink] if sink is not None else []


def note(text: str) -> None:
    for sink in _sink:
        sink(text)
