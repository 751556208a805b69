"""Wan 2.2: two experts switched at a timestep boundary (A14B), per-token timesteps and the high-compression VAE
(TI2V-5B), the low-noise expert's guidance (guidance_scale_2), named presets (--preset), and their FLOPs against
formulas derived by hand."""

import dataclasses
import json
import re

import pytest
import torch

from bench.analysis.flops import count_flops, expert_steps
from bench.core.errors import UsageError
from bench.core.specs import check_settings, load_spec, load_spec_file, models_dir, preset_settings
from bench.records.io import load_record, parse_record, record_json
from bench.records.key import settings_key
from bench.run.build import build_pipeline
from bench.run.runner import RunConfig, prepare
from bench.run.timing import StageClock, call_kwargs, generate
from tests.test_record import GOLDEN
from tests.test_roofline import t5_encoder_flops, wan_transformer_flops

BOUNDARY_T = 875  # WanPipeline: boundary_ratio 0.875 x num_train_timesteps 1000


def _count_calls(pipe, names):
    """Wrap each expert's forward (here, in the test) to record the timestep of every call."""
    seen = {name: [] for name in names}
    for name in names:
        module = getattr(pipe, name)
        original = module.forward

        def forward(*args, _name=name, _original=original, **kwargs):
            seen[_name].append(kwargs["timestep"].detach().clone())
            return _original(*args, **kwargs)

        module.forward = forward
    return seen


def _generate(pipe, spec, settings):
    """One generation through the worker's own functions: call_kwargs, StageClock and generate."""
    kwargs = call_kwargs(pipe, settings, "a red fox walks")
    clock = StageClock(pipe, lambda: None)
    timing, frames = generate(pipe, clock, kwargs, seed=0, device="cpu")
    return kwargs, timing, frames


def test_both_experts_run_each_on_its_side_of_the_boundary():
    spec = load_spec("tiny-wan2.2-a14b")
    pipe = build_pipeline(spec, "random", "cpu", torch.float32)
    assert pipe.config.boundary_ratio == 0.875 and pipe.transformer_2 is not None
    seen = _count_calls(pipe, ["transformer", "transformer_2"])
    kwargs, timing, frames = _generate(pipe, spec, spec.settings)
    assert kwargs["guidance_scale"] == 4.0 and kwargs["guidance_scale_2"] == 3.0
    assert pipe._guidance_scale_2 == 3.0  # the low-noise expert's own guidance reached the pipeline
    # 5 steps at flow_shift 3.0: t = 999, 923 (high noise), then 818, 667, 429 (low noise); two passes each (CFG)
    high = [int(t) for t in seen["transformer"]]
    low = [int(t) for t in seen["transformer_2"]]
    assert len(high) == 2 * 2 and len(low) == 3 * 2
    assert all(t >= BOUNDARY_T for t in high) and all(t < BOUNDARY_T for t in low)
    assert len(timing["step_s"]) == 5 and frames.shape == (9, 32, 32, 3)
    assert expert_steps(spec, pipe, spec.settings.steps) == [("transformer", 2), ("transformer_2", 3)]


def test_guidance_2_is_passed_only_when_set():
    class Pipe:
        def __call__(self, prompt, height, width):
            pass

    base = load_spec("tiny-wan").settings
    assert base.guidance_scale_2 is None
    assert "guidance_scale_2" not in call_kwargs(Pipe(), base, "p")
    kwargs = call_kwargs(Pipe(), base.replace(guidance_scale_2=2.5), "p")
    assert kwargs["guidance_scale_2"] == 2.5


def test_ti2v_takes_one_timestep_per_token_and_decodes_with_its_own_vae():
    spec = load_spec("tiny-wan2.2-ti2v")
    pipe = build_pipeline(spec, "random", "cpu", torch.float32)
    assert pipe.config.expand_timesteps and pipe.config.boundary_ratio is None
    assert pipe.vae_scale_factor_spatial == 16 and pipe.vae.config.z_dim == 48
    seen = _count_calls(pipe, ["transformer"])
    _, timing, frames = _generate(pipe, spec, spec.settings)
    # 64x64 pixels -> 4x4 latents (16x) -> 2x2 tokens (patch 2); 9 frames -> 3 latent frames: 12 tokens
    assert {tuple(t.shape) for t in seen["transformer"]} == {(1, 3 * 2 * 2)}
    assert len(seen["transformer"]) == 2 * spec.settings.steps
    assert frames.shape == (9, 64, 64, 3) and len(timing["step_s"]) == spec.settings.steps


def _boundary_steps(steps: int, shift: float, boundary: float = 0.875) -> int:
    """Steps on the high-noise expert, by hand: UniPC's flow sigmas are linspace(1, 1/1000, steps + 1)[:-1], shifted
    to shift*s / (1 + (shift - 1)*s); t = 1000 x shifted sigma, and t >= 1000 x boundary runs `transformer`."""
    sigmas = [1 - k * (1 - 1 / 1000) / steps for k in range(steps)]
    return sum(shift * s / (1 + (shift - 1) * s) >= boundary for s in sigmas)


def _two_expert_hand(spec, settings):
    st, cfg = settings, spec.components
    latent = ((st.num_frames - 1) // 4 + 1, st.height // 8, st.width // 8)
    high = _boundary_steps(st.steps, cfg["scheduler"]["config"]["flow_shift"])
    per_call = [wan_transformer_flops(cfg[n]["config"], *latent, st.max_sequence_length)
                for n in ("transformer", "transformer_2")]
    return high, per_call, 2 * (high * per_call[0] + (st.steps - high) * per_call[1])


def test_two_expert_flops_equal_the_hand_formula_and_each_expert_its_own_config(tmp_path):
    spec = load_spec("tiny-wan2.2-a14b")
    text = spec.path.read_text()
    # A user spec whose low-noise expert is smaller: a counter that multiplies one expert by all steps fails here.
    cut = text.replace("num_layers = 2\ncross_attn_norm = true\nqk_norm = \"rms_norm_across_heads\"\nrope_max_seq_len"
                       " = 32\n\n[components.vae]", "num_layers = 1\ncross_attn_norm = true\nqk_norm = "
                       "\"rms_norm_across_heads\"\nrope_max_seq_len = 32\n\n[components.vae]")
    assert cut != text
    (tmp_path / "cut.toml").write_text(cut.replace('name = "tiny-wan2.2-a14b"', 'name = "cut"'))
    for s in (spec, load_spec_file(tmp_path / "cut.toml")):
        for steps in (5, 8, 13):
            settings = dataclasses.replace(s.settings, steps=steps)
            high, per_call, denoise = _two_expert_hand(s, settings)
            counted = count_flops(s, settings)
            assert [(e.component, e.steps) for e in counted.experts] == [("transformer", high),
                                                                          ("transformer_2", steps - high)]
            assert [e.per_call for e in counted.experts] == pytest.approx(per_call, rel=1e-9)
            assert counted.denoise == pytest.approx(denoise, rel=1e-9) and counted.steps == steps
    assert _two_expert_hand(load_spec_file(tmp_path / "cut.toml"), spec.settings)[1][1] < \
        _two_expert_hand(spec, spec.settings)[1][1]


@pytest.mark.slow
def test_mlperf_v6_roofline_equals_the_hand_formula(run_cli):
    code, out, err = run_cli("roofline", "wan2.2-t2v-a14b", "--preset", "mlperf-v6", "--hardware", "h100-sxm",
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    spec = load_spec("wan2.2-t2v-a14b")
    settings = preset_settings(spec, "mlperf-v6")
    assert (settings.width, settings.height, settings.num_frames, settings.steps) == (1280, 720, 81, 20)
    high, per_call, denoise = _two_expert_hand(spec, settings)
    assert high == 7  # flow_shift 3.0: t >= 875 for the first 7 of 20 steps
    assert [(e["component"], e["steps"]) for e in r["flops"]["experts"]] == [("transformer", 7), ("transformer_2", 13)]
    assert r["flops"]["denoise_flops"] == pytest.approx(denoise, rel=1e-9)
    text = 2 * t5_encoder_flops(spec.components["text_encoder"]["config"], 512)
    assert r["flops"]["text_encode_flops"] == pytest.approx(text, rel=1e-9)
    assert r["bound"]["bound_seconds_per_video"] == pytest.approx(r["flops"]["total_flops"] / 989.4e12)
    assert "20 steps, guidance 4 (low-noise expert 3)" in r["setting"]


@pytest.mark.slow
def test_ti2v_5b_flops_count_per_token_timesteps():
    """TI2V-5B embeds one timestep per token: the time MLPs run n times, not once, per forward."""
    spec = load_spec("wan2.2-ti2v-5b")
    st, cfg = spec.settings, spec.components["transformer"]["config"]
    latent = ((st.num_frames - 1) // 4 + 1, st.height // 16, st.width // 16)
    assert latent == (31, 44, 80)  # 1280x704x121 through the Wan2.2 VAE (4x16x16)
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    n = latent[0] * (latent[1] // 2) * (latent[2] // 2)
    time_mlps = 2 * (cfg["freq_dim"] * d + d * d + d * 6 * d)
    per_call = wan_transformer_flops(cfg, *latent, st.max_sequence_length) + (n - 1) * time_mlps
    counted = count_flops(spec, st)
    assert counted.experts[0].per_call == pytest.approx(per_call, rel=1e-9)
    assert counted.denoise == pytest.approx(2 * st.steps * per_call, rel=1e-9)
    assert counted.vae_decode > 0


def test_presets_apply_between_the_spec_and_the_command_line(tmp_path):
    config = RunConfig(model="wan2.2-t2v-a14b", preset="mlperf-v6", weights="random", device="cpu",
                       out_dir=tmp_path / "o")
    s = prepare(config).settings
    assert (s.width, s.height, s.num_frames, s.fps, s.steps, s.guidance_scale, s.guidance_scale_2) == \
        (1280, 720, 81, 16, 20, 4.0, 3.0)
    assert prepare(RunConfig(model="wan2.2-t2v-a14b", weights="random", out_dir=tmp_path / "o")).settings.steps == 40
    s = prepare(dataclasses.replace(config, overrides={"steps": 8, "guidance_scale_2": 2.0})).settings
    assert (s.steps, s.guidance_scale_2, s.width) == (8, 2.0, 1280)  # the command line wins, the rest stays
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,fragment", [
    (["run", "wan2.2-t2v-a14b", "--preset", "mlperf-v5"], "'mlperf-v5' is not a preset of wan2.2-t2v-a14b: its "
                                                          "presets are mlperf-v6"),
    (["run", "tiny-wan", "--preset", "mlperf-v6"], "'mlperf-v6' is not a preset of tiny-wan: it has none"),
    (["roofline", "wan2.2-t2v-a14b", "--preset", "fast"], "its presets are mlperf-v6"),
    (["run", "tiny-wan", "--guidance-2", "3"], "--guidance-2 3 does not fit tiny-wan: only two-expert models"),
    (["run", "tiny-wan2.2-a14b", "--guidance-2", "nan"], "--guidance-2 nan is out of range"),
    (["run", "tiny-wan2.2-a14b", "--guidance-2", "101"], "--guidance-2 101.0 is out of range"),
    (["run", "tiny-wan2.2-ti2v", "--height", "48"], "multiple of 32"),
])
def test_unknown_presets_and_bad_guidance_2_are_refused_in_one_line(run_cli, tmp_path, argv, fragment):
    code, out, err = run_cli(*argv, "--out", tmp_path / "out") if argv[0] == "run" else run_cli(*argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def _spec_with(tmp_path, tables: str, top: str = ""):
    """tiny-wan2.2-a14b as a user's spec named 'mine', with `top` among its first keys and `tables` at the end."""
    text = (models_dir() / "tiny-wan2.2-a14b.toml").read_text().replace('name = "tiny-wan2.2-a14b"', 'name = "mine"')
    path = tmp_path / "mine.toml"
    path.write_text(f"{top}\n{text}\n{tables}")
    return path


@pytest.mark.parametrize("table,fragment", [
    ("[presets.x]\nguidance = 3.0", "presets.x: unknown setting 'guidance'"),
    ("[presets.x]\nsteps = 2.5", "field 'steps' must be int"),
    ("[presets.x]\nguidance_scale_2 = nan", "--guidance-2 nan is out of range"),
    ("[presets.x]\nfps = inf", "--fps inf is out of range"),
    ("[presets.x]\nnum_frames = 80", "presets.x: --frames 80 does not fit mine: frames must be 4k+1"),
    ("[presets.x]\nsteps = 0", "--steps 0 is out of range"),
    ("[presets.\"X Y\"]\nsteps = 2", "must be a lowercase slug"),
    ("[presets]\nx = 3", "preset 'x' must be a lowercase slug naming a table of settings"),
    ("[pipeline_config]\nboundary_ratio = 1.5", "boundary_ratio must be a number in (0, 1]"),
])
def test_bad_presets_are_refused_when_the_spec_loads(tmp_path, table, fragment):
    spec_text = (models_dir() / "tiny-wan2.2-a14b.toml").read_text()
    if table.startswith("[pipeline_config]"):  # replace the spec's own table
        path = tmp_path / "mine.toml"
        path.write_text(spec_text.replace("[pipeline_config]\nboundary_ratio = 0.875", table))
    else:
        path = _spec_with(tmp_path, table)
    with pytest.raises(UsageError, match=re.escape(fragment)) as info:
        load_spec_file(path)
    assert "\n" not in str(info.value)


def test_presets_must_be_tables(tmp_path):
    with pytest.raises(UsageError, match=re.escape("presets must be tables: [presets.<name>]")):
        load_spec_file(_spec_with(tmp_path, "", top="presets = 3"))


def test_a_user_spec_preset_is_loaded_and_checked(tmp_path):
    spec = load_spec_file(_spec_with(tmp_path, "[presets.short]\nsteps = 2\nguidance_scale_2 = 1.5"))
    assert spec.presets == {"short": {"steps": 2, "guidance_scale_2": 1.5}}
    s = preset_settings(spec, "short")
    assert (s.steps, s.guidance_scale_2, s.guidance_scale) == (2, 1.5, 4.0)
    check_settings(spec, s)


def test_guidance_2_in_the_record_and_its_settings_key():
    data = json.loads(GOLDEN.read_text())
    assert "guidance_scale_2" not in data["settings"]
    old = parse_record(json.dumps(data))  # records from before the field stay valid
    assert old.settings.guidance_scale_2 is None and "g2" not in settings_key(old)
    data["settings"]["guidance_scale_2"] = 3.0
    new = parse_record(json.dumps(data))
    assert new.settings.guidance_scale_2 == 3.0
    assert settings_key(new) == settings_key(old).replace("-g5-", "-g5-g2=3-")  # never merged with g2-less runs
    assert "guidance_scale_2" not in json.loads(record_json(old))["settings"]  # written only when set
    assert json.loads(record_json(new))["settings"]["guidance_scale_2"] == 3.0
    data["settings"]["guidance_scale_2"] = -1.0
    with pytest.raises(UsageError, match="settings.guidance_scale_2"):
        parse_record(json.dumps(data))


@pytest.mark.slow
def test_tiny_a14b_runs_end_to_end_through_the_cli(run_cli, tmp_path):
    code, out, err = run_cli("run", "tiny-wan2.2-a14b", "--device", "cpu", "--repeats", 1, "--out", tmp_path, "--json")
    assert code == 0, err
    printed = json.loads(out)
    record = load_record(printed["record"])
    spec = load_spec("tiny-wan2.2-a14b")
    assert record.complete and record.spec.sha256 == spec.sha256
    assert (record.settings.guidance_scale, record.settings.guidance_scale_2) == (4.0, 3.0)
    assert [len(g.step_s) for g in record.generations] == [spec.settings.steps]  # 2 high-noise + 3 low-noise steps
    assert "-g4-g2=3-" in printed["settings_key"]


@pytest.mark.slow
def test_a_preset_reaches_the_record_through_the_cli(run_cli, tmp_path):
    path = _spec_with(tmp_path, "[presets.short]\nsteps = 3\nguidance_scale_2 = 1.5")
    code, out, err = run_cli("run", "--spec", path, "--preset", "short", "--guidance", 2.0, "--device", "cpu",
                             "--repeats", 1, "--warmup", 0, "--out", tmp_path / "out", "--json")
    assert code == 0, err
    record = load_record(json.loads(out)["record"])
    assert (record.settings.steps, record.settings.guidance_scale, record.settings.guidance_scale_2) == (3, 2.0, 1.5)
    assert [len(g.step_s) for g in record.generations] == [3]
    assert record.command[record.command.index("--preset") + 1] == "short"
