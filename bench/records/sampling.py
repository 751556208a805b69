"""A step-sampled record's `sampling` section (schema v4): which steps each expert ran and which it computed, the
rest extrapolated from them (bench.core.metrics.extrapolate). The plan follows from the experts' steps and K alone
(`planned`, what the run computes): a section that is not that plan was written by hand."""

from __future__ import annotations

from typing import Annotated, Any

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
        split = [(e.component, e.steps) for e in self.experts]
        if len({c for c, _ in split}) < len(split):
            raise ValueError(f"experts {[c for c, _ in split]} name one component twice: each expert is its own")
        own = planned(split, self.sample_steps)
        if self.model_dump()["experts"] != own["experts"]:
            raise ValueError(f"computed steps {[e.computed_steps for e in self.experts]} are not the plan the run "
                             f"makes of {self.sample_steps} sampled step(s) over experts of {[n for _, n in split]} "
                             f"steps ({[e['computed_steps'] for e in own['experts']]}): the plan was edited")
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


def allocate(sample_steps: int, counts: list[int]) -> list[int]:
    """K computed steps after each expert's first, split in proportion to the experts' steps: 1 for every expert with
    a step after its first, then one at a time to the expert furthest below its proportional share that still has
    room (never more than its steps after the first). Raises ValueError where K does not fit (the runner checks
    that first: bench.run.runner.prepare)."""
    room = [max(0, c - 1) for c in counts]
    exact = [sample_steps * c / sum(counts) for c in counts]
    share = [1 if r else 0 for r in room]
    while sum(share) < sample_steps:
        open_ = [i for i in range(len(counts)) if share[i] < room[i]]
        if not open_:
            raise ValueError(f"{sample_steps} steps do not fit experts of {counts} steps")
        share[max(open_, key=lambda i: (exact[i] - share[i], -i))] += 1
    return share


def planned(split: list[tuple[str, int]], sample_steps: int) -> dict[str, Any]:
    """The plan a step-sampled run makes (the `sampling` section) from its experts in order, (component, steps), and
    K: each expert's first step and the next ones of its share of K (`allocate`) computed; an expert of no steps
    left out. Raises ValueError where K does not fit."""
    shares = allocate(sample_steps, [n for _, n in split])
    experts, first = [], 0
    for (component, n), share in zip(split, shares):
        if n:
            experts.append({"component": component, "first_step": first, "steps": n,
                            "computed_steps": list(range(first, first + 1 + share))})
        first += n
    return {"sample_steps": sum(shares), "experts": experts}


def _ranges(steps: list[int]) -> str:
    """0-based step indices as 1-based ranges: [1, 2, 3, 7] -> '2-4, 8'."""
    out: list[list[int]] = []
    for i in steps:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in out)
