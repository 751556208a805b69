"""The FLOP counter against FLOPs derived by hand, the bound, MFU, and the Factorial Funds arithmetic."""

import dataclasses
import json

import pytest

from bench.analysis import roofline
from bench.analysis.flops import count_flops
from bench.core import notes
from bench.core.errors import UsageError
from bench.core.hardware import get
from bench.core.specs import load_spec
from tests.test_record import GOLDEN


def wan_transformer_flops(cfg: dict, frames: int, height: int, width: int, text_tokens: int) -> float:
    """One forward of WanTransformer3DModel, derived by hand (2 FLOPs per multiply-add, matmuls/convs/attention)."""
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    pt, ph, pw = cfg["patch_size"]
    n = (frames // pt) * (height // ph) * (width // pw)
    patch = 2 * n * cfg["in_channels"] * pt * ph * pw * d
    time = 2 * (cfg["freq_dim"] * d + d * d + d * 6 * d)
    text = 2 * text_tokens * (cfg["text_dim"] * d + d * d)
    self_attn = 8 * n * d * d + 4 * n * n * d
    cross_attn = 4 * n * d * d + 4 * text_tokens * d * d + 4 * n * text_tokens * d
    ffn = 4 * n * d * cfg["ffn_dim"]
    out = 2 * n * d * cfg["out_channels"] * pt * ph * pw
    return patch + time + text + cfg["num_layers"] * (self_attn + cross_attn + ffn) + out


def t5_encoder_flops(cfg: dict, tokens: int) -> float:
    """One forward of a (U)T5 encoder with gated-GELU feed-forward, derived by hand."""
    inner = cfg["num_heads"] * cfg["d_kv"]
    per_layer = 8 * tokens * cfg["d_model"] * inner + 4 * tokens * tokens * inner + 6 * tokens * cfg["d_model"] * cfg["d_ff"]
    return cfg["num_layers"] * per_layer


def _wan_case(name):
    spec = load_spec(name)
    st = spec.settings
    latent = ((st.num_frames - 1) // 4 + 1, st.height // 8, st.width // 8)
    return spec, wan_transformer_flops(spec.components["transformer"]["config"], *latent, st.max_sequence_length)


@pytest.mark.parametrize("name", ["tiny-wan", "wan2.1-t2v-1.3b"])
def test_counter_equals_hand_derived_wan_transformer(name):
    spec, analytic = _wan_case(name)
    counted = count_flops(spec, spec.settings)
    assert counted.denoiser_per_call == pytest.approx(analytic, rel=0.01)
    assert counted.calls_per_step == 2 and counted.steps == spec.settings.steps


@pytest.mark.parametrize("name", ["tiny-cogvideox", "wan2.1-t2v-1.3b"])
def test_counter_equals_hand_derived_t5_encoder(name):
    spec = load_spec(name)
    analytic = t5_encoder_flops(spec.components["text_encoder"]["config"], spec.settings.max_sequence_length)
    counted = count_flops(spec, spec.settings)
    assert counted.text_encode == pytest.approx(2 * analytic, rel=0.01)  # prompt and negative prompt


def test_guidance_off_halves_denoising_and_steps_scale_linearly():
    spec = load_spec("tiny-wan")
    with_cfg = count_flops(spec, spec.settings)
    no_cfg = count_flops(spec, dataclasses.replace(spec.settings, guidance_scale=1.0))
    twice = count_flops(spec, dataclasses.replace(spec.settings, steps=2 * spec.settings.steps))
    assert no_cfg.denoise == pytest.approx(with_cfg.denoise / 2) and no_cfg.text_encode == with_cfg.text_encode / 2
    assert twice.denoise == pytest.approx(2 * with_cfg.denoise) and twice.vae_decode == with_cfg.vae_decode


def test_embedded_guidance_does_not_double_hunyuan():
    spec = load_spec("tiny-hunyuanvideo")
    assert count_flops(spec, spec.settings).calls_per_step == 1


def test_data_dependent_family_is_refused():
    with pytest.raises(UsageError, match="FLOPs depend on the prompt"):
        count_flops(load_spec("tiny-mochi"), load_spec("tiny-mochi").settings)


def test_bound_is_flops_over_peak():
    spec = load_spec("tiny-ltx")
    flops = count_flops(spec, spec.settings)
    b = roofline.bound(flops, get("h100-sxm"), video_s=9 / 24)
    assert b["bound_seconds_per_video"] == pytest.approx(flops.total / 989.4e12)
    assert b["bound_video_minutes_per_gpu_hour"] == pytest.approx((9 / 24 / 60) / (flops.total / 989.4e12 / 3600))
    fp8 = roofline.bound(flops, get("h100-sxm"), video_s=9 / 24, dtype="fp8")
    assert fp8["bound_seconds_per_video"] == pytest.approx(b["bound_seconds_per_video"] / 2, rel=1e-3)
    with pytest.raises(UsageError, match="no dense fp8"):
        get("a100-80gb").peak_flops("fp8")


def test_mfu_of_a_record_is_a_gpu_records_against_its_own_class(tmp_path):
    # catches: MFU of a CPU run shown as a share of whatever GPU --hardware named (the record said nothing about it);
    # the MFU of a GPU record against its own class is tests/test_gate.py's
    data = json.loads(GOLDEN.read_text())
    data["settings"]["dtype"] = "bfloat16"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="ran on the CPU \\(cpu:amd-epyc\\): MFU is a share of a GPU's peak"):
        roofline.analyze("tiny-wan", "rtx-4090", record_path=str(path))
    with pytest.raises(UsageError, match="measured tiny-wan, not tiny-ltx"):
        roofline.analyze("tiny-ltx", "rtx-4090", record_path=str(path))


def test_factorial_funds_analytic_sora_model():
    ff = roofline.factorial_sora()
    assert ff["flops_per_video_minute"] == pytest.approx(7.08e17, rel=1e-3)
    assert ff["h100_seconds_per_video_minute"] == pytest.approx(716, abs=0.5)
    assert ff["video_minutes_per_h100_hour"] == pytest.approx(5.03, abs=0.005)
    assert ff["video_minutes_per_h100_day"] == pytest.approx(120.7, abs=0.05)
    assert [round(m) for m in ff["training_h100_months"]] == [4211, 10528]
    assert [round(m / 1e4) / 100 for m in ff["breakeven_video_minutes"]] == [15.25, 38.12]


@pytest.mark.slow
def test_roofline_command_for_wan_1_3b(run_cli):
    code, out, err = run_cli("roofline", "wan2.1-t2v-1.3b", "--hardware", "h100-sxm", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["bound"]["bound_seconds_per_video"] == pytest.approx(r["flops"]["total_flops"] / 989.4e12)
    assert r["factorial_sora"]["video_minutes_per_h100_hour"] == pytest.approx(5.03, abs=0.005)
    code, out, _ = run_cli("roofline", "wan2.1-t2v-1.3b")
    assert "video-min per GPU-hour at 100% of peak" in out and "Factorial Funds" in out


def test_the_flop_cache_keeps_every_stage_and_ignores_a_damaged_entry(tmp_path, monkeypatch, capsys):
    import json

    from bench.analysis.flops import cached_flops

    monkeypatch.setenv("T2VBENCH_CACHE_DIR", str(tmp_path))
    spec = load_spec("tiny-wan")
    counted = count_flops(spec, spec.settings)
    assert cached_flops(spec, spec.settings) == counted  # counted, then written
    assert capsys.readouterr().err == ""  # analysis never prints: notes go where the CLI sends them
    # counting leaves a note (a minute of silence for a 14B model at 720p otherwise); reading the cache leaves none
    (tmp_path / "flops.json").unlink()
    said: list[str] = []
    notes.set_sink(said.append)
    try:
        cached_flops(spec, spec.settings)
        cached_flops(spec, spec.settings)
    finally:
        notes.set_sink(None)
    s = spec.settings
    assert said == [f"counting the FLOPs of tiny-wan at {s.width}x{s.height}, {s.num_frames} frames, {s.steps} steps "
                    f"(once; kept in {tmp_path / 'flops.json'})"]
    cache = tmp_path / "flops.json"
    (key, entry), = json.loads(cache.read_text()).items()
    assert entry["vae_decode"] == counted.vae_decode and entry["experts"][0]["steps"] == spec.settings.steps
    entry["vae_decode"] = 1.0  # the cache is what is read back: an edited entry shows through ...
    cache.write_text(json.dumps({key: entry}))
    assert cached_flops(spec, spec.settings).vae_decode == 1.0
    cache.write_text(json.dumps({key: {**entry, "experts": "nonsense"}}))  # ... a damaged one is counted again
    assert cached_flops(spec, spec.settings) == counted


def test_the_cli_sends_notes_to_a_terminal_only(run_cli, tmp_path, monkeypatch):
    # catches: a progress note before a one-line refusal read by a program, or no note for a person at a terminal
    import io
    import sys

    from bench import cli

    monkeypatch.setenv("T2VBENCH_CACHE_DIR", str(tmp_path))
    code, _, err = run_cli("roofline", "tiny-wan")  # capsys: stderr is no terminal
    assert code == 0 and "counting the FLOPs" not in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    (tmp_path / "flops.json").unlink()
    monkeypatch.setattr(sys, "stderr", Terminal())
    try:
        assert cli.main(["roofline", "tiny-wan"]) == 0
        assert sys.stderr.getvalue().startswith("t2vbench: counting the FLOPs of tiny-wan at ")
    finally:
        notes.set_sink(None)
