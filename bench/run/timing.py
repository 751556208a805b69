"""One generation, timed end to end and split into stages, with energy read at the same marks.

torch is imported inside generate(): the module itself imports no torch, so the parent may import it.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from bench.core.errors import UsageError
from bench.core.specs import Settings


class StageClock:
    """Times the stages of one generation by wrapping encode_prompt and vae.decode and a step-end callback,
    and reads the energy counter (when there is one) at the same marks.

    Each mark is taken after synchronizing the device, so queued GPU work is counted in the stage it belongs to.
    Step 0 runs from the end of text encoding, so it includes preparing latents and timesteps. `step` is the index of
    the step under way and `generation` counts generations (a step sampler reads both: bench.run.sampling).
    """

    def __init__(self, pipe: Any, sync: Callable[[], None], energy: Callable[[], float | None] = lambda: None,
                 notify: Callable[[int], None] = lambda step: None):
        self.sync = sync
        self.energy = energy
        self.notify = notify  # told after each step's mark: progress, outside the timed region's arithmetic
        self.generation = 0
        self.reset()
        pipe.encode_prompt = self._timed(pipe.encode_prompt, "text_encode")
        pipe.vae.decode = self._timed(pipe.vae.decode, "vae_decode")

    def reset(self) -> None:
        self.spent_s = {"text_encode": 0.0, "vae_decode": 0.0}
        self.spent_j: dict[str, float | None] = {"text_encode": 0.0, "vae_decode": 0.0}
        self.encode_end: tuple[float, float | None] | None = None
        self.step_marks: list[float] = []
        self.step_j: list[float | None] = []  # the energy counter at each step mark
        self.generation += 1

    @property
    def step(self) -> int:
        """The index of the denoising step under way (0 before the first step's mark)."""
        return len(self.step_marks)

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            start, start_j = time.perf_counter(), self.energy()
            result = fn(*args, **kwargs)
            self.sync()
            end, end_j = time.perf_counter(), self.energy()
            self.spent_s[stage] += end - start
            self.spent_j[stage] = _add(self.spent_j[stage], start_j, end_j)
            if stage == "text_encode":
                self.encode_end = (end, end_j)
            return result

        return wrapper

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        self.step_marks.append(time.perf_counter())
        self.step_j.append(self.energy())
        self.notify(step)
        return callback_kwargs

    def stages(self, start: float, start_j: float | None) -> dict[str, Any]:
        origin, origin_j = self.encode_end or (start, start_j)
        marks = [origin] + self.step_marks
        step_s = [b - a for a, b in zip(marks, marks[1:])]
        readings = [origin_j] + self.step_j
        known = self.step_j and None not in readings
        return {
            "text_encode_s": self.spent_s["text_encode"],
            "denoise_s": sum(step_s),
            "vae_decode_s": self.spent_s["vae_decode"],
            "step_s": step_s,
            "energy": {
                "text_encode_energy_j": self.spent_j["text_encode"],
                "denoise_energy_j": _add(0.0, origin_j, self.step_j[-1] if self.step_j else None),
                "vae_decode_energy_j": self.spent_j["vae_decode"],
                "step_energy_j": [b - a for a, b in zip(readings, readings[1:])] if known else None,
            },
        }


def _add(total: float | None, start_j: float | None, end_j: float | None) -> float | None:
    """Accumulate a counter difference; unknown once any reading is missing."""
    if total is None or start_j is None or end_j is None:
        return None
    return total + end_j - start_j


def call_kwargs(pipe: Any, settings: Settings, prompt: str) -> dict[str, Any]:
    """Arguments of one pipeline call at these settings."""
    s = settings
    kwargs = {
        "prompt": prompt,
        "height": s.height,
        "width": s.width,
        "num_frames": s.num_frames,
        "num_inference_steps": s.steps,
        "guidance_scale": s.guidance_scale,
        "max_sequence_length": s.max_sequence_length,
        "output_type": "np",
    }
    if s.guidance_scale_2 is not None:  # only two-expert pipelines take it (Wan 2.2 A14B's low-noise expert)
        kwargs["guidance_scale_2"] = s.guidance_scale_2
    if "frame_rate" in inspect.signature(pipe.__call__).parameters:  # LTX conditions on playback rate
        kwargs["frame_rate"] = s.fps
    return kwargs


def generate(pipe: Any, clock: StageClock, kwargs: dict[str, Any], seed: int, device: str, t0: float = 0.0
             ) -> tuple[dict, Any]:
    """One generation timed end to end; returns its timings (with energy, times relative to t0) and the frames
    (frames, H, W, 3) in [0, 1]."""
    import torch

    generator = torch.Generator(device="cpu" if device == "cpu" else device).manual_seed(seed)
    clock.reset()
    clock.sync()
    start, start_j = time.perf_counter(), clock.energy()
    out = pipe(**kwargs, generator=generator, callback_on_step_end=clock.on_step_end)
    clock.sync()
    end, end_j = time.perf_counter(), clock.energy()
    frames = out.frames[0]
    if len(frames) != kwargs["num_frames"]:  # video seconds would be wrong: never record them

        raise UsageError(
            f"the pipeline returned {len(frames)} frames for --frames {kwargs['num_frames']}; "
            "choose a frame count this model's VAE reproduces"
        )
    stages = clock.stages(start, start_j)
    telemetry = {"start_s": start - t0, "end_s": end - t0, "energy_j": _add(0.0, start_j, end_j), **stages.pop("energy")}
    return {"seed": seed, "latency_s": end - start, **stages, "telemetry": telemetry}, frames
