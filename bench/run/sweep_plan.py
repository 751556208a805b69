"""A sweep file and its cells: read strictly, expanded into one `t2vbench run` per cell, and every cell checked with
the run's own checks (bench.run.runner.prepare) before anything runs. The file format is described in bench.run.sweep."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.text import shown
from bench.core.tomlfile import read_toml
from bench.run import preflight
from bench.run.flags import BY_KEY
from bench.run.flags import run_config as flag_config
from bench.run.parallel import worker_device
from bench.run.runner import DEFAULT_OUT, RunConfig, prepare

MAX_SWEEP_BYTES = 64 * 1024  # a sweep file is a screenful of TOML: bound what we parse
MAX_CELLS = 512
MAX_TEXT_CHARS = 2000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the name ends up in labels and folder names
TOP_KEYS = ("name", "models", "budget_s", "run", "matrix", "cells", "slurm")
MAX_BUDGET_S = 7 * 86400.0
KEYS = BY_KEY  # a sweep key -> its run flag (bench.run.flags: one table for the parser, the sweep and the checks)
OPTION_KEYS = tuple(k for k, f in KEYS.items() if f.group == "serving")
# [slurm] keys -> type; passed to submitit (bench.run.sweep explains each).
SLURM_KEYS: dict[str, type] = {"partition": str, "account": str, "qos": str, "constraint": str, "exclude": str,
                               "time_min": int, "mem_gb": float, "cpus_per_task": int, "array_parallelism": int,
                               "setup": list}
SLURM_FORMS = {str: "a string", int: "a positive integer", float: "a positive number",
               list: "a list of shell lines, e.g. [\"module load cuda\"]"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the sweep. values holds its arguments (sweep keys), without those equal to the run's default."""

    id: str  # a short hash of model and values: the same arguments give the same id in every sweep file
    model: str
    values: dict[str, Any]
    varied: tuple[str, ...]  # the keys the matrix sets (the rest come from [run])
    label: str  # sweep:<name>:<id>, kept in the record: how a rerun finds the cells already done
    argv: tuple[str, ...]  # the arguments of `t2vbench run`

    def command(self) -> list[str]:
        """The process that runs this cell."""
        return [sys.executable, "-m", "bench.cli", "run", *self.argv]

    def describe(self) -> str:
        """The matrix's choice for this cell, e.g. 'steps=2 compile'."""
        return " ".join(_shown_pair(k, self.values[k]) for k in self.varied if k in self.values) or "-"


@dataclasses.dataclass(frozen=True)
class Sweep:
    name: str
    out: Path  # absolute
    cells: tuple[Cell, ...]
    common: dict[str, Any]  # the [run] table
    slurm: dict[str, Any]
    budget_s: float | None = None  # wall time for the whole sweep (--budget overrides it)


def load_sweep(path: str | Path, out: Path | None = None, check: bool = True) -> Sweep:
    """Read a sweep file, expand its cells and check each as `t2vbench run` would. out defaults to
    t2vbench-results/sweep-<name>. Raises UsageError naming the file, the key or the cell, and the fix."""

    path = Path(path)
    where = f"sweep {shown(str(path))}"
    data = _read(path, where)
    _unknown(data, TOP_KEYS, where, "top-level key")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise UsageError(f"{where}: name {shown(name)} must be 1-64 letters, digits, '.', '_' or '-'; "
                         "set name = \"...\" in the file")
    common = _run_table(_table(data, "run", where), where)
    slurm = _slurm(_table(data, "slurm", where), where)
    out = (out or DEFAULT_OUT / f"sweep-{name}").resolve()
    if "cells" in data:
        cells = _listed(name, data, common, out, where)
    else:
        models = data.get("models")
        if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
            raise UsageError(f"{where}: models = {shown(models)}: give a list of model names, e.g. "
                             "models = [\"tiny-wan\"] (or a [[cells]] list)")
        axes = _axes(_table(data, "matrix", where), where)
        _set_once(common, axes, where)
        cells = _expand(name, models, common, axes, out, where)
    if check:
        check_cells(cells, out, where)
    return Sweep(name, out, tuple(cells), common, slurm, check_budget(data.get("budget_s"), f"{where}: budget_s"))


def check_budget(value: Any, where: str) -> float | None:
    """A sweep's wall-time budget in seconds, or None. Raises UsageError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_BUDGET_S:
        raise UsageError(f"{where} = {shown(value)}: give seconds from 1 to {MAX_BUDGET_S:g} (a week), e.g. 480")
    return float(value)


def _read(path: Path, where: str) -> dict[str, Any]:
    return read_toml(path, MAX_SWEEP_BYTES, where, "a sweep")[0]


def _unknown(table: dict[str, Any], known: Any, where: str, what: str) -> None:
    unknown = [k for k in table if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        names = ", ".join(shown(k) for k in unknown[:5])
        raise UsageError(f"{where}: unknown {what}{'s' if len(unknown) > 1 else ''} {names}{hint}; "
                         f"known: {', '.join(known)}")


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a table ([{key}]), not {shown(value)}")
    return value


def _value(key: str, value: Any, where: str) -> Any:
    """A sweep value of the key's type (ints accepted for floats). Ranges are the run's to check."""
    kind = KEYS[key].kind
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind is str and isinstance(value, str) and 0 < len(value) <= MAX_TEXT_CHARS:
        return value
    what = {bool: "true or false", int: "an integer", float: "a finite number", str: "a non-empty string"}[kind]
    raise UsageError(f"{where} = {shown(value)}: give {what}")


def _run_table(run: dict[str, Any], where: str, table: str = "run") -> dict[str, Any]:
    """The run keys of a table (`run`, or a listed cell such as `cells[0]`), each of its key's type."""
    _unknown(run, KEYS, f"{where}: [{table}]" if table == "run" else f"{where}: {table}", "key")
    return {k: _value(k, v, f"{where}: {table}.{k}") for k, v in run.items()}


def _axes(matrix: dict[str, Any], where: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each matrix entry as (where it is, its choices); a choice sets one key, or several (an `options` table)."""
    _unknown(matrix, [*KEYS, "options"], f"{where}: [matrix]", "key")
    axes = []
    for key, values in matrix.items():
        at = f"matrix.{key}"
        if not isinstance(values, list):
            raise UsageError(f"{where}: {at} = {shown(values)}: give a list of values, e.g. {key} = [{shown(values)}]")
        if not values:
            raise UsageError(f"{where}: {at} is empty: give at least one value, or leave it out")
        if key == "options":
            axes.append((at, [_options(v, f"{where}: {at}[{i}]") for i, v in enumerate(values)]))
        else:
            axes.append((at, [{key: _value(key, v, f"{where}: {at}[{i}]")} for i, v in enumerate(values)]))
    return axes


def _options(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise UsageError(f"{where} = {shown(table)}: give a table of options, e.g. {{compile = true}} ({{}}: none)")
    _unknown(table, OPTION_KEYS, where, "option")
    return {k: _value(k, v, f"{where}.{k}") for k, v in table.items()}


def _set_once(common: dict[str, Any], axes: list[tuple[str, list[dict[str, Any]]]], where: str) -> None:
    """A key set in two places would let one silently win: refuse it."""
    places = {k: "[run]" for k in common}
    for place, choices in axes:
        for key in {k for choice in choices for k in choice}:
            if key in places:
                raise UsageError(f"{where}: {key} is set in both {places[key]} and {place}; set it in one place")
            places[key] = place


def _expand(name: str, models: list[str], common: dict[str, Any], axes: list[tuple[str, list[dict[str, Any]]]],
            out: Path, where: str) -> list[Cell]:
    count = len(models) * math.prod(len(choices) for _, choices in axes)
    if count > MAX_CELLS:
        raise UsageError(f"{where}: {count} cells is more than {MAX_CELLS}; split the sweep into several files")
    cells: dict[str, Cell] = {}
    for model, *choices in itertools.product(models, *(c for _, c in axes)):
        values = dict(common)
        for choice in choices:
            values.update(choice)
        varied = tuple(k for k in KEYS if any(k in c for c in choices))
        _add(cells, make_cell(name, model, values, varied, out), where)
    return list(cells.values())


def _listed(name: str, data: dict[str, Any], common: dict[str, Any], out: Path, where: str) -> list[Cell]:
    """The cells a [[cells]] list names, in its order (a campaign puts the most valuable first); each entry's keys
    win over [run]."""
    if "models" in data or "matrix" in data:
        raise UsageError(f"{where}: give either models and [matrix], or a [[cells]] list, not both")
    entries = data["cells"]
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)):
        raise UsageError(f"{where}: cells must be a list of tables ([[cells]] with model = \"...\" and run keys)")
    if len(entries) > MAX_CELLS:
        raise UsageError(f"{where}: {len(entries)} cells is more than {MAX_CELLS}; split the sweep into several files")
    cells: dict[str, Cell] = {}
    for i, entry in enumerate(entries):
        model = entry.get("model")
        if not isinstance(model, str) or not model:
            got = "no model" if model is None else f"model = {shown(model)}"
            raise UsageError(f"{where}: cells[{i}]: {got}: give a model name, e.g. model = \"tiny-wan\"")
        own = _run_table({k: v for k, v in entry.items() if k != "model"}, where, f"cells[{i}]")
        _add(cells, make_cell(name, model, {**common, **own}, tuple(k for k in KEYS if k in own), out), where)
    return list(cells.values())


def _add(cells: dict[str, Cell], cell: Cell, where: str) -> None:
    if cell.id in cells:
        raise UsageError(f"{where}: two cells of {cell.model} are the same run ({cells[cell.id].describe()} and "
                         f"{cell.describe()}); remove the duplicate")
    cells[cell.id] = cell


def make_cell(name: str, model: str, values: dict[str, Any], varied: tuple[str, ...], out: Path) -> Cell:
    """A cell of sweep `name`. Values equal to what run does without the flag (false, gpus = 1) are dropped, so
    they do not change the id."""
    values = {k: values[k] for k in KEYS if k in values and values[k] is not False and (k, values[k]) != ("gpus", 1)}
    canonical = json.dumps({"model": model, **values}, sort_keys=True, separators=(",", ":"))
    cell_id = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    label = f"sweep:{name}:{cell_id}"
    flags = [KEYS[k].flag if v is True else f"{KEYS[k].flag}={v}" for k, v in values.items()]
    argv = (model, *flags, f"--out={out}", f"--label={label}")
    return Cell(cell_id, model, values, varied, label, argv)


def run_config(cell: Cell, out: Path) -> RunConfig:
    """The RunConfig that `t2vbench run` builds from the cell's flags."""
    values = {KEYS[key].dest: value for key, value in cell.values.items()}
    return flag_config(cell.model, values, out_dir=out, label=cell.label, command=("t2vbench", "run", *cell.argv))


def check_cells(cells: list[Cell], out: Path, where: str) -> None:
    """Every cell through the run's own checks, before the first one runs. Raises UsageError naming the cell."""
    for cell in cells:
        reason = refusal(cell, out)
        if reason is not None:
            raise UsageError(f"{where}: cell {cell.id} ({cell.model} {cell.describe()}): {reason}")


def refusal(cell: Cell, out: Path, here: bool = False) -> str | None:
    """What `t2vbench run` would refuse this cell for before building anything, or None: its parent's checks
    (bench.run.runner.prepare, no torch) and, with here, its worker's on this host (bench.run.preflight: the device,
    the installed libraries, the weights against free memory; torch is imported)."""
    try:
        config = run_config(cell, out)
        prepared = prepare(config)
        if here:
            preflight.check(prepared.spec, worker_device(prepared.device, 0, prepared.layout), config.dtype,
                            config.options, prepared.layout)
    except UsageError as exc:
        return str(exc)
    return None


def _slurm(table: dict[str, Any], where: str) -> dict[str, Any]:
    _unknown(table, SLURM_KEYS, f"{where}: [slurm]", "key")
    for key, value in table.items():
        kind = SLURM_KEYS[key]
        if kind is list:
            ok = isinstance(value, list) and all(isinstance(v, str) and v.isprintable() for v in value)
        elif kind is str:
            ok = isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable()
        else:  # counts and sizes
            ok = isinstance(value, (int, kind)) and not isinstance(value, bool) and 0 < value < 10**7
        if not ok:
            raise UsageError(f"{where}: slurm.{key} = {shown(value)}: give {SLURM_FORMS[kind]}")
    return table


def _shown_pair(key: str, value: Any) -> str:
    return key if value is True else f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
