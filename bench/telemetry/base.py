"""The one small interface every telemetry backend implements, the backend used when there is no GPU to read, and
the one coercion every vendor value passes through before it becomes a reading."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

# One sample of the device; every field is None where the device does not report it.
SAMPLE_FIELDS = (
    "power_w", "sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
    "memory_used_bytes", "temperature_c", "throttle_mask",
)

# Plausible range of each kind of reading, in its unit after scaling. Outside it is a vendor sentinel (0xFFFF,
# UINT32/UINT64 max), a glitch or a unit we do not expect, never a measurement.
LIMITS: dict[str, tuple[float, float]] = {  # ints where a float would round the bound (2.0**64 - 2 == 2**64)
    "power_w": (0.0, 5_000.0),  # a 2026 board draws up to ~1.4 kW; two dies reported together stay far below
    "power_limit_w": (1.0, 5_000.0),
    "sm_clock_mhz": (0.0, 50_000.0),
    "mem_clock_mhz": (0.0, 50_000.0),
    "max_sm_clock_mhz": (1.0, 50_000.0),
    "gpu_util_pct": (0.0, 100.0),
    "mem_util_pct": (0.0, 100.0),
    "memory_used_bytes": (0, 2**50),
    "memory_total_bytes": (1, 2**50),
    "temperature_c": (-50.0, 200.0),
    "throttle_mask": (0, 2**64 - 2),  # all ones is "not available", not every reason at once
    "throttle_word_u32": (0, 2**32 - 2),
    "energy_j": (0.0, 1e12),  # a counter since driver load: 1 TJ is a 1 kW board for 30 years
    "counter_ticks": (0, 2**64 - 2),
    "counter_resolution_uj": (1e-6, 1e6),
    "pcie_generation": (1.0, 16.0),
    "pcie_width": (1.0, 64.0),
    "cuda_version": (1_000.0, 1_000_000.0),  # 12040 is CUDA 12.4
    "count": (0.0, 4_096.0),
}


def reading(value: object, kind: str, scale: float = 1) -> int | float | None:
    """`value` x `scale` when `value` is a finite real number (bool is not) and the result lies within LIMITS[kind];
    None for anything else: "N/A", True/False, None, NaN, a sentinel, a string, a ctypes struct. Never raises for a
    bad value (an unknown `kind` is a bug: KeyError). An int times an int scale stays an int."""
    low, high = LIMITS[kind]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        return None
    scaled = number * scale
    return scaled if low <= scaled <= high else None


def text(value: object, max_chars: int = 200) -> str | None:
    """A vendor string (str or bytes) stripped and bounded, or None for None, "", "N/A" and anything not text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()[:max_chars]
    return None if value in ("", "N/A") else value


def flag(value: object) -> bool | None:
    """A vendor on/off state (0 or 1) as a bool; None for anything else."""
    return bool(value) if type(value) is int and value in (0, 1) else None


class TelemetryUnavailable(Exception):
    """This backend cannot measure this device; the message says why (it lands in the record)."""


class Backend:
    """A GPU seen through its vendor library. Subclasses translate every vendor error in one place (`_call`)."""

    name = "none"
    vendor_error: type[Exception] | tuple[type[Exception], ...] = ()  # the vendor library's error class
    # Clock-event (throttle) reason name -> bit of throttle_mask, and which of them slow the GPU down.
    throttle_bits: dict[str, int] = {}
    slowdown_reasons: tuple[str, ...] = ()
    energy_unsupported_reason: str | None = "no GPU telemetry backend"

    def __init__(self) -> None:
        # Vendor function -> the first unexpected error it gave ("not supported" is a capability, not an error).
        self.read_errors: dict[str, str] = {}
        # Set when the device is gone: every later query reads None without asking the library again.
        self.lost_reason: str | None = None
        self._closed = False

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The one place vendor errors are translated: an unsupported or failing query reads as None."""
        if self.lost_reason or self._closed:
            return None
        try:
            return fn(*args)
        except self.vendor_error as exc:
            if not self._unsupported(exc):
                self.read_errors.setdefault(getattr(fn, "__name__", repr(fn)), f"{type(exc).__name__}: {exc}")
            if self._lost(exc):
                self.lost_reason = f"the GPU was lost during the run ({exc}); later readings are missing"
            return None

    def _unsupported(self, exc: Exception) -> bool:
        return False

    def _lost(self, exc: Exception) -> bool:
        return False

    def static_info(self) -> dict[str, Any]:
        """Name, memory, driver, power limits, clocks, link, ECC/MIG/persistence mode; None where unknown."""
        return {}

    def energy_j(self) -> float | None:
        """The hardware energy counter in joules (monotonic), or None when unsupported or unreadable."""
        return None

    def sample(self) -> dict[str, float | int | None]:
        """One reading of every SAMPLE_FIELDS field: a number within LIMITS, or None. Never raises."""
        return dict.fromkeys(SAMPLE_FIELDS)

    def close(self) -> None:
        """Release the vendor library. Idempotent, and never raises: it runs in `finally` blocks, where an error
        would hide the one that got us there."""
        if self._closed:
            return
        self._closed = True
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001 - see the docstring
            pass

    def _shutdown(self) -> None:
        pass


class NullBackend(Backend):
    """No GPU telemetry: the run goes on and the record says why."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason
        self.energy_unsupported_reason = reason
