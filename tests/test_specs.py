import dataclasses
import re

import pytest

from bench.build import count_params_meta
from bench.errors import UsageError
from bench.specs import all_specs, check_settings, load_spec, spec_names
from tests.conftest import TINY

FULL = [s for s in spec_names() if not s.startswith("tiny-")]


def test_every_required_model_has_a_spec():
    assert set(FULL) >= {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "cogvideox-2b", "cogvideox-5b", "ltx-video",
                         "hunyuanvideo", "mochi-1"}
    assert set(TINY) <= set(spec_names())


@pytest.mark.parametrize("name", FULL)
def test_full_size_config_matches_published_size(name):
    spec = load_spec(name)
    counted = count_params_meta(spec)[spec.denoiser]
    # Published sizes are rounded ("1.3B" is 1.42B counted): a wrong config is off by far more than 15%.
    assert abs(counted - spec.published_params) / spec.published_params < 0.15, counted


def test_wan_1_3b_is_not_the_14b_default():
    assert count_params_meta(load_spec("wan2.1-t2v-1.3b"))["transformer"] == 1_418_996_800
    assert count_params_meta(load_spec("wan2.1-t2v-14b"))["transformer"] == 14_288_491_584


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
    ("cogvideox-2b", {"width": 0}, "multiple of 16"),
    ("wan2.1-t2v-1.3b", {"steps": 0}, "at least 1"),
    ("wan2.1-t2v-1.3b", {"fps": 0}, "positive"),
])
def test_impossible_settings_are_refused(name, change, fragment):
    spec = load_spec(name)
    with pytest.raises(UsageError, match=re.escape(fragment)):
        check_settings(spec, dataclasses.replace(spec.settings, **change))


@pytest.mark.parametrize("name", spec_names())
def test_canonical_settings_are_accepted(name):
    spec = load_spec(name)
    check_settings(spec, spec.settings)
