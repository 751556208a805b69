"""The one small interface every telemetry backend implements, and the backend used when there is no GPU to read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# One sample of the device; every field is None where the device does not report it.
SAMPLE_FIELDS = (
    "power_w", "sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
    "memory_used_bytes", "temperature_c", "throttle_mask",
)


class TelemetryUnavailable(Exception):
    """This backend cannot measure this device; the message says why (it lands in the record)."""


class Backend:
    """A GPU seen through its vendor library. Subclasses translate every vendor error in one place."""

    name = "none"
    vendor_error: type[Exception] | tuple[type[Exception], ...] = ()  # the vendor library's error class
    # Clock-event (throttle) reason name -> bit of throttle_mask, and which of them slow the GPU down.
    throttle_bits: dict[str, int] = {}
    slowdown_reasons: tuple[str, ...] = ()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The one place vendor errors are translated: an unsupported or failing query reads as None."""
        try:
            return fn(*args)
        except self.vendor_error:
            return None

    def static_info(self) -> dict[str, Any]:
        """Name, memory, driver, power limits, clocks, link, ECC/MIG/persistence mode; None where unknown."""
        return {}

    def energy_j(self) -> float | None:
        """The hardware energy counter in joules (monotonic), or None when unsupported."""
        return None

    energy_unsupported_reason: str | None = "no GPU telemetry backend"

    def sample(self) -> dict[str, float | int | None]:
        return dict.fromkeys(SAMPLE_FIELDS)

    def close(self) -> None:
        pass


class NullBackend(Backend):
    """No GPU telemetry: the run goes on and the record says why."""

    def __init__(self, reason: str):
        self.reason = reason
        self.energy_unsupported_reason = reason
