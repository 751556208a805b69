"""The command line's fleet commands: `fleet` (one throughput, one scenario) and `estimate` (the headline, every
hardware class with evidence). Part of the command line: like bench.cli, only these functions print."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from bench.analysis import fleet_estimate, scenarios, throughput
from bench.analysis.headline import headline
from bench.analysis.scenarios.template import template_text, write_template
from bench.core.errors import UsageError
from bench.core.text import clean
from bench.present.fleet import check_plot_path, fleet_json, format_fleet, plot
from bench.present.headline import format_headline, headline_json
from bench.run.runner import DEFAULT_OUT


def add_fleet(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="GPUs, dollars and megawatts a demand scenario needs")
    p.add_argument("--scenario", default="factorial-2024", help="preset name or path to a TOML file (default "
                   "factorial-2024)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--throughput", type=float, help="video minutes per GPU-hour (given, not measured)")
    src.add_argument("--record", help="a result record: its measured throughput, on the GPU it ran on")
    src.add_argument("--results", help="a results folder: median of the --model records on --hardware at one setting")
    src.add_argument("--bound", metavar="MODEL", help="the roofline bound of MODEL on --hardware (default h100-sxm)")
    src.add_argument("--predict", metavar="MODEL", help="the cost model's throughput of MODEL on --hardware (default "
                     "h100-sxm) at the scenario's video size, from ./results (t2vbench predict)")
    p.add_argument("--model", help="with --results: the model")
    p.add_argument("--settings", metavar="KEY", help="with --results: the settings key to take the median at")
    p.add_argument("--hardware", help="hardware class of the throughput; alone, scales the scenario's throughput to "
                   "it by peak FLOP/s")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a scenario number")
    p.add_argument("--measured-power", action="store_true",
                   help="use the record's measured average power per GPU instead of the board power")
    p.add_argument("--allow-toy", action="store_true", help="size a fleet from a CPU or toy record anyway (warns)")
    p.add_argument("--range", type=float, default=0.5, dest="spread", help="sensitivity range (default 0.5 = +-50%%)")
    p.add_argument("--plot", type=Path, help="write the tornado and per-class plots here (.png and .svg)")
    p.add_argument("--explain", action="store_true", help="print the model's formulas and precedence first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--template", nargs="?", const="-", metavar="FILE.toml", help="write a commented scenario file "
                   "with every field to start from (to stdout without FILE or with '-'; never over a file) and stop")


def add_estimate(sub: argparse._SubParsersAction) -> None:
    est = sub.add_parser("estimate", help="the headline: what a scenario's video needs on each hardware class, with "
                         "the kind and range of every figure")
    est.add_argument("--scenario", default="factorial-2024", help="preset name or TOML file (default factorial-2024)")
    est.add_argument("--results", action="append", metavar="PATH", help="records, calibrations and published "
                     "figures (default ./results and ./t2vbench-results; repeatable)")
    est.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a scenario number")
    est.add_argument("--json", action="store_true")


def cmd_fleet(args: argparse.Namespace) -> int:
    if args.template is not None:  # a file to start from: sizes nothing
        return _fleet_template(args.template)
    overrides = scenarios.parse_overrides(args.set)
    scenario = scenarios.load_scenario(args.scenario, overrides)
    if args.plot:
        check_plot_path(args.plot)
    tp = throughput.select(scenario, throughput=args.throughput, record=args.record, results=args.results,
                           bound=args.bound, model=args.model, hardware_id=args.hardware, settings=args.settings,
                           allow_toy=args.allow_toy, predicted=args.predict)
    if scenario.requests and not args.predict:  # said, never silently: the mix is costed only where predict can
        tp = dataclasses.replace(tp, warnings=(*tp.warnings, f"scenario {scenario.name}'s [[requests]] mix is costed kind "
                                               "by kind only by `estimate` and `fleet --predict MODEL`; this fleet "
                                               "uses the one throughput above for all of it"))
    est = fleet_estimate.estimate(scenario, tp, set(overrides), args.measured_power, args.spread)
    for warning in tp.warnings:
        print(f"t2vbench: warning: {clean(warning)}", file=sys.stderr)  # names and reasons from files
    plots = [str(p) for p in plot(args.plot, est)] if args.plot else []
    if args.json:
        print(json.dumps(fleet_json(est, plots), sort_keys=True))
    else:
        print(format_fleet(est, args.explain))
        for p in plots:
            print(f"plot: {p}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    overrides = scenarios.parse_overrides(args.set)
    scenario = scenarios.load_scenario(args.scenario, overrides)
    paths = args.results or [str(p) for p in (Path("results"), DEFAULT_OUT) if p.is_dir()]
    if not paths:  # an answer from no evidence at all would look like an answer
        raise UsageError("no ./results or ./t2vbench-results here: run from the t2vbench checkout (its results/ holds "
                         "the published figures), or pass --results PATH")
    answer = headline(scenario, set(overrides), paths, results=paths[0] if paths else None)
    for line in answer.skipped:  # as compare: on stderr, so the answer (and --json) stays what it was
        print(f"t2vbench: skipped: {clean(line)}", file=sys.stderr)
    print(json.dumps(headline_json(answer), sort_keys=True) if args.json else format_headline(answer))
    return 0


def _fleet_template(path: str) -> int:
    written = write_template(path)
    if written is None:
        print(template_text(), end="")
    else:
        print(f"template: {clean(str(written))} (edit it, then: t2vbench fleet --scenario {clean(str(written))})")
    return 0
