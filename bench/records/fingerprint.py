"""What a record measured, as fingerprints a copy keeps. content_hash: two records with the same hash are one run,
whatever their run ids, labels, dates, seeds or generation order say; the registry refuses to file a run twice by it
(bench.analysis.registry) and the readers of many files count a run once by it (bench.analysis.collect). step_shape:
a generation's step times up to a scale, by which the registry refuses a scaled copy of a filed run and the gate a
generation copied within its record (bench.analysis.workers)."""

from __future__ import annotations

import hashlib
import json

from bench.records.schema import Generation, ResultRecord

MEASURED_TIME_FIELDS = ("latency_s", "text_encode_s", "denoise_s", "vae_decode_s", "step_s")
MEASURED_ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j",
                          "step_energy_j")
MIN_SHAPE_STEPS = 20  # step_shape's shortest series: a shorter one can repeat by chance


def content_hash(record: ResultRecord) -> str:
    """A hash of what was measured and nothing else: each generation's latency, stage and step times and energies,
    taken in any order, and the telemetry series. A copy of a run under a new run id, label, date, seeds or
    generation indices, or with its generations reordered, is still the same run."""

    def measured(g: Generation) -> str:
        t = g.telemetry.model_dump(include=set(MEASURED_ENERGY_FIELDS)) if g.telemetry else {}
        return json.dumps([g.model_dump(include=set(MEASURED_TIME_FIELDS)), t], sort_keys=True)

    series = record.telemetry.series or {}
    data = json.dumps([sorted(measured(g) for g in record.generations), series], sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()



def step_shape(g: Generation) -> tuple[int, ...] | None:
    """A generation's step times as shares of its denoise stage, to 1e-4: a measurement's fingerprint that a copy
    keeps when its times are scaled, nudged by nanoseconds or its generations dropped, and that a real rerun never
    repeats (a GPU's step times vary by 0.25-0.55% run to run in the committed records, far above 1e-4 of a step's
    ~2% share; the generations of one committed run differ in 18 to 33 of their 50 shares). None for a generation of
    fewer than MIN_SHAPE_STEPS steps: a short series can repeat by chance."""
    total = sum(g.step_s)
    if len(g.step_s) < MIN_SHAPE_STEPS or total <= 0:
        return None
    return tuple(round(s / total * 1e4) for s in g.step_s)
