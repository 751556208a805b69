"""What a record's fields must not contradict of each other, beyond what the schema checks field by field: how the run
ended against why, a time budget against the generations it let start, energies against the telemetry that measured
them, and a generation's stage energies against its whole. Each rule is what the run itself does (bench.run), so an
honest record never breaks one; bench.analysis.physics.violations applies them.
"""

from __future__ import annotations

from bench.records.schema import Generation, ResultRecord, Telemetry

# Each stage's energy is a difference of the same counter over a span inside the generation's, read in order, so the
# stages add up to at most the generation's energy; only a foreign writer's rounding may separate them.
STAGE_SUM_REL_TOL = 1e-6
STAGE_SUM_ABS_J = 1e-3  # NVML's counter counts millijoules
SAMPLED_SLACK = 0.10  # see _sampled
# Between a generation's end and the budget check before the next the worker only sends the generation to the parent.
BUDGET_SLACK_S = 1.0
SUMMARY_ENERGY = ("energy_per_video_j", "energy_per_video_minute_wh", "energy_counter_j", "energy_integrated_j",
                  "avg_power_w")
RUN_ENERGY = ("extrapolated_energy_per_video_j", "extrapolated_denoise_energy_mean_j",
              "extrapolated_energy_per_video_minute_wh", "extrapolated_avg_power_w")


def problems(record: ResultRecord) -> list[str]:
    """One message per contradiction; [] for a record the run could have written."""
    return (_completion(record) + _budget(record) + _unmeasured_energy(record) + _stages(record) + _series(record)
            + _sampled(record))


def _sampled(record: ResultRecord) -> list[str]:
    """A step-sampled run's skipped steps return the expert's last output without the denoiser (bench.run.sampling),
    so each costs less than a computed one: extrapolating them at their computed steps' times can only lengthen a
    generation. An extrapolation shorter than what was measured contradicts the steps it rests on. Held on GPU
    records of real models (a GPU's step times vary by well under 1%; SAMPLED_SLACK leaves room all the same); a toy
    on a loaded CPU has skipped steps costing about what its computed ones do, give or take several-fold noise, and it
    is filed apart and never sizes a fleet."""
    if record.sampling is None or record.is_toy:
        return []
    for g, full_s in zip(record.generations, record.latencies_s()):
        if full_s < g.latency_s * (1 - SAMPLED_SLACK):
            return [f"generation {g.index}: its extrapolated latency {full_s:.4g} s is shorter than the {g.latency_s:.4g} "
                    "s it measured: its skipped steps took longer than the computed steps they are extrapolated from"]
    return []


def _completion(record: ResultRecord) -> list[str]:
    """The run writes a reason exactly when it did not finish (bench.records.assemble)."""
    if record.complete and record.incomplete_reason is not None:
        return ["complete is true but the record gives an incomplete_reason: a finished run has none"]
    if not record.complete and not record.incomplete_reason:
        return ["complete is false without an incomplete_reason: the run always says why it stopped"]
    return []


def _budget(record: ResultRecord) -> list[str]:
    """A worker starts a generation only while its time budget lasts and repeats remain
    (bench.run.worker.time_generations), the budget counted from the clock its generations' start_s and end_s are on:
    every generation but the last started before the budget ran out, so the latencies before the last add up to less
    than it; and a worker that stopped short of its repeats found the budget spent when its last generation ended."""
    budget_s = record.settings.time_budget_s
    if budget_s is None:
        return []
    by_worker: dict[int, list[Generation]] = {}
    for g in record.generations:
        by_worker.setdefault(g.worker, []).append(g)
    for worker, gens in sorted(by_worker.items()):
        before_last_s = sum(g.latency_s for g in gens[:-1])
        if before_last_s > budget_s * (1 + 1e-9):
            return [f"settings.time_budget_s is {budget_s:g} s, but worker {worker}'s first {len(gens) - 1} "
                    f"generation(s) took {before_last_s:.4g} s: a run starts no generation once its budget is spent"]
        last = gens[-1].telemetry
        if len(gens) < record.settings.repeats and last is not None and last.end_s < budget_s - BUDGET_SLACK_S:
            return [f"settings.time_budget_s is {budget_s:g} s and repeats {record.settings.repeats}, but worker "
                    f"{worker} stopped after {len(gens)} generation(s) at {last.end_s:.4g} s: the run goes on while "
                    "budget and repeats remain"]
    return []


def _section(record: ResultRecord, worker: int) -> Telemetry | None:
    """The telemetry section that measured a worker's generations: the record's own for worker 0."""
    if worker == 0 or not record.workers:
        return record.telemetry
    return next((w.telemetry for w in record.workers if w.index == worker), None)


def _unmeasured_energy(record: ResultRecord) -> list[str]:
    """Telemetry that did not measure leaves every energy absent (the run drops them with it, bench.records.assemble):
    an energy beside 'available: false' was written in by hand."""
    t = record.telemetry
    if not t.available:
        stated = [k for k in SUMMARY_ENERGY if getattr(t.summary, k) is not None]
        stated += [k for k in RUN_ENERGY if getattr(record.summary, k) is not None]
        if stated:
            return [f"telemetry is unavailable but telemetry.summary gives {stated[0]}: unmeasured energy is absent"]
    for g in record.generations:
        section = _section(record, g.worker)
        if (section is None or not section.available) and _energies(g):
            return [f"generation {g.index} gives {_energies(g)[0]} but the telemetry of its worker {g.worker} is "
                    "unavailable: unmeasured energy is absent"]
    return []


def _energies(g: Generation) -> list[str]:
    t = g.telemetry
    if t is None:
        return []
    fields = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j", "step_energy_j")
    return [f"telemetry.{k}" for k in fields if getattr(t, k) is not None]


def _stages(record: ResultRecord) -> list[str]:
    for g in record.generations:
        t = g.telemetry
        if t is None or t.energy_j is None:
            continue
        stages_j = sum(j for j in (t.text_encode_energy_j, t.denoise_energy_j, t.vae_decode_energy_j) if j is not None)
        if stages_j > t.energy_j * (1 + STAGE_SUM_REL_TOL) + STAGE_SUM_ABS_J:
            return [f"generation {g.index}'s stage energies add up to {stages_j:.6g} J, more than its energy_j "
                    f"{t.energy_j:.6g} J: the stages are spans of the generation"]
    return []


def _series(record: ResultRecord) -> list[str]:
    """Energy measured with telemetry on comes with the power series sampled beside it, which the gate checks it
    against (bench.telemetry.summary.check_summary); a record that states energy without it cannot be checked."""
    t = record.telemetry
    power = [p for p in (t.series or {}).get("power_w", []) if p is not None]
    if t.available and t.summary.energy_per_video_j is not None and len(power) < 2:
        return [f"telemetry.summary gives energy_per_video_j but telemetry.series has {len(power)} power sample(s): "
                "the series the energy is checked against was removed"]
    return []
