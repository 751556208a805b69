"""The FLOP split (bench.analysis.predict_work.count_work's output, 2026-12-07, diffusers 0.42.1, torch 2.13.0) of the
models and settings the cost model's evidence and the headline need, seeded into each test session's cache so the
default run counts nothing (counting a 14B model on the meta device takes tens of seconds on two loaded cores).
tests/test_predict.py checks the attention FLOPs against hand formulas; its slow test counts them again.
"""

import json
from pathlib import Path

from bench.analysis import flops, predict_work
from bench.core.specs import Settings, load_spec

FLOPS_GOLDEN = Path(__file__).parent / "data" / "flops-golden.json"

SETTINGS = {  # the settings the validation counts each model at (the references' sizes and steps)
    "wan2.1-t2v-1.3b": {"height": 480, "width": 832, "num_frames": 81, "steps": 50, "guidance_scale": 5.0},
    "wan2.1-t2v-14b": {"height": 480, "width": 832, "num_frames": 81, "steps": 50, "guidance_scale": 5.0},
    "hunyuanvideo": {"height": 720, "width": 1280, "num_frames": 129, "steps": 50, "guidance_scale": 6.0},
    "cogvideox-2b": {"height": 480, "width": 720, "num_frames": 49, "steps": 50, "guidance_scale": 6.0},
    "wan2.2-t2v-a14b": {"height": 720, "width": 1280, "num_frames": 81, "steps": 20, "guidance_scale": 4.0},
}
GOLDEN = {
    "wan2.1-t2v-1.3b": {"text_flops": 9689446219776.0, "attention_flops": 2.009070895104e+16,
                        "dense_flops": 8209469826662400.0, "elements": 152133154544.29413,
                        "vae_flops": 275352205639680.0, "denoise_calls": 100, "expert_steps": (50,),
                        "params": {"transformer": 1418996800, "vae": 126892531, "text_encoder": 5680910336}},
    "wan2.1-t2v-14b": {"text_flops": 9689446219776.0, "attention_flops": 8.92920397824e+16,
                       "dense_flops": 7.8544988536832e+16, "elements": 676147353530.196,
                       "vae_flops": 275352205639680.0, "denoise_calls": 100, "expert_steps": (50,),
                       "params": {"transformer": 14288491584, "vae": 126892531, "text_encoder": 5680910336}},
    "hunyuanvideo": {"text_flops": 4977375252480.0, "attention_flops": 5.225226235281408e+17,
                     "dense_flops": 8.09069868220416e+16, "elements": 1097220180551.2129,
                     "vae_flops": 2999972184883200.0, "denoise_calls": 50, "expert_steps": (50,),
                     "params": {"transformer": 12821012544, "vae": 246478803, "text_encoder": 7505186816,
                                "text_encoder_2": 123060480}},
    "cogvideox-2b": {"text_flops": 4226150301696.0, "attention_flops": 7280321495040000.0,
                     "dense_flops": 4719409646796800.0, "elements": 102389760000.0,
                     "vae_flops": 315027947520000.0, "denoise_calls": 100, "expert_steps": (50,),
                     "params": {"transformer": 1693783872, "vae": 215583907, "text_encoder": 4762310656}},
    "wan2.2-t2v-a14b": {"text_flops": 9689446219776.0, "attention_flops": 1.885492740096e+17,
                        "dense_flops": 7.23881896706048e+16, "elements": 621408813239.4493,
                        "vae_flops": 639218375884800.0, "denoise_calls": 40, "expert_steps": (7, 13),
                        "params": {"transformer": 14288491584, "transformer_2": 14288491584, "vae": 126892531,
                                   "text_encoder": 5680910336}},
}


# Wan2.2-A14B at its own setting (1280x720, 81 frames, 40 steps), counted 2026-12-07: every denoiser figure is twice the
# 20-step one above (the same passes, twice as many), and the experts split the steps 13 / 27 at boundary 0.875.
A14B_40_STEPS = {**GOLDEN["wan2.2-t2v-a14b"], "attention_flops": 3.770985480192e+17, "dense_flops": 1.447763793412096e+17,
                 "elements": 1242817626478.8987, "denoise_calls": 80, "expert_steps": (13, 27)}


# Wan2.1-1.3B at the other clip kinds tests/test_demand.py costs (count_work, 2026-12-07): a 10 s clip (161 frames)
# and a 4-step kind without guidance.
DEMAND_KINDS = [
    ({'fps': 16, 'guidance_scale': 5.0, 'guidance_scale_2': None, 'height': 480, 'max_sequence_length': 512, 'num_frames': 161, 'steps': 50, 'width': 832},
     {'attention_flops': 7.600673193984e+16, 'denoise_calls': 100, 'dense_flops': 1.60133603917824e+16, 'elements': 295904976630.4982, 'expert_steps': (50,), 'params': {'transformer': 1418996800, 'vae': 126892531, 'text_encoder': 5680910336}, 'text_flops': 9689446219776.0, 'vae_flops': 546352214753280.0}),
    ({'fps': 16, 'guidance_scale': 1.0, 'guidance_scale_2': None, 'height': 480, 'max_sequence_length': 512, 'num_frames': 81, 'steps': 4, 'width': 832},
     {'attention_flops': 803628358041600.0, 'denoise_calls': 4, 'dense_flops': 328378793066496.0, 'elements': 6085326181.771766, 'expert_steps': (4,), 'params': {'transformer': 1418996800, 'vae': 126892531, 'text_encoder': 5680910336}, 'text_flops': 4844723109888.0, 'vae_flops': 275352205639680.0}),
]


def _golden_20_steps() -> dict:
    """Wan2.1-1.3B at 20 steps: every denoiser figure 20/50 of the 50-step one (the same passes, fewer of them)."""
    g = dict(GOLDEN["wan2.1-t2v-1.3b"])
    for k in ("attention_flops", "dense_flops", "elements"):
        g[k] *= 20 / 50
    return {**g, "denoise_calls": 40, "expert_steps": (20,)}


def seed_work_cache() -> None:
    """The golden split written into this session's cache (conftest gives every session its own)."""
    path = flops.cache_dir() / predict_work.CACHE_FILE
    entries = flops.read_cache(path)
    seeded = [(n, SETTINGS[n], GOLDEN[n]) for n in GOLDEN] + [("wan2.1-t2v-1.3b", {"steps": 20}, _golden_20_steps()),
                                                              ("wan2.2-t2v-a14b", {}, A14B_40_STEPS)]
    seeded += [("wan2.1-t2v-1.3b", settings, work) for settings, work in DEMAND_KINDS]
    for name, overrides, fields in seeded:
        spec = load_spec(name)
        entries[predict_work._key(spec, spec.settings.replace(**overrides))] = {**fields,
                                                                                 "expert_steps": list(fields["expert_steps"])}
    flops.write_cache(path, entries)
    _seed_flops_cache()


def _seed_flops_cache() -> None:
    """tests/data/flops-golden.json into the session's FLOP cache, under the key bench.analysis.flops.cached_flops
    computes (its entries were counted by count_flops; other library versions only mean counting again)."""
    path = flops.cache_dir() / "flops.json"
    entries = flops.read_cache(path)
    for row in json.loads(FLOPS_GOLDEN.read_text(encoding="utf-8"))["entries"]:
        entries[flops.cache_key(load_spec(row["spec"]), Settings(**row["settings"]))] = row["flops"]
    flops.write_cache(path, entries)
