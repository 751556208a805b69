"""A scenario's [video] and [ranges] tables: what they accept, what they refuse, and how --set interacts."""

import pytest

from bench.analysis.scenarios import load_scenario
from bench.core.errors import UsageError
from tests.test_fleet import HAND

VIDEO = """
[video]
description = "Sora-class"
width = 1280
height = 720
models = ["wan2.2-t2v-a14b", "hunyuanvideo"]
"""


def _load(tmp_path, extra, overrides=None):
    path = tmp_path / "s.toml"
    path.write_text(HAND + extra)
    return load_scenario(str(path), overrides)


def test_the_preset_names_its_video_and_ranges_each_around_its_value():
    s = load_scenario("factorial-2024")
    assert (s.video.width, s.video.height, s.video.models[0]) == (1280, 720, "wan2.2-t2v-a14b")
    ranges = {r.field: (r.low, r.high) for r in s.ranges}
    # the demand range is the report's own two figures: 10.7M published, 0.5 x 17M + 0.15 x 43M = 14.95M
    assert ranges["ai_video_minutes_per_day"] == (10.7e6, 0.5 * 17e6 + 0.15 * 43e6)
    assert ranges["utilization"][0] <= s.utilization <= ranges["utilization"][1]


def test_video_is_parsed(tmp_path):
    s = _load(tmp_path, VIDEO)
    assert s.video.models == ("wan2.2-t2v-a14b", "hunyuanvideo") and s.video.seconds is None


@pytest.mark.parametrize("bad, fragment", [
    ('models = ["sora"]', "model 'sora' is not in models/"),
    ('models = ["wan2.2-t2v-a14c"]', "did you mean wan2.2-t2v-a14b"),
    ("models = []", "list of 1 to 8 model names"),
])
def test_video_models_must_be_in_models(tmp_path, bad, fragment):
    with pytest.raises(UsageError, match="\\[video\\]") as exc:
        _load(tmp_path, VIDEO.replace('models = ["wan2.2-t2v-a14b", "hunyuanvideo"]', bad))
    assert fragment in str(exc.value)


def test_video_pixels_are_whole_and_bounded(tmp_path):
    with pytest.raises(UsageError, match="'width' must be a whole number of pixels"):
        _load(tmp_path, VIDEO.replace("width = 1280", "width = 1280.5"))


def test_ranges_absolute_and_factor(tmp_path):
    s = _load(tmp_path, "\n[ranges]\nutilization = [0.4, 0.8]\nunit_price_usd = [0.5, 2]\n")
    assert {r.field: (r.low, r.high) for r in s.ranges} == {"utilization": (0.4, 0.8), "unit_price_usd": (0.5, 2.0)}


@pytest.mark.parametrize("line, fragment", [
    ("utilization = [0.7, 0.9]", "must contain its value 0.6"),  # HAND's utilization is 0.6
    ("utilization = [0.4, 1.5]", "outside (0, 1]"),
    ("unit_price_usd = [1.1, 2]", "must contain the factor 1"),
    ("unit_price_usd = [0, 2]", "factors in (0, 100]"),
    ("utilization = 0.5", "must be [low, high]"),
    ("utilisation = [0.4, 0.8]", "did you mean utilization"),
])
def test_bad_ranges_are_refused_naming_the_field(tmp_path, line, fragment):
    with pytest.raises(UsageError, match="\\[ranges\\]") as exc:
        _load(tmp_path, f"\n[ranges]\n{line}\n")
    assert fragment in str(exc.value)


def test_a_field_set_on_the_command_line_keeps_no_range(tmp_path):
    s = _load(tmp_path, "\n[ranges]\nutilization = [0.4, 0.8]\npue = [1.0, 1.5]\n", {"utilization": 0.95})
    assert [r.field for r in s.ranges] == ["pue"]
