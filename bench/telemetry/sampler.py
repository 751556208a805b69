"""Background sampling of a backend, streamed in chunks, and energy from sampled power when the counter is missing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bench.telemetry.base import SAMPLE_FIELDS, Backend

DEFAULT_PERIOD_S = 0.1  # NVML's energy counter and power readings update about every 100 ms
SERIES_FIELDS = ("t_s", *SAMPLE_FIELDS)
JOIN_TIMEOUT_S = 5.0  # a vendor call hung longer than this is abandoned with its daemon thread


def empty_series() -> dict[str, list]:
    return {f: [] for f in SERIES_FIELDS}


def join_chunks(chunks: Iterable[dict[str, list]]) -> dict[str, list]:
    """The series rebuilt from chunks in the order they were drained. Raises ValueError for a chunk whose columns
    are not SERIES_FIELDS or differ in length."""
    series = empty_series()
    for chunk in chunks:
        if set(chunk) != set(SERIES_FIELDS) or len({len(v) for v in chunk.values()}) > 1:
            raise ValueError(f"a telemetry chunk must hold equally long columns {', '.join(SERIES_FIELDS)}")
        for field in SERIES_FIELDS:
            series[field].extend(chunk[field])
    return series


class Sampler:
    """Samples a backend every period_s on a daemon thread; times are perf_counter seconds since t0.

    Every sample lands once in `series` (the whole run) and once in the pending chunk that `drain()` hands out and
    forgets; `stop()` ends sampling and returns the last chunk, so a caller that drains now and then and stops at
    the end has seen every sample exactly once. As a context manager it starts on entry and stops on exit.
    """

    def __init__(self, backend: Backend, period_s: float = DEFAULT_PERIOD_S, t0: float | None = None):
        self.backend = backend
        self.period_s = period_s
        self.t0 = time.perf_counter() if t0 is None else t0
        self.series = empty_series()
        self.failures = 0  # samples the backend raised on (each recorded as a row of None)
        self.first_failure: str | None = None
        self._pending = empty_series()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="t2vbench-sampler")

    def start(self) -> Sampler:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread.is_alive()

    def __enter__(self) -> Sampler:
        return self if self.running or self._stopped else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def sample_once(self) -> None:
        """Take one sample now. A backend that raises costs a row of None, never the run."""
        try:
            values = self.backend.sample()
        except Exception as exc:  # noqa: BLE001 - telemetry must not sink a run; the failure is counted and kept
            values = {}
            self.failures += 1
            self.first_failure = self.first_failure or f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self._stopped:
                return  # a late sample from a thread stop() gave up on: it would arrive after the last chunk
            row = {"t_s": time.perf_counter() - self.t0, **{f: values.get(f) for f in SAMPLE_FIELDS}}
            for field in SERIES_FIELDS:  # time taken under the lock, so rows are appended in time order
                self.series[field].append(row[field])
                self._pending[field].append(row[field])

    def drain(self) -> dict[str, list]:
        """The samples taken since the previous drain (columns t_s and SAMPLE_FIELDS), removed from the pending
        chunk. Safe to call while the sampling thread runs."""
        with self._lock:
            chunk, self._pending = self._pending, empty_series()
        return chunk

    def _loop(self) -> None:
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            self.sample_once()
            next_tick += self.period_s
            # Fixed-rate schedule: a slow sample shortens the next wait instead of shifting every later one.
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def stop(self) -> dict[str, list]:
        """Stop sampling and return what `drain()` has not handed out yet, with a closing sample so the last
        interval is covered. Idempotent: a second call returns an empty chunk. Never raises."""
        if self._stopped:
            return self.drain()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_S)
        if not self._thread.is_alive():  # a hung vendor call would hang the closing sample too
            self.sample_once()
        with self._lock:
            self._stopped = True
        return self.drain()


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
