"""Step-sampled generations (`run --sample-steps K`): the real schedule, with most denoiser passes skipped.

Each expert's forward is wrapped. Its first step runs (it carries one-off costs: latent preparation, an offloaded
expert's transfer) and so do the K steps after it, split between the experts in proportion to their steps; at every
other step the wrapper returns, in place of a forward pass, a copy of that expert's last real output at the same call
of the step (conditional and unconditional passes apart). The scheduler, the guidance arithmetic, the step callback
and the VAE decode still run on real tensors of the real shapes, so the text encoding and the decode are measured
whole and the computed steps at their real place in the schedule. The skipped steps' denoise time is extrapolated
from the computed ones afterwards (bench.core.metrics.extrapolate); the frames of a step-sampled generation are not
the model's output.

torch is imported inside the functions that need it; a pipeline's own classes are never imported here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from bench.records.sampling import planned
from bench.run.timing import StageClock


def expert_steps(pipe: Any, denoiser: str, steps: int) -> list[tuple[str, int]]:
    """Which denoiser runs how many of the steps, in order. With a `boundary_ratio` (Wan 2.2 A14B) WanPipeline runs
    `transformer` while t >= boundary_ratio x num_train_timesteps and `transformer_2` below it, on the timesteps of
    the pipeline's own scheduler (the rule bench.analysis.flops.expert_steps counts FLOPs by; this room cannot import
    that one)."""
    boundary = getattr(pipe, "config", {}).get("boundary_ratio")
    if boundary is None or getattr(pipe, "transformer_2", None) is None:
        return [(denoiser, steps)]
    scheduler = pipe.scheduler
    scheduler.set_timesteps(steps, device="cpu")
    high = int((scheduler.timesteps >= boundary * scheduler.config.num_train_timesteps).sum())
    return [("transformer", high), ("transformer_2", len(scheduler.timesteps) - high)]


def plan(pipe: Any, denoiser: str, steps: int, sample_steps: int) -> dict[str, Any]:
    """The steps a step-sampled run computes, as the record's `sampling` section (bench.records.sampling.planned,
    the plan the gate holds a record to): per expert its first step, its steps, and its first step plus the next
    ones of its share of K."""
    return planned(expert_steps(pipe, denoiser, steps), sample_steps)


class StepSampler:
    """Wraps each expert's forward so that only the planned steps run. Install it after every serving option (it
    must be the outermost wrapper, so a skipped step skips the options' hooks too); `full()` turns it off for a
    generation that must be whole (the plain reference and the fidelity comparison)."""

    def __init__(self, pipe: Any, sampling: dict[str, Any], clock: StageClock):
        self.clock = clock
        self.owner = {i: e["component"] for e in sampling["experts"]
                      for i in range(e["first_step"], e["first_step"] + e["steps"])}
        self.planned = {i for e in sampling["experts"] for i in e["computed_steps"]}
        self.enabled = True
        self._generation = -1
        for e in sampling["experts"]:
            module = getattr(pipe, e["component"])
            module.forward = self._wrap(e["component"], module.forward)

    def _start(self) -> None:
        """A new generation: forget the last one's outputs and calls."""
        self._generation = self.clock.generation
        self.outputs: dict[tuple[str, int], Any] = {}  # (expert, call within the step) -> its last real output
        self.calls: dict[int, list[tuple[str, bool]]] = {}  # step -> (expert, computed) per call

    def _wrap(self, component: str, forward: Any) -> Any:
        def sampled_forward(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return forward(*args, **kwargs)
            if self._generation != self.clock.generation:
                self._start()
            step = self.clock.step
            calls = self.calls.setdefault(step, [])
            key = (component, sum(1 for name, _ in calls if name == component))
            compute = step in self.planned or key not in self.outputs
            calls.append((component, compute))
            if not compute:
                return _copy(self.outputs[key])
            out = forward(*args, **kwargs)
            self.outputs[key] = _copy(out)  # a later skipped step returns a copy: nothing downstream can alter it
            return out

        return sampled_forward

    @contextlib.contextmanager
    def full(self) -> Iterator[None]:
        """Within the block every step runs."""
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = True

    def check(self, steps: int) -> None:
        """After a sampled generation: every step called its own expert, and exactly the planned steps ran. Raises
        RuntimeError (a pipeline that calls its denoisers otherwise than the plan assumes: a bug to fix here)."""
        calls = self.calls if self._generation == self.clock.generation else {}
        for step in range(steps):
            made = calls.get(step, [])
            if not made or {name for name, _ in made} != {self.owner[step]}:
                raise RuntimeError(f"step sampling: step {step} called {[n for n, _ in made] or 'no denoiser'}, "
                                   f"planned {self.owner[step]}")
            ran = {computed for _, computed in made}
            if ran != {step in self.planned}:
                raise RuntimeError(f"step sampling: step {step} {'ran' if True in ran else 'skipped'} a forward pass "
                                   f"against the plan ({sorted(self.planned)} computed)")


def _copy(out: Any) -> Any:
    """A copy of a forward pass's output: tensors cloned inside tuples, lists and diffusers' output classes."""
    import torch

    if isinstance(out, torch.Tensor):
        return out.detach().clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_copy(x) for x in out)
    if isinstance(out, dict):  # diffusers' BaseOutput is an ordered dict of its fields
        return type(out)(**{k: _copy(v) for k, v in out.items()})
    return out
