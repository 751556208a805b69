"""A step-sampled record's `sampling` section (schema v4): which steps each expert ran and which it computed, the
rest extrapolated from them (bench.core.metrics.extrapolate)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from bench.records.fields import OptionName, Step, Strict


class SampledExpert(Strict):
    """One denoiser of a step-sampled run: the steps it runs (first_step onwards) and which of them were computed.
    Its first step carries one-off costs and is measured but not extrapolated from; the computed steps after it are
    the basis of its skipped steps."""

    component: OptionName
    first_step: Step
    steps: Annotated[int, Field(ge=1, le=10000)]
    computed_steps: Annotated[list[Step], Field(min_length=1, max_length=10000)]

    @model_validator(mode="after")
    def _within(self) -> SampledExpert:
        c = self.computed_steps
        if c[0] != self.first_step or any(b <= a for a, b in zip(c, c[1:])) or c[-1] >= self.first_step + self.steps:
            raise ValueError(f"{self.component}'s computed steps {c} must rise from its first step {self.first_step} "
                             f"within its {self.steps} steps")
        if len(c) == 1 and self.steps > 1:
            raise ValueError(f"{self.component} skips steps but computed none to extrapolate them from")
        return self

    @property
    def basis(self) -> list[int]:
        return self.computed_steps[1:]


class Sampling(Strict):
    """How a step-sampled run chose its steps: K computed after each expert's first, split between the experts in
    proportion to their steps; the experts follow each other through the schedule."""

    sample_steps: Annotated[int, Field(ge=1, le=10000)]
    experts: Annotated[list[SampledExpert], Field(min_length=1, max_length=8)]

    @model_validator(mode="after")
    def _consistent(self) -> Sampling:
        start = 0
        for e in self.experts:
            if e.first_step != start:
                raise ValueError(f"{e.component} starts at step {e.first_step}, not where the one before ends ({start})")
            start += e.steps
        if sum(len(e.basis) for e in self.experts) != self.sample_steps:
            raise ValueError(f"the experts compute {sum(len(e.basis) for e in self.experts)} steps after their first, "
                             f"not sample_steps {self.sample_steps}")
        if self.computed == self.total_steps:
            raise ValueError("every step was computed: not a step-sampled run")
        return self

    @property
    def total_steps(self) -> int:
        return sum(e.steps for e in self.experts)

    @property
    def computed(self) -> int:
        """Steps computed per generation (each expert's first included)."""
        return sum(len(e.computed_steps) for e in self.experts)

    def describe(self) -> str:
        """The plan in words, steps counted from 1: 'steps 1-6 of 50 computed; the other 44 extrapolated from the
        mean of steps 2-6'."""
        basis = [f"{_ranges(e.basis)}{f' ({e.component})' if len(self.experts) > 1 else ''}" for e in self.experts
                 if e.basis]
        computed = ", ".join(_ranges(e.computed_steps) for e in self.experts)
        each = ", each expert from its own" if len(self.experts) > 1 else ""
        return (f"steps {computed} of {self.total_steps} computed; the other {self.total_steps - self.computed} "
                f"extrapolated from the mean of steps {' and '.join(basis)}{each}")


def _ranges(steps: list[int]) -> str:
    """0-based step indices as 1-based ranges: [1, 2, 3, 7] -> '2-4, 8'."""
    out: list[list[int]] = []
    for i in steps:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in out)
