"""What a record measured, as one hash: two records with the same hash are one run, whatever their run ids, labels,
dates, seeds or generation order say. The registry refuses to file a run twice by it (bench.analysis.registry) and
the readers of many files count a run once by it (bench.analysis.collect)."""

from __future__ import annotations

import hashlib
import json

from bench.records.schema import Generation, ResultRecord

MEASURED = ("latency_s", "text_encode_s", "denoise_s", "vae_decode_s", "step_s")
MEASURED_ENERGY = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j", "step_energy_j")


def content_hash(record: ResultRecord) -> str:
    """A hash of what was measured and nothing else: each generation's latency, stage and step times and energies,
    taken in any order, and the telemetry series. A copy of a run under a new run id, label, date, seeds or
    generation indices, or with its generations reordered, is still the same run."""

    def measured(g: Generation) -> str:
        t = g.telemetry.model_dump(include=set(MEASURED_ENERGY)) if g.telemetry else {}
        return json.dumps([g.model_dump(include=set(MEASURED)), t], sort_keys=True)

    series = record.telemetry.series or {}
    data = json.dumps([sorted(measured(g) for g in record.generations), series], sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()
