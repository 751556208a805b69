"""What a run refuses before building, as `sweep --dry-run` shows it per cell (bench.run.preflight, the function the
worker runs first): weights larger than the host's free RAM or the GPU's free memory, and advice that, followed,
passes. Host RAM and the GPU are faked at psutil and torch.cuda (tests/fakes.py); parameter counts are the real
architectures' on the meta device."""

import re

import pytest

from bench.core.specs import load_spec
from tests.fakes import fake_memory

GIB = 2**30
SWEEP = """name = "fit"
[run]
weights = "random"
repeats = 1
warmup = 0
[[cells]]
model = "wan2.1-t2v-1.3b"
{own}
[[cells]]
model = "tiny-wan"
"""


def _dry_run(run_cli, tmp_path, own="device = \"cpu\"", launcher="local"):
    path = tmp_path / "fit.toml"
    path.write_text(SWEEP.format(own=own))
    code, stdout, _ = run_cli("sweep", path, "--out", tmp_path / "out", "--dry-run", "--launcher", launcher)
    rows = {m: line for line in stdout.splitlines() for m in ("wan2.1-t2v-1.3b", "tiny-wan") if f"  {m}  " in line}
    return code, rows


def _needed_gib(row):
    return float(re.search(r"needs ([0-9.]+) GiB", row).group(1))


def test_a_model_too_big_for_the_hosts_free_ram_is_refused_and_the_rest_is_to_run(run_cli, tmp_path, monkeypatch,
                                                                                    no_runs):
    fake_memory(monkeypatch, host_free_bytes=2 * GIB)
    code, rows = _dry_run(run_cli, tmp_path)
    big = rows["wan2.1-t2v-1.3b"]
    assert code == 2 and "refused: wan2.1-t2v-1.3b needs " in big, rows
    assert "GiB of host RAM for its weights in float32 but 2.0 GiB is free: use a machine with more memory" in big
    # Its transformer alone is 1.3e9 parameters (the model card's figure), 4 bytes each in float32
    assert _needed_gib(big) >= 1.3e9 * 4 / GIB
    # and 2 bytes each in bfloat16 is still more than 2 GiB: so --dtype bfloat16 is not offered
    assert 1.3e9 * 2 > 2 * GIB and "bfloat16" not in big.split("is free")[1]
    assert rows["tiny-wan"].split()[3:5] == ["to", "run"], rows
    assert not (tmp_path / "out").exists()


def test_the_bfloat16_advice_when_it_is_given_passes(run_cli, tmp_path, monkeypatch, no_runs):
    """Between half and all of the float32 need free: refused in float32 with --dtype bfloat16 offered, and the cell
    with that flag is to run on the same host."""
    fake_memory(monkeypatch, host_free_bytes=2 * GIB)
    float32_gib = _needed_gib(_dry_run(run_cli, tmp_path)[1]["wan2.1-t2v-1.3b"])
    fake_memory(monkeypatch, host_free_bytes=int(0.75 * float32_gib * GIB))
    code, rows = _dry_run(run_cli, tmp_path)
    assert code == 2 and "use --dtype bfloat16 (half the bytes) or a machine with more memory" in rows["wan2.1-t2v-1.3b"]
    code, rows = _dry_run(run_cli, tmp_path, own="device = \"cpu\"\ndtype = \"bfloat16\"")
    assert code == 0 and "to run" in rows["wan2.1-t2v-1.3b"], rows


def test_a_model_too_big_for_the_gpu_is_offered_offloading_which_then_passes(run_cli, tmp_path, monkeypatch, no_runs):
    fake_memory(monkeypatch, host_free_bytes=64 * GIB, gpu_free_bytes=2 * GIB)
    code, rows = _dry_run(run_cli, tmp_path, own="")  # device auto: the (faked) GPU, bfloat16
    big = rows["wan2.1-t2v-1.3b"]
    assert code == 2 and "GiB on cuda:0 for its weights in bfloat16 but 2.0 GiB is free: use --offload group" in big
    assert _needed_gib(big) >= 1.3e9 * 2 / GIB
    code, rows = _dry_run(run_cli, tmp_path, own="offload = \"group\"")
    assert code == 0 and "to run" in rows["wan2.1-t2v-1.3b"], rows


def test_an_attention_backend_the_device_cannot_run_names_those_it_can(run_cli, tmp_path, monkeypatch, no_runs):
    """device auto on a host without a GPU: the parent cannot know it is the CPU, the worker's first check does."""
    fake_memory(monkeypatch, host_free_bytes=64 * GIB)
    code, rows = _dry_run(run_cli, tmp_path, own="attention_backend = \"_native_cudnn\"")
    assert code == 2 and ("refused: --attention-backend _native_cudnn has no CPU kernel: on the CPU use native, "
                          "_native_math or flex") in rows["wan2.1-t2v-1.3b"], rows


def test_cells_that_run_elsewhere_are_not_judged_by_this_host(tmp_path, monkeypatch, no_runs):
    """Under Slurm the cells run on the cluster's nodes, and --elsewhere plans them for another machine: this host's
    memory says nothing about them (the run's own checks still apply)."""
    pytest.importorskip("submitit")
    from bench.run import sweep

    fake_memory(monkeypatch, host_free_bytes=2 * GIB)
    path = tmp_path / "fit.toml"
    path.write_text(SWEEP.format(own="device = \"cpu\""))
    here = sweep.run_sweep(path, tmp_path / "out", dry_run=True)
    slurm = sweep.run_sweep(path, tmp_path / "out", launcher="slurm", cluster="local", dry_run=True)
    elsewhere = sweep.run_sweep(path, tmp_path / "out", dry_run=True, elsewhere=True)
    assert [c.status[:8] for c in here.cells] == ["refused:", "to run"] and here.exit_code == 2
    for result in (slurm, elsewhere):
        assert [c.status for c in result.cells] == ["to run", "to run"] and result.exit_code == 0


def test_the_worker_refuses_with_the_dry_runs_own_line(monkeypatch):
    """One function for both: what preflight.check raises is what the dry run printed above."""
    from bench.core.errors import UsageError
    from bench.run import preflight
    from bench.run.options import Options
    from bench.run.parallel import Layout

    fake_memory(monkeypatch, host_free_bytes=2 * GIB)
    with pytest.raises(UsageError, match=r"^wan2.1-t2v-1.3b needs [0-9.]+ GiB of host RAM for its weights in float32 "
                       r"but 2.0 GiB is free: use a machine with more memory$"):
        preflight.check(load_spec("wan2.1-t2v-1.3b"), "cpu", "auto", Options(), Layout())
