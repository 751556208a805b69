"""Turn what the worker measured (counter readings, sampled series, static metadata) into the record's
telemetry section and its warnings. Plain data in, plain data out: no vendor library is touched here."""

from __future__ import annotations

from typing import Any

from bench.telemetry.sampler import integrate_energy_j

THROTTLE_WARN_SHARE = 0.05  # clocks held down for more than this share of the measured time
ENERGY_DISAGREE = 0.10  # counter and integrated power disagreeing by more than this
GAP_FACTOR = 2.5  # a sampling interval longer than this many periods is a gap


def _integrated(series: dict[str, list] | None, gens: list[dict[str, Any]]) -> list[float] | None:
    if not series:
        return None
    try:
        return [integrate_energy_j(series["t_s"], series["power_w"], g["telemetry"]["start_s"],
                                   g["telemetry"]["end_s"]) for g in gens]
    except ValueError:
        return None


def _gaps(t_s: list[float], period_s: float) -> tuple[int, float]:
    intervals = [b - a for a, b in zip(t_s, t_s[1:])]
    gaps = [d for d in intervals if d > GAP_FACTOR * period_s]
    return len(gaps), max(gaps, default=0.0)


def _throttle_share(series: dict[str, list], bits: dict[str, int]) -> dict[str, float]:
    masks = [m for m in series["throttle_mask"] if m is not None]
    if not masks:
        return {}
    return {name: sum(1 for m in masks if m & bit) / len(masks) for name, bit in bits.items()}


def _values(series: dict[str, list] | None, field: str) -> list[float]:
    return [v for v in (series or {}).get(field, []) if v is not None]


def summarize(info: dict[str, Any], gens: list[dict[str, Any]], video_s_per_gen: float
              ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The record's telemetry section, the generations with their energy filled in, and warnings."""
    warnings: list[str] = []
    series, device = info.get("series"), info.get("device") or {}
    readings = [(g.get("telemetry") or {}).get("energy_j") for g in gens]
    counter = readings if gens and None not in readings else None  # the counter must cover every generation
    integrated = _integrated(series, gens)
    method, energies = None, None
    unsupported = info.get("energy_unsupported_reason")
    wall_s = sum(g["latency_s"] for g in gens)
    power = _values(series, "power_w")
    if counter is not None and (min(counter) < 0 or (power and sum(counter) / wall_s > 2 * max(power))):
        # A counter that runs backwards or implies twice the highest sampled power is broken (seen on AMD).
        warnings.append("the energy counter failed its sanity check; energy comes from integrated power")
        unsupported, counter = "energy counter failed the sanity check", None
        blank = dict.fromkeys(("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j"))
        gens = [{**g, "telemetry": {**g["telemetry"], **blank}} for g in gens]
    if counter is not None:
        method, energies = "counter", counter
        if integrated is not None and sum(integrated) > 0:
            diff = abs(sum(counter) - sum(integrated)) / sum(integrated)
            if diff > ENERGY_DISAGREE:
                warnings.append(f"energy counter and integrated power disagree by {diff:.0%} (power readings are "
                                "~1 s averages on recent GPUs; longer runs agree better)")
    elif integrated is not None:
        method, energies = "power_integration", integrated
        for g, e in zip(gens, integrated):
            g["telemetry"] = {**g["telemetry"], "energy_j": e}
    elif info.get("available"):
        unsupported = "; ".join(filter(None, [unsupported, "too few power samples to integrate"]))

    total_j = sum(energies) if energies is not None else None
    clocks = _values(series, "sm_clock_mhz")
    temps = _values(series, "temperature_c")
    gaps, longest = _gaps(series["t_s"], info["sample_period_s"]) if series else (0, 0.0)
    share = _throttle_share(series, info.get("throttle_bits", {})) if series else {}
    summary = {
        "energy_per_video_j": None if total_j is None else total_j / len(gens),
        "energy_per_video_minute_wh": None if total_j is None else total_j / 3600 / (len(gens) * video_s_per_gen / 60),
        "energy_counter_j": None if counter is None else sum(counter),
        "energy_integrated_j": None if integrated is None else sum(integrated),
        "avg_power_w": None if total_j is None else total_j / wall_s,
        "peak_power_w": max(power, default=None),
        "sm_clock_mean_mhz": sum(clocks) / len(clocks) if clocks else None,
        "sm_clock_max_mhz": device.get("max_sm_clock_mhz"),
        "peak_temperature_c": max(temps, default=None),
        "power_limit_w": device.get("power_limit_w"),
        "throttle_share": share,
        "samples": len(series["t_s"]) if series else 0,
        "sampling_gaps": gaps,
        "longest_gap_s": longest,
    }
    warnings += _warnings(info, summary)
    section = {
        "backend": info["backend"],
        "available": info["available"],
        "unavailable_reason": info.get("unavailable_reason"),
        "device": device or None,
        "energy_method": method,
        "energy_unsupported_reason": None if method == "counter" else unsupported,
        "sample_period_s": info["sample_period_s"],
        "summary": summary,
        "series": series,
        "cpu": info.get("cpu") or {"package_energy_j": None, "reason": "not measured"},
    }
    return section, gens, warnings


def _warnings(info: dict[str, Any], s: dict[str, Any]) -> list[str]:
    out = []
    slow = {r: s["throttle_share"].get(r, 0.0) for r in info.get("slowdown_reasons", [])}
    slow = {r: v for r, v in slow.items() if v > THROTTLE_WARN_SHARE}
    if slow:
        listed = ", ".join(f"{r} {v:.0%}" for r, v in sorted(slow.items(), key=lambda kv: -kv[1]))
        out.append(f"clocks were throttled during the measurement ({listed} of samples): the figure is below "
                   "what this GPU does when cool and unconstrained")
    device = info.get("device") or {}
    limit, default = device.get("power_limit_w"), device.get("default_power_limit_w")
    if limit is not None and default is not None and limit < default * 0.99:
        out.append(f"power limit {limit:.0f} W is below the board default {default:.0f} W")
    if s["sampling_gaps"]:
        out.append(f"telemetry sampling had {s['sampling_gaps']} gap(s), the longest {s['longest_gap_s']:.2f} s "
                   f"(period {info['sample_period_s']} s)")
    return out
