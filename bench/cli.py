"""Command line: parses arguments and calls one plain function per subcommand; only this module prints.

Commands import what they need when called, so `t2vbench models` or `compare` never loads torch; bench.run.build
(torch) only for `models --params`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.analysis import steps
from bench.analysis.compare import DEFAULT_BASELINE, DEFAULT_SCENARIO, compare
from bench.analysis.physics import load_checked, violations
from bench.analysis.registry import submit
from bench.analysis.roofline import analyze
from bench.cli_fleet import add_estimate, add_fleet, cmd_estimate, cmd_fleet
from bench.core import notes
from bench.core.errors import Interrupted, UsageError
from bench.core.hardware import catalogue
from bench.core.specs import DEFAULT_MODEL, all_specs
from bench.core.text import clean, shown
from bench.present import tables as compare_format
from bench.present.report import write_report
from bench.present.steps import format_steps
from bench.present.sweep import compare_text, format_commands, format_sweep
from bench.present.text import format_hardware, format_models, format_roofline, format_run, table
from bench.records.key import settings_key
from bench.run.flags import add_flags, overrides, run_config
from bench.run.memory import FIT_HEADER, fit_table
from bench.run.runner import DEFAULT_OUT, recover, run
from bench.run.sweep import run_sweep


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise UsageError(f"{message} (see {self.prog} --help)")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="benchmark one model (no MODEL: the embedded tiny default)")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"spec name (default {DEFAULT_MODEL})")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    add_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="t2vbench", description="What does text-to-video generation really cost in GPUs?")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('bench').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    models = sub.add_parser("models", help="list model specs")
    models.add_argument("--params", action="store_true", help="count denoiser parameters (builds on meta; slower)")
    models.add_argument("--memory", action="store_true",
                        help="which models' weights fit 24/48/80 GiB, plain and offloaded (the memory model)")
    _add_run(sub)
    _add_sweep(sub)
    show = sub.add_parser("show", help="print a record's summary as run did")
    show.add_argument("record", type=Path)
    show.add_argument("--json", action="store_true")
    show.add_argument("--steps", action="store_true", help="each denoising step's time beside the clocks, power, "
                      "memory and slowdowns sampled while it ran")
    sm = sub.add_parser("submit", help="check records and file them into the results registry")
    sm.add_argument("records", nargs="+", type=Path, metavar="RECORD")
    sm.add_argument("--results", type=Path, default=Path("results"), help="the registry folder (default ./results)")
    sm.add_argument("--allow-toy", action="store_true", help="file CPU and tiny-model records under toy/")
    rec = sub.add_parser("recover", help="turn a run's journal into its record (after a crash or a kill)")
    rec.add_argument("journal", type=Path)
    add_fleet(sub)
    add_estimate(sub)

    roof = sub.add_parser("roofline", help="FLOPs per video and the throughput bound of a model on a hardware class")
    roof.add_argument("model")
    roof.add_argument("--hardware", help="catalogue class (default h100-sxm; with --record, the record's own)")
    roof.add_argument("--dtype", default="bfloat16", help="bfloat16 | fp8 (peak rate used for the bound)")
    add_flags(roof, groups=("settings",))
    roof.add_argument("--record", help="a record of this model: its settings are used and MFU per stage is shown")
    roof.add_argument("--json", action="store_true")
    hw = sub.add_parser("hardware", help="the hardware classes and their figures, with sources")
    hw.add_argument("--json", action="store_true")
    cal = sub.add_parser("calibrate", help="time one block of each kind (attention and the rest), the text encoders "
                         "and a VAE decode of MODEL at its shapes, random weights, without building the whole model "
                         "(Wan, HunyuanVideo, CogVideoX, LTX-Video)")
    cal.add_argument("model")
    cal.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    cal.add_argument("--dtype", help="auto | float32 | bfloat16 | float16 (auto: bf16 on GPU, fp32 on CPU)")
    cal.add_argument("--repeats", type=int, help="timed calls of each part after 1 warm-up (default 3)")
    cal.add_argument("--attention-backend", help="a diffusers attention backend (recorded: the calibration stands only "
                     "for runs with it)")
    cal.add_argument("--out", type=Path, dest="out_dir", help="folder for the calibration record (default "
                     "t2vbench-results)")
    add_flags(cal, groups=("settings",))
    cal.add_argument("--json", action="store_true")
    _add_compare(sub)
    pr = sub.add_parser("predict", help="seconds, video-min per GPU-hour, energy and memory fit of MODEL on a class, "
                        "from the best evidence there, labelled; --validate: the model's error on all evidence")
    pr.add_argument("model", nargs="?", help="spec name")
    pr.add_argument("--hardware", metavar="CLASS", help="catalogue class (t2vbench hardware), or a CPU class as "
                    "records name it (cpu:...)")
    pr.add_argument("--dtype", help="bfloat16 | float16 | float32 (default bfloat16; float32 on a CPU class)")
    pr.add_argument("--results", action="append", metavar="PATH", help="records, calibrations and published "
                    "figures: files or folders (default ./results; repeatable)")
    pr.add_argument("--calibration", action="append", default=[], metavar="FILE", help="a calibration record "
                    "(t2vbench calibrate; repeatable)")
    pr.add_argument("--validate", action="store_true", help="predict everything the evidence can check and print "
                    "each case's error")
    pr.add_argument("--json", action="store_true")
    add_flags(pr, groups=("settings", "devices", "serving"))
    return parser


def _add_compare(sub: argparse._SubParsersAction) -> None:
    cmp = sub.add_parser("compare", help="records, folders or the registry side by side, published figures beside")
    rep = sub.add_parser("report", help="one self-contained HTML page: the comparison, plots and a run's timeline")
    for p in (cmp, rep):
        p.add_argument("paths", nargs="*", metavar="PATH",
                       help=f"record files or folders, walked for *.json (default: the registry ./results and your "
                            f"own runs ./{DEFAULT_OUT}, those that exist)")
        p.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="CLASS",
                       help=f"hardware class the ratio column is against (default {DEFAULT_BASELINE})")
        p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                       help=f"scenario for $ per video-minute: lifetime, utilization, electricity (default "
                            f"{DEFAULT_SCENARIO})")
        p.add_argument("--allow-toy", action="store_true", help="show toy-spec and CPU records too (marked TOY)")
    fmt = cmp.add_mutually_exclusive_group()
    for flag in ("--csv", "--markdown", "--json"):
        fmt.add_argument(flag, action="store_true")
    rep.add_argument("-o", "--out", type=Path, default=Path("report.html"), help="the HTML file (default report.html)")
    rep.add_argument("--timeline", type=Path, metavar="RECORD",
                     help="the run whose power/clock/throttle timeline is shown (default: the newest GPU record "
                          "with a telemetry series)")
    rep.add_argument("--force", action="store_true", help="replace an existing --out file")


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="a matrix of runs from a TOML file, one record per cell, resumable")
    p.add_argument("file", type=Path, metavar="FILE.toml",
                   help="the sweep file (format: python -m pydoc bench.run.sweep)")
    p.add_argument("--out", type=Path, help="folder for the records (default t2vbench-results/sweep-<name>); rerun "
                   "with the same one to resume")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: one cell after another here; slurm: one job per cell through submitit")
    p.add_argument("--dry-run", action="store_true", help="check every cell as `run` here would (the device, "
                   "installed libraries and free memory too, for --launcher local) and show the plan, with each cell's "
                   "predicted seconds where the cost model has evidence; run nothing")
    p.add_argument("--elsewhere", action="store_true", help="with --dry-run: the cells will run on another machine, "
                   "so judge them by the run's own checks only, not by this host's device and memory")
    p.add_argument("--hardware", metavar="CLASS", help="predict each cell's seconds on this class with the cost model "
                   "(t2vbench predict), from the evidence in ./results; with --budget, a sweep predicted to overrun is "
                   "refused before it starts")
    p.add_argument("--budget", type=float, metavar="SECONDS", help="wall time for the whole sweep: no cell starts "
                   "after it, the running one keeps its record (default: the file's budget_s, else none)")


def cmd_models(args: argparse.Namespace) -> int:
    specs = all_specs()
    if args.memory:

        print(table(fit_table([s for s in specs if not s.tiny]), FIT_HEADER))
        print("weights only, from parameter counts on the meta device; activations, the CUDA context and the VAE "
              "decode add more: measure a fit with run --memory-cap GIB")
        return 0
    params: dict[str, int | None] = {s.name: s.published_params for s in specs}
    if args.params:
        from bench.run.build import count_params_meta

        params = {s.name: count_params_meta(s)[s.denoiser] for s in specs}
    print(format_models(specs, params))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    outcome = run(run_config(args.model, vars(args), command=tuple(args.argv)), progress=not args.json)
    _print_record(outcome.record, outcome.path, args.json)
    return outcome.exit_code


def _print_record(record, path: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"record": str(path), "complete": record.complete, "summary": record.summary.model_dump(),
                          "warnings": record.warnings, "settings_key": settings_key(record),
                          "telemetry": record.telemetry.model_dump(exclude={"series"})}, sort_keys=True))
    else:
        print(format_run(record, path))


def cmd_show(args: argparse.Namespace) -> int:
    record = load_checked(args.record)
    if args.steps:
        rows = steps.profile(record)
        if args.json:
            print(json.dumps({"steps": [dataclasses.asdict(r) for r in rows],
                              "steady": dataclasses.asdict(d) if (d := steps.diagnose(rows)) else None},
                             sort_keys=True))
        else:
            print(format_steps(rows, steps.diagnose(rows)))
        return 0
    _print_record(record, args.record, args.json)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    results = submit(args.records, args.results, args.allow_toy)
    for f in results:
        if f.path is None:
            print(f"refused  {clean(f.source)}: {clean(f.reason)}", file=sys.stderr)
        else:
            print(f"filed    {clean(f.path)}" + (f"  ({f.note})" if f.note else ""))
    return 0 if all(f.path for f in results) else 2


def cmd_sweep(args: argparse.Namespace) -> int:
    predict = None
    if args.hardware:
        from bench.analysis.predict import run_seconds
        from bench.analysis.predict_evidence import gather
        from bench.run.sweep_plan import run_config

        evidence = gather(["results"] if Path("results").is_dir() else [])
        predict = lambda cell: run_seconds(run_config(cell, Path(".")), args.hardware, evidence)  # noqa: E731
    result = run_sweep(args.file, args.out, args.launcher, args.dry_run, report=lambda line: print(line, flush=True),
                       budget_s=args.budget, predict=predict, elsewhere=args.elsewhere)
    print(format_sweep(result))
    if args.dry_run:
        print(format_commands(result))
    elif (comparison := compare_text(result)) is not None:
        print(comparison)
    return result.exit_code


def cmd_recover(args: argparse.Namespace) -> int:
    outcome = recover(args.journal, judge=violations)  # a journal passes the gate's physics, as a record does
    _print_record(outcome.record, outcome.path, False)
    return 0


def cmd_roofline(args: argparse.Namespace) -> int:
    result = analyze(args.model, args.hardware, args.dtype, overrides(vars(args)), args.record, args.preset)
    print(json.dumps(result, sort_keys=True) if args.json else format_roofline(result))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.present.calibration import calibration_summary, format_calibration
    from bench.run.calibrate import CalibrateConfig, calibrate

    given = {k: getattr(args, k) for k in ("device", "dtype", "repeats", "attention_backend", "out_dir", "preset")
             if getattr(args, k) is not None}
    done = calibrate(CalibrateConfig(model=args.model, overrides=overrides(vars(args)), command=tuple(args.argv),
                                     progress=lambda line: print(f"t2vbench: {clean(line)}", file=sys.stderr), **given))
    if args.json:
        print(json.dumps(calibration_summary(done.record, done.path), sort_keys=True))
    else:
        print(format_calibration(done.record, done.path))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from bench.analysis.collect import skipped_note
    from bench.analysis.predict import run_predict
    from bench.analysis.predict_validate import run_validate
    from bench.present.predict import format_prediction, format_validation, prediction_json, validation_json

    paths = args.results or ["results"]
    if args.validate and (args.model is not None or args.hardware is not None):
        given = f"MODEL {shown(args.model)}" if args.model is not None else f"--hardware {shown(args.hardware)}"
        raise UsageError(f"predict --validate checks the cost model on all the evidence and takes no {given}; give "
                         "folders to read with --results PATH")
    if args.validate:
        cases, summary, skipped = run_validate(paths, args.calibration)
        if not cases:  # as compare and report say it, in one line: nothing usable is a bad input, not an answer
            raise UsageError(f"nothing to validate under {', '.join(map(str, paths))}: no usable records, calibrations "
                             f"or published figures{skipped_note(skipped)}")
        for line in skipped:  # stderr, so the document on stdout stays whole
            print(f"t2vbench: skipped: {clean(line)}", file=sys.stderr)
        print(json.dumps(validation_json(cases, summary), sort_keys=True) if args.json else
              format_validation(cases, summary))
        return 0
    if args.model is None or args.hardware is None:
        raise UsageError("predict needs MODEL and --hardware CLASS (e.g. t2vbench predict wan2.1-t2v-14b --hardware "
                         "h100-sxm), or --validate")
    options = dataclasses.asdict(run_config(args.model, vars(args)).options)
    prediction, skipped = run_predict(args.model, args.hardware, paths, args.calibration,
                                      overrides=overrides(vars(args)), preset=args.preset, options=options,
                                      parallel=args.parallel, dtype=args.dtype)
    print(json.dumps(prediction_json(prediction, skipped), sort_keys=True) if args.json else
          format_prediction(prediction, skipped))
    return 0


def cmd_hardware(args: argparse.Namespace) -> int:
    classes = list(catalogue().values())
    print(json.dumps([dataclasses.asdict(h) for h in classes]) if args.json else format_hardware(classes))
    return 0


def _read_paths(args: argparse.Namespace) -> list[str]:
    """The folders compare and report read: those given, else the registry and the runs folder that exist (said on
    stderr, so a user's own runs are never silently left out)."""
    if args.paths:
        return args.paths
    found = [str(p) for p in (Path("results"), DEFAULT_OUT) if p.is_dir()]
    if not found:
        raise UsageError(f"nothing to read here: neither ./results (the registry, in the t2vbench checkout) nor "
                         f"./{DEFAULT_OUT} (where `t2vbench run` writes) is in {Path.cwd()}; give record files or "
                         "folders, or run it from where they are")
    print(f"t2vbench: reading {' and '.join(found)}", file=sys.stderr)
    return found


def cmd_compare(args: argparse.Namespace) -> int:
    result = compare(_read_paths(args), args.baseline, args.scenario, args.allow_toy)
    if args.csv or args.json:
        for line in result.skipped:  # the document on stdout stays machine-readable
            print(f"t2vbench: skipped: {clean(line)}", file=sys.stderr)
    out = compare_format.to_csv(result) if args.csv else compare_format.to_json(result) if args.json else \
        compare_format.format_markdown(result) if args.markdown else compare_format.format_table(result)
    print(out, end="" if args.csv else "\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    written = write_report(_read_paths(args), args.out, timeline_path=args.timeline, baseline=args.baseline,
                           scenario=args.scenario, allow_toy=args.allow_toy, force=args.force)
    print(f"report: {clean(written.path)} ({written.rows} rows; timeline: {clean(written.timeline or 'none')})")
    for line in written.skipped:
        print(f"t2vbench: skipped: {clean(line)}", file=sys.stderr)
    return 0


COMMANDS = {"compare": cmd_compare, "report": cmd_report,
            "models": cmd_models, "run": cmd_run, "show": cmd_show, "recover": cmd_recover,
            "submit": cmd_submit, "fleet": cmd_fleet, "estimate": cmd_estimate, "roofline": cmd_roofline,
            "hardware": cmd_hardware, "predict": cmd_predict, "sweep": cmd_sweep, "calibrate": cmd_calibrate}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:  # argparse's own error comes from the top parser, whose help lists no command's options
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see t2vbench {args.command} --help)")
        args.argv = ["t2vbench", *argv]
        at_terminal = sys.stderr is not None and sys.stderr.isatty()  # a person waits: say what takes long
        notes.set_sink((lambda line: print(f"t2vbench: {clean(line)}", file=sys.stderr)) if at_terminal else None)
        code = COMMANDS[args.command](args)
        if sys.stdout is not None:  # None when started with stdout closed
            sys.stdout.flush()  # a closed pipe (`| head -1`) shows here, not as a traceback at interpreter exit
        return code
    except BrokenPipeError:  # the reader went away: end quietly, as `yes | head` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UsageError as exc:
        print(f"t2vbench: error: {clean(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a fault of ours, shown as one
            raise
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        print(f"t2vbench: error: {clean(str(where))}: {exc.strerror or exc}; nothing was written there",
              file=sys.stderr)
        return 2
    except Interrupted as exc:  # a signal stopped a run before its first generation: nothing to keep
        print(f"t2vbench: {clean(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before a run started measuring: nothing to keep
        print("t2vbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
