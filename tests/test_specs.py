import dataclasses
import re

import pytest

from bench.core.errors import UsageError
from bench.core.specs import all_specs, check_settings, load_spec, spec_names
from bench.run.build import count_params_meta
from tests.conftest import TINY

FULL = [s for s in spec_names() if not s.startswith("tiny-")]
WAN22_TINY = {"tiny-wan2.2-a14b": "wan2.2-t2v-a14b", "tiny-wan2.2-ti2v": "wan2.2-ti2v-5b"}


def test_every_required_model_has_a_spec():
    assert set(FULL) >= {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "cogvideox-2b", "cogvideox-5b", "ltx-video",
                         "hunyuanvideo", "mochi-1", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b"}
    assert set(TINY) | set(WAN22_TINY) <= set(spec_names())


@pytest.mark.parametrize("name", FULL)
def test_full_size_config_matches_published_size(name):
    spec = load_spec(name)
    counted = count_params_meta(spec)[spec.denoiser]
    # Published sizes are rounded ("1.3B" is 1.42B counted): a wrong config is off by far more than 15%.
    assert abs(counted - spec.published_params) / spec.published_params < 0.15, counted


def test_wan_1_3b_is_not_the_14b_default():
    assert count_params_meta(load_spec("wan2.1-t2v-1.3b"))["transformer"] == 1_418_996_800
    assert count_params_meta(load_spec("wan2.1-t2v-14b"))["transformer"] == 14_288_491_584


def test_wan22_a14b_is_two_14b_experts():
    """Model card and README: 'A14B', two experts of about 14B each, 27B total, 14B active per step."""
    counted = count_params_meta(load_spec("wan2.2-t2v-a14b"))
    assert counted["transformer"] == counted["transformer_2"] == 14_288_491_584  # each expert is a Wan2.1-14B shape
    total = counted["transformer"] + counted["transformer_2"]
    assert abs(total - 27e9) / 27e9 < 0.15, total  # 28.58B counted: "27B" is the authors' rounding
    assert counted["vae"] == 126_892_531  # the Wan2.1 VAE, as in wan2.1-t2v-14b
    assert counted["vae"] == count_params_meta(load_spec("wan2.1-t2v-14b"))["vae"]


def test_wan22_ti2v_5b_and_its_high_compression_vae():
    counted = count_params_meta(load_spec("wan2.2-ti2v-5b"))
    assert counted["transformer"] == 4_999_787_712  # model card: "5B"
    assert "transformer_2" not in counted
    assert counted["vae"] == 704_688_668  # the Wan2.2 VAE (z_dim 48, residual, decoder_base_dim 256), not 2.1's 127M


@pytest.mark.parametrize("tiny_name,full_name", WAN22_TINY.items())
def test_wan22_tiny_specs_are_tiny_and_share_the_real_classes(tiny_name, full_name):
    tiny, full = load_spec(tiny_name), load_spec(full_name)
    assert tiny.pipeline == full.pipeline and tiny.tiny and not full.tiny
    assert {k: v["class"] for k, v in tiny.components.items()} == {k: v["class"] for k, v in full.components.items()}
    assert tiny.pipeline_config == full.pipeline_config  # same boundary_ratio / expand_timesteps
    assert tiny.components["vae"]["config"]["z_dim"] == full.components["vae"]["config"]["z_dim"]
    assert (tiny.settings.guidance_scale_2 is None) == (full.settings.guidance_scale_2 is None)
    assert sum(count_params_meta(tiny).values()) < 5_000_000


@pytest.mark.parametrize("name", TINY)
def test_tiny_specs_are_tiny_and_share_the_real_classes(name):
    tiny = load_spec(name)
    full = next(s for s in all_specs() if s.family == tiny.family and not s.tiny)
    assert tiny.pipeline == full.pipeline
    assert {k: v["class"] for k, v in tiny.components.items()} == {k: v["class"] for k, v in full.components.items()}
    assert sum(count_params_meta(tiny).values()) < 5_000_000


def test_unknown_model_suggests_the_close_name():
    with pytest.raises(UsageError, match="did you mean wan2.1-t2v-1.3b"):
        load_spec("wan2.1-t2v-1.3")


@pytest.mark.parametrize("name,change,fragment", [
    ("wan2.1-t2v-1.3b", {"num_frames": 80}, "4k+1"),
    ("mochi-1", {"num_frames": 160}, "6k+1"),
    ("ltx-video", {"num_frames": 120}, "8k+1"),
    ("wan2.1-t2v-1.3b", {"height": 470}, "multiple of 16"),
    ("cogvideox-2b", {"width": 0}, "--width 0 is out of range"),
    ("wan2.1-t2v-1.3b", {"steps": 0}, "--steps 0 is out of range: give a number from 1 to 1000"),
    ("wan2.1-t2v-1.3b", {"fps": 0}, "--fps 0 is out of range"),
    ("wan2.1-t2v-1.3b", {"fps": float("inf")}, "--fps inf is out of range"),
    ("wan2.1-t2v-1.3b", {"steps": 10**20}, "--steps 100000000000000000000 is out of range"),
    ("wan2.1-t2v-1.3b", {"height": 10**11}, "--height 100000000000 is out of range"),
    ("wan2.1-t2v-1.3b", {"guidance_scale": float("nan")}, "--guidance nan is out of range"),
])
def test_impossible_settings_are_refused(name, change, fragment):
    spec = load_spec(name)
    with pytest.raises(UsageError, match=re.escape(fragment)):
        check_settings(spec, dataclasses.replace(spec.settings, **change))


@pytest.mark.parametrize("name", spec_names())
def test_canonical_settings_are_accepted(name):
    spec = load_spec(name)
    check_settings(spec, spec.settings)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "models/tiny-wan", "/tmp/x", "tiny-wan.toml", "Tiny-Wan",
                                  "x" * 65])
def test_model_names_are_names_from_models_only(name):
    with pytest.raises(UsageError, match="unknown model") as info:
        load_spec(name)
    assert "'t2vbench run --spec FILE'" in str(info.value)  # only run has --spec: predict and roofline told it too


def _user_spec(tmp_path, **edits):
    from bench.core.specs import models_dir

    text = (models_dir() / "tiny-wan.toml").read_text()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_a_user_spec_file_loads_through_spec(tmp_path):
    from bench.core.specs import load_spec_file

    spec = load_spec_file(_user_spec(tmp_path, **{'name = "tiny-wan"': 'name = "my-wan"'}))
    assert spec.name == "my-wan" and spec.family == "wan"


@pytest.mark.parametrize("edit,fragment", [
    ({'name = "tiny-wan"': 'name = "../../../x"'}, "must be a lowercase slug"),
    ({'name = "tiny-wan"': 'name = 5'}, "field 'name' must be str"),
    ({"steps = 4": "steps = 4.5"}, "field 'steps' must be int"),
    ({"steps = 4": "steps = 100000"}, "--steps 100000 is out of range"),
    ({"[settings]": "[settingz]"}, "missing field 'settings'"),
    ({'name = "tiny-wan"': 'name = "tiny-wan"\nname = "again"'}, "not valid TOML"),
])
def test_bad_user_specs_are_refused_in_one_line(tmp_path, edit, fragment):
    from bench.core.specs import load_spec_file

    with pytest.raises(UsageError, match=re.escape(fragment)) as info:
        load_spec_file(_user_spec(tmp_path, **edit))
    assert "\n" not in str(info.value)


def test_a_user_spec_cannot_write_outside_out(run_cli, tmp_path):
    """The spec's name becomes the record's file name: a path in it is refused before anything runs."""
    path = _user_spec(tmp_path, **{'name = "tiny-wan"': 'name = "../../../escaped"'})
    code, _, err = run_cli("run", "--spec", path, "--out", tmp_path / "out")
    assert code == 2 and "must be a lowercase slug" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.parent.glob("escaped*"))


def test_a_user_spec_cannot_pass_for_a_catalogued_model(run_cli, tmp_path):
    path = _user_spec(tmp_path, **{'name = "tiny-wan"': 'name = "wan2.1-t2v-1.3b"'})
    code, _, err = run_cli("run", "--spec", path, "--device", "cpu", "--out", tmp_path / "out")
    assert code == 2 and "is a model in models/ but the file differs" in err
    assert not (tmp_path / "out").exists()
