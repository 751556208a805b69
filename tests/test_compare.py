"""`t2vbench compare`: the 95% interval against a hand computation, ratios and significance, settings and
references never merged, toy rows hidden, unreadable files skipped once, and the CSV/JSON/Markdown outputs."""

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest

from bench.analysis.compare import compare
from bench.cli import main
from bench.core import hardware, stats
from bench.core.errors import UsageError
from bench.present import tables as compare_format
from tests import forge

REFERENCES = Path(__file__).parent.parent / "results" / "reference"
T_975_DF2 = 4.302653  # t(0.975, 2), from any printed table
VIDEO_S = 9 / 16  # the forged records: 9 frames at 16 fps


def _vmin(latency_s: float) -> float:
    """Video-min per GPU-hour of one 9-frame, 16 fps video taking latency_s on one GPU, by hand."""
    return (VIDEO_S / 60) / (latency_s / 3600)


def _rows(folder, **kw):
    return compare([folder], **kw).rows


def test_t_quantiles_table_and_expansion():
    assert stats.t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert stats.t_quantile_975(2) == pytest.approx(T_975_DF2, abs=1e-6)
    assert stats.t_quantile_975(30) == pytest.approx(2.0423, abs=1e-4)
    assert stats.t_quantile_975(31) == pytest.approx(2.0395, abs=1e-4)  # first value of the expansion
    assert stats.t_quantile_975(120) == pytest.approx(1.9799, abs=1e-4)
    assert stats.t_quantile_975(10**6) == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(ValueError):
        stats.t_quantile_975(0)


def test_interval_is_the_t_interval_of_the_pooled_latencies(tmp_path):
    # latencies 10, 11, 12 s: mean 11, stdev 1, n 3 -> latency 11 +- 4.302653 / sqrt(3)
    half = T_975_DF2 / math.sqrt(3)
    forge.write(tmp_path / "one", "r.json", forge.record([10.0, 11.0, 12.0]))
    forge.write(tmp_path / "two", "a.json", forge.record([10.0, 12.0]))
    forge.write(tmp_path / "two", "b.json", forge.record([11.0]))
    for folder in ("one", "two"):  # the same three generations in one record or pooled from two
        (row,) = _rows(tmp_path / folder)
        assert row.generations == 3 and row.kind == "measured" and row.hardware == "h100-sxm"
        assert row.seconds_per_video == pytest.approx(11.0)
        assert row.video_min_per_gpu_hour == pytest.approx(_vmin(11.0))
        assert row.interval_low == pytest.approx(_vmin(11.0 + half), rel=1e-6)
        assert row.interval_high == pytest.approx(_vmin(11.0 - half), rel=1e-6)
    assert row.source == "2 records"
    assert "3.07 [2.5, 3.96]" in compare_format.format_table(compare([tmp_path / "two"]))


def test_one_generation_has_no_interval_and_a_wide_spread_an_open_one(tmp_path):
    forge.write(tmp_path, "one.json", forge.record([10.0]))
    forge.write(tmp_path, "wide.json", forge.record([1.0, 30.0], steps=8))  # t(0.975, 1) = 12.7: reaches zero
    single, wide = sorted(_rows(tmp_path), key=lambda r: r.generations)
    assert single.interval_low is None and single.interval_high is None
    assert math.isinf(wide.interval_high) and wide.interval_low == pytest.approx(
        _vmin(15.5 + 12.706205 * math.sqrt(420.5) / math.sqrt(2)), rel=1e-6)
    doc = json.loads(compare_format.to_json(compare([tmp_path])))
    assert {r["interval_high"] for r in doc["rows"]} == {None}  # JSON has no infinity


def test_ratio_against_the_baseline_and_its_significance(tmp_path):
    forge.write(tmp_path, "h100.json", forge.record([10.0, 10.1, 9.9]))
    forge.write(tmp_path, "b200.json", forge.record([5.0, 5.05, 4.95], hardware_class="nvidia-b200"))
    forge.write(tmp_path, "h200.json", forge.record([9.0, 9.5, 10.0], hardware_class="nvidia-h200-141gb"))
    rows = {r.hardware: r for r in _rows(tmp_path)}
    assert (rows["h100-sxm"].ratio, rows["h100-sxm"].ratio_note) == (1.0, "baseline")
    assert rows["b200"].ratio == pytest.approx(2.0) and rows["b200"].ratio_note == "significant"
    assert rows["h200"].ratio == pytest.approx(10 / 9.5) and rows["h200"].ratio_note == "not significant"
    assert compare_format.ratio_cell(rows["h200"]) == "1.05x (not significant)"
    assert compare_format.ratio_cell(rows["b200"]) == "2.00x"
    flipped = {r.hardware: r for r in _rows(tmp_path, baseline="b200")}
    assert flipped["h100-sxm"].ratio == pytest.approx(0.5) and flipped["b200"].ratio_note == "baseline"


def test_costs_use_the_scenario_and_the_catalogue(tmp_path, monkeypatch):
    forge.write(tmp_path, "h100.json", forge.with_nvml(forge.record([10.0, 10.0, 10.0]), monkeypatch))
    (row,) = _rows(tmp_path)
    tput = _vmin(10.0)
    # factorial-2024: $30,000 over 4 years busy 50%, 700 W at $0.10/kWh, PUE 1; rented $6.155 per GPU-hour
    assert row.owned_usd_per_video_minute == pytest.approx((30000 / (4 * 8760 * 0.5) + 0.7 * 0.10) / tput)
    assert row.rented_usd_per_video_minute == pytest.approx(6.155 / tput)
    assert row.energy_wh_per_video_minute == pytest.approx(650 * 10 / 3600 / (VIDEO_S / 60))
    assert row.mfu is None  # a model models/ does not have: no counted FLOPs, no guess


def test_different_settings_are_never_merged(tmp_path):
    forge.write(tmp_path, "g5.json", forge.record([10.0, 10.0, 10.0]))
    forge.write(tmp_path, "g6.json", forge.record([20.0, 20.0, 20.0], guidance_scale=6.0))
    rows = _rows(tmp_path)
    assert sorted(r.settings_key for r in rows) == ["32x32-9f-16fps-4steps-g5-bfloat16-1gpu",
                                                    "32x32-9f-16fps-4steps-g6-bfloat16-1gpu"]
    assert [r.generations for r in rows] == [3, 3]
    assert sorted(r.seconds_per_video for r in rows) == [10.0, 20.0]
    assert all(r.ratio is None for r in rows)  # one class per key: nothing to set against


def test_references_are_never_merged_with_measurements(tmp_path):
    forge.write(tmp_path, "h100.json", forge.record([10.0, 11.0, 12.0]))
    forge.write(tmp_path, "ref-h100.json", forge.reference(seconds_per_video=20.0))
    forge.write(tmp_path, "ref-b200.json", forge.reference(hardware_class="b200", seconds_per_video=8.0))
    rows = _rows(tmp_path)
    measured = [r for r in rows if r.kind == "measured"]
    published = {r.hardware: r for r in rows if r.kind == "published"}
    assert len(measured) == 1 and measured[0].generations == 3
    assert measured[0].video_min_per_gpu_hour == pytest.approx(_vmin(11.0))
    assert published["h100-sxm"].video_min_per_gpu_hour == pytest.approx(_vmin(20.0))
    assert published["h100-sxm"].generations is None and published["h100-sxm"].interval_low is None
    # the published B200 is set against the published H100 of its source, never against the measurement
    assert published["b200"].ratio == pytest.approx(2.5) and published["b200"].ratio_note == "no spread"
    assert measured[0].ratio is None
    assert compare_format.kind_cell(published["b200"]) == "published"


def test_an_estimate_is_marked_as_one(tmp_path):
    forge.write(tmp_path, "est.json", forge.reference(measured=False, basis="analytic estimate"))
    (row,) = _rows(tmp_path)
    assert row.kind == "estimate" and compare_format.kind_cell(row) == "ESTIMATE"


def test_toy_and_cpu_records_are_shown_only_when_allowed(tmp_path):
    shutil.copy(forge.DATA / "record-v2-tiny-wan.json", tmp_path / "toy.json")
    with pytest.raises(UsageError, match="1 toy or CPU record.*--allow-toy"):
        compare([tmp_path])
    forge.write(tmp_path, "real.json", forge.record())
    result = compare([tmp_path])
    assert [r.model for r in result.rows] == ["testmodel"]
    assert any("toy or CPU record(s) hidden" in n for n in compare_format.notes(result))
    shown = compare([tmp_path], allow_toy=True, baseline="cpu:amd-epyc")
    toy = next(r for r in shown.rows if r.model == "tiny-wan")
    assert compare_format.kind_cell(toy) == "TOY (toy spec on a CPU run)"
    assert any("TOY rows shown" in n for n in compare_format.notes(shown))


def test_unreadable_files_are_skipped_once_with_a_reason(tmp_path):
    good = forge.record()
    forge.write(tmp_path, "good.json", good)
    forge.write(tmp_path / "copy", "same-run.json", good)
    incomplete = forge.record()
    incomplete.update(complete=False, incomplete_reason="interrupted")
    forge.write(tmp_path, "incomplete.json", incomplete)
    (tmp_path / "garbage.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "nan.json").write_text('{"schema_version": NaN}')
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "run.journal.jsonl").write_text("{}\n")
    result = compare([tmp_path, tmp_path / "good.json", tmp_path / "run.journal.jsonl"])
    assert [r.generations for r in result.rows] == [3]  # the copy of the same run counted once
    reasons = "\n".join(result.skipped)
    assert len(result.skipped) == 7, reasons
    for fragment in ("same run", "incomplete run (interrupted)", "not UTF-8", "NaN", "not valid JSON",
                     "nested too deeply", "journal"):
        assert fragment in reasons
    assert all("\n" not in line for line in result.skipped)


def test_csv_and_json_carry_the_same_figures(tmp_path):
    forge.write(tmp_path, "h100.json", forge.record([10.0, 10.1, 9.9]))
    forge.write(tmp_path, "b200.json", forge.record([5.0, 5.05, 4.95], hardware_class="nvidia-b200"))
    forge.write(tmp_path, "ref.json", forge.reference())
    result = compare([tmp_path])
    rows = json.loads(compare_format.to_json(result))["rows"]
    parsed = list(csv.DictReader(io.StringIO(compare_format.to_csv(result))))
    assert len(parsed) == len(rows) == 3
    for from_csv, from_json in zip(parsed, rows):
        for field in compare_format.FLAT:
            value = from_json[field]
            text = from_csv[field]
            if value is None:
                assert text == ""
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                assert float(text) == value, field
            else:
                assert text == str(value), field
        assert from_csv["paths"] == "; ".join(from_json["paths"])
        if from_json["stages_s"]:
            assert float(from_csv["denoise_mean_s"]) == from_json["stages_s"]["denoise"]


def test_markdown_and_table_escape_what_came_from_files(tmp_path):
    forge.write(tmp_path, "r.json", forge.record())
    hostile = tmp_path / "<img src=x onerror=alert(1)>|\x1b[31m.json"
    hostile.write_text("{")
    result = compare([tmp_path])
    md = compare_format.format_markdown(result)
    assert "&lt;img src=x onerror=alert(1)&gt;\\|\\x1b[31m.json" in md and "<img" not in md
    assert "\x1b" not in compare_format.format_table(result)


def test_cli_formats_and_user_errors(tmp_path, capsys):
    forge.write(tmp_path, "h100.json", forge.record())
    (tmp_path / "bad.json").write_text("{")
    assert main(["compare", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rows"][0]["model"] == "testmodel" and "skipped:" in err
    assert main(["compare", str(tmp_path), "--csv"]) == 0
    assert capsys.readouterr().out.startswith("kind,source,model,")
    assert main(["compare", str(tmp_path), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| # | kind |")
    assert main(["compare", str(tmp_path), "--baseline", "h101"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or folder" in err


def test_published_wan_h100_against_b200(tmp_path):
    for name in ("1xh100-sxm", "1xb200"):
        src = f"mlenergy-v3_wan2.1-t2v-1.3b_{name}_832x480-81f-15fps-50steps-bs1.json"
        shutil.copy(REFERENCES / src, tmp_path / src)
    h100, b200 = _rows(tmp_path)
    assert (h100.hardware, b200.hardware) == ("h100-sxm", "b200")
    assert h100.video_min_per_gpu_hour == pytest.approx((81 / 15 / 60) / (95.357 / 3600), rel=1e-4)
    assert b200.ratio == pytest.approx(95.357 / 74.02, rel=1e-3) and b200.ratio_note == "no spread"
    assert h100.mfu == pytest.approx(h100.video_min_per_gpu_hour / h100.bound_video_min_per_gpu_hour)
    assert 0.2 < h100.mfu < 0.4 and b200.mfu < h100.mfu  # B200's peak is 2.27x the H100's


def test_a_rack_figure_is_shown_per_gpu_and_labelled_with_its_system(tmp_path):
    """MLPerf v6.1: the whole system's throughput over all its GPUs, the system named beside the source."""
    for src in ("mlperf-inference-v6.1_wan2.2-t2v-a14b_8xmi355x_1280x720-81f-16fps-20steps_"
                "amd-8xmi355x-2xepyc-9575f_offline.json",
                "mlperf-inference-v6.1_wan2.2-t2v-a14b_72xgb300_1280x720-81f-16fps-20steps_"
                "nvidia-gb300-nvl72-gb300-288gb-aarch64x72-trt_offline.json"):
        shutil.copy(REFERENCES / src, tmp_path / src)
    result = compare([tmp_path])
    rack, mi355x = sorted(result.rows, key=lambda r: r.gpus, reverse=True)
    assert (rack.hardware, rack.gpus, mi355x.hardware, mi355x.gpus) == ("gb300", 72, "mi355x", 8)
    # 0.6546 videos/s over 72 GPUs: 72 / 0.6546111599325777 = 109.99 GPU-s for 81/16 s of video
    assert rack.video_min_per_gpu_hour == pytest.approx((81 / 16 / 60) / (72 / 0.6546111599325777 / 3600), rel=1e-9)
    assert mi355x.video_min_per_gpu_hour == pytest.approx((81 / 16 / 60) / (8 / 0.0731282 / 3600), rel=1e-9)
    assert rack.system == "NVIDIA: NVIDIA GB300 NVL72 (72x GB300-288GB_aarch64, TensorRT), Offline"
    table = compare_format.format_table(result)
    assert "mlperf-inference-v6.1 (AMD: smci355-ccs-aus-m13-13 (AS -4126GS-NMR-LCC), Offline)" in table
    assert [r["system"] for r in json.loads(compare_format.to_json(result))["rows"]] == [r.system for r in result.rows]


@pytest.mark.slow  # counts the FLOPs of every published model (~20 s on 2 cores)
def test_compare_results_reference_out_of_the_box(capsys, monkeypatch):
    monkeypatch.chdir(REFERENCES.parent.parent)
    assert main(["compare", "results/reference"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "wan2.1-t2v-14b" in line and "-1gpu " in line]
    assert len(lines) == 2 and "baseline" in lines[0] and "1.40x (no spread)" in lines[1]
    assert "ESTIMATE" in out and "factorial-funds-2024" in out and "skipped" not in out


def test_with_no_path_compare_reads_the_registry_and_your_own_runs(run_cli, tmp_path, monkeypatch):

    (tmp_path / "results" / "reference").mkdir(parents=True)
    shutil.copy(next(REFERENCES.glob("mlenergy-v3_wan2.1-t2v-1.3b_1xh100*bs1.json")), tmp_path / "results" / "reference")
    (tmp_path / "t2vbench-results").mkdir()
    shutil.copy(Path(__file__).parent / "data" / "record-v3-tiny-wan.json", tmp_path / "t2vbench-results" / "mine.json")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("compare", "--allow-toy")
    assert code == 0 and "reading results and t2vbench-results" in err
    assert "mlenergy-v3" in out and "tiny-wan" in out  # a published row from the registry, your run beside it


def test_with_no_argument_where_neither_folder_is_compare_and_report_say_where_to_run(run_cli, tmp_path, monkeypatch):
    # catches: "reading results" and then "'results': no such file or folder" from outside the checkout, which named
    # neither the runs folder nor what to do
    monkeypatch.chdir(tmp_path)
    for argv in (("compare",), ("report", "-o", tmp_path / "r.html")):
        code, out, err = run_cli(*argv)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "neither ./results" in err and "nor ./t2vbench-results" in err and str(tmp_path) in err
    assert list(tmp_path.iterdir()) == []


def test_csv_cells_a_spreadsheet_would_run_are_made_inert(tmp_path, monkeypatch):

    forge.write(tmp_path, "=HYPERLINK(1).json", forge.record([10.0, 11.0, 12.0]))
    forge.write(tmp_path, "@sum.json", forge.record([10.0, 11.0, 12.0], label="+cmd|' /C calc'!A0"))
    monkeypatch.chdir(tmp_path)
    text = compare_format.to_csv(compare(["=HYPERLINK(1).json", "@sum.json"], allow_toy=True))
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("HYPERLINK" in c for c in cells)  # the file name is shown ...
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or c.startswith("-") and not _number(c)]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_and_json_never_carry_a_raw_control_or_bidi_character(tmp_path, monkeypatch):
    # a file name holding an escape sequence (clears the screen), a right-to-left override and a newline
    name = "a\x1b[2Jb\u202ec\nd.json"
    forge.write(tmp_path, name, forge.record([10.0, 11.0, 12.0]))
    monkeypatch.chdir(tmp_path)
    result = compare([name], allow_toy=True)
    text = compare_format.to_csv(result)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("\\x1b[2J" in c and "\\u202e" in c and "\\x0a" in c for c in cells)  # shown, as escapes
    assert not any(ch in text for ch in ("\x1b", "\u202e")) and text.count("\n") == 2  # header + one row
    doc = compare_format.to_json(result)
    assert "\u202e" not in doc and "\x1b" not in doc and json.loads(doc)["rows"][0]["paths"] == [name]


def test_no_published_mfu_is_shown_above_100_percent():
    # VibeHPC's B300 row labels its precision fp32 but runs at ~114% of the bf16 peak: it computed in fp8, so its MFU
    # is shown against the fp8 peak (half of 114%), with a warning saying why
    result = compare([str(Path(__file__).resolve().parent.parent / "results" / "reference")])
    assert all(r.mfu is None or r.mfu <= 1 for r in result.rows)
    flagged = [r for r in result.rows if any("must have computed in fp8" in w for w in r.warnings)]
    assert len(flagged) == 1 and flagged[0].hardware == "b300"
    assert sum("must have computed in fp8" in line for line in compare_format.format_table(result).splitlines()
               if line.startswith("warning: #")) == 1  # the terminal table says it too, not only JSON and HTML
    b300 = hardware.get("b300")
    assert flagged[0].mfu == pytest.approx(float(flagged[0].warnings[0].split("%")[0]) / 100
                                           * b300.bf16_tflops / b300.fp8_tflops, abs=0.006)


def test_a_system_computes_in_one_precision_in_every_scenario(tmp_path):
    # VibeHPC's B300 submission: its Offline row runs at 114% of the bf16 peak (so fp8), its SingleStream row at 68%,
    # possible alone. One build ran both: with its Offline row beside it, the SingleStream row's MFU is against the
    # fp8 peak too (catches: the sibling left at 68% of bf16 while the system's other row is taken as fp8), and alone
    # it stays against bf16 (catches: every B300 row taken as fp8)
    refs = Path(__file__).resolve().parent.parent / "results" / "reference"
    single = next(refs.glob("*vibehpc*_singlestream.json"))
    offline = next(refs.glob("*vibehpc*_offline.json"))
    (tmp_path / "alone").mkdir()
    (tmp_path / "both").mkdir()
    (tmp_path / "alone" / single.name).write_bytes(single.read_bytes())
    for path in (single, offline):
        (tmp_path / "both" / path.name).write_bytes(path.read_bytes())
    (alone,) = compare([tmp_path / "alone"]).rows
    both = {r.system.rsplit(", ", 1)[-1]: r for r in compare([tmp_path / "both"]).rows}
    b300 = hardware.get("b300")
    assert alone.mfu == pytest.approx(0.68, abs=0.005) and alone.warnings == ()
    assert both["SingleStream"].mfu == pytest.approx(alone.mfu * b300.bf16_tflops / b300.fp8_tflops, rel=1e-9)
    assert "another figure of the same system (VibeHPC: NVIDIA DGX B300" in both["SingleStream"].warnings[0]
    assert "(68% of bf16)" in both["SingleStream"].warnings[0]
    assert both["Offline"].mfu == pytest.approx(0.57, abs=0.005)  # 114% of bf16 = 57% of fp8 (2,250 / 4,500 TFLOP/s)
