"""Records: strict loading (schema, encoding, nesting, duplicates), migration from v1, the physics check against
forged figures, and writes that are atomic, group-readable and never overwrite."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.analysis.physics import load_checked
from bench.core.errors import UsageError
from bench.records.io import load_record, parse_record, record_json, write_new
from bench.records.key import settings_key
from bench.records.schema import SCHEMA_VERSION
from tests import forge

DATA = Path(__file__).parent / "data"
GOLDEN_V1 = DATA / "record-v1-tiny-wan.json"
GOLDEN_V2 = DATA / "record-v2-tiny-wan.json"
GOLDEN = DATA / "record-v3-tiny-wan.json"


def _golden() -> dict:
    return json.loads(GOLDEN.read_text())


def _refused(data: dict | str | bytes, fragment: str) -> None:
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    with pytest.raises(UsageError, match=fragment):
        parse_record(text)


def _load(tmp_path, data: dict):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return load_checked(path)  # the loader, then the gate's physics


def test_golden_record_loads_and_round_trips():
    record = load_record(GOLDEN)
    assert record.schema_version == SCHEMA_VERSION == 4
    assert json.loads(record_json(record)) == {**_golden(), "schema_version": 4}  # v3 -> v4 adds nothing else
    assert record.label == "golden v3" and record.command[:3] == ["t2vbench", "run", "tiny-wan"]


def test_v2_record_gains_only_the_server_figures_recomputed_from_its_times():
    old = json.loads(GOLDEN_V2.read_text())
    record = load_record(GOLDEN_V2)
    assert record.schema_version == 4 and record.label == "golden v2" and record.workers is None
    added = {k: v for k, v in record.summary.model_dump().items() if k not in old["summary"]}
    starts = [g["telemetry"]["start_s"] for g in old["generations"]]
    ends = [g["telemetry"]["end_s"] for g in old["generations"]]
    assert added["server_window_s"] == pytest.approx(max(ends) - min(starts))
    assert added["workers"] == 1 and added["per_worker_rel_spread"] == 0.0
    assert {k: getattr(record.summary, k) for k in old["summary"]} == old["summary"]


def test_migration_does_not_launder_a_forged_v2_summary():
    data = json.loads(GOLDEN_V2.read_text())
    data["summary"]["video_minutes_per_gpu_hour"] *= 3
    _refused(data, "summary.video_minutes_per_gpu_hour")


def test_v1_record_is_migrated_and_keeps_every_measured_value():
    old = json.loads(GOLDEN_V1.read_text())
    record = load_record(GOLDEN_V1)
    assert record.schema_version == 4 and record.command == [] and record.label is None
    assert record.spec.tiny is True and record.settings.options == {}
    assert [g.latency_s for g in record.generations] == [g["latency_s"] for g in old["generations"]]
    assert {k: getattr(record.summary, k) for k in old["summary"]} == old["summary"]


def test_settings_key_names_what_the_cost_depends_on_and_nothing_else():
    data = _golden()
    assert settings_key(parse_record(json.dumps(data))) == "32x32-9f-16fps-4steps-g5-float32-1gpu"
    data["settings"]["seed"], data["settings"]["prompt"] = 7, "another prompt"
    data["settings"]["options"] = {"compile": "regional:WanTransformerBlock", "attention_backend": "_native_cudnn",
                                   "quantized": "transformer weights", "vae_tiling": False}
    assert settings_key(parse_record(json.dumps(data))) == (
        "32x32-9f-16fps-4steps-g5-float32-1gpu-attention_backend=_native_cudnn-compile=regional_WanTransformerBlock")


def test_summary_that_does_not_follow_from_the_timings_is_refused():
    data = _golden()
    data["summary"]["video_minutes_per_gpu_hour"] *= 2
    _refused(data, "summary.video_minutes_per_gpu_hour")


def test_an_invented_summary_figure_is_refused():
    data = _golden()
    data["summary"]["video_minutes_per_gpu_hour_best"] = 1e6
    _refused(data, "summary.video_minutes_per_gpu_hour_best.*Extra inputs")


def test_edited_timing_breaks_the_summary():
    data = _golden()
    data["generations"][0]["latency_s"] *= 1.5
    _refused(data, "summary")


@pytest.mark.parametrize("text,fragment", [
    ('{"schema_version": 2, "load_s": NaN}', "NaN is not a number"),
    ('{"schema_version": 2, "schema_version": 1}', "key 'schema_version' appears twice"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' * 40 + "1" + "}" * 40, "nested deeper than 32"),
    (b'{"schema_version": 2, "label": "caf\xe9"}', "not UTF-8"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a record is a JSON object"),
    ('{"schema_version": true}', "schema_version"),
])
def test_damaged_files_are_one_line_refusals(text, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        parse_record(text, "r.json")
    assert "\n" not in str(info.value)


def test_duplicate_key_deep_inside_is_refused():
    text = GOLDEN.read_text().replace('"seed": 0,', '"seed": 0, "seed": 1,', 1)
    _refused(text, "'seed' appears twice")


@pytest.mark.parametrize("path,value,fragment", [
    (("settings", "fps"), None, "settings.fps"),
    (("settings", "nonsense"), 1, "settings.nonsense"),
    (("settings", "height"), "480", "settings.height"),
    (("generations", 0, "step_s", 0), -1.0, "generations.0.step_s.0"),
    (("spec", "name"), "../../etc/x", "spec.name"),
    (("hardware_class", ), "nvidia/../../x", "hardware_class"),
    (("settings", "options"), {"Bad Key": 1}, "settings.options"),
])
def test_bad_fields_are_named(path, value, fragment):
    data = _golden()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    _refused(data, fragment)


def test_stages_longer_than_the_generation_are_refused():
    data = _golden()
    g = data["generations"][0]
    g["vae_decode_s"] = g["latency_s"]
    _refused(data, "stage times add up")


def test_newer_schema_says_upgrade():
    data = _golden()
    data["schema_version"] = SCHEMA_VERSION + 1
    _refused(data, "upgrade t2vbench")


def test_cpu_device_with_a_gpu_class_is_refused(tmp_path):
    data = _golden()
    data["hardware_class"] = "nvidia-h100-80gb-hbm3"
    with pytest.raises(UsageError, match="device 'cpu' does not match hardware class 'nvidia-h100-80gb-hbm3'"):
        _load(tmp_path, data)


def _as_h100(data: dict, latency_s: float | None = None) -> dict:
    """The golden record claimed for an H100 (timings optionally replaced), with its summary recomputed, so only
    physics can tell it is forged."""

    data["hardware_class"], data["settings"]["device"], data["settings"]["dtype"] = \
        "nvidia-h100-80gb-hbm3", "cuda:0", "bfloat16"
    data["environment"] = forge.gpu_environment()
    for g in data["generations"]:
        if latency_s is not None:
            n = len(g["step_s"])
            g.update(latency_s=latency_s, text_encode_s=0.0, vae_decode_s=0.0, step_s=[latency_s / (2 * n)] * n,
                     denoise_s=latency_s / 2)
    forge.summarized(data)
    return data


def test_faster_than_the_counted_flop_bound_is_refused(tmp_path):
    honest = _as_h100(_golden())
    assert _load(tmp_path, honest).hardware_class == "nvidia-h100-80gb-hbm3"  # CPU speed is far from the bound
    forged = _as_h100(_golden(), latency_s=1e-12)
    with pytest.raises(UsageError, match="faster than the physical bound"):
        _load(tmp_path, forged)


def _with_nvml_telemetry(monkeypatch, power_w: float = 650.0) -> dict:
    """The golden record as an NVML run on an H100 would have it, with a constant-power series."""
    from bench.telemetry import describe
    from bench.telemetry.nvml import NvmlBackend
    from bench.telemetry.summary import summarize
    from tests.fakes import FakeGpu, fake_pynvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeGpu("GPU-aaaa")]))
    data = _as_h100(_golden())
    info = describe(NvmlBackend(0), 0.1)
    end = sum(g["latency_s"] for g in data["generations"])
    n = 50
    info["series"] = {"t_s": [end * i / (n - 1) for i in range(n)], "power_w": [power_w] * n,
                      **{k: [1] * n for k in ("sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
                                              "memory_used_bytes", "temperature_c", "throttle_mask")}}
    info["cpu"] = {"package_energy_j": None, "reason": "test"}
    t = 0.0
    for g in data["generations"]:
        g["telemetry"] = {"start_s": t, "end_s": t + g["latency_s"], "energy_j": power_w * g["latency_s"],
                          **{f"{stage}_energy_j": power_w * g[f"{stage}_s"] for stage in ("text_encode", "denoise",
                                                                                           "vae_decode")}}
        t += g["latency_s"]
    section, data["generations"], _ = summarize(info, data["generations"], 9 / 16)
    data["telemetry"] = section
    forge.summarized(data)
    return data


def test_record_with_gpu_telemetry_validates(monkeypatch, tmp_path):
    record = _load(tmp_path, _with_nvml_telemetry(monkeypatch))
    assert record.telemetry.energy_method == "counter"
    assert record.telemetry.summary.avg_power_w == pytest.approx(650.0)
    assert record.telemetry.device["name"] == "NVIDIA H100 80GB HBM3"


def test_summary_power_contradicted_by_the_series_is_refused(monkeypatch, tmp_path):
    data = _with_nvml_telemetry(monkeypatch)
    data["telemetry"]["summary"]["avg_power_w"] = 1.0  # beside a 650 W series: the fleet's megawatts would follow
    with pytest.raises(UsageError, match="telemetry: .*avg_power_w"):
        _load(tmp_path, data)


def test_energy_above_board_power_is_refused(monkeypatch, tmp_path):
    data = _with_nvml_telemetry(monkeypatch, power_w=2000.0)  # an H100 SXM board is 700 W
    with pytest.raises(UsageError, match="board power"):
        _load(tmp_path, data)


def test_energy_without_its_method_is_refused(monkeypatch):
    data = _with_nvml_telemetry(monkeypatch)
    data["telemetry"]["energy_method"] = None
    _refused(data, "energy given without the method")


def test_impossible_power_is_refused(monkeypatch):
    data = _with_nvml_telemetry(monkeypatch)
    data["telemetry"]["summary"]["peak_power_w"] = 1e9
    _refused(data, "telemetry.summary.peak_power_w")


def test_write_never_overwrites(tmp_path):
    path = write_new(tmp_path / "r.json", "one")
    with pytest.raises(FileExistsError):
        write_new(path, "two")
    assert path.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_records_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_new(tmp_path / "r.json", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_write_without_hard_links_still_never_overwrites(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")  # what FAT, some FUSE and SMB mounts answer

    monkeypatch.setattr(os, "link", no_links)
    path = write_new(tmp_path / "r.json", "one")
    assert path.read_text() == "one"
    with pytest.raises(FileExistsError):
        write_new(path, "two")
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_write_that_fails_halfway_leaves_no_partial_record(tmp_path):
    """The file-size limit makes the write fail after 64 kB for real; an atomic write leaves no file at the name."""
    script = (
        "import resource, sys; from pathlib import Path; from bench.records.io import write_new\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "try:\n    write_new(Path(sys.argv[1]), 'x' * 1_000_000)\nexcept OSError as e:\n    print('failed', e.errno)\n"
    )
    target = tmp_path / "big.json"
    out = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("failed"), out.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_a_throttle_mask_of_floats_is_refused_by_the_loader_not_met_later_as_a_crash(monkeypatch):
    data = _with_nvml_telemetry(monkeypatch)
    masks = data["telemetry"]["series"]["throttle_mask"]
    data["telemetry"]["series"]["throttle_mask"] = [0.5] * len(masks)  # a bit mask cannot be fractional
    _refused(data, "throttle_mask holds a non-integer")
