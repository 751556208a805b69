"""Forgeries of who made a record's generations and how a step-sampled run chose its steps, filed by `t2vbench
submit` until the gate held them to each other (bench.analysis.workers, physics._plan, records.sampling.planned).
Every forged record is the genuine committed H100 record's JSON edited by hand here; the summary is recomputed by
the tests' own oracle (tests/forge.summary_of). Each test names the hole it closes.
"""

import copy
import json
import math

import pytest

from bench.analysis import physics
from bench.records.io import parse_record
from bench.records.sampling import Sampling
from tests import forge

GENUINE = json.loads(forge.H100.read_text())  # 3 generations of ~66.8 s at 50 steps, NVML counter energy, series kept


def _one_line_refusal(run_cli, tmp_path, data: dict, fragment: str) -> None:
    path = forge.write(tmp_path, "r.json", data)
    code, _, err = run_cli("submit", path, "--results", tmp_path / "results")
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "results").rglob("*.json")) if (tmp_path / "results").exists() else True


def _data_parallel() -> dict:
    """The genuine run as worker 0 of a 2-GPU data-parallel run; worker 1 made 3 generations of its own on cuda:1,
    beside worker 0's and on its clock: the genuine ones with each step's time moved by hand by a different factor
    (1.01 + 0.004 sin(7 step + generation): a second GPU's own times, not a scaled copy), its seeds seed + 2 i + 1,
    its energies unmeasured (no telemetry section of its own)."""
    data = copy.deepcopy(GENUINE)
    data.update(schema_version=4, run_id="aaaaaaaaaaaa")
    data["settings"].update(gpus_used=2, options={"parallel": "data"})
    data["environment"]["device_count"] = 2
    own = []
    for i, g in enumerate(data["generations"]):
        g.update(worker=0, seed=2 * i)
        h = copy.deepcopy(g)
        h.update(worker=1, seed=2 * i + 1, step_s=[s * (1.01 + 0.004 * math.sin(7 * j + i))
                                                   for j, s in enumerate(g["step_s"])])
        h["denoise_s"] = sum(h["step_s"])
        h["latency_s"] = g["latency_s"] - g["denoise_s"] + h["denoise_s"]
        h["telemetry"] = {"start_s": g["telemetry"]["start_s"], "end_s": g["telemetry"]["start_s"] + h["latency_s"],
                          "energy_j": None, "text_encode_energy_j": None, "denoise_energy_j": None,
                          "vae_decode_energy_j": None}
        own.append(h)
    data["generations"] = sorted(data["generations"] + own, key=lambda g: (g["telemetry"]["start_s"], g["worker"]))
    data["workers"] = [{"index": 0, "device": "cuda:0", "hardware_class": data["hardware_class"], "generations": 3,
                        "failed": None, "telemetry": copy.deepcopy(data["telemetry"])},
                       {"index": 1, "device": "cuda:1", "hardware_class": data["hardware_class"], "generations": 3,
                        "failed": None, "telemetry": None}]
    return forge.summarized(data)


def test_the_data_parallel_record_of_two_h100s_passes():
    # catches: a workers rule that refuses what a 2-GPU run writes (6 generations, 3 per worker, one H100 each)
    assert physics.violations(parse_record(json.dumps(_data_parallel()))) == []


def _worker(which: int, **changes):
    return lambda d: d["workers"][which].update(changes)


WORKER_EDITS = [
    # catches: worker 1 on an A100 while the record is filed (and its throughput pooled) as the H100's
    (_worker(1, hardware_class="nvidia-a100-sxm4-80gb"),
     "workers[1] is a nvidia-a100-sxm4-80gb, but the record's class is nvidia-h100-80gb-hbm3"),
    # catches: a third worker (index 7) listed on a 2-GPU run
    (lambda d: d["workers"].append({**d["workers"][1], "index": 7}), "workers are indexed [0, 1, 7], but the run used 2"),
    # catches: both workers said to be worker 0
    (_worker(1, index=0), "workers are indexed [0, 0]"),
    # catches: worker 1 on worker 0's GPU, or on the CPU, while the run claims 2 GPUs
    (_worker(1, device="cuda:0"), "workers ran on 'cuda:0', 'cuda:0'"),
    (_worker(1, device="cpu"), "workers ran on 'cuda:0', 'cpu'"),
    # catches: a worker on cuda:5 of a machine whose environment counts 2 GPUs
    (_worker(1, device="cuda:5"), "a worker ran on cuda:5, but environment.device_count is 2"),
    # catches: a 2-GPU run that says nothing of its workers (which GPU each held, what each measured): the run lists
    # them whenever it had more than one
    (lambda d: d.update(workers=None), "the run used 2 GPUs but lists no workers"),
    # catches: a worker claiming 500 generations where the record holds its 3
    (_worker(1, generations=500), "workers[1] says it made 500 generation(s), but the record holds 3"),
    # catches: worker 0's section not the record's own (its uuid edited)
    (lambda d: d["workers"][0]["telemetry"]["device"].update(uuid="GPU-0"), "workers[0].telemetry differs"),
]


@pytest.mark.parametrize("edit,fragment", WORKER_EDITS)
def test_workers_must_be_the_runs_gpus_of_its_class(run_cli, tmp_path, edit, fragment):
    data = _data_parallel()
    edit(data)
    _one_line_refusal(run_cli, tmp_path, data, fragment)


def _generations(edit):
    def apply(d: dict) -> None:
        edit(d["generations"])
        d["schema_version"] = 4
        forge.summarized(d)
    return apply


GENERATION_EDITS = [
    # catches: generations out of the order their worker made them (indices 2, 1, 0), or an index repeated or far
    # beyond the repeats; the journal drops such lines, the gate filed them
    (_generations(list.reverse), "worker 0's generation 2 follows 0 of its generations"),
    (_generations(lambda gs: gs[1].update(index=0)), "worker 0's generation 0 follows 1 of its generations"),
    (_generations(lambda gs: gs[2].update(index=10**6)), "worker 0's generation 1000000 follows 2"),
    # catches: two generations of one seed (a generation made twice and counted as two)
    (_generations(lambda gs: gs[2].update(seed=1)), "generation 2 of worker 0 has seed 1, as a generation before"),
]


@pytest.mark.parametrize("edit,fragment", GENERATION_EDITS)
def test_each_generation_is_its_workers_next(run_cli, tmp_path, edit, fragment):
    data = copy.deepcopy(GENUINE)
    edit(data)
    _one_line_refusal(run_cli, tmp_path, data, fragment)


def test_a_generation_copied_within_its_record_is_refused(run_cli, tmp_path):
    # catches: worker 1's generations made as worker 0's scaled by 1.01 (a copy, not a second GPU's measurement):
    # the data-parallel run doubled its generations and narrowed its interval from one GPU's times
    data = _data_parallel()
    for g in data["generations"]:
        if g["worker"] == 1:
            twin = next(o for o in GENUINE["generations"] if o["index"] == g["index"])
            g["step_s"] = [s * 1.01 for s in twin["step_s"]]
            g["denoise_s"] = sum(g["step_s"])
            g["latency_s"] = twin["latency_s"] - twin["denoise_s"] + g["denoise_s"]
            g["telemetry"]["end_s"] = g["telemetry"]["start_s"] + g["latency_s"]
    forge.summarized(data)
    _one_line_refusal(run_cli, tmp_path, data, "the step times of the record's generation 2 repeat those of its "
                                               "generation 1 up to a scale")


def _sampled(experts: list[dict], sample_steps: int):
    """The genuine record as step-sampled by this plan, its skipped steps 10 ms (as a real run's cheap skips), built
    with model_copy so that only the gate's rules judge the plan against the model."""
    record = parse_record(forge.H100.read_text())
    plan = Sampling.model_validate({"sample_steps": sample_steps, "experts": experts})
    computed = {i for e in experts for i in e["computed_steps"]}
    gens = []
    for g in record.generations:
        s = [x if i in computed else 0.01 for i, x in enumerate(g.step_s)]
        gens.append(g.model_copy(update={"step_s": s, "denoise_s": sum(s), "latency_s": g.latency_s - g.denoise_s +
                                         sum(s)}))
    return record.model_copy(update={"generations": gens, "sampling": plan})


def test_a_plan_must_name_the_models_experts():
    # catches: Wan2.1-1.3B has one denoiser ('transformer', all 50 steps); a plan naming transformer_2, or two experts
    # of 25 steps, was filed
    honest = [{"component": "transformer", "first_step": 0, "steps": 50, "computed_steps": [0, 1, 2]}]
    assert physics._plan(_sampled(honest, 2)) == []
    renamed = [{**honest[0], "component": "transformer_2"}]
    assert "sampling names experts [('transformer_2', 50)], but wan2.1-t2v-1.3b at 50 steps runs [('transformer', " \
           "50)]" in physics._plan(_sampled(renamed, 2))[0]
    two = [{"component": "transformer", "first_step": 0, "steps": 25, "computed_steps": [0, 1]},
           {"component": "transformer_2", "first_step": 25, "steps": 25, "computed_steps": [25, 26]}]
    assert "the plan is not the model's" in physics._plan(_sampled(two, 2))[0]


@pytest.mark.parametrize("experts,k,fragment", [
    # catches: K=2 over one expert of 50 steps computes steps 0-2; a plan that picked steps 0, 25 and 49 (the basis
    # the forger liked) loaded
    ([{"component": "transformer", "first_step": 0, "steps": 50, "computed_steps": [0, 25, 49]}], 2,
     "computed steps [[0, 25, 49]] are not the plan the run makes of 2 sampled step(s) over experts of [50] steps "
     "([[0, 1, 2]])"),
    # catches: K=3 over experts of 10 and 40 steps is split 1 and 2 (in proportion, 1 each first), not 2 and 1
    ([{"component": "transformer", "first_step": 0, "steps": 10, "computed_steps": [0, 1, 2]},
      {"component": "transformer_2", "first_step": 10, "steps": 40, "computed_steps": [10, 11]}], 3,
     "([[0, 1], [10, 11, 12]])"),
    # catches: one component named twice
    ([{"component": "transformer", "first_step": 0, "steps": 25, "computed_steps": [0, 1]},
      {"component": "transformer", "first_step": 25, "steps": 25, "computed_steps": [25, 26]}], 2,
     "name one component twice"),
])
def test_a_plan_must_be_the_one_the_run_makes(experts, k, fragment):
    with pytest.raises(ValueError) as caught:
        Sampling.model_validate({"sample_steps": k, "experts": experts})
    assert fragment in str(caught.value)
