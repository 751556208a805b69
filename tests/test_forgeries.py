"""Forgeries a red team filed through `t2vbench submit`, each refused now. Every forged record is a genuine committed H100
record's JSON edited by hand in the test (never through the project's summary code); expected figures are hand
arithmetic on that JSON. Each test names the hole it closes.
"""

import copy
import json
from pathlib import Path

import pytest

from bench.analysis import physics, registry
from bench.records.io import parse_record
from tests import forge

ROOT = Path(__file__).parent.parent
H100_DIR = ROOT / "results" / "nvidia-h100-80gb-hbm3" / "wan2.1-t2v-1.3b"
GENUINE = forge.H100  # plain run, a v2 file: 3 generations of ~66.8 s, energy from NVML's counter, series kept
COMPILED = next((H100_DIR / "832x480-81f-16fps-50steps-g5-bfloat16-1gpu-compile=regional_WanTransformerBlock").glob(
    "*.json"))
ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j")
COUNTER_FIGURES = ("energy_counter_j", "energy_per_video_j", "energy_per_video_minute_wh", "avg_power_w")


def _genuine(path: Path = GENUINE) -> dict:
    return json.loads(path.read_text())


def _submit(run_cli, tmp_path, *records: dict):
    paths = [forge.write(tmp_path, f"r{i}.json", r) for i, r in enumerate(records)]
    return run_cli("submit", *paths, "--results", tmp_path / "results")


def _refused(run_cli, tmp_path, data: dict, fragment: str) -> None:
    code, _, err = _submit(run_cli, tmp_path, data)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


def _passes(data: dict) -> None:
    assert physics.violations(parse_record(json.dumps(data))) == []


# --- 1. a file claiming an old schema version ------------------------------------------------------------------------

def test_a_compiled_record_relabelled_v1_is_refused_not_migrated_into_a_plain_one(run_cli, tmp_path):
    # catches: the v1 -> v2 migration overwriting settings.options with {} (and command, label), so the compiled
    # run (options {'compile': 'regional:WanTransformerBlock'}) was filed under the plain run's settings key
    data = _genuine(COMPILED)
    data["schema_version"] = 1
    _refused(run_cli, tmp_path, data, "claims schema_version 1 but has field 'command' that version 1 never had")
    del data["command"], data["label"]  # even without them, the options betray the edit
    _refused(run_cli, tmp_path, data, "claims schema_version 1 but has field 'spec.tiny' that version 1 never had")
    del data["spec"]["tiny"]
    _refused(run_cli, tmp_path, data, "has field 'settings.options' that version 1 never had")


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(workers=None), "workers"),  # v3
    (lambda d: d.update(sampling=None), "sampling"),  # v4
    (lambda d: d["generations"][2].update(worker=0), "generations.worker"),  # v3, in one generation only
])
def test_a_v2_file_may_not_carry_a_later_versions_field(edit, field):
    # catches: a check of top-level fields only, or of every generation but the one edited
    data = _genuine()
    edit(data)
    with pytest.raises(Exception, match=f"claims schema_version 2 but has field '{field}'"):
        parse_record(json.dumps(data))


# --- 2. energy beside unavailable telemetry --------------------------------------------------------------------------

def _unavailable(data: dict) -> dict:
    data["telemetry"].update(available=False, unavailable_reason="edited")
    return data


def _without_energy(data: dict) -> dict:
    """Every energy of the record gone, as the run leaves it when telemetry is dropped."""
    data["telemetry"]["summary"].update(dict.fromkeys(COUNTER_FIGURES + ("energy_integrated_j",)))
    data["telemetry"]["energy_method"] = None
    for g in data["generations"]:
        g["telemetry"].update(dict.fromkeys(ENERGY_FIELDS))
    return data


def test_energy_beside_unavailable_telemetry_is_refused(run_cli, tmp_path):
    # catches: available=false taken to mean "nothing to check", so the summary's 46,053 J per video was filed and
    # shown as a measurement
    _refused(run_cli, tmp_path, _unavailable(_genuine()),
             "telemetry is unavailable but telemetry.summary gives energy_per_video_j")
    data = _unavailable(_genuine())  # the summary cleared, generation 0's counter reading kept
    _without_energy(data)["generations"][0]["telemetry"]["energy_j"] = 46119.178
    _refused(run_cli, tmp_path, data, "generation 0 gives telemetry.energy_j but the telemetry of its worker 0 is "
                                      "unavailable")
    _passes(_without_energy(_unavailable(_genuine())))  # with every energy gone it is an honest record


# --- 3. a GPU class from three name strings --------------------------------------------------------------------------

def _renamed(device_name: str, hardware_class: str):
    def edit(d: dict) -> None:
        d.update(hardware_class=hardware_class)
        d["environment"]["device_name"] = device_name
        d["telemetry"]["device"]["name"] = device_name
    return edit


GPU_FACTS = [
    # catches: an H100 run renamed B200 in its three name strings filed as a B200's (NVML still reads 85,520,809,984
    # bytes = 79.6 GiB, where a B200 has 180 GB)
    (_renamed("NVIDIA B200", "nvidia-b200"),
     "telemetry.device.memory_total_bytes is 8.552e+10 (79.6 GiB), but a NVIDIA B200"),
    # catches: the same as an H200 (141 GB)
    (_renamed("NVIDIA H200", "nvidia-h200"), "telemetry.device.memory_total_bytes is 8.552e+10 (79.6 GiB)"),
    # catches: the 700 W SXM part renamed the 80 GB PCIe part (350 W board: 700 W > 350 W x 1.1 = 385 W)
    (_renamed("NVIDIA H100 PCIe", "nvidia-h100-pcie"), "telemetry.device.power_limit_w is 700 W, above"),
    # catches: a telemetry device with its name removed left unchecked
    (lambda d: d["telemetry"]["device"].pop("name"), "telemetry.device.name is absent"),
    (lambda d: d["telemetry"].update(device=None), "telemetry.device.name is absent"),
    # catches: only '+cpu' torch builds refused, a ROCm wheel accepted for an NVIDIA GPU
    (lambda d: d["environment"].update(torch="2.11.0+rocm6.2"),
     "environment.torch is '2.11.0+rocm6.2', a ROCm build: it cannot have run on the NVIDIA H100"),
    # catches (finding 13): a class string that matches the GPU but is not its slug opening a new registry folder
    (lambda d: d.update(hardware_class="nvidia-h100-80gb-hbm3-evil"),
     "hardware_class 'nvidia-h100-80gb-hbm3-evil' is not 'nvidia-h100-80gb-hbm3'"),
    (lambda d: d.update(hardware_class="zzz-nvidia-h100-80gb-hbm3"),
     "hardware_class 'zzz-nvidia-h100-80gb-hbm3' is not 'nvidia-h100-80gb-hbm3'"),
]


@pytest.mark.parametrize("edit,fragment", GPU_FACTS)
def test_the_devices_own_readings_must_be_of_its_class(run_cli, tmp_path, edit, fragment):
    data = _genuine()
    edit(data)
    _refused(run_cli, tmp_path, data, fragment)


def test_an_amd_class_refuses_a_cuda_torch_build():
    # catches: the vendor check of the torch tag written for NVIDIA only
    data = _genuine()
    data.update(hardware_class="amd-instinct-mi300x")
    data["environment"].update(device_name="AMD Instinct MI300X", cuda=None, rocm="6.4.1")
    problems = physics.violations(parse_record(json.dumps(data)))
    assert "environment.torch is '2.11.0+cu130', a CUDA build: it cannot have run on the AMD Instinct MI300X" in problems


@pytest.mark.parametrize("memory_bytes,refused", [
    (72_000_000_000, False),  # 0.9 x 80 GB: the low end, in GB
    (71_900_000_000, True),
    (94_489_280_512, False),  # 1.1 x 80 GiB (80 x 2**30 = 85,899,345,920): the high end, in GiB
    (94_500_000_000, True),
])
def test_memory_is_held_within_0_9_of_the_class_gb_and_1_1_of_its_gib(memory_bytes, refused):
    # catches: a span in GB only (which refuses a GiB-sized card) or none at all
    data = _genuine()
    data["telemetry"]["device"]["memory_total_bytes"] = memory_bytes
    problems = physics.violations(parse_record(json.dumps(data)))
    assert any("memory_total_bytes" in p for p in problems) is refused, problems


# --- 4. energy against the power series ------------------------------------------------------------------------------

def _counter_scaled(data: dict, factor: float) -> dict:
    """The counter's readings (every generation and stage) and the figures that follow from them times factor; the
    power series, and so the integrated energy, kept."""
    for g in data["generations"]:
        g["telemetry"].update({k: g["telemetry"][k] * factor for k in ENERGY_FIELDS})
    data["telemetry"]["summary"].update({k: data["telemetry"]["summary"][k] * factor for k in COUNTER_FIGURES})
    return data


def test_a_counter_scaled_beside_its_series_is_refused_beyond_15_percent(run_cli, tmp_path):
    # catches: counter and integrated power allowed to differ by 50%, so energy halved with the series kept was filed
    # (genuine NVML records agree within 0.04%)
    _passes(_counter_scaled(_genuine(), 0.9))  # 10% apart: within what sampling can explain
    # 46,119.178 J x 0.8 = 36,895.3 J against ~46,036 J integrated: 20% apart
    _refused(run_cli, tmp_path, _counter_scaled(_genuine(), 0.8),
             "generation 0's energy counter 36895.3 J disagrees with integrated power")


def test_stage_energies_above_their_generation_are_refused(run_cli, tmp_path):
    # catches: only the generation's energy_j edited (46,119.178 J -> 46,019.178 J) under its stages, which add up to
    # 28.283 + 44,712.364 + 1,334.633 = 46,075.28 J: the stages are spans of the generation, read from one counter
    data = _genuine()
    data["generations"][0]["telemetry"]["energy_j"] -= 100.0
    s = data["telemetry"]["summary"]
    s["energy_counter_j"] -= 100.0
    s["energy_per_video_j"] -= 100.0 / 3
    s["energy_per_video_minute_wh"] -= 100.0 / 3600 / (3 * 81 / 16 / 60)
    s["avg_power_w"] = s["energy_counter_j"] / data["summary"]["timed_wall_s"]
    _refused(run_cli, tmp_path, data, "generation 0's stage energies add up to 46075.3 J, more than its energy_j "
                                      "46019.2 J")


def _no_series(data: dict) -> dict:
    data["telemetry"]["series"] = None
    data["telemetry"]["summary"].update(energy_integrated_j=None, peak_power_w=None, sm_clock_mean_mhz=None,
                                        peak_temperature_c=None, throttle_share={}, samples=0)
    return data


def test_energy_without_the_series_it_is_checked_against_is_refused(run_cli, tmp_path):
    # catches: the series deleted and the counter scaled by 0.15 (103 W average, above the 70 W floor): with no series
    # nothing was left to check the counter against
    _refused(run_cli, tmp_path, _no_series(_counter_scaled(_genuine(), 0.15)),
             "telemetry.summary gives energy_per_video_j but telemetry.series has 0 power sample(s)")
    data = _no_series(_genuine())  # integrated power as the method, with nothing to integrate
    data["telemetry"].update(energy_method="power_integration", energy_unsupported_reason="edited")
    _refused(run_cli, tmp_path, data, "energy_")


# --- 5. the duplicate check ------------------------------------------------------------------------------------------

def _copies() -> list[dict]:
    renamed = _genuine()  # a new run id, date, label and seeds: nothing measured changed
    renamed.update(run_id="0123456789ab", created_utc="2026-11-24T00:00:00Z", label="again")
    renamed["settings"]["seed"] = 7
    for i, g in enumerate(renamed["generations"]):
        g["seed"] = 7 + i
    swapped = _genuine()  # generations in another order, renumbered
    swapped["run_id"] = "ba9876543210"
    swapped["generations"] = [{**g, "index": i} for i, g in enumerate(reversed(swapped["generations"]))]
    return [renamed, swapped]


@pytest.mark.parametrize("copy_index", [0, 1])
def test_a_measurement_filed_again_under_a_no_op_edit_is_a_duplicate(run_cli, tmp_path, copy_index):
    # catches: content_hash over every generation field, so a new seed or swapped indices filed the run twice
    code, _, err = _submit(run_cli, tmp_path, _genuine())
    assert code == 0, err
    code, out, err = _submit(run_cli, tmp_path, _copies()[copy_index])
    assert code == 2 and "already filed" in out + err, out + err


def test_the_content_hash_changes_with_any_measured_energy():
    # catches: a hash of latencies alone (a record with its energy edited would pass as the same run)
    data = _genuine()
    edited = copy.deepcopy(data)
    edited["generations"][1]["telemetry"]["vae_decode_energy_j"] += 1.0
    hashes = {registry.content_hash(parse_record(json.dumps(d))) for d in (data, edited, *_copies())}
    assert len(hashes) == 2


# --- 6. fields that contradict each other ----------------------------------------------------------------------------

def _settings(**changes):
    return lambda d: d["settings"].update(changes)


CONTRADICTIONS = [
    # catches: a 1 s budget shown beside 3 generations of ~66.8 s (the first two alone took 66.938 + 66.803 = 133.7 s)
    (_settings(repeats=5, time_budget_s=1.0), "settings.time_budget_s is 1 s, but worker 0's first 2 generation(s) "
                                              "took 133.7 s"),
    # catches: a budget of 1,000 s and 5 repeats, yet the run stopped after 3 generations, at 200.4 s
    (_settings(repeats=5, time_budget_s=1000.0), "worker 0 stopped after 3 generation(s) at 200.4 s"),
    # catches: an unbounded repeat count and a zero budget (the run accepts 1 to 100,000 and a budget above 0)
    (_settings(repeats=10**30), "field 'settings.repeats': Input should be less than or equal to 100000"),
    (_settings(time_budget_s=0.0), "field 'settings.time_budget_s': Input should be greater than 0"),
    (_settings(warmup=10**6), "field 'settings.warmup'"),
    # catches: a seed beyond torch's 64-bit range
    (_settings(seed=10**59), "field 'settings.seed': Input should be less than 18446744073709551616"),
    # catches: a finished run that says why it did not finish
    (lambda d: d.update(incomplete_reason="interrupted"), "complete is true but the record gives an "
                                                          "incomplete_reason"),
]


@pytest.mark.parametrize("edit,fragment", CONTRADICTIONS)
def test_a_record_that_contradicts_itself_is_refused(run_cli, tmp_path, edit, fragment):
    data = _genuine()
    edit(data)
    _refused(run_cli, tmp_path, data, fragment)


def test_a_budget_the_generations_fit_is_accepted():
    # catches: a budget rule that refuses what the run writes: 5 repeats in 140 s make 3 generations (133.7 s before
    # the third, 200.4 s at its end)
    data = _genuine()
    data["settings"].update(repeats=5, time_budget_s=140.0)
    _passes(data)


def _sampled_copy(basis_s: float | None, skipped_s: float | None):
    """The genuine record as if step-sampled (steps 0-2 computed of 50): basis steps 1-2 set to basis_s and the time
    they lose moved onto step 3 (denoise_s unchanged), or the skipped steps 3-49 set to skipped_s (as a real run's
    cheap skips). Built with model_copy so that only the rule under test judges it."""
    from bench.records.sampling import Sampling

    record = parse_record(GENUINE.read_text())
    gens = []
    for g in record.generations:
        s = list(g.step_s)
        if basis_s is not None:
            s[3] += (s[1] - basis_s) + (s[2] - basis_s)
            s[1] = s[2] = basis_s
        if skipped_s is not None:
            s[3:] = [skipped_s] * 47
        gens.append(g.model_copy(update={"step_s": s, "denoise_s": sum(s),
                                         "latency_s": g.latency_s - g.denoise_s + sum(s)}))
    plan = Sampling.model_validate({"sample_steps": 2, "experts": [
        {"component": "transformer", "first_step": 0, "steps": 50, "computed_steps": [0, 1, 2]}]})
    return record.model_copy(update={"generations": gens, "sampling": plan})


def test_a_step_sampled_record_whose_skipped_steps_cost_more_than_its_computed_ones_is_refused():
    # catches: basis steps halved (0.62 s) while the skipped ones keep a full step's time: the extrapolation (about
    # 2 x 0.62 x 47 s shorter) claimed twice the throughput of the genuine run and was filed
    from bench.analysis import consistency

    forged = consistency.problems(_sampled_copy(0.62, None))
    assert forged and "shorter than the" in forged[0] and "skipped steps took longer" in forged[0]
    # an honest sampled run: skipped steps of 10 ms against computed ones of ~1.28 s, so extrapolating lengthens it
    assert consistency.problems(_sampled_copy(None, 0.01)) == []


def test_a_copy_nudged_by_a_nanosecond_or_cut_short_is_refused_as_the_run_it_copies(run_cli, tmp_path):
    # catches: the content hash beaten by a 1 ns edit of one step, or by dropping a generation: the copy was filed
    # beside the run and compare pooled them as two measurements (a narrower interval from one run)
    nudged = _genuine()
    nudged["run_id"] = "0123456789ab"
    g = nudged["generations"][0]
    g["step_s"][7] += 1e-9
    g["denoise_s"] += 1e-9
    g["latency_s"] += 1e-9
    nudged["schema_version"] = 4  # the summary forge writes is v4's
    forge.summarized(nudged)
    code, out, err = _submit(run_cli, tmp_path, _genuine(), nudged)
    assert code == 2 and out.count("filed ") == 1
    genuine_id = _genuine()["run_id"]
    assert f"repeat those of run {genuine_id}, already filed" in err, err
    # a copy cut to two generations, or with every time scaled, keeps the shapes of the run it copies
    record = parse_record(GENUINE.read_text())
    cut = record.model_copy(update={"generations": record.generations[:2]})
    scaled = record.model_copy(update={"generations": [g.model_copy(update={"step_s": [x * 0.6 for x in g.step_s]})
                                                        for g in record.generations]})
    shapes = registry.step_shapes(record)
    assert len(shapes) == 3 and registry.step_shapes(cut) <= shapes and registry.step_shapes(scaled) == shapes
    # the three genuine H100 runs, all of one model and setting family, share no shape: reruns never repeat
    others = [parse_record(p.read_text()) for p in H100_DIR.glob("*/*.json") if p != GENUINE]
    assert all(not (registry.step_shapes(o) & shapes) for o in others)
