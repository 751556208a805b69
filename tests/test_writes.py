"""Nothing is written outside the folder asked for, and every write failure is one line naming the path and what
went wrong (exit 2), with nothing half-written. Real file systems only: a file where a folder is expected, a
symbolic link inside the registry, /proc (which refuses new files even to root), and small tmpfs mounts for a full
and a read-only file system where this machine lets us mount."""

import contextlib
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFS = ROOT / "results" / "reference"
H100 = sorted((ROOT / "results" / "nvidia-h100-80gb-hbm3").rglob("*.json"))[0]  # a genuine, gate-checked record


def _one_line(code, err, *fragments):
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_submit_never_writes_through_a_link_inside_the_registry(run_cli, tmp_path):
    results, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    results.mkdir()
    elsewhere.mkdir()
    (results / "nvidia-h100-80gb-hbm3").symlink_to(elsewhere)
    code, out, err = run_cli("submit", H100, "--results", results)
    _one_line(code, err, "nvidia-h100-80gb-hbm3 is a symbolic link", "replace the link with a folder")
    assert not any(elsewhere.rglob("*"))


def test_a_link_as_the_registry_itself_is_the_users_choice(run_cli, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "results").symlink_to(real)
    code, out, err = run_cli("submit", H100, "--results", tmp_path / "results")
    assert code == 0, err
    assert len(list(real.rglob("*.json"))) == 1


@pytest.mark.parametrize("argv,fragment", [
    (["submit", H100, "--results", "FILE"], "Not a directory"),
    (["report", "-o", "/proc/t2vbench-test.html", REFS], "/proc/t2vbench-test.html: No such file or directory"),
    (["report", "-o", "/proc/x/report.html", REFS], "/proc/x/report.html: No such file or directory"),
    (["fleet", "--plot", "/proc/x/fleet.png"], "/proc/x"),
    (["run", "--out", "/proc/x"], "/proc/x: No such file or directory"),
])
def test_write_failures_are_one_line_naming_the_path(run_cli, tmp_path, argv, fragment):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    argv = [afile if a == "FILE" else a for a in argv]
    code, out, err = run_cli(*argv)
    _one_line(code, err, fragment, "nothing was written there")
    assert afile.read_text() == "not a folder" and list(tmp_path.iterdir()) == [afile]


@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(run_cli, tmp_path):
    with _tmpfs(tmp_path / "small", "size=16k") as small:
        code, out, err = run_cli("submit", H100, "--results", small / "results")
        _one_line(code, err, "No space left on device", str(small / "results"))
        # no half-written record, no temporary file, and none of the registry's folders made for it (they were left
        # empty: results/nvidia-h100-80gb-hbm3/wan2.1-t2v-1.3b/832x480-...)
        assert not list(small.rglob("*"))


def test_a_read_only_file_system_is_one_line(run_cli, tmp_path):
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        code, out, err = run_cli("report", "-o", ro / "report.html", ROOT / "results" / "reference")
        _one_line(code, err, "cannot write in", str(ro))  # refused before any work: the folder is not writable
        code, out, err = run_cli("submit", H100, "--results", ro / "results")
        _one_line(code, err, "Read-only file system")
    assert json.loads(H100.read_text())["run_id"]  # the source is untouched


def test_a_file_where_a_folder_must_be_is_said_as_one(run_cli, tmp_path):
    """write_atomic's mkdir met a file as the output's folder and raised FileExistsError, which fleet --template took
    for its own file having appeared meanwhile ('appeared while the template was written; choose another name')."""
    (tmp_path / "afile").write_text("kept")
    code, out, err = run_cli("fleet", "--template", tmp_path / "afile" / "t.toml")
    _one_line(code, err, f"{tmp_path / 'afile' / 't.toml'}: Not a directory ({tmp_path / 'afile'} is a file)",
              "nothing was written there")
    assert (tmp_path / "afile").read_text() == "kept" and out == ""
