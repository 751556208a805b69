"""`t2vbench submit`: what a stranger's record must pass to enter the registry, and where it is filed."""

import json
from pathlib import Path

import pytest

from bench.core.specs import load_spec
from tests import forge

GOLDEN = Path(__file__).parent / "data" / "record-v3-tiny-wan.json"
KEY = "32x32-9f-16fps-4steps-g5-bfloat16-1gpu"


def _gpu_record(**edits) -> dict:
    """The golden tiny run, claimed as Wan2.1-1.3B on an H100 at 32x32: slow enough to be physically possible (its
    counted FLOPs at peak take ~10 ms, the timings are ~36 ms), summary kept consistent."""
    data = json.loads(GOLDEN.read_text())
    spec = load_spec("wan2.1-t2v-1.3b")
    data["spec"] = {**data["spec"], "name": spec.name, "tiny": False, "sha256": spec.sha256, "repo_id": spec.repo_id}
    data["hardware_class"], data["settings"]["device"], data["settings"]["dtype"] = \
        "nvidia-h100-80gb-hbm3", "cuda:0", "bfloat16"
    data["environment"] = forge.gpu_environment()
    data.update(edits)
    forge.summarized(data)
    return data


def _write(tmp_path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _submit(run_cli, tmp_path, *paths, extra=()):
    return run_cli("submit", *paths, "--results", tmp_path / "results", *extra)


def test_a_checked_record_is_filed_by_class_model_and_settings(run_cli, tmp_path):
    data = _gpu_record()
    code, out, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", data))
    assert code == 0, err
    filed = tmp_path / "results" / "nvidia-h100-80gb-hbm3" / "wan2.1-t2v-1.3b" / KEY
    files = list(filed.glob("*.json"))
    assert len(files) == 1 and files[0].name.endswith(f"-{data['run_id']}.json")
    assert str(files[0]) in out
    assert json.loads(files[0].read_text())["generations"] == data["generations"]


def _forged_latency(data: dict) -> dict:
    for g in data["generations"]:
        n = len(g["step_s"])
        g.update(latency_s=1e-9, text_encode_s=0.0, vae_decode_s=0.0, denoise_s=5e-10, step_s=[5e-10 / n] * n)
    return data


@pytest.mark.parametrize("make,fragment", [
    (lambda: _gpu_record(complete=False, incomplete_reason="interrupted by SIGINT (Ctrl-C)"), "incomplete"),
    (lambda: json.loads(GOLDEN.read_text()), "made with a CPU run"),
    (lambda: {**_gpu_record(), "spec": {**_gpu_record()["spec"], "tiny": True}}, "made with the tiny spec"),
    (lambda: {**_gpu_record(), "summary": {**_gpu_record()["summary"], "video_minutes_per_gpu_hour": 1e4}},
     "summary.video_minutes_per_gpu_hour"),
    (lambda: _gpu_record(generations=_forged_latency(_gpu_record())["generations"]), "faster than the physical bound"),
    (lambda: _gpu_record(hardware_class="nvidia-imaginary-9000"), "not in the catalogue"),
    (lambda: {**_gpu_record(), "spec": {**_gpu_record()["spec"], "name": "my-own-model"}}, "not in models/"),
    (lambda: _gpu_record(environment={}), "environment.device_name is absent"),
    *[(lambda d=device: _gpu_record(settings={**_gpu_record()["settings"], "device": d}),
       "does not match hardware class") for device in ("CPU", "cpu:0", " cpu", "cuda:0 (actually cpu)", "cuda:x")],
])
def test_records_the_registry_must_not_hold_are_refused_one_line_each(run_cli, tmp_path, make, fragment):
    code, out, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", make()))
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


def test_a_tiny_flag_edited_on_a_catalogued_model_is_refused_even_as_a_toy(run_cli, tmp_path):
    forged = {**_gpu_record(), "spec": {**_gpu_record()["spec"], "tiny": True}}
    code, out, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", forged), extra=["--allow-toy"])
    assert code == 2 and "spec.tiny is True but models/wan2.1-t2v-1.3b.toml says False" in err, err


def test_duplicates_are_refused_by_run_id_and_by_content(run_cli, tmp_path):
    data = _gpu_record()
    first = _write(tmp_path, "a.json", data)
    copy = _write(tmp_path, "b.json", {**data, "run_id": "0123456789ab", "label": "mine, honest"})
    code, out, err = _submit(run_cli, tmp_path, first, first, copy)
    assert code == 2
    assert out.count("filed") == 1
    assert err.count("already filed") == 2


def test_toys_go_to_their_own_tree_only_when_allowed(run_cli, tmp_path):
    code, out, err = _submit(run_cli, tmp_path, GOLDEN, extra=["--allow-toy"])
    assert code == 0, err
    assert list((tmp_path / "results" / "toy").rglob("*.json")) and "filed under toy/" in out


def test_fleet_reads_the_registry_and_skips_references_and_toys(run_cli, tmp_path):
    import shutil

    root = tmp_path / "results"
    shutil.copytree(Path(__file__).parent.parent / "results" / "reference", root / "reference")
    assert _submit(run_cli, tmp_path, _write(tmp_path, "r.json", _gpu_record()))[0] == 0
    v1_toy = GOLDEN.parent / "record-v1-tiny-wan.json"  # the golden's generations are filed above already
    assert _submit(run_cli, tmp_path, v1_toy, extra=["--allow-toy"])[0] == 0
    code, out, err = run_cli("fleet", "--json", "--results", root, "--model", "wan2.1-t2v-1.3b",
                             "--hardware", "h100-sxm")
    assert code == 0, err
    d = json.loads(out)
    assert d["throughput"]["measured"] is True and d["throughput"]["settings_key"] == KEY
    assert "not a valid record" not in err


def test_a_record_of_another_spec_under_a_catalogued_name_is_refused(run_cli, tmp_path):
    data = _gpu_record()
    data["spec"]["sha256"] = "0" * 64  # made with some other file that calls itself wan2.1-t2v-1.3b
    code, _, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", data))
    assert code == 2 and "differs from models/wan2.1-t2v-1.3b.toml" in err


@pytest.mark.parametrize("edit,fragment", [
    (lambda d: d["settings"].update(repeats=100), "complete with 3 generation(s) where 100 were asked"),
    (lambda d: d["settings"].update(repeats=2), "complete with 3 generation(s) where 2 were asked"),
    (lambda d: d["settings"].update(repeats=2, time_budget_s=60.0), "complete with 3 generation(s) where 2"),
])
def test_completeness_must_match_what_was_asked(run_cli, tmp_path, edit, fragment):
    data = _gpu_record()
    assert len(data["generations"]) == 3
    edit(data)
    code, _, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", data))
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_a_time_budget_may_end_a_complete_run_before_its_repeats(run_cli, tmp_path):
    data = _gpu_record()
    # as run writes a budgeted run; the budget ran out during the third generation (the first two took 0.125 + 0.429 =
    # 0.554 s, the third ended at 1.52 s): a 60 s budget would have let the run go on
    data["settings"].update(repeats=100_000, time_budget_s=0.6)
    code, _, err = _submit(run_cli, tmp_path, _write(tmp_path, "r.json", data))
    assert code == 0, err


def test_step_times_must_add_up_to_the_denoise_stage(tmp_path):
    from bench.core.errors import UsageError
    from bench.records.io import parse_record

    data = _gpu_record()
    data["generations"][0]["step_s"] = [1e-7] * len(data["generations"][0]["step_s"])  # steps far below their stage
    with pytest.raises(UsageError, match="step_s adds up to .* but denoise_s is"):
        parse_record(json.dumps(data))


def test_a_place_that_cannot_be_written_refuses_that_record_and_files_the_others(run_cli, tmp_path):
    genuine = sorted((Path(__file__).resolve().parent.parent / "results" / "nvidia-h100-80gb-hbm3").glob("*/*/*.json"))
    compiled = next(p for p in genuine if "compile" in str(p))
    registry = tmp_path / "reg"
    blocked = registry / "nvidia-h100-80gb-hbm3" / "wan2.1-t2v-1.3b" / compiled.parent.name
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the settings key's folder must be")
    code, out, err = run_cli("submit", "--results", registry, *genuine)
    assert code == 2
    assert out.count("filed ") == 2 and err.count("refused ") == 1 and "could not be written" in err
    assert compiled.name in err and blocked.read_text().startswith("a file")
