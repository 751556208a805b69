"""The summary figures against numbers worked out by hand, and against a second implementation of their definitions
(tests/forge.py's summary_of), never against bench.core.metrics itself: the record validator recomputes every
summary with that module, so a record is accepted only where it agrees with the oracle. Figures are read from the
record's JSON, as a stranger reading the file would."""

import copy
import json
import math

import pytest

from bench.core.errors import UsageError
from bench.records.io import parse_record, record_json
from tests import forge

VIDEO_S = 9 / 16  # the forged records: 9 frames at 16 fps = 0.5625 video-s per generation


def _parsed_summary(data: dict) -> dict:
    """The summary as the record validator accepted it and a record file holds it."""
    return json.loads(record_json(parse_record(json.dumps(data))))["summary"]


def test_three_generations_by_hand():
    # 3 generations of 2, 3 and 4 s on 1 GPU, one after another (0-2, 2-5, 5-9 s); each generation spends 10% of
    # its latency in the text encoder, 80% denoising in 4 equal steps, 5% in the VAE (forge._generation).
    data = forge.record([2.0, 3.0, 4.0])
    hand = {
        "generations": 3,
        "video_seconds_per_generation": 0.5625,  # 9 / 16
        "video_seconds_total": 1.6875,  # 3 x 0.5625
        "timed_wall_s": 9.0,  # 2 + 3 + 4
        "gpu_seconds": 9.0,  # 9 s x 1 GPU
        "video_minutes_per_gpu_hour": 11.25,  # (1.6875 / 60) / (9 / 3600) = 1.6875 x 60 / 9
        "gpu_seconds_per_video_second": 16 / 3,  # 9 / 1.6875 (= 60 / 11.25)
        "latency_mean_s": 3.0,  # 9 / 3
        "latency_p50_s": 3.0,  # the middle of 2, 3, 4
        "latency_p90_s": 3.8,  # position (3 - 1) x 0.9 = 1.8: 3 + 0.8 x (4 - 3)
        "latency_min_s": 2.0,
        "latency_max_s": 4.0,
        "latency_rel_stdev": 1 / 3,  # sample variance ((-1)^2 + 0 + 1^2) / (3 - 1) = 1, stdev 1, / mean 3
        "text_encode_mean_s": 0.3,  # 0.1 x 3
        "denoise_mean_s": 2.4,  # 0.8 x 3
        "step_mean_s": 0.6,  # each step 0.8 x latency / 4 = 0.2 x latency; mean of 0.4, 0.6, 0.8 (4 each)
        "vae_decode_mean_s": 0.15,  # 0.05 x 3
        "other_mean_s": 0.15,  # 3 - (0.3 + 2.4 + 0.15)
        "server_window_s": 9.0,  # last end 9 - first start 0
        "server_video_minutes_per_gpu_hour": 11.25,  # 1.6875 x 60 / (9 s x 1 GPU)
        "workers": 1,
        "per_worker_rel_spread": 0.0,  # one worker: no spread
    }
    assert data["summary"] == pytest.approx(hand, rel=1e-12, abs=1e-12)  # the oracle
    assert _parsed_summary(data) == pytest.approx(hand, rel=1e-12, abs=1e-12)  # and bench.core.metrics agrees


def test_one_generation_has_no_spread_and_every_percentile_is_its_latency():
    data = forge.record([5.0])
    s = _parsed_summary(data)
    assert s["generations"] == 1 and s["latency_rel_stdev"] == 0.0 and s["per_worker_rel_spread"] == 0.0
    assert s["latency_p50_s"] == s["latency_p90_s"] == s["latency_min_s"] == s["latency_max_s"] == 5.0
    assert s["video_minutes_per_gpu_hour"] == pytest.approx(0.5625 * 60 / 5)  # 6.75


def test_four_latencies_interpolate_between_order_statistics():
    # Latencies 10, 1, 7, 4 s (given out of order): sorted 1, 4, 7, 10.
    # p50: position 3 x 0.5 = 1.5, between 4 and 7: 5.5; p90: position 2.7, between 7 and 10: 7 + 0.7 x 3 = 9.1.
    # mean 5.5; sample variance (4.5^2 + 1.5^2 + 1.5^2 + 4.5^2) / 3 = 45 / 3 = 15; rel stdev sqrt(15) / 5.5.
    s = _parsed_summary(forge.record([10.0, 1.0, 7.0, 4.0]))
    assert s["latency_p50_s"] == pytest.approx(5.5) and s["latency_p90_s"] == pytest.approx(9.1)
    assert s["latency_rel_stdev"] == pytest.approx(math.sqrt(15) / 5.5)
    assert s["latency_min_s"] == 1.0 and s["latency_max_s"] == 10.0


def test_context_parallel_generations_hold_every_gpu_and_data_parallel_ones_one():
    # The same 2, 3, 4 s on 2 GPUs. Context parallel (both GPUs make each video): 9 s x 2 = 18 GPU-s,
    # 1.6875 x 60 / 18 = 5.625. Data parallel: each generation held one GPU: 9 GPU-s, 11.25 (the server figure,
    # over the 9 s window x 2 GPUs, is 5.625 in both).
    context = forge.record([2.0, 3.0, 4.0], gpus_used=2, options={"parallel": "ulysses=2,ring=1"})
    s = _parsed_summary(context)
    assert s["gpu_seconds"] == pytest.approx(18.0) and s["video_minutes_per_gpu_hour"] == pytest.approx(5.625)
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(5.625)
    data = forge.record([2.0, 3.0, 4.0], gpus_used=2, options={"parallel": "data"})
    s = _parsed_summary(data)
    assert s["gpu_seconds"] == pytest.approx(9.0) and s["video_minutes_per_gpu_hour"] == pytest.approx(11.25)
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(5.625)
    one_gpu = copy.deepcopy(context)
    one_gpu["summary"].update(gpu_seconds=9.0, video_minutes_per_gpu_hour=11.25, gpu_seconds_per_video_second=16 / 3)
    with pytest.raises(UsageError, match="gpu_seconds"):  # a context-parallel run claiming one GPU per video
        parse_record(json.dumps(one_gpu))


def test_server_figures_of_unequal_data_parallel_workers_by_hand():
    # forge.UNEQUAL_WORKERS: worker 0 makes 2, 3, 4 s (0-2, 2-5, 5-9 s), worker 1 one 10 s generation (0.5-10.5 s).
    data = forge.data_parallel_record()
    s = _parsed_summary(data)
    assert s["generations"] == 4 and s["gpu_seconds"] == pytest.approx(19.0)  # 2 + 3 + 4 + 10, one GPU each
    assert s["video_minutes_per_gpu_hour"] == pytest.approx(135 / 19)  # 4 x 0.5625 = 2.25 video-s; 2.25 x 60 / 19
    assert s["server_window_s"] == pytest.approx(10.5)  # 10.5 - 0
    assert s["server_video_minutes_per_gpu_hour"] == pytest.approx(45 / 7)  # 2.25 x 60 / (10.5 x 2 GPUs)
    # Own figures: worker 0, 3 x 0.5625 x 60 / 9 = 11.25; worker 1, 0.5625 x 60 / 10 = 3.375. Mean 7.3125, sample
    # stdev |11.25 - 3.375| / sqrt(2) = 7.875 / sqrt(2); spread (7.875 / 7.3125) / sqrt(2) = (14 / 13) / sqrt(2).
    assert s["workers"] == 2 and s["per_worker_rel_spread"] == pytest.approx(14 / 13 / math.sqrt(2))
    assert data["summary"] == pytest.approx(s, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("claim", [
    {"workers": 1, "per_worker_rel_spread": 0.0},  # what crediting every generation to worker 0 would give
    {"workers": 1},
    {"per_worker_rel_spread": 0.0},
])
def test_a_data_parallel_record_claiming_one_worker_is_refused(claim):
    honest = forge.data_parallel_record()
    assert sorted(g["worker"] for g in honest["generations"]) == [0, 0, 0, 1]  # credited to 2 workers
    parse_record(json.dumps(honest))  # accepted as it is
    forged = copy.deepcopy(honest)
    forged["summary"].update(claim)
    with pytest.raises(UsageError, match="workers|per_worker_rel_spread"):
        parse_record(json.dumps(forged))


def test_a_summary_figure_off_by_more_than_rounding_is_refused():
    data = forge.record([2.0, 3.0, 4.0])
    data["summary"]["video_minutes_per_gpu_hour"] *= 1.001
    with pytest.raises(UsageError, match="video_minutes_per_gpu_hour"):
        parse_record(json.dumps(data))
