"""GPU telemetry behind one small interface: NVML, AMD SMI, or none, picked by a fixed probe order."""

from __future__ import annotations

from bench.telemetry.base import Backend, NullBackend, TelemetryUnavailable

CHOICES = ("auto", "nvml", "amdsmi", "none")


def open_backend(choice: str, device: str, uuid: str | None = None, bdf: str | None = None,
                 is_rocm: bool = False) -> Backend:
    """The backend for torch device `device` ('cpu' or 'cuda:N').

    'auto' probes NVML then amdsmi and ends with a NullBackend that says why each failed. A backend named
    explicitly that cannot measure raises TelemetryUnavailable (the caller turns it into a user error).
    """
    from bench.telemetry.amd import AmdSmiBackend
    from bench.telemetry.nvml import NvmlBackend

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


__all__ = ["Backend", "CHOICES", "NullBackend", "TelemetryUnavailable", "open_backend"]
