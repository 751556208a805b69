"""What a person watching a long run sees on stderr: the model being built, then one bar over every denoising step
of the warm-up and timed generations, with the phase and tqdm's rate and ETA. Silent when off (--json).

tqdm is imported when the first bar opens.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.core.text import clean
from bench.records.journal import Message


class Progress:
    def __init__(self, enabled: bool, name: str, steps: int, warmup: int, repeats: int | None):
        self.enabled, self.name, self.steps = enabled, name, steps
        self.warmup, self.repeats = warmup, repeats  # repeats None: a time budget, no known end
        self.bar: Any = None
        self.done = {"warmup": 0, "generation": 0}

    def update(self, msg: Message) -> None:
        if not self.enabled:
            return
        if msg.kind == "device":
            print(f"t2vbench: building {clean(self.name)} on {clean(msg.device)} ({clean(msg.hardware_class)}, "
                  f"{clean(msg.dtype)})...", file=sys.stderr)
        elif msg.kind == "loaded":
            self._open()
        elif msg.kind == "step" and self.bar is not None:
            self.bar.update(1)
        elif msg.kind in self.done and self.bar is not None:
            self.done[msg.kind] += 1
            self.bar.set_description(self._phase(), refresh=False)

    def _open(self) -> None:
        from tqdm import tqdm

        total = None if self.repeats is None else (self.warmup + self.repeats) * self.steps
        self.bar = tqdm(total=total, desc=self._phase(), unit="step", file=sys.stderr, leave=False, delay=1)

    def _phase(self) -> str:
        if self.done["warmup"] < self.warmup:
            return f"{self.name} warm-up {self.done['warmup'] + 1}/{self.warmup}"
        of = f"/{self.repeats}" if self.repeats is not None else ""
        return f"{self.name} timed {self.done['generation'] + 1}{of}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
