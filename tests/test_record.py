import json
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.record import SCHEMA_VERSION, load_record, parse_record, record_json, write_new

GOLDEN = Path(__file__).parent / "data" / "record-v1-tiny-wan.json"


def _golden() -> dict:
    return json.loads(GOLDEN.read_text())


def _refused(data: dict | str, fragment: str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(UsageError, match=fragment):
        parse_record(text)


def test_golden_record_loads_and_round_trips():
    record = load_record(GOLDEN)
    assert record.schema_version == SCHEMA_VERSION == 1
    assert json.loads(record_json(record)) == _golden()


def test_summary_that_does_not_follow_from_the_timings_is_refused():
    data = _golden()
    data["summary"]["video_minutes_per_gpu_hour"] *= 2
    _refused(data, "summary.video_minutes_per_gpu_hour")


def test_edited_timing_breaks_the_summary():
    data = _golden()
    data["generations"][0]["latency_s"] *= 1.5
    _refused(data, "summary")


def test_nan_is_refused():
    text = GOLDEN.read_text().replace('"load_s": ', '"load_s": NaN, "x": ', 1)
    _refused(text, "not a number")


def test_missing_field_is_named():
    data = _golden()
    del data["settings"]["fps"]
    _refused(data, "settings.fps")


def test_unknown_field_is_named():
    data = _golden()
    data["settings"]["nonsense"] = 1
    _refused(data, "settings.nonsense")


def test_negative_duration_is_refused():
    data = _golden()
    data["generations"][0]["step_s"][0] = -1.0
    _refused(data, "generations.0.step_s.0")


def test_stages_longer_than_the_generation_are_refused():
    data = _golden()
    g = data["generations"][0]
    g["vae_decode_s"] = g["latency_s"]
    _refused(data, "stage times add up")


def test_newer_schema_says_upgrade():
    data = _golden()
    data["schema_version"] = SCHEMA_VERSION + 1
    _refused(data, "upgrade t2vbench")


def test_string_where_number_belongs_is_refused():
    data = _golden()
    data["settings"]["height"] = "480"
    _refused(data, "settings.height")


def test_write_never_overwrites(tmp_path):
    path = write_new(tmp_path / "r.json", "one")
    with pytest.raises(FileExistsError):
        write_new(path, "two")
    assert path.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def _with_nvml_telemetry(monkeypatch):
    """The golden record with its telemetry section rebuilt as an NVML run would have it."""
    import sys

    from bench.telemetry.nvml import NvmlBackend
    from bench.telemetry.summary import summarize
    from bench.worker import _telemetry_info
    from tests.fakes import FakeGpu, fake_pynvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeGpu("GPU-aaaa")]))
    data = _golden()
    info = _telemetry_info(NvmlBackend(0), 0.1)
    end = sum(g["latency_s"] for g in data["generations"])
    n = 50
    info["series"] = {"t_s": [end * i / (n - 1) for i in range(n)], "power_w": [650.0] * n,
                      **{k: [1] * n for k in ("sm_clock_mhz", "mem_clock_mhz", "gpu_util_pct", "mem_util_pct",
                                              "memory_used_bytes", "temperature_c", "throttle_mask")}}
    t = 0.0
    for g in data["generations"]:
        g["telemetry"] = {"start_s": t, "end_s": t + g["latency_s"], "energy_j": 650.0 * g["latency_s"],
                          "text_encode_energy_j": 0.0, "denoise_energy_j": 1.0, "vae_decode_energy_j": 0.0}
        t += g["latency_s"]
    section, data["generations"], _ = summarize(info, data["generations"], 9 / 16)
    data["telemetry"] = section
    return data


def test_record_with_gpu_telemetry_validates(monkeypatch):
    record = parse_record(json.dumps(_with_nvml_telemetry(monkeypatch)))
    assert record.telemetry.energy_method == "counter"
    assert record.telemetry.summary.avg_power_w == pytest.approx(650.0)
    assert record.telemetry.device["name"] == "NVIDIA H100 80GB HBM3"


def test_energy_without_its_method_is_refused(monkeypatch):
    data = _with_nvml_telemetry(monkeypatch)
    data["telemetry"]["energy_method"] = None
    _refused(data, "energy given without the method")


def test_impossible_power_is_refused(monkeypatch):
    data = _with_nvml_telemetry(monkeypatch)
    data["telemetry"]["summary"]["peak_power_w"] = 1e9
    _refused(data, "telemetry.summary.peak_power_w")
