"""t2vbench calibrate: tiny models on the CPU, blocks timed at the pipeline's shapes, the record strict.

Expected values come from the spec and hand arithmetic (shapes, calls, weights from a meta-device parameter count,
medians by sorting, predictions as rest + L x block) or from a fake clock at the library boundary (time), never from
the machine's speed.
"""

import json
import subprocess
import sys
import types

import pytest

from bench.core.errors import UsageError
from bench.core.specs import load_spec
from bench.records.calibration import (
    load_calibration,
    matching,
    parse_calibration,
    require_matching,
    write_calibration,
)
from bench.run import calibrate as calibrate_mod
from bench.run import environment
from bench.run.build import count_params_meta
from bench.run.calibrate import CalibrateConfig, calibrate
from tests.test_record import GOLDEN


def _calibrate(tmp_path_factory, model, **fields):
    out = tmp_path_factory.mktemp("calibrations")
    fields = {"device": "cpu", "repeats": 2, **fields}
    return calibrate(CalibrateConfig(model=model, out_dir=out, command=("t2vbench", "calibrate", model), **fields))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _calibrate(tmp_path_factory, "tiny-wan")


@pytest.fixture(scope="module")
def two_experts(tmp_path_factory):
    return _calibrate(tmp_path_factory, "tiny-wan2.2-a14b")


def _median(values):
    ordered, n = sorted(values), len(values)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _stacks(record):
    return [*record.denoisers, *record.text_encoders]


def test_the_record_loads_strictly_and_says_where_it_was_made(tiny):
    record, path = tiny.record, tiny.path
    assert path.name.startswith("tiny-wan-") and path.name.endswith(".calibration.json")
    assert load_calibration(path) == record
    spec = load_spec("tiny-wan")
    assert (record.spec.name, record.spec.sha256, record.spec.tiny) == ("tiny-wan", spec.sha256, True)
    s = record.settings
    assert (s.height, s.width, s.num_frames, s.steps, s.guidance_scale, s.max_sequence_length) == (32, 32, 9, 4, 5.0, 16)
    assert (s.device, s.dtype, s.options, s.repeats, record.weights) == ("cpu", "float32", {}, 2, "random")
    assert record.hardware_class == environment.hardware_class(environment.cpu_model(), "cpu")
    assert record.environment["device_name"] == environment.cpu_model()
    assert {"torch", "diffusers", "transformers", "t2vbench"} <= set(record.environment)
    assert record.command == ["t2vbench", "calibrate", "tiny-wan"]


def test_parts_run_at_the_pipelines_shapes(tiny, two_experts):
    # tiny-wan: 32x32, 9 frames; the Wan VAE compresses 8x in space and 4x in time: (9 - 1) / 4 + 1 = 3 latent frames
    for record in (tiny.record, two_experts.record):
        for expert in record.denoisers:
            assert expert.input_shape == [1, 16, 3, 4, 4]
            assert expert.calls == 2  # guidance > 1: WanPipeline calls the transformer for prompt and negative prompt
            assert [(k.blocks, k.layers, k.attention_modules) for k in expert.kinds] == [
                ("blocks", 2, ["attn1", "attn2"])]
        text = record.text_encoders[0]
        assert len(record.text_encoders) == 1 and text.input_shape == [1, 16]  # padded to max_sequence_length
        assert text.calls == 2 and text.kinds[0].blocks == "encoder.block"
        assert record.vae_decode.latent_shape == [1, 16, 3, 4, 4]
    assert [d.component for d in two_experts.record.denoisers] == ["transformer", "transformer_2"]


def test_figures_are_positive_and_follow_from_the_repeats(tiny, two_experts):
    for record in (tiny.record, two_experts.record):
        raw = json.loads(record.model_dump_json())
        for stack in [*raw["denoisers"], *raw["text_encoders"]]:
            assert len(stack["samples"]) == 2
            (kind,) = stack["kinds"]
            block = _median([sum(x["block_s"][0]) / 2 for x in stack["samples"]])
            attention = _median([sum(x["attention_s"][0]) / 2 for x in stack["samples"]])
            rest = _median([x["forward_s"] - sum(x["block_s"][0]) for x in stack["samples"]])
            assert kind["block_s"] == pytest.approx(block, rel=1e-12) and block > 0
            assert kind["attention_s"] == pytest.approx(attention, rel=1e-12) and attention > 0
            assert stack["rest_s"] == pytest.approx(rest, rel=1e-12, abs=1e-15) and rest >= 0
            assert kind["attention_s"] + kind["other_s"] == pytest.approx(kind["block_s"], rel=1e-12)
            assert kind["other_s"] >= 0
        vae = raw["vae_decode"]
        assert vae["decode_s"] == pytest.approx(_median(vae["samples_s"]), rel=1e-12) and vae["decode_s"] > 0


def test_the_prediction_is_rest_plus_layers_times_block(two_experts):
    raw = json.loads(two_experts.record.model_dump_json())
    for stack, model in zip([*raw["denoisers"], *raw["text_encoders"]], _stacks(two_experts.record)):
        (kind,) = stack["kinds"]
        for layers in (1, 2, 40):
            assert model.forward_s([layers]) == pytest.approx(stack["rest_s"] + layers * kind["block_s"], rel=1e-12)
        hand = stack["calls"] * (stack["rest_s"] + kind["layers"] * kind["block_s"])
        assert model.predicted_s == pytest.approx(hand, rel=1e-12)
        difference = _median(stack["plain_2_blocks_s"]) - _median(stack["plain_1_block_s"])
        assert model.block_by_difference_s == pytest.approx(difference, rel=1e-12, abs=1e-15)


def test_whole_weights_equal_a_count_on_the_meta_device(tiny):
    # tiny-wan has 2 blocks in its transformer and 2 layers in its text encoder, so rest + 2 x block is the whole
    params = count_params_meta(load_spec("tiny-wan"))
    record = tiny.record
    assert record.denoisers[0].whole_weights_bytes == params["transformer"] * 4  # float32
    assert record.text_encoders[0].whole_weights_bytes == params["text_encoder"] * 4
    assert record.vae_decode.weights_bytes == params["vae"] * 4
    assert record.whole_weights_bytes == (params["transformer"] + params["text_encoder"] + params["vae"]) * 4


def test_hooks_split_the_forward_as_a_fake_clock_says(tmp_path_factory, monkeypatch):
    """Every reading of the clock advances it by 1 ms. A Wan block reads it at its start, around attn1 and attn2,
    and at its end: block 5 ms, attention 2 ms, other 3 ms; the forward reads it at its start and end too: 13 ms
    with 2 blocks, so the rest is 3 ms. A T5 layer: start, around SelfAttention, end: 3 ms, 1 ms, 2 ms; forward 9 ms,
    rest 3 ms. Unhooked calls read it twice: 1 ms each, so the difference method says 0."""
    ticks = iter(range(10**9))
    monkeypatch.setattr(calibrate_mod, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks) / 1000))
    record = _calibrate(tmp_path_factory, "tiny-wan", repeats=1).record
    (expert,), (text,) = record.denoisers, record.text_encoders
    e, t = expert.kinds[0], text.kinds[0]
    assert (e.block_s, e.attention_s, e.other_s, expert.rest_s) == pytest.approx((5e-3, 2e-3, 3e-3, 3e-3))
    assert (t.block_s, t.attention_s, t.other_s, text.rest_s) == pytest.approx((3e-3, 1e-3, 2e-3, 3e-3))
    assert expert.predicted_s == pytest.approx(2 * (3e-3 + 2 * 5e-3))
    assert expert.forward_s([30]) == pytest.approx(3e-3 + 30 * 5e-3)
    assert expert.block_by_difference_s == 0 and record.vae_decode.decode_s == pytest.approx(1e-3)
    assert any("only 1 repeat" in w for w in record.warnings)
    assert any("by the difference of the 1- and 2-block builds" in w for w in record.warnings)


def test_guidance_one_and_an_attention_backend(tmp_path_factory):
    record = _calibrate(tmp_path_factory, "tiny-wan", repeats=1, overrides={"guidance_scale": 1.0},
                        attention_backend="native").record
    assert record.denoisers[0].calls == 1 and record.text_encoders[0].calls == 1  # no negative prompt pass
    assert record.settings.options == {"attention_backend": "native"}
    assert matching(record, record.hardware_class, "float32", {}) is not None
    assert matching(record, record.hardware_class, "float32", {"attention_backend": "native"}) is None


def test_the_matcher_refuses_another_class_dtype_options_or_model(tiny):
    record, cls = tiny.record, tiny.record.hardware_class
    assert matching(record, cls, "float32", {}) is None
    assert matching(record, cls, "float32", {"compile": False, "offload": None, "quantized": "described"}) is None
    assert "nvidia-h100-80gb-hbm3" in matching(record, "nvidia-h100-80gb-hbm3", "float32", {})
    assert "bfloat16" in matching(record, cls, "bfloat16", {})
    assert "attention_backend=flash" in matching(record, cls, "float32", {"attention_backend": "flash"})
    assert "wan2.1-t2v-1.3b" in matching(record, cls, "float32", {}, spec_name="wan2.1-t2v-1.3b")
    with pytest.raises(UsageError, match="not bfloat16") as exc:
        require_matching(record, cls, "bfloat16", {})
    assert "\n" not in str(exc.value)


def test_other_versions_kinds_and_forged_figures_are_refused(tiny, tmp_path):
    data = json.loads(tiny.path.read_text())
    cases = {
        "upgrade t2vbench": {**data, "schema_version": 3},
        "calibrate again": {**data, "schema_version": 0},
        "field 'created_utc'": {**data, "created_utc": "yesterday"},
        "field 'extra'": {**data, "extra": 1},
        "does not follow from the samples": {**data, "text_encoders": [
            {**data["text_encoders"][0], "kinds": [{**data["text_encoders"][0]["kinds"][0], "block_s": 1.0}]}]},
        "rest_s 9.0 does not follow": {**data, "denoisers": [{**data["denoisers"][0], "rest_s": 9.0}]},
        "not the median": {**data, "vae_decode": {**data["vae_decode"], "decode_s": 99.0}},
    }
    sample = data["denoisers"][0]["samples"][0]
    forged = {**sample, "attention_s": [[x * 2 for x in sample["block_s"][0]]]}
    stack = {**data["denoisers"][0], "samples": [forged, *data["denoisers"][0]["samples"][1:]]}
    cases["attention took longer than the block"] = {**data, "denoisers": [stack]}
    for message, bad in cases.items():
        with pytest.raises(UsageError, match=message):
            parse_calibration(json.dumps(bad), "bad.json")
    with pytest.raises(UsageError, match="not a calibration record"):
        load_calibration(GOLDEN)  # a run record
    with pytest.raises(UsageError, match="twice"):
        parse_calibration('{"kind": "calibration", "kind": "calibration"}')
    with pytest.raises(FileExistsError):
        write_calibration(tiny.path, tiny.record)


@pytest.mark.parametrize(("model", "fields", "message"), [
    ("tiny-mochi", {}, "does not support the mochi family .* real tokens"),
    ("tiny-wan", {"repeats": 0}, "--repeats 0"),
    ("tiny-wan", {"dtype": "float64"}, "--dtype float64"),
    ("tiny-wan", {"device": "tpu"}, "--device tpu"),
    ("tiny-wan", {"overrides": {"num_frames": 10}}, "--frames 10"),
    ("tiny-wan", {"preset": "nope"}, "not a preset"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, model, fields, message):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=message) as exc:
        calibrate(CalibrateConfig(model=model, out_dir=out, **fields))
    assert "\n" not in str(exc.value) and not out.exists()


def test_cli_prints_the_figures_and_writes_the_record(run_cli, tmp_path):
    code, out, err = run_cli("calibrate", "tiny-wan", "--device", "cpu", "--repeats", "1", "--out", tmp_path)
    assert code == 0, err
    assert "whole model not built" in out and "attention" in out and "vae decode" in out
    # each part said on stderr as it starts: a 14B block on a CPU ran minutes with nothing on the screen
    said = [line for line in err.splitlines() if line.startswith("t2vbench: ")]
    assert said[:2] == ["t2vbench: calibrating tiny-wan on cpu (float32): the VAE decode, then each text encoder and "
                        "denoiser built with 1 and 2 blocks", "t2vbench: timing the VAE decode of a 16x3x4x4 latent"]
    assert [line.split(" (")[0] for line in said[2:]] == ["t2vbench: timing text_encoder", "t2vbench: timing transformer"]
    record = load_calibration(out.strip().splitlines()[-1].removeprefix("calibration: "))
    assert record.command[:2] == ["t2vbench", "calibrate"]
    code, out, err = run_cli("calibrate", "tiny-wan2.2-a14b", "--device", "cpu", "--repeats", "1", "--frames", "5",
                             "--out", tmp_path, "--json")
    summary = json.loads(out)
    assert code == 0 and set(summary["denoisers"]) == {"transformer", "transformer_2"}
    assert summary["whole_model_built"] is False
    expert = summary["denoisers"]["transformer"]
    kind = expert["kinds"]["blocks"]
    assert expert["step_s"] == pytest.approx(expert["calls"] * (expert["rest_s"] + kind["layers"] * kind["block_s"]))
    assert load_calibration(summary["calibration"]).denoisers[0].input_shape == [1, 16, 2, 4, 4]  # (5 - 1) / 4 + 1


def test_cli_refuses_an_unsupported_family_in_one_line(run_cli, tmp_path):
    code, out, err = run_cli("calibrate", "tiny-mochi", "--device", "cpu", "--out", tmp_path / "x")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "hunyuanvideo, cogvideox, ltx" in err and "ltx-video" in err
    assert not (tmp_path / "x").exists()


def test_importing_calibrate_loads_no_torch():
    script = ("import sys; import bench.cli, bench.run.calibrate, bench.records.calibration, "
              "bench.present.calibration; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-500:]
