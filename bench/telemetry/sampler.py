"""Background sampling of a backend, and energy from sampled power when the counter is missing."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bench.telemetry.base import SAMPLE_FIELDS, Backend

DEFAULT_PERIOD_S = 0.1  # NVML's energy counter and power readings update about every 100 ms


class Sampler:
    """Samples a backend every period_s on a daemon thread; times are perf_counter seconds since t0."""

    def __init__(self, backend: Backend, period_s: float = DEFAULT_PERIOD_S, t0: float | None = None):
        self.backend = backend
        self.period_s = period_s
        self.t0 = time.perf_counter() if t0 is None else t0
        self.series: dict[str, list] = {"t_s": [], **{f: [] for f in SAMPLE_FIELDS}}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="t2vbench-sampler")

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def sample_once(self) -> None:
        t = time.perf_counter() - self.t0
        values = self.backend.sample()
        self.series["t_s"].append(t)
        for field in SAMPLE_FIELDS:
            self.series[field].append(values.get(field))

    def _loop(self) -> None:
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            self.sample_once()
            next_tick += self.period_s
            # Fixed-rate schedule: a slow sample shortens the next wait instead of shifting every later one.
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def stop(self) -> dict[str, list]:
        self._stop.set()
        self._thread.join()
        self.sample_once()  # a closing sample so the last interval is covered
        return self.series


def integrate_energy_j(t_s: Sequence[float], power_w: Sequence[float | None], start_s: float, end_s: float) -> float:
    """Joules over [start_s, end_s] by the trapezoid rule on sampled power, linearly interpolated at the edges.

    Raises ValueError when fewer than two valid samples surround the interval.
    """
    points = [(t, p) for t, p in zip(t_s, power_w) if p is not None]
    if len(points) < 2 or points[0][0] > start_s or points[-1][0] < end_s:
        raise ValueError("sampled power does not cover the interval")

    def power_at(t: float) -> float:
        for (ta, pa), (tb, pb) in zip(points, points[1:]):
            if ta <= t <= tb:
                return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
        raise ValueError("time outside samples")  # pragma: no cover - guarded above

    inside = [(t, p) for t, p in points if start_s < t < end_s]
    curve = [(start_s, power_at(start_s)), *inside, (end_s, power_at(end_s))]
    return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in zip(curve, curve[1:]))
