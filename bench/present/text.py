"""Text the CLI prints. Functions here return strings; only the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.core.specs import Spec
from bench.core.text import clean
from bench.records.schema import ResultRecord


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[clean(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_params(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def format_models(specs: Sequence[Spec], params: dict[str, int | None]) -> str:
    rows = []
    for s in specs:
        st = s.settings
        rows.append([
            s.name, s.pipeline, format_params(params.get(s.name)), f"{st.width}x{st.height}",
            f"{st.num_frames}@{st.fps:g}fps", st.steps, st.guidance_scale, s.default_weights,
        ])
    header = ["model", "pipeline", "denoiser", "size", "frames", "steps", "cfg", "weights"]
    return table(rows, header)


def format_run(record: ResultRecord, path: Path | str) -> str:
    s, st = record.summary, record.settings
    warm = record.warmup_latency_s
    out = [
        f"{clean(record.spec.name)} on {clean(record.hardware_class)} ({clean(st.device)}, {clean(st.dtype)}, "
        f"weights: {record.weights.source})" + (f"  [{clean(record.label)}]" if record.label else ""),
        f"  {st.width}x{st.height}, {st.num_frames} frames @ {st.fps:g} fps = {s.video_seconds_per_generation:.2f} "
        f"video-s, {st.steps} steps, guidance {st.guidance_scale:g}",
        f"  options               {format_options(st.options)}",
        f"  timed generations     {int(s.generations)} (warm-up {len(warm)}, load {record.load_s:.1f} s, both "
        "excluded)" + (f"; cold start: first warm-up {warm[0]:.1f} s" if warm and st.options.get("compile") else ""),
        *_sampled_lines(record),
        f"  video min / GPU-hour  {s.video_minutes_per_gpu_hour:.4g}{_tag(record)}",
        *_server_lines(record),
        f"  GPU-s / video-s       {s.gpu_seconds_per_video_second:.4g}",
        f"  latency p50 / p90     {s.latency_p50_s:.3f} s / {s.latency_p90_s:.3f} s "
        f"(spread {s.latency_rel_stdev:.1%}){_tag(record)}",
        f"  stages (mean)         text {s.text_encode_mean_s:.3f} s | denoise {s.denoise_mean_s:.3f} s "
        f"({s.step_mean_s:.4f} s/step{', step-sampled' if s.sampled else ''}) | vae {s.vae_decode_mean_s:.3f} s | "
        f"other {s.other_mean_s:.3f} s",
        f"  peak memory           {record.peak_memory_bytes / 2**30:.2f} GiB ({record.peak_memory_method})",
    ]
    if record.fidelity is not None:
        f = record.fidelity
        out.append(f"  fidelity              PSNR {f.psnr_db:.1f} dB, SSIM {f.ssim:.4f} against a plain generation "
                   f"(seed {f.seed}; {clean(', '.join(f.compared)) or 'lossless options'})")
    out += format_telemetry(record)
    if record.video_path:
        out.append(f"  video                 {clean(record.video_path)}")
    out += [f"  warning: {clean(w)}" for w in record.warnings]
    out.append(f"record: {clean(path)}")
    return "\n".join(out)


def _tag(record: ResultRecord) -> str:
    return "  (step-sampled: skipped steps extrapolated)" if record.is_sampled else ""


def _sampled_lines(record: ResultRecord) -> list[str]:
    """A step-sampled record: which steps ran, what is extrapolated from what with what spread, what was measured."""
    s, plan = record.summary, record.sampling
    if plan is None:
        return []
    spread = "n/a (one basis step)" if s.sample_step_rel_stdev is None else f"{s.sample_step_rel_stdev:.1%}"
    return [f"  step-sampled          --sample-steps {plan.sample_steps}: {clean(plan.describe())}",
            f"  extrapolated          {s.extrapolated_steps} step{'s' if s.extrapolated_steps != 1 else ''} per "
            f"generation, {s.extrapolated_denoise_share:.0%} "
            f"of the denoise time; spread of the steps it comes from {spread} (relative stdev)",
            f"  as measured           latency {s.measured_latency_mean_s:.3f} s, denoise {s.measured_denoise_mean_s:.3f} s "
            "(mean, skipped steps included as they ran)"]


def _server_lines(record: ResultRecord) -> list[str]:
    """Multi-GPU runs: the whole server's figure over its timed window, the spread between workers, who failed."""
    s, st = record.summary, record.settings
    if st.gpus_used == 1 or s.server_video_minutes_per_gpu_hour is None:
        return []
    mode = "data parallel" if st.options.get("parallel") == "data" else f"context parallel {st.options.get('parallel')}"
    devices = "CPU workers" if st.device == "cpu" else "GPUs"
    lines = [f"  whole run             {s.server_video_minutes_per_gpu_hour:.4g} video-min per GPU-hour over the "
             f"{s.server_window_s:.1f} s window of all {st.gpus_used} {devices} ({clean(mode)}); workers differ by "
             f"{s.per_worker_rel_spread:.1%}"]
    for w in record.workers or []:
        if w.failed:
            lines.append(f"  worker {w.index} ({clean(w.device)}) stopped after {w.generations} generation(s): "
                         f"{clean(w.failed)}")
    return lines


def format_options(options: dict) -> str:
    """Serving options as flags, or 'plain' for an eager run with everything on the GPU."""
    shown = [k.replace("_", "-") if v is True else f"{k.replace('_', '-')} {v}" for k, v in sorted(options.items())
             if v not in (None, False)]
    return clean(", ".join(shown)) or "plain (eager, library-default attention, no offload)"


def _num(value: float | None, fmt: str, unit: str) -> str:
    return "n/a" if value is None else f"{value:{fmt}} {unit}"


def format_telemetry(record: ResultRecord) -> list[str]:
    t = record.telemetry
    if not t.available:
        return [f"  telemetry             unavailable: {clean(t.unavailable_reason)}"] + _cpu_line(record)
    s = t.summary
    energy = (f"{_num(s.energy_per_video_j, '.1f', 'J')} per video, {_num(s.energy_per_video_minute_wh, '.2f', 'Wh')}"
              f" per video-minute ({t.energy_method})" if t.energy_method else f"n/a ({clean(t.energy_unsupported_reason)})")
    throttled = ", ".join(f"{clean(k)} {v:.0%}" for k, v in sorted(s.throttle_share.items()) if v > 0) or "none"
    measured = " as measured (step-sampled: the skipped steps' share is missing)" if record.is_sampled else ""
    return [
        f"  energy                {energy}{measured}",
        *_sampled_energy(record),
        f"  power avg / peak      {_num(s.avg_power_w, '.0f', 'W')} / {_num(s.peak_power_w, '.0f', 'W')} "
        f"(limit {_num(s.power_limit_w, '.0f', 'W')}){' as measured' if record.is_sampled else ''}",
        f"  SM clock mean / max   {_num(s.sm_clock_mean_mhz, '.0f', 'MHz')} / {_num(s.sm_clock_max_mhz, '.0f', 'MHz')}",
        f"  clock events          {throttled}",
        f"  peak temperature      {_num(s.peak_temperature_c, '.0f', 'C')} ({s.samples} samples, {clean(t.backend)})",
    ] + _cpu_line(record)


def _sampled_energy(record: ResultRecord) -> list[str]:
    s = record.summary
    if not record.is_sampled:
        return []
    if s.extrapolated_energy_per_video_j is None:
        return ["  energy, extrapolated  n/a (no per-step energy from a counter to extrapolate from)"]
    return [f"  energy, extrapolated  {s.extrapolated_energy_per_video_j:.1f} J per video, "
            f"{s.extrapolated_energy_per_video_minute_wh:.2f} Wh per video-minute, avg power "
            f"{s.extrapolated_avg_power_w:.0f} W (step-sampled: skipped steps at their basis' mean energy)"]


def _cpu_line(record: ResultRecord) -> list[str]:
    cpu = record.telemetry.cpu
    if cpu.package_energy_j is None:
        return [f"  CPU package energy    n/a ({clean(cpu.reason)})"]
    sampled = ", step-sampled, as measured" if record.is_sampled else ""
    return [f"  CPU package energy    {cpu.package_energy_j:.1f} J over the timed generations (RAPL{sampled})"]


def format_hardware(classes: Sequence) -> str:
    rows = [[h.id, h.vendor, f"{h.memory_gb:g}", f"{h.bf16_tflops:g}", "-" if h.fp8_tflops is None else f"{h.fp8_tflops:g}",
             f"{h.memory_tbs:g}", f"{h.board_power_w:g}", "-" if h.idle_power_w is None else f"{h.idle_power_w:g}",
             "-" if h.price_usd is None else f"{h.price_usd:,.0f}", h.date]
            for h in classes]
    text = table(rows, ["class", "vendor", "GB", "bf16 TFLOP/s", "fp8 TFLOP/s", "TB/s", "W", "idle W", "price $",
                        "as of"])
    sources = "\n".join(f"  {h.id}: {h.name}. {h.source}" + (f"; idle floor: {h.idle_source}" if h.idle_source else "")
                        for h in classes)
    return (f"{text}\n\npeak dense tensor rates (no sparsity), bf16 with FP32 accumulate; idle W: the lowest plausible "
            f"draw while a process holds the GPU, '-' where none is sourced. sources:\n{sources}")


def format_roofline(result: dict) -> str:
    f, b = result["flops"], result["bound"]
    lines = [
        f"{result['model']} at {result['setting']} on {result['hardware']} ({result['dtype']}, "
        f"{b['peak_flops'] / 1e12:g} TFLOP/s peak dense)",
        f"  FLOPs per video       {f['total_flops']:.3e}  (per video-minute {b['flops_per_video_minute']:.3e})",
        f"    text encoder        {f['text_encode_flops']:.3e}",
        f"    denoiser            {f['denoise_flops']:.3e}  ({f['steps']} steps x {f['calls_per_step']} pass(es) "
        f"x {f['denoise_per_step_flops'] / f['calls_per_step']:.3e})",
        f"    VAE decode          {f['vae_decode_flops']:.3e}",
        f"  bound                 {b['bound_seconds_per_video']:.2f} s per video, "
        f"{b['bound_video_minutes_per_gpu_hour']:.4g} video-min per GPU-hour at 100% of peak",
    ]
    if result.get("mfu"):
        m = result["mfu"]
        pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        note = (result.get("mfu_basis") or {}).get("note")
        lines.append(f"  MFU of {clean(result['record'])}{f' ({note})' if note else ''}: total {pct(m['total_mfu'])} | "
                     f"text {pct(m['text_encode_mfu'])} | denoise {pct(m['denoise_mfu'])} | "
                     f"vae {pct(m['vae_decode_mfu'])}")
    ff = result["factorial_sora"]
    lines += [
        "  for comparison, the Factorial Funds analytic Sora model (one ~20B DiT, 250 steps, no CFG, 100% of an H100):",
        f"    {ff['flops_per_video_minute']:.3e} FLOPs per video-minute, {ff['h100_seconds_per_video_minute']:.0f} s, "
        f"{ff['video_minutes_per_h100_hour']:.2f} video-min per H100-hour ({ff['video_minutes_per_h100_day']:.1f} per day)",
        f"    training {ff['training_flops'][0]:.3g}-{ff['training_flops'][1]:.3g} FLOPs = "
        f"{ff['training_h100_months'][0]:,.0f}-{ff['training_h100_months'][1]:,.0f} H100-months; inference overtakes "
        f"it after {ff['breakeven_video_minutes'][0] / 1e6:.2f}M-{ff['breakeven_video_minutes'][1] / 1e6:.2f}M "
        "video-minutes",
    ]
    return "\n".join(lines)
