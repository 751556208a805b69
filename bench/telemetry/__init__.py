"""GPU telemetry behind one small interface: NVML, AMD SMI, or none, picked by a fixed probe order."""

from __future__ import annotations

from typing import Any

from bench.telemetry.amd import AmdSmiBackend
from bench.telemetry.base import Backend, NullBackend, TelemetryUnavailable
from bench.telemetry.nvml import NvmlBackend

BACKENDS = ("nvml", "amdsmi", "none")  # the names a record's telemetry.backend may hold
CHOICES = ("auto", *BACKENDS)  # what --telemetry accepts


def open_backend(choice: str, device: str, uuid: str | None = None, bdf: str | None = None,
                 is_rocm: bool = False) -> Backend:
    """The backend for torch device `device` ('cpu' or 'cuda:N').

    'auto' probes NVML then amdsmi and ends with a NullBackend that says why each failed. A backend named
    explicitly that cannot measure raises TelemetryUnavailable (the caller turns it into a user error).
    """

    if choice not in CHOICES:
        raise TelemetryUnavailable(f"unknown telemetry backend {choice!r}; use one of {', '.join(CHOICES)}")
    if choice == "none":
        return NullBackend("telemetry turned off (--telemetry none)")
    if device == "cpu" and choice != "auto":
        raise TelemetryUnavailable("needs a GPU run; this run is on the CPU")
    index = int(device.partition(":")[2] or 0)
    factories = {"nvml": lambda: NvmlBackend(index, None if is_rocm else uuid),
                 "amdsmi": lambda: AmdSmiBackend(index, bdf)}
    if choice != "auto":
        return factories[choice]()
    order = ("amdsmi", "nvml") if is_rocm else ("nvml", "amdsmi")
    reasons = []
    for name in order:
        try:
            backend = factories[name]()
        except TelemetryUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if device != "cpu":
            return backend
        backend.close()
        reasons.append(f"{name}: available, but the run is not on a GPU")
    prefix = "the run is on the CPU; " if device == "cpu" else ""
    return NullBackend(prefix + "; ".join(reasons))


def describe(backend: Backend, period_s: float) -> dict[str, Any]:
    """The backend's static description, as `summary.summarize` expects it (series and CPU energy come later)."""
    return {
        "backend": backend.name,
        "available": backend.name != "none",
        "unavailable_reason": getattr(backend, "reason", None),
        "device": backend.static_info() or None,
        "energy_unsupported_reason": backend.energy_unsupported_reason,
        "throttle_bits": dict(backend.throttle_bits),
        "slowdown_reasons": list(backend.slowdown_reasons),
        "sample_period_s": period_s,
        "read_errors": dict(backend.read_errors),
    }


__all__ = ["BACKENDS", "Backend", "CHOICES", "NullBackend", "TelemetryUnavailable", "describe", "open_backend"]
