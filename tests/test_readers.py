"""Readers of many files against one bad file among good ones: every command that reads a folder skips a file it
cannot use with one line naming it and saying what it is (a folder named *.json, a named pipe, a device, a link to
nothing or a loop of links, a calibration or a journal where a record was expected), never in silence and never by
falling over; what reaches the terminal from a file name is escaped; and when nothing was usable, `compare`,
`report` and `fleet --results` say so in the same words, counting what they skipped."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
H100 = sorted((ROOT / "results" / "nvidia-h100-80gb-hbm3").rglob("*.json"))[0]  # a genuine, gate-checked record
CALIBRATION = Path(__file__).parent / "data" / "calibration-v1-tiny-wan.json"  # a real calibration record


def _folder(tmp_path: Path) -> Path:
    """A genuine H100 record beside one of each thing that is not a readable file but is named *.json."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.json").write_bytes(H100.read_bytes())
    (folder / "dir.json").mkdir()
    os.mkfifo(folder / "fifo.json")
    (folder / "loop1.json").symlink_to("loop2.json")
    (folder / "loop2.json").symlink_to("loop1.json")
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere")
    (folder / "zero.json").symlink_to("/dev/zero")
    return folder


EXPECTED = {"dir.json": "a folder", "fifo.json": "a named pipe (FIFO)", "loop1.json": "a loop of symbolic links",
            "loop2.json": "a loop of symbolic links", "dangling.json": "a symbolic link to nothing",
            "zero.json": "a device"}


def _skipped_lines(err: str) -> dict[str, str]:
    """{file name: the rest of its line} for each skip line on stderr (compare --json / fleet prefix them)."""
    out = {}
    for line in err.splitlines():
        for name in EXPECTED:
            if f"/{name}: " in line:
                out[name] = line.split(f"/{name}: ", 1)[1]
    return out


@pytest.mark.parametrize("argv", [
    ["compare", "{d}", "--json"],
    ["estimate", "--results", "{d}"],
    ["predict", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm", "--results", "{d}", "--json"],
    ["fleet", "--results", "{d}", "--model", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm"],
])
def test_a_file_that_is_not_a_file_is_named_and_skipped_and_the_rest_still_shows(run_cli, tmp_path, argv):
    """Before, a walk kept only regular files: these six were left out without a word."""
    folder = _folder(tmp_path)
    code, out, err = run_cli(*[a.format(d=folder) for a in argv])
    assert code == 0, err
    lines = _skipped_lines(err + out)
    assert set(lines) == set(EXPECTED), err
    for name, what in EXPECTED.items():
        assert lines[name].startswith(what), lines[name]
    if argv[0] == "compare":
        rows = json.loads(out)["rows"]
        assert [r["paths"] for r in rows if r["kind"] == "measured"] == [[str(folder / "good.json")]]


def test_submit_and_show_say_what_the_path_is(run_cli, tmp_path):
    folder = _folder(tmp_path)
    code, out, err = run_cli("submit", *(folder / n for n in EXPECTED), "--results", tmp_path / "results")
    assert code == 2 and not (tmp_path / "results").exists()
    refused = dict(line.removeprefix("refused  ").split(": ", 1) for line in err.splitlines())
    assert {Path(k).name: v for k, v in refused.items()} == {n: f"{w}, not a record file" for n, w in EXPECTED.items()}
    code, _, err = run_cli("show", folder / "fifo.json")  # before: 'no such record file' for a pipe that exists
    assert code == 2 and err.strip() == f"t2vbench: error: {folder / 'fifo.json'}: a named pipe (FIFO), not a record file"


def _journal_line() -> str:
    return json.dumps({"kind": "header", "journal_version": 1, "run_id": "0123abcd"}) + "\n"


@pytest.mark.parametrize("name, content, said", [
    ("cal.json", CALIBRATION.read_bytes(), "a calibration (t2vbench calibrate), not a result record"),
    ("ref.json", json.dumps({"kind": "reference", "reference_version": 2}).encode(), "a published figure"),
    ("journal.json", (_journal_line() + '{"kind": "done"}\n').encode(), "a run's journal, not a record"),
    ("bom.json", b"\xef\xbb\xbf" + H100.read_bytes(), "starts with a byte-order mark (BOM)"),
    ("digits.json", b"1" * 5000, "holds an integer of thousands of digits"),
])
def test_another_kind_of_file_is_said_as_what_it_is(run_cli, tmp_path, name, content, said):
    """Before: a calibration was 'claims schema_version 1 but has field command: the version was edited', a reference
    'field schema_version is missing', a journal 'not valid JSON (Extra data...)', a BOM Python's advice to decode
    with utf-8-sig, 5000 digits Python's advice to call sys.set_int_max_str_digits."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / name).write_bytes(content)
    code, _, err = run_cli("show", folder / name)
    assert code == 2 and err.startswith(f"t2vbench: error: {folder / name}: {said}") and err.count("\n") == 1, err
    (folder / "good.json").write_bytes(H100.read_bytes())
    code, _, err = run_cli("fleet", "--results", folder, "--model", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm")
    assert code == 0 and f"skipped {folder / name}: {said}" in err, err


def test_fleet_escapes_a_file_name_on_the_terminal(run_cli, tmp_path):
    """fleet --results printed its skip lines raw: a file name's escape sequence and bidi override reached the
    terminal (compare, report and estimate escaped theirs)."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "good.json").write_bytes(H100.read_bytes())
    (folder / "a\x1b[31mRED\u202eb.json").write_text("[1]")
    code, _, err = run_cli("fleet", "--results", folder, "--model", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm")
    assert code == 0 and "\x1b" not in err and "\u202e" not in err
    assert "a\\x1b[31mRED\\u202eb.json: a record is a JSON object" in err, err


@pytest.mark.parametrize("argv, verb", [
    (["compare", "{d}"], "nothing to compare under {d}"),
    (["report", "{d}", "-o", "{t}/r.html"], "nothing to report under {d}"),
    (["fleet", "--results", "{d}", "--model", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm"],
     "no complete records of 'wan2.1-t2v-1.3b' on h100-sxm under '{d}': run and submit one first"),
])
def test_when_every_file_is_skipped_each_reader_says_so_counting_them(run_cli, tmp_path, argv, verb):
    """Before: report said 'no usable record or reference' and fleet 'run and submit one first', neither counting
    the two files they had skipped nor saying why; compare did both."""
    folder = tmp_path / "allbad"
    folder.mkdir()
    (folder / "a.json").write_text("[1]")
    (folder / "b.json").write_text("x")
    code, out, err = run_cli(*[a.format(d=folder, t=tmp_path) for a in argv])
    expected = (verb.format(d=folder) + f"; 2 file(s) skipped, e.g. {folder / 'a.json'}: a record is a JSON object; "
                "give the file t2vbench run wrote")
    assert (code, out, err) == (2, "", f"t2vbench: error: {expected}\n")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command", ["compare", "report"])
def test_an_empty_folder_is_said_as_one(run_cli, tmp_path, command):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(command, tmp_path / "empty", *(["-o", tmp_path / "r.html"] if command == "report" else []))
    assert (code, out) == (2, "") and err == f"t2vbench: error: nothing to {command} under {tmp_path / 'empty'}: no " \
                                             ".json file there\n"


def test_a_copy_under_a_new_run_id_counts_once(run_cli, tmp_path):
    # catches: readers that merge copies by run_id alone, so a record copied under a new id, label and date pooled
    # its 3 generations twice (6), narrowing the row's interval as if the run had been made twice
    folder = tmp_path / "copies"
    folder.mkdir()
    genuine = json.loads(H100.read_text())
    copy = {**genuine, "run_id": "0123456789ab", "created_utc": "2026-11-30T00:00:00Z", "label": "again"}
    (folder / "a.json").write_text(json.dumps(genuine))
    (folder / "b.json").write_text(json.dumps(copy))
    code, out, err = run_cli("compare", folder, "--json")
    rows = [r for r in json.loads(out)["rows"] if r["kind"] == "measured"]
    assert code == 0 and [r["generations"] for r in rows] == [3], rows
    assert "b.json: the same measurements as" in err and "a.json under another run_id; counted once" in err, err


def test_predict_counts_a_copy_under_a_new_run_id_once(run_cli, tmp_path):
    # catches: predict's reader merging copies by run_id alone (compare's rule was not its): the genuine H100 run
    # copied under a new id and label made 'plain, 6 generations' of its 3
    folder = tmp_path / "copies"
    folder.mkdir()
    genuine = json.loads(H100.read_text())
    assert len(genuine["generations"]) == 3 and genuine["spec"]["name"] == "wan2.1-t2v-1.3b"
    (folder / "a.json").write_text(json.dumps(genuine))
    (folder / "b.json").write_text(json.dumps({**genuine, "run_id": "0123456789ab", "label": "again"}))
    code, out, err = run_cli("predict", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm", "--results", folder, "--json")
    found = json.loads(out)
    assert code == 0 and found["rung"] == "measured", err
    assert any(" 3 generations (" in line for line in found["evidence"]), found["evidence"]
    assert any("b.json: the same measurements as" in s and "a.json under another run_id" in s
               for s in found["skipped"]), found["skipped"]


MLPERF_B300 = sorted((ROOT / "results" / "reference").glob("mlperf-inference-v6.1_wan2.2-t2v-a14b_8xb300_*"
                                                           "_offline.json"))  # genuine published rows, 8 GPUs each


@pytest.mark.parametrize("command", ["predict", "compare"])
def test_a_published_row_copied_under_another_source_id_counts_once(run_cli, tmp_path, command):
    # catches: readers counting a reference once per file: MLPerf's Cisco B300 row copied under another source id made
    # three systems of two, moving predict's median from NVIDIA's DGX figure to Cisco's, and compare showed it twice
    folder = tmp_path / "rows"
    folder.mkdir()
    cisco, dgx = (next(p for p in MLPERF_B300 if name in p.name) for name in ("_cisco-", "_nvidia-"))
    for p in (cisco, dgx):
        (folder / p.name).write_bytes(p.read_bytes())
    copy = json.loads(cisco.read_text())
    copy["source"] = {**copy["source"], "id": "b300-mirror", "title": "A mirror of MLPerf's table"}
    (folder / "a-mirror.json").write_text(json.dumps(copy))
    rows = {p.name: json.loads(p.read_text()) for p in (cisco, dgx)}
    per_gpu_s = sorted(r["gpus"] / r["videos_per_s"] for r in rows.values())  # 8 GPUs over each system's throughput
    if command == "predict":
        code, out, err = run_cli("predict", "wan2.2-t2v-a14b", "--hardware", "b300", "--preset", "mlperf-v6",
                                 "--results", folder, "--json")
        found = json.loads(out)
        assert code == 0, err
        # two systems: the middle one of (fastest, slowest) by (n - 1) // 2 is the fastest
        assert found["seconds_per_video"]["value"] == pytest.approx(per_gpu_s[0], rel=1e-12)
        assert found["caveats"][0].startswith("2 published systems"), found["caveats"]
        skipped = found["skipped"]
    else:
        code, out, err = run_cli("compare", folder, "--json")
        assert code == 0, err
        published = [r for r in json.loads(out)["rows"] if r["kind"] != "measured"]
        assert len(published) == 2, published
        skipped = err.splitlines()
    assert any(cisco.name in s and "the same published figures as" in s and "a-mirror.json under another name" in s
               for s in skipped), skipped
