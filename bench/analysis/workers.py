"""Who made each generation, and that each is a generation of its own: what a record's generations and its
`workers` (multi-GPU runs) must not contradict of each other. Each rule is what the run does (bench.run.parallel,
bench.records.assemble), so an honest record never breaks one; bench.analysis.physics.violations applies them.

- A generation's worker is 0 unless the run was data parallel, and then one of its gpus_used workers; each worker
  numbers its own generations 0, 1, 2 ... in the order it made them (the journal drops any other, assemble.take).
- No two timed generations share a seed: each is seed + its index (x workers + its worker under data parallelism).
- No generation's step times repeat another's up to a scale (bench.records.fingerprint.step_shape): a generation
  copied within its record doubles the measurement without a second one.
- `workers` lists each GPU of the run once: gpus_used of them, indexed 0..gpus_used-1, each of the record's class
  (the figures are filed as that class's), on a GPU device of its own (and NVML uuid) that environment.device_count
  has; under data parallelism each says how many of the record's generations it made; worker 0's telemetry is the
  record's own.
"""

from __future__ import annotations

from bench.core.text import shown
from bench.records.fingerprint import step_shape
from bench.records.schema import GPU_DEVICE, ResultRecord


def problems(record: ResultRecord) -> list[str]:
    """One message per contradiction; [] for a record the run could have written."""
    return _generations(record) + _copies(record) + _listed(record)


def _generations(record: ResultRecord) -> list[str]:
    s = record.settings
    data = s.options.get("parallel") == "data"
    made: dict[int, int] = {}
    seeds: set[int] = set()
    for g in record.generations:
        if g.worker != 0 and not (data and g.worker < s.gpus_used):
            return [f"generation {g.index} names worker {g.worker}, but the run had "
                    f"{'workers 0-' + str(s.gpus_used - 1) if data else 'one worker timing generations (0)'}"]
        if g.index != made.get(g.worker, 0):
            return [f"worker {g.worker}'s generation {g.index} follows {made.get(g.worker, 0)} of its generations: "
                    "a worker numbers its generations 0, 1, 2 ... in the order it makes them"]
        made[g.worker] = g.index + 1
        if g.seed in seeds:
            return [f"generation {g.index} of worker {g.worker} has seed {g.seed}, as a generation before it does: "
                    "every timed generation has its own seed"]
        seeds.add(g.seed)
    return []


def _copies(record: ResultRecord) -> list[str]:
    seen: dict[tuple[int, ...], int] = {}
    for n, g in enumerate(record.generations):
        shape = step_shape(g)
        if shape is None:
            continue
        if shape in seen:
            return [f"the step times of the record's generation {n + 1} repeat those of its generation "
                    f"{seen[shape] + 1} up to a scale: no two generations do; one is a copy of the other"]
        seen[shape] = n
    return []


def _listed(record: ResultRecord) -> list[str]:
    workers, s = record.workers, record.settings
    gpu = GPU_DEVICE.fullmatch(s.device) is not None
    if workers is None:  # the run lists its workers whenever it had more than one (bench.records.assemble)
        return [f"the run used {s.gpus_used} GPUs but lists no workers: a multi-GPU run says which GPU each worker "
                "held and what it measured"] if gpu and s.gpus_used > 1 else []
    if [w.index for w in workers] != list(range(s.gpus_used)):
        return [f"workers are indexed {[w.index for w in workers][:8]}, but the run used {s.gpus_used} GPU(s): one "
                f"worker per GPU, 0 to {s.gpus_used - 1}"]
    for w in workers:
        if w.hardware_class != record.hardware_class:
            return [f"workers[{w.index}] is a {w.hardware_class}, but the record's class is {record.hardware_class}: "
                    "a run over GPUs of another class says nothing of this one's"]
    devices = [w.device for w in workers]
    if gpu and (len(set(devices)) < len(devices) or any(GPU_DEVICE.fullmatch(d) is None for d in devices)):
        return [f"workers ran on {', '.join(shown(d) for d in devices[:8])}: a GPU run's workers each hold a GPU "
                "device of their own"]
    count = record.environment.get("device_count")
    ordinals = [int(d.partition(":")[2] or 0) for d in devices if gpu]  # cuda:3 -> 3
    if isinstance(count, int) and ordinals and max(ordinals) >= count:
        return [f"a worker ran on cuda:{max(ordinals)}, but environment.device_count is {count}"]
    if s.options.get("parallel") == "data":
        for w in workers:
            own = sum(1 for g in record.generations if g.worker == w.index)
            if w.generations != own:
                return [f"workers[{w.index}] says it made {w.generations} generation(s), but the record holds {own} "
                        "of it"]
    uuids = [(w.telemetry.device or {}).get("uuid") for w in workers if w.telemetry is not None]
    uuids = [u for u in uuids if isinstance(u, str) and u]
    if len(set(uuids)) < len(uuids):
        return ["two workers' telemetry read the GPU of one uuid: each worker holds a GPU of its own"]
    first = workers[0].telemetry
    if first is not None and first != record.telemetry:
        return ["workers[0].telemetry differs from the record's telemetry, which is worker 0's own section"]
    return []
