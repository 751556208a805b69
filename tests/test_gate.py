"""The gate checks every figure against every other: the GPU the environment and telemetry name against the record's
class, every energy the record gives (generation, stage, step, average power) between the class's idle floor and its
board power, and MFU never above 100% nor shown from an incomplete record without saying so.

Every forged record here is a genuine committed H100 record's JSON edited by hand in the test; expected values are
hand arithmetic on that JSON. The idle floor is set in the test (70 W, the figure ML.ENERGY treats as the lowest
plausible power of a held H100), so these tests hold whatever the catalogue holds.
"""

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from bench.analysis import physics, roofline
from bench.core import hardware
from bench.core.errors import UsageError
from bench.records.io import parse_record
from tests import forge

ROOT = Path(__file__).parent.parent
H100_RECORDS = sorted((ROOT / "results" / "nvidia-h100-80gb-hbm3").rglob("*.json"))
GENUINE = forge.H100  # 3 generations of ~66.8 s at ~689 W, energy from NVML's counter
FLOOR_W = 70.0
FLOOR_SOURCE = "set by tests/test_gate.py: ML.ENERGY's lowest plausible power of a held H100"
H100_BF16_FLOPS = 989.4e12  # the H100 SXM datasheet's dense BF16 rate
H100_FP8_FLOPS = 1978.9e12  # and its dense FP8 rate


def _genuine() -> dict:
    return json.loads(GENUINE.read_text())


def _current(data: dict) -> dict:
    """A committed record (a v2 file) as a v4 file: the summary's server figures (v3) added by forge's oracle, so
    that fields of later versions may be added to it (a v2 file carrying them is refused)."""
    data["schema_version"] = 4
    return forge.summarized(data)


def _floor(monkeypatch, floor_w: float | None = FLOOR_W) -> None:
    """The H100 SXM class with this idle floor (None: none), as the catalogue would hold it."""
    classes = hardware.catalogue()
    monkeypatch.setitem(classes, "h100-sxm", dataclasses.replace(classes["h100-sxm"], idle_power_w=floor_w,
                                                                 idle_source=FLOOR_SOURCE if floor_w else None))


@pytest.fixture
def floor(monkeypatch):
    _floor(monkeypatch)


def _submit(run_cli, tmp_path, *records: dict | Path):
    paths = [r if isinstance(r, Path) else forge.write(tmp_path, f"r{i}.json", r) for i, r in enumerate(records)]
    return run_cli("submit", *paths, "--results", tmp_path / "results")


def _refused(run_cli, tmp_path, data: dict, fragment: str) -> str:
    code, _, err = _submit(run_cli, tmp_path, data)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))
    return err


# --- the genuine records pass ----------------------------------------------------------------------------------------

def test_the_genuine_h100_records_pass_the_gate_with_a_70_w_floor(run_cli, tmp_path, floor):
    # catches: a floor or an evidence check so strict that the project's own measurements are refused (their text
    # encoding lasts ~0.11 s, shorter than one update of the energy counter)
    assert len(H100_RECORDS) == 3
    code, out, err = _submit(run_cli, tmp_path, *H100_RECORDS)
    assert code == 0, err
    assert len(list((tmp_path / "results" / "nvidia-h100-80gb-hbm3").rglob("*.json"))) == 3


# --- a GPU class needs GPU evidence ----------------------------------------------------------------------------------

def _env(**changes):
    return lambda d: d["environment"].update(changes)


def _tel(**changes):
    return lambda d: d["telemetry"].update(changes)


EVIDENCE = [
    # catches: a CPU machine's record claimed as an H100 by editing its class and settings.device only
    (_env(device_name="AMD EPYC 7763 64-Core Processor"),
     "environment.device_name 'AMD EPYC 7763 64-Core Processor' is no GPU of the catalogue, but the record's class "
     "is h100-sxm"),
    # catches: a slower GPU's run relabelled as an H100 (its throughput filed as an H100's)
    (_env(device_name="NVIDIA GeForce RTX 4090"), "environment.device_name 'NVIDIA GeForce RTX 4090' is a rtx-4090"),
    # catches: an H100's run filed as an AMD MI300X's by editing its class alone
    (lambda d: d.update(hardware_class="amd-instinct-mi300x"),
     "environment.device_name 'NVIDIA H100 80GB HBM3' is a h100-sxm (NVIDIA H100 SXM5 80GB), but the record's class is "
     "mi300x"),
    # catches: a record that names no device at all passing as whatever its class says
    (lambda d: d["environment"].pop("device_name"), "environment.device_name is absent"),
    # catches: an NVIDIA class from a torch without CUDA
    (_env(cuda=None), "environment.cuda is absent"),
    # catches: an NVIDIA class from pip's CPU-only torch wheel
    (_env(torch="2.11.0+cpu"), "environment.torch is '2.11.0+cpu', a CPU-only build"),
    # catches: an NVIDIA class from a ROCm build of torch (an AMD machine)
    (_env(rocm="6.4.1"), "environment.rocm is '6.4.1': a ROCm build of torch cannot run the NVIDIA H100"),
    # catches: a one-GPU machine claiming a run on more GPUs than it has
    (_env(device_count=0), "environment.device_count is 0 but the run used 1 GPUs"),
    # catches: telemetry said to be measured by AMD's library on an NVIDIA GPU
    (_tel(backend="amdsmi"), "telemetry.backend is 'amdsmi', but NVIDIA GPUs such as the NVIDIA H100 SXM5 80GB are "
                             "measured through nvml"),
    # catches: telemetry said to be measured with no backend at all
    (_tel(backend="none"), "telemetry.backend is 'none'"),
    # catches: NVML's own reading of the device naming another GPU than the class
    (lambda d: d["telemetry"]["device"].update(name="NVIDIA H200"), "telemetry.device.name 'NVIDIA H200' is a h200"),
    # catches: an A100's run renamed an H100 everywhere but the chip NVML reports (NVIDIA's list: A100 8.0, H100 9.0)
    (lambda d: d["telemetry"]["device"].update(compute_capability="8.0"),
     "telemetry.device.compute_capability is '8.0', but a NVIDIA H100 SXM5 80GB is compute capability 9.0"),
]


@pytest.mark.parametrize("edit,fragment", EVIDENCE)
def test_a_gpu_class_needs_gpu_evidence_from_the_environment_and_telemetry(run_cli, tmp_path, floor, edit,
                                                                           fragment):
    data = _genuine()
    edit(data)
    _refused(run_cli, tmp_path, data, fragment)


def test_a_worker_measured_by_another_vendors_library_is_refused():
    # catches: evidence checked on the record's own section only, never on each worker's of a multi-GPU run
    data = _genuine()
    data = _current(data)  # workers came with v3
    data["workers"] = [{"index": 0, "device": "cuda:0", "hardware_class": data["hardware_class"], "generations": 3,
                        "failed": None, "telemetry": {**copy.deepcopy(data["telemetry"]), "backend": "amdsmi"}}]
    assert physics.violations(parse_record(json.dumps(data)))[0].startswith("workers[0].telemetry.backend is 'amdsmi'")


# --- energy between the idle floor and the board limit ---------------------------------------------------------------

ENERGY_FIELDS = ("energy_j", "text_encode_energy_j", "denoise_energy_j", "vae_decode_energy_j")
SUMMARY_FIELDS = ("avg_power_w", "peak_power_w", "energy_counter_j", "energy_integrated_j", "energy_per_video_j",
                  "energy_per_video_minute_wh")


def _scaled(data: dict, factor: float) -> dict:
    """Every measured power and energy of the record times factor: the generations' energies, the power series and
    the summary's power and energy figures (the board's power limit is a setting, not a reading, and stays)."""
    for g in data["generations"]:
        t = g["telemetry"]
        t.update({k: t[k] * factor for k in ENERGY_FIELDS if t.get(k) is not None})
    series = data["telemetry"]["series"]
    series["power_w"] = [None if p is None else p * factor for p in series["power_w"]]
    summary = data["telemetry"]["summary"]
    summary.update({k: summary[k] * factor for k in SUMMARY_FIELDS})
    return data


def test_a_record_scaled_to_a_tenth_of_its_power_is_refused_below_the_idle_floor(run_cli, tmp_path, floor):
    # catches: energy bounded from above only: a run at 43% MFU (28.9 s bound / 66.8 s) drawing 69 W, a tenth of
    # what an H100 draws at that load, once filed would make the fleet's energy and power a tenth of the truth
    data = _scaled(_genuine(), 0.1)
    assert data["telemetry"]["summary"]["avg_power_w"] == pytest.approx(68.94, abs=0.01)  # 689.4456 W x 0.1
    err = _refused(run_cli, tmp_path, data, "average power 69 W is below h100-sxm's idle floor of 70 W")
    assert FLOOR_SOURCE in err  # where the floor comes from


def test_without_a_floor_in_the_catalogue_the_gate_assumes_none(monkeypatch):
    # catches: a gate that invents a floor for a class whose catalogue entry has none
    _floor(monkeypatch, None)
    problems = physics.violations(parse_record(json.dumps(_scaled(_genuine(), 0.1))))
    # what refuses it now is its own power-cap flags beside 69 W (bench.analysis.readings), never a floor
    assert len(problems) == 1 and "sw_power_cap" in problems[0] and "idle floor" not in problems[0], problems


def _stage(generation: int, **energies):
    return lambda d: d["generations"][generation]["telemetry"].update(energies)


STAGES = [
    # catches: only whole generations bounded: 500 J of text encoding in 0.112 s is 4.5 kW, where one H100 board
    # allows 770 W x (0.112 + 0.1) s = 163 J
    (_stage(0, text_encode_energy_j=500.0), "generation 0's text encoding used 500 J in 0.112 s, more than 1 x 700 W "
                                            "board power allows"),
    # catches: no floor on a stage: 1 J for 2.07 s of VAE decode (70 W x 1.97 s = 138 J at the least)
    (_stage(1, vae_decode_energy_j=1.0), "generation 1's VAE decode used 1 J in 2.07 s (0 W), below h100-sxm's idle "
                                         "floor of 70 W"),
    # catches: a denoise stage cut to a tenth (4.5 kJ for 64.4 s: 69 W)
    (_stage(0, denoise_energy_j=4471.2364), "generation 0's denoising used 4471 J in 64.4 s (69 W), below"),
]


@pytest.mark.parametrize("edit,fragment", STAGES)
def test_each_stage_energy_lies_between_the_floor_and_the_board(run_cli, tmp_path, floor, edit, fragment):
    data = _genuine()
    edit(data)
    _refused(run_cli, tmp_path, data, fragment)


def _with_steps(data: dict) -> dict:
    """Generation 0 with per-step energies from the counter, its denoise energy split in proportion to step time
    (as an even draw over the stage would give)."""
    _current(data)  # step energies came with v4
    g = data["generations"][0]
    total_j, total_s = g["telemetry"]["denoise_energy_j"], g["denoise_s"]
    g["telemetry"]["step_energy_j"] = [total_j * s / total_s for s in g["step_s"]]
    return data


def test_each_step_energy_lies_between_the_floor_and_the_board(run_cli, tmp_path, floor):
    # catches: per-step energies (which a step-sampled run extrapolates from) never bounded
    honest = _with_steps(_genuine())
    assert physics.violations(parse_record(json.dumps(honest))) == []
    steps_j = honest["generations"][0]["telemetry"]["step_energy_j"]
    low = copy.deepcopy(honest)  # step 1 reads 1 J, step 2 the rest: the sum stays the denoise energy
    low["generations"][0]["telemetry"]["step_energy_j"][:2] = [1.0, steps_j[1] + steps_j[0] - 1.0]
    _refused(run_cli, tmp_path, low, "generation 0's step 1 used 1 J in")
    high = copy.deepcopy(honest)  # step 1 takes step 2's energy too: ~1.8 kJ in ~1.3 s, 1.4 kW on a 700 W board
    high["generations"][0]["telemetry"]["step_energy_j"][:2] = [steps_j[0] + steps_j[1], 0.0]
    _refused(run_cli, tmp_path, high, "generation 0's step 1 used")
    assert "more than 1 x 700 W board power allows" in _submit(run_cli, tmp_path, high)[2]


# --- MFU never above 100%, never from an incomplete record without saying so -----------------------------------------

def test_mfu_of_a_genuine_record_is_against_its_own_class():
    data = _genuine()
    result = roofline.analyze("wan2.1-t2v-1.3b", record_path=str(GENUINE))
    assert result["hardware"] == "h100-sxm"
    total = result["flops"]["total_flops"] / data["summary"]["latency_mean_s"] / H100_BF16_FLOPS
    assert result["mfu"]["total_mfu"] == pytest.approx(total) and 0.40 < total < 0.46  # the 43%
    assert result["mfu_basis"] == {"complete": True, "generations": 3, "generations_asked": 3, "step_sampled": False,
                                   "note": None}


def test_mfu_is_against_the_peak_the_gate_bounds_by(tmp_path):
    # catches: the denoiser run in fp8 bounded by the fp8 rate but its MFU shown against the bf16 rate (up to 200%)
    data = _genuine()
    data["settings"]["options"] = {"quantize": "fp8"}
    path = forge.write(tmp_path, "fp8.json", data)
    result = roofline.analyze("wan2.1-t2v-1.3b", record_path=str(path))
    total = result["flops"]["total_flops"] / data["summary"]["latency_mean_s"] / H100_FP8_FLOPS
    assert result["mfu"]["total_mfu"] == pytest.approx(total)


def test_an_incomplete_record_s_mfu_says_so(run_cli, tmp_path):
    # catches: an MFU from 3 generations of a run that asked for 5 shown as if the run had finished
    data = _genuine()
    data.update(complete=False, incomplete_reason="interrupted by SIGINT (Ctrl-C)")
    data["settings"]["repeats"] = 5
    path = forge.write(tmp_path, "part.json", data)
    code, out, err = run_cli("roofline", "wan2.1-t2v-1.3b", "--record", path)
    assert code == 0, err
    assert f"MFU of {path} (from an incomplete record (3 of 5 generations)): total 4" in out
    code, out, err = run_cli("roofline", "wan2.1-t2v-1.3b", "--record", path, "--json")
    basis = json.loads(out)["mfu_basis"]
    assert basis["note"] == "from an incomplete record (3 of 5 generations)" and basis["complete"] is False


def test_a_stage_faster_than_its_flops_allow_is_refused_before_any_mfu_is_shown(run_cli, tmp_path):
    # catches: only whole generations bounded, so a record whose denoise stage was shrunk to 20 s (the time moved to
    # 'other', the latency kept at 66.8 s: 43% MFU in all) showed a denoise MFU near 140% (~28 s of counted FLOPs at
    # the H100's peak in 20 s)
    data = _genuine()
    for g in data["generations"]:
        f = 20.0 / g["denoise_s"]
        g["step_s"] = [s * f for s in g["step_s"]]
        g["denoise_s"] = sum(g["step_s"])
        g["telemetry"]["denoise_energy_j"] *= f  # the same power: energy is not what refuses it
    _current(data)
    path = forge.write(tmp_path, "fast.json", data)
    code, out, err = run_cli("roofline", "wan2.1-t2v-1.3b", "--record", path)
    assert code == 2 and "a generation's denoising took 20 s, faster than the physical bound" in err, err
    assert "MFU" not in out
    with pytest.raises(UsageError, match="denoising took 20 s"):
        physics.load_checked(path)


def test_mfu_against_another_class_than_the_records_is_refused(run_cli):
    # catches: the H100 record's MFU against the RTX 3090's peak (about 14x lower): ~600%
    code, out, err = run_cli("roofline", "wan2.1-t2v-1.3b", "--record", GENUINE, "--hardware", "rtx-3090")
    assert code == 2 and "ran on h100-sxm, not --hardware rtx-3090" in err and len(err.strip().splitlines()) == 1
