"""Turn what the worker measured (counter readings, sampled series, static metadata) into the record's telemetry
section and its warnings, and check a stored section against its own series. Plain data in, plain data out: no
vendor library is touched here."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.telemetry.amd import THROTTLE_BITS as AMD_THROTTLE_BITS
from bench.telemetry.nvml import THROTTLE_BITS as NVML_THROTTLE_BITS
from bench.telemetry.sampler import integrate_energy_j

THROTTLE_WARN_SHARE = 0.05  # clocks held down for more than this share of the measured time
ENERGY_DISAGREE = 0.10  # counter and integrated power disagreeing by more than this earns a warning
GAP_FACTOR = 2.5  # a sampling interval longer than this many periods is a gap
ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j")


@dataclasses.dataclass
class _Energy:
    """Which energy the record reports and why."""

    method: str | None  # "counter", "power_integration" or None
    per_gen_j: list[float] | None
    counter_j: list[float] | None
    integrated_j: list[float] | None
    unsupported: str | None
    warnings: list[str]
    counter_failed: bool = False  # its readings are dropped from the generations too


def _telemetry(g: dict[str, Any]) -> dict[str, Any]:
    return g.get("telemetry") or {}


def _integrated(series: dict[str, list] | None, gens: list[dict[str, Any]]) -> list[float] | None:
    if not series or not gens:
        return None
    try:
        return [integrate_energy_j(series["t_s"], series["power_w"], _telemetry(g)["start_s"], _telemetry(g)["end_s"])
                for g in gens]
    except (KeyError, ValueError):
        return None


def _counter(gens: list[dict[str, Any]]) -> list[float] | None:
    readings = [_telemetry(g).get("energy_j") for g in gens]
    return readings if gens and None not in readings else None  # the counter must cover every generation


def _gaps(t_s: list[float], period_s: float) -> tuple[int, float]:
    intervals = [b - a for a, b in zip(t_s, t_s[1:])]
    gaps = [d for d in intervals if d > GAP_FACTOR * period_s]
    return len(gaps), max(gaps, default=0.0)


def _throttle_share(series: dict[str, list] | None, bits: dict[str, int]) -> dict[str, float]:
    masks = [m for m in (series or {}).get("throttle_mask", []) if m is not None]
    if not masks:
        return {}
    return {name: sum(1 for m in masks if m & bit) / len(masks) for name, bit in bits.items()}


def _values(series: dict[str, list] | None, field: str) -> list[float]:
    return [v for v in (series or {}).get(field, []) if v is not None]


def _counter_is_broken(counter: list[float], series: dict[str, list] | None, wall_s: float) -> bool:
    """A counter that runs backwards or implies twice the highest sampled power is broken (seen on AMD)."""
    power = _values(series, "power_w")
    return min(counter) < 0 or bool(power and wall_s > 0 and sum(counter) / wall_s > 2 * max(power))


def _disagreement(counter: list[float], integrated: list[float] | None) -> float | None:
    """|counter - integrated| / integrated over the whole run, or None when there is nothing to compare."""
    if integrated is None or sum(integrated) <= 0:
        return None
    return abs(sum(counter) - sum(integrated)) / sum(integrated)


def _choose_energy(info: dict[str, Any], gens: list[dict[str, Any]]) -> _Energy:
    series, counter, warnings = info.get("series"), _counter(gens), []
    integrated = _integrated(series, gens)
    unsupported = info.get("energy_unsupported_reason")
    failed = counter is not None and _counter_is_broken(counter, series, sum(g["latency_s"] for g in gens))
    if failed:
        warnings.append("the energy counter failed its sanity check; energy comes from integrated power")
        unsupported, counter = "energy counter failed the sanity check", None
    if counter is not None:
        diff = _disagreement(counter, integrated)
        if diff is not None and diff > ENERGY_DISAGREE:
            warnings.append(f"energy counter and integrated power disagree by {diff:.0%} (power readings are "
                            "~1 s averages on recent GPUs; longer runs agree better)")
        return _Energy("counter", counter, counter, integrated, unsupported, warnings)
    if integrated is not None:
        return _Energy("power_integration", integrated, None, integrated, unsupported, warnings, failed)
    if info.get("available"):
        unsupported = "; ".join(filter(None, [unsupported, "too few power samples to integrate"]))
    return _Energy(None, None, None, None, unsupported, warnings, failed)


def _with_energy(gens: list[dict[str, Any]], energy: _Energy) -> list[dict[str, Any]]:
    """The generations as the record keeps them: a counter that failed its check leaves none of its readings
    behind, and integrated power fills energy_j."""
    out = []
    for i, g in enumerate(gens):
        t = dict(_telemetry(g))
        if energy.counter_failed:
            t.update(dict.fromkeys(ENERGY_FIELDS))
        if energy.method == "power_integration":
            t["energy_j"] = energy.per_gen_j[i]
        out.append({**g, "telemetry": t} if g.get("telemetry") is not None else g)
    return out


def _energy_figures(energy_j: list[float] | None, gens: list[dict[str, Any]], video_s_per_gen: float
                    ) -> dict[str, float | None]:
    total_j = sum(energy_j) if energy_j else None
    wall_s = sum(g["latency_s"] for g in gens)
    video_min = len(gens) * video_s_per_gen / 60
    return {
        "energy_per_video_j": None if total_j is None else total_j / len(gens),
        "energy_per_video_minute_wh": None if total_j is None or video_min <= 0 else total_j / 3600 / video_min,
        "avg_power_w": None if total_j is None or wall_s <= 0 else total_j / wall_s,
    }


def _series_figures(series: dict[str, list] | None, device: dict[str, Any], period_s: float,
                    bits: dict[str, int]) -> dict[str, Any]:
    clocks = _values(series, "sm_clock_mhz")
    gaps, longest = _gaps(series["t_s"], period_s) if series else (0, 0.0)
    return {
        "peak_power_w": max(_values(series, "power_w"), default=None),
        "sm_clock_mean_mhz": sum(clocks) / len(clocks) if clocks else None,
        "sm_clock_max_mhz": device.get("max_sm_clock_mhz"),
        "peak_temperature_c": max(_values(series, "temperature_c"), default=None),
        "power_limit_w": device.get("power_limit_w"),
        "throttle_share": _throttle_share(series, bits),
        "samples": len(series["t_s"]) if series else 0,
        "sampling_gaps": gaps,
        "longest_gap_s": longest,
    }


def _summary(info: dict[str, Any], gens: list[dict[str, Any]], energy: _Energy, video_s_per_gen: float
             ) -> dict[str, Any]:
    series_part = _series_figures(info.get("series"), info.get("device") or {}, info["sample_period_s"],
                                  info.get("throttle_bits", {}))
    return {
        **_energy_figures(energy.per_gen_j, gens, video_s_per_gen),
        "energy_counter_j": None if energy.counter_j is None else sum(energy.counter_j),
        "energy_integrated_j": None if energy.integrated_j is None else sum(energy.integrated_j),
        **series_part,
    }


def summarize(info: dict[str, Any], gens: list[dict[str, Any]], video_s_per_gen: float
              ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The record's telemetry section, the generations with their energy filled in, and warnings.

    `info` is what the worker reported (backend, device, series, sample period, throttle bits, ...); `gens` carry
    latency_s and a telemetry dict with start_s/end_s and the counter's energy readings. Does not modify its input.
    """
    energy = _choose_energy(info, gens)
    summary = _summary(info, gens, energy, video_s_per_gen)
    device = info.get("device") or {}
    section = {
        "backend": info["backend"],
        "available": info["available"],
        "unavailable_reason": info.get("unavailable_reason"),
        "device": device or None,
        "energy_method": energy.method,
        "energy_unsupported_reason": None if energy.method == "counter" else energy.unsupported,
        "sample_period_s": info["sample_period_s"],
        "summary": summary,
        "series": info.get("series"),
        "cpu": info.get("cpu") or {"package_energy_j": None, "reason": "not measured"},
    }
    return section, _with_energy(gens, energy), energy.warnings + _warnings(info, summary)


def _warnings(info: dict[str, Any], s: dict[str, Any]) -> list[str]:
    return [w for w in (_throttle_warning(info, s), _power_limit_warning(info), _gap_warning(info, s),
                        _read_error_warning(info)) if w]


def _throttle_warning(info: dict[str, Any], s: dict[str, Any]) -> str | None:
    slow = {r: s["throttle_share"].get(r, 0.0) for r in info.get("slowdown_reasons", [])}
    slow = {r: v for r, v in slow.items() if v > THROTTLE_WARN_SHARE}
    if not slow:
        return None
    listed = ", ".join(f"{r} {v:.0%}" for r, v in sorted(slow.items(), key=lambda kv: -kv[1]))
    return (f"clocks were throttled during the measurement ({listed} of samples): the figure is below what this GPU "
            "does when cool and unconstrained")


def _power_limit_warning(info: dict[str, Any]) -> str | None:
    device = info.get("device") or {}
    limit, default = device.get("power_limit_w"), device.get("default_power_limit_w")
    if limit is not None and default is not None and limit < default * 0.99:
        return f"power limit {limit:.0f} W is below the board default {default:.0f} W"
    return None


def _gap_warning(info: dict[str, Any], s: dict[str, Any]) -> str | None:
    if not s["sampling_gaps"]:
        return None
    return (f"telemetry sampling had {s['sampling_gaps']} gap(s), the longest {s['longest_gap_s']:.2f} s "
            f"(period {info['sample_period_s']} s)")


def _read_error_warning(info: dict[str, Any]) -> str | None:
    errors = info.get("read_errors") or {}
    if not errors:
        return None
    listed = "; ".join(f"{fn}: {why}" for fn, why in sorted(errors.items()))
    return f"some telemetry readings failed and are missing ({listed})"


# --- checking a stored section against its own series -------------------------------------------------------------

CHECK_REL_TOL = 1e-6  # recomputation repeats the same arithmetic: only float noise from a foreign writer is allowed
# A generation's counter energy this far from its integrated power is not believed, unless the power readings' ~1 s
# averaging (POWER_LAG_S at each edge of the generation, at the peak sampled power) explains the gap. NVML: 15%. The
# committed H100 records agree within 0.04% over 200 s (138,158.7 J counted, 138,108.9 J integrated) and the README's
# nvidia-smi cross-check within 0.2%; sampling every 0.1 s integrates a generation of a minute to within a few percent,
# so 15% leaves room for an unlucky run and refuses a counter scaled by 0.85 or less with its series kept. amdsmi: 50%,
# as before: no AMD record or source says how well its counter and its power readings agree (the run has seen AMD
# counters fail outright, _counter_is_broken), so the bound stays loose there.
COUNTER_DOUBT = {"nvml": 0.15}
COUNTER_DOUBT_DEFAULT = 0.5
POWER_LAG_S = 1.0


def _throttle_bits(backend: str | None) -> dict[str, int]:
    return {"nvml": NVML_THROTTLE_BITS, "amdsmi": AMD_THROTTLE_BITS}.get(backend or "", {})


def _recompute(section: dict[str, Any], gens: list[dict[str, Any]], video_s_per_gen: float) -> dict[str, Any]:
    """Every summary figure that follows from the series, the device metadata and the generations' readings."""
    series, method = section.get("series"), section.get("energy_method")
    integrated = _integrated(series, gens)
    counter = _counter(gens) if method == "counter" else None
    per_gen = {"counter": counter, "power_integration": integrated}.get(method)
    return {
        **_energy_figures(per_gen, gens, video_s_per_gen),
        "energy_counter_j": None if counter is None else sum(counter),
        "energy_integrated_j": None if integrated is None else sum(integrated),
        **_series_figures(series, section.get("device") or {}, section["sample_period_s"],
                          _throttle_bits(section.get("backend"))),
    }


def _close(claimed: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return (isinstance(claimed, dict) and set(claimed) == set(expected)
                and all(_close(claimed[k], v) for k, v in expected.items()))
    if claimed is None or expected is None:
        return claimed is None and expected is None
    if isinstance(claimed, bool) or not isinstance(claimed, (int, float)):
        return False
    return abs(claimed - expected) <= max(CHECK_REL_TOL * max(abs(claimed), abs(expected)), 1e-9)


def _generation_energy_problems(section: dict[str, Any], gens: list[dict[str, Any]]) -> list[str]:
    """With integrated power as the method, each generation's energy_j is its integral."""
    integrated = _integrated(section.get("series"), gens)
    if section.get("energy_method") != "power_integration" or integrated is None:
        return []
    return [f"generation {i} energy_j is {_telemetry(g).get('energy_j')} but its power integrates to {e:.6g}"
            for i, (g, e) in enumerate(zip(gens, integrated)) if not _close(_telemetry(g).get("energy_j"), e)]


def _counter_problems(section: dict[str, Any], gens: list[dict[str, Any]]) -> list[str]:
    """A counter the run itself would have refused, or one far from integrated power beyond what lag explains."""
    counter, series = _counter(gens), section.get("series")
    if section.get("energy_method") != "counter" or counter is None:
        return []
    if _counter_is_broken(counter, series, sum(g["latency_s"] for g in gens)):
        return ["the energy counter fails the sanity check (backwards, or above twice the peak sampled power) "
                "but is reported as the energy"]
    integrated, peak_w = _integrated(series, gens), max(_values(series, "power_w"), default=0.0)
    if integrated is None:
        return []
    doubt = COUNTER_DOUBT.get(section.get("backend") or "", COUNTER_DOUBT_DEFAULT)
    for i, (counted_j, integrated_j) in enumerate(zip(counter, integrated)):
        gap_j = abs(counted_j - integrated_j)
        if gap_j > max(doubt * integrated_j, 2 * POWER_LAG_S * peak_w):
            return [f"generation {i}'s energy counter {counted_j:.6g} J disagrees with integrated power "
                    f"{integrated_j:.6g} J by {gap_j / max(integrated_j, 1e-9):.0%}, more than the {doubt:.0%} a "
                    "counter may"]
    return []


def check_summary(section: dict[str, Any], gens: list[dict[str, Any]], video_s_per_gen: float) -> list[str]:
    """One message per figure of a stored telemetry section that its own series, device metadata and per-generation
    readings contradict; [] for an honest section. `section` is the record's telemetry section (with summary and
    series), `gens` the generations as dicts (latency_s, telemetry), `video_s_per_gen` seconds of video each.
    Figures are recomputed exactly as `summarize` computes them. Expects input that passed the record schema."""
    summary = section.get("summary") or {}
    expected = _recompute(section, gens, video_s_per_gen)
    problems = [f"summary.{name} is {summary.get(name)!r} but the series and generations give {value!r}"
                for name, value in expected.items() if not _close(summary.get(name), value)]
    return problems + _generation_energy_problems(section, gens) + _counter_problems(section, gens)
