"""Command line: parses arguments and calls one plain function per subcommand; only this module prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise UsageError(f"{message} (see t2vbench {self.prog.split()[-1]} --help)")


def _add_run(sub: argparse._SubParsersAction) -> None:
    from bench.runner import DEFAULT_OUT, DEFAULT_PROMPT
    from bench.specs import DEFAULT_MODEL

    p = sub.add_parser("run", help="benchmark one model (no MODEL: the embedded tiny default)")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"spec name (default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="random | hub | PATH to a local diffusers directory (default: the spec's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (auto: bf16 on GPU, fp32 on CPU)")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--frames", type=int, dest="num_frames")
    p.add_argument("--fps", type=float, help="playback rate used for video seconds (default: the spec's)")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float, dest="guidance_scale")
    p.add_argument("--repeats", type=int, help="timed generations (default 3; with --time-budget, the most)")
    p.add_argument("--time-budget", type=float, dest="time_budget_s", help="time generations for this many seconds")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up generations (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--save-video", action="store_true", help="write the last generation as an mp4 beside the record")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for records and videos (default {DEFAULT_OUT})")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--telemetry", default="auto", help="auto | nvml | amdsmi | none (auto probes NVML, then amdsmi)")
    p.add_argument("--sample-period", type=float, default=0.1, dest="sample_period_s",
                   help="seconds between telemetry samples (default 0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="t2vbench", description="What does text-to-video generation really cost in GPUs?")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('bench').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    models = sub.add_parser("models", help="list model specs")
    models.add_argument("--params", action="store_true", help="count denoiser parameters (builds on meta; slower)")
    _add_run(sub)
    return parser


def cmd_models(args: argparse.Namespace) -> int:
    from bench.display import format_models
    from bench.specs import all_specs

    specs = all_specs()
    params: dict[str, int | None] = {s.name: s.published_params for s in specs}
    if args.params:
        from bench.build import count_params_meta

        params = {s.name: count_params_meta(s)[s.denoiser] for s in specs}
    print(format_models(specs, params))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.display import format_run
    from bench.runner import RunConfig, run

    overrides = {k: getattr(args, k) for k in ("height", "width", "num_frames", "fps", "steps", "guidance_scale")}
    config = RunConfig(
        model=args.model, weights=args.weights, device=args.device, dtype=args.dtype,
        overrides={k: v for k, v in overrides.items() if v is not None},
        repeats=args.repeats, time_budget_s=args.time_budget_s, warmup=args.warmup, seed=args.seed,
        prompt=args.prompt, save_video=args.save_video, out_dir=args.out, telemetry=args.telemetry,
        sample_period_s=args.sample_period_s,
    )
    outcome = run(config, progress=not args.json)
    if args.json:
        print(json.dumps({"record": str(outcome.path), "complete": outcome.record.complete,
                          "summary": outcome.record.summary, "warnings": outcome.record.warnings,
                          "telemetry": outcome.record.telemetry.model_dump(exclude={"series"})}, sort_keys=True))
    else:
        print(format_run(outcome.record, outcome.path))
    return outcome.exit_code


COMMANDS = {"models": cmd_models, "run": cmd_run}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"t2vbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
