"""Sweeps: a matrix of runs from one TOML file, one record per cell in one folder, resumable.

A sweep file (read by bench.run.sweep_plan; unknown keys are refused)::

    name = "attention"                  # optional, default the file's stem; records are labelled sweep:<name>:<id>
    models = ["tiny-wan", "tiny-ltx"]
    budget_s = 480                      # optional: wall time for the whole sweep (t2vbench sweep --budget overrides)
    [run]                               # flags every cell shares: `t2vbench run` flag names, '-' written '_'
    device = "cpu"
    repeats = 2
    warmup = 1                          # at least 1 with compile: the first generation compiles
    [matrix]                            # every combination is a cell, for every model
    steps = [2, 4]
    height = [32]
    gpus = [1]                          # workers of one run (--workers N); 1 is a plain run
    options = [{}, {compile = true}, {attention_backend = "_native_math"}]   # serving options that go together
    [slurm]                             # only for --launcher slurm
    partition = "gpu"
    time_min = 120

Instead of models x [matrix], a sweep may list its cells, each a table with its model and its own keys, which win
over [run]; they run in the order listed (a campaign puts the most valuable first)::

    [[cells]]
    model = "wan2.1-t2v-14b"
    height = 480
    [[cells]]
    model = "wan2.1-t2v-1.3b"
    compile = true

Keys: height width frames fps steps guidance guidance_2 preset weights device dtype repeats time_budget warmup seed
prompt telemetry sample_period save_video; gpus (--workers N) and parallel (--parallel ulysses=N); and the options
compile attention_backend offload vae_tiling quantize cache memory_cap fidelity. A key is set in one place: [run], a
matrix list, or the `options` tables.

Each cell is one `python -m bench.cli run ... --out DIR --label sweep:<name>:<id>` process, its id a short hash of
its model and arguments, so a crash of one cell cannot take the sweep down. Every cell is checked by the run's own
checks before the first one starts. `--dry-run` also asks each cell what its worker would refuse on this host before
building (bench.run.preflight: a device torch cannot see, an option the installed diffusers or the device cannot run,
weights larger than the free GPU memory or host RAM), and shows each refusal against its cell; with --launcher slurm
(the cells run on the cluster's nodes) or --elsewhere (a sweep planned here for another machine) it does not. A cell is done when DIR holds a complete record with its label: a rerun of the
same command skips it ("done earlier") and runs the rest; incomplete records stay in DIR as evidence and do not
count. With a budget no cell starts once it is spent and the running cell is interrupted as by Ctrl-C (keeping its
record, marked incomplete); the cells not run say "not run (budget)" and the sweep exits 0. Where the cost model
predicts each cell's seconds (`--dry-run` shows them), a sweep predicted to overrun its budget is refused before it
starts, saying by how much. Ctrl-C (or SIGTERM, SIGHUP) goes to the running cell, which keeps what it measured in a record marked
incomplete; the sweep then stops (exit 130 for Ctrl-C).

`--launcher slurm` submits the cells to run as Slurm jobs through submitit (`pip install 't2vbench[slurm]'`): one
node each, gpus_per_node = the cell's gpus (0 for device = "cpu"), the same Python, DIR on a shared file system.
[slurm] keys: partition, account, qos, constraint, exclude, setup (shell lines run first), array_parallelism,
time_min (default 60), mem_gb, cpus_per_task. Ctrl-C cancels the jobs (scancel: SIGTERM, which a run also survives).

Several nodes: t2vbench runs on one node only today. --workers/--gpus and --parallel start their processes
themselves on the local node, joined through a TCP store on 127.0.0.1 (bench.run.parallel). A multi-node context-parallel
run would instead be started by torchrun on every node, which joins the nodes through its c10d rendezvous and gives
each process RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (init_process_group(init_method="env://"))::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HEAD_HOST:29500 \\
        --rdzv-id JOB_ID <a per-rank entry point> ...

(under Slurm: `srun --nodes 2 --ntasks-per-node 1 torchrun ...` with --rdzv-id $SLURM_JOB_ID, HEAD_HOST the first
host of `scontrol show hostnames $SLURM_JOB_NODELIST`). t2vbench has no such per-rank entry point yet, and a record
holds one node's hardware class and telemetry: both are needed first. Until then a cell is one node (the Slurm
launcher asks for nodes = 1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench.core.errors import UsageError
from bench.records.io import load_record
from bench.records.schema import ResultRecord
from bench.run import sweep_launch
from bench.run.sweep_plan import Cell, Sweep, check_budget, load_sweep, refusal

LAUNCHERS = ("local", "slurm")


@dataclasses.dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: str  # done | done earlier | to run | not run | incomplete | interrupted | failed (exit N), and for a
    #              budget stop "not run (budget)" or "incomplete (budget)"
    record: Path | None
    video_minutes_per_gpu_hour: float | None
    predicted_s: float | None = None  # the cost model's seconds for the cell, where it has evidence
    sampled: bool = False  # the record is step-sampled: its throughput extrapolates the steps it skipped


@dataclasses.dataclass(frozen=True)
class SweepResult:
    sweep: Sweep
    cells: tuple[CellResult, ...]
    exit_code: int  # 0 every cell done (or skipped by the budget), 1 a cell failed or is incomplete, 128 + signal,
    #                 2 a dry run found cells `run` would refuse


def run_sweep(path: str | Path, out: Path | None = None, launcher: str = "local", dry_run: bool = False,
              report: Callable[[str], None] = lambda line: None, cluster: str = "slurm",
              budget_s: float | None = None, predict: Callable[[Cell], float | None] | None = None,
              elsewhere: bool = False) -> SweepResult:
    """Run every cell of a sweep file not done earlier; report() gets a line as each cell starts. cluster is
    submitit's executor for --launcher slurm ('local' in tests). budget_s (else the file's budget_s) bounds the
    sweep's wall time; predict(cell), where given, is a cell's predicted seconds: a sweep predicted to overrun its
    budget is refused before it starts. A dry run judges each cell as `run` on this host would, unless the cells
    run elsewhere (--launcher slurm, or elsewhere: planned here for another machine). Raises UsageError before
    anything runs."""
    if launcher not in LAUNCHERS:
        raise UsageError(f"--launcher {launcher}: use {' or '.join(LAUNCHERS)}")
    if elsewhere and not dry_run:
        raise UsageError("--elsewhere says how a --dry-run judges the cells; add --dry-run, or drop --elsewhere")
    sweep = load_sweep(path, out, check=not dry_run)  # a dry run shows each cell's refusal instead
    budget_s = check_budget(budget_s, "--budget") or sweep.budget_s
    if launcher == "slurm":
        sweep_launch.check_slurm(cluster)
        if budget_s is not None:
            raise UsageError("--budget bounds a local sweep; under Slurm give each cell's time with slurm.time_min")
    earlier = records_by_label(sweep.out)
    todo = [c for c in sweep.cells if not any(r.complete for _, r in earlier.get(c.label, []))]
    predicted = {c.id: predict(c) for c in sweep.cells} if predict else {}
    if dry_run:
        here = launcher == "local" and not elsewhere  # a Slurm cell runs on a node, not on this login host
        refused = {c.id: r for c in todo if (r := refusal(c, sweep.out, here)) is not None}
        return _result(sweep, earlier, sweep_launch.Launched({}, None), predicted, planned=True, refused=refused)
    _check_predicted(todo, predicted, budget_s)
    report(f"sweep {sweep.name}: {len(sweep.cells)} cells, {len(sweep.cells) - len(todo)} done earlier, "
           f"{len(todo)} to run; records in {sweep.out}" + (f"; budget {budget_s:g} s" if budget_s else ""))
    if not todo:
        return _result(sweep, earlier, sweep_launch.Launched({}, None), predicted)
    if launcher == "local":
        launched = sweep_launch.run_local(todo, report, budget_s)
    else:
        launched = sweep_launch.run_slurm(sweep, todo, report, cluster)
    return _result(sweep, earlier, launched, predicted)


def _check_predicted(todo: list[Cell], predicted: dict[str, float | None], budget_s: float | None) -> None:
    """Refuse a sweep whose cells, as predicted, cannot finish within the budget (cells without a prediction
    count as nothing: the budget still stops them)."""
    total = sum(predicted.get(c.id) or 0.0 for c in todo)
    if budget_s is not None and total > budget_s:
        raise UsageError(f"the {len(todo)} cell(s) to run are predicted to take {total:.0f} s, {total - budget_s:.0f} s "
                         f"over the budget of {budget_s:g} s: raise --budget or drop cells (per cell: --dry-run)")


Found = dict[str, list[tuple[Path, ResultRecord]]]  # label -> (path, record)


def records_by_label(out: Path) -> Found:
    """Records in out by label, each list complete ones first, then newest first. Files that are not valid
    records are passed over (they are not this sweep's)."""
    found: Found = {}
    for path in sorted(out.glob("*.json")) if out.is_dir() else []:
        try:
            record = load_record(path)
        except UsageError:
            continue
        if record.label:
            found.setdefault(record.label, []).append((path, record))
    for records in found.values():
        records.sort(key=lambda pr: (pr[1].complete, pr[1].created_utc, pr[0].name), reverse=True)
    return found


def _result(sweep: Sweep, earlier: Found, launched: sweep_launch.Launched, predicted: dict[str, float | None],
            planned: bool = False, refused: dict[str, str] | None = None) -> SweepResult:
    """Each cell's status and record: the complete one found before for a cell skipped, the one its run wrote now
    for a cell run (an earlier attempt's incomplete record stays in the folder, but is not this run's result)."""
    codes = launched.codes
    now = records_by_label(sweep.out) if codes else earlier
    rows = []
    for cell in sweep.cells:
        code = codes.get(cell.id)
        if code is None:
            found = [(p, r) for p, r in earlier.get(cell.label, []) if r.complete]
        else:
            old = {p for p, _ in earlier.get(cell.label, [])}
            found = [(p, r) for p, r in now.get(cell.label, []) if p not in old]
        path, record = found[0] if found else (None, None)
        rate = record.summary.video_minutes_per_gpu_hour if record is not None else None
        status = _status(record, code, planned)
        if refused and cell.id in refused:
            status = f"refused: {refused[cell.id]}"
        if launched.out_of_time and (cell.id == launched.cut and status != "done" or status == "not run"):
            status += " (budget)"
        rows.append(CellResult(cell, status, path, rate, predicted.get(cell.id),
                               record is not None and record.is_sampled))
    ok = all(r.status in ("done", "done earlier", "to run") or r.status.endswith("(budget)") for r in rows)
    stopped = launched.stopped
    code = 2 if refused else 128 + stopped if stopped else 0 if ok else 1
    return SweepResult(sweep, tuple(rows), code)


def _status(record: ResultRecord | None, code: int | None, planned: bool) -> str:
    if record is not None and record.complete:
        return "done earlier" if code is None else "done"
    if code is None:
        return "to run" if planned else "not run"
    if record is not None:
        return "incomplete"
    # 128 + signal from a run that caught it; -signal from one the signal ended before Python could (a cell stopped
    # while its interpreter was still starting, as a spent budget does on a loaded machine)
    return "interrupted" if code in (129, 130, 143, -1, -2, -15) else f"failed (exit {code})"
