"""`t2vbench calibrate MODEL`: time a model's own parts at its own shapes, with random weights, on one device.

The denoiser (each expert of a two-expert model) and each text encoder are built from the spec's config with 1 and
with 2 blocks of each kind of block they have (HunyuanVideo's transformer has two kinds: double- and single-stream),
never the whole model, so a model calibrates wherever one of its blocks fits. Each runs at the input shapes its
pipeline would give it at the chosen settings (bench.run.calibrate_shapes: the latent, guidance as two calls or a
batch of 2, the text lengths). The VAE is built whole and decodes one latent of the real shape (VAE tiling, a
serving option, is not modelled). Every timed call follows a warm-up and is bracketed by device synchronization;
what is measured and how it is kept: bench.records.calibration.

Families calibrated: those in FAMILIES (Wan 2.1 and 2.2, HunyuanVideo, CogVideoX, LTX-Video); Mochi is refused with
its reason. Serving options: --attention-backend only (regional compilation would compile over the timing hooks;
the others move or quantize weights, which a calibration does not model yet).

torch, diffusers and transformers are imported inside the functions that measure: the CLI imports this module and
must not load torch before a calibration is asked for.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import __version__
from bench.core.errors import UsageError
from bench.core.specs import Settings, Spec, check_settings, load_spec, preset_settings, spec_names
from bench.records.calibration import (
    CALIBRATION_VERSION,
    MAX_REPEATS,
    BlockKind,
    CalibrationRecord,
    CalibrationSettings,
    Sample,
    Stack,
    VaeDecode,
    quality_warnings,
    stack_figures,
    write_calibration,
)
from bench.records.schema import SpecRef
from bench.run import environment
from bench.run.calibrate_shapes import (
    FAMILIES,
    REFUSED,
    STACKS,
    Geometry,
    Kind,
    blocks_of,
    denoiser_call,
    geometry,
    guided,
    text_encoders,
    text_inputs,
)
from bench.run.runner import DEFAULT_OUT, DEVICES, DTYPES, check_out_dir

__all__ = ["FAMILIES", "CalibrateConfig", "Calibration", "calibrate", "prepare"]

DEFAULT_REPEATS = 3
WARMUP = 1  # untimed calls before each build's timed ones (CUDA context, kernel choice, allocator)
Sync = Callable[[], None]


@dataclasses.dataclass(frozen=True)
class CalibrateConfig:
    model: str
    device: str = "auto"
    dtype: str = "auto"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # Settings field -> value
    preset: str | None = None
    repeats: int = DEFAULT_REPEATS
    attention_backend: str | None = None
    out_dir: Path = DEFAULT_OUT
    command: tuple[str, ...] = ()
    progress: Callable[[str], None] | None = None  # told each part as it starts (a large model takes minutes per part)


@dataclasses.dataclass(frozen=True)
class Calibration:
    record: CalibrationRecord
    path: Path


def prepare(config: CalibrateConfig) -> tuple[Spec, Settings]:
    """Check every input before anything is built or written. Raises UsageError (one line, the value, the fix)."""
    spec = load_spec(config.model)
    if spec.family not in FAMILIES:
        why = f": {REFUSED[spec.family]}" if spec.family in REFUSED else " yet"
        models = ", ".join(n for n in spec_names() if load_spec(n).family in FAMILIES and not load_spec(n).tiny)
        raise UsageError(f"calibrate does not support the {spec.family} family ({spec.name}){why}; families "
                         f"calibrated: {', '.join(FAMILIES)} ({models}); use t2vbench run {spec.name}")
    settings = preset_settings(spec, config.preset).replace(**config.overrides)
    check_settings(spec, settings)
    if not 1 <= config.repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats {config.repeats}: time each part 1 to {MAX_REPEATS} times")
    if config.dtype not in DTYPES:
        raise UsageError(f"--dtype {config.dtype}: use {', '.join(DTYPES)}")
    if not (config.device in DEVICES or (config.device.startswith("cuda:") and config.device[5:].isdigit())):
        raise UsageError(f"--device {config.device}: use auto, cpu, cuda or cuda:N")
    check_out_dir(config.out_dir)
    return spec, settings


def calibrate(config: CalibrateConfig) -> Calibration:
    """Time the model's parts and write the calibration record into config.out_dir. Raises UsageError for bad input
    and for a part that does not fit the device even at 2 blocks (nothing is written then)."""
    import torch

    from bench.run import serving
    from bench.run.build import DTYPES as TORCH_DTYPES
    from bench.run.build import resolve_class
    from bench.run.options import Options
    from bench.run.preflight import dtype_for, resolve_device

    spec, settings = prepare(config)
    device = resolve_device(config.device)
    dtype_name = dtype_for(config.dtype, device)
    options = Options(attention_backend=config.attention_backend)
    serving.check_installed(options, resolve_class(spec.components[spec.denoiser]["class"]), device)
    env = environment.describe(device)
    sync: Sync = (lambda: torch.cuda.synchronize(device)) if device != "cpu" else (lambda: None)
    part = _Part(spec, settings, device, TORCH_DTYPES[dtype_name], sync, config.repeats, config.attention_backend,
                 config.progress or (lambda line: None))
    part.progress(f"calibrating {spec.name} on {device} ({dtype_name}): the VAE decode, then each text encoder and "
                  "denoiser built with 1 and 2 blocks")
    torch.manual_seed(0)
    try:
        vae = part.vae_decode()
        passes = 2 if guided(spec, settings) else 1  # the negative prompt is encoded apart
        encoders = [part.stack(name, passes, part.text_inputs(name)) for name in text_encoders(spec)]
        denoisers = [part.stack(name, denoiser_call(spec, settings).calls, part.denoiser_inputs())
                     for name in _experts(spec)]
    except torch.OutOfMemoryError as exc:
        raise UsageError(f"{part.current} of {spec.name} did not fit on {device} even with 2 blocks "
                         f"({str(exc).splitlines()[0][:200]}); give smaller --height, --width or --frames") from None
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    record = CalibrationRecord(
        schema_version=CALIBRATION_VERSION, kind="calibration", t2vbench_version=__version__, command=list(config.command),
        calibration_id=uuid.uuid4().hex[:12], created_utc=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        spec=SpecRef(name=spec.name, family=spec.family, pipeline=spec.pipeline, repo_id=spec.repo_id,
                     sha256=spec.sha256, tiny=spec.tiny),
        settings=CalibrationSettings(**dataclasses.asdict(settings), device=device, dtype=dtype_name,
                                     options=_applied(options), repeats=config.repeats, warmup=WARMUP),
        weights="random", hardware_class=_hardware_class(device, env), environment=env, denoisers=denoisers,
        text_encoders=encoders, vae_decode=vae, warnings=quality_warnings([*denoisers, *encoders], vae,
                                                                          config.repeats))
    stem = f"{spec.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{record.calibration_id}.calibration.json"
    return Calibration(record, write_calibration(config.out_dir / stem, record).resolve())


def _experts(spec: Spec) -> list[str]:
    """The denoisers in step order: Wan 2.2 A14B's high-noise `transformer`, then its low-noise `transformer_2`."""
    second = ["transformer_2"] if "transformer_2" in spec.components and spec.denoiser != "transformer_2" else []
    return [spec.denoiser, *second]


def _applied(options: Any) -> dict[str, Any]:
    return {"attention_backend": options.attention_backend} if options.attention_backend else {}


def _hardware_class(device: str, env: dict[str, Any]) -> str:
    """The class a run record on this device gets: from the telemetry backend's device name where it has one (NVML,
    amdsmi), else torch's, so a calibration and a run on one GPU land in one class."""
    if device == "cpu":
        return environment.hardware_class(str(env["device_name"]), "cpu")
    import torch

    from bench import telemetry

    props = torch.cuda.get_device_properties(torch.device(device))
    uuid_ = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
    name = str(env["device_name"])
    try:
        backend = telemetry.open_backend("auto", device, uuid_, None, is_rocm=bool(torch.version.hip))
    except telemetry.TelemetryUnavailable:
        return environment.hardware_class(name, "gpu")
    try:
        return environment.hardware_class(str((backend.static_info() or {}).get("name") or name), "gpu")
    finally:
        backend.close()


@dataclasses.dataclass(frozen=True)
class _Build:
    """What one build of a stacked component measured."""

    input_shape: list[int]  # of its main input
    weights_bytes: int
    block_weights_bytes: list[int]  # one block of each kind
    plain_s: list[float]
    samples: list[Sample]


class _Part:
    """Builds and times one part after another, keeping only one on the device at a time."""

    def __init__(self, spec: Spec, settings: Settings, device: str, dtype: Any, sync: Sync, repeats: int,
                 attention_backend: str | None, progress: Callable[[str], None]):
        self.spec, self.settings, self.device, self.dtype = spec, settings, device, dtype
        self.sync, self.repeats, self.attention_backend = sync, repeats, attention_backend
        self.progress = progress
        self.current = "the VAE"
        self.geometry: Geometry = geometry(spec, settings)

    def vae_decode(self) -> VaeDecode:
        """One decode of the real latent."""
        self.progress(f"timing the VAE decode of a {'x'.join(map(str, self.geometry.latent))} latent")
        result = self._decode()
        _free(self.device)  # the VAE went with _decode's frame
        return result

    def _decode(self) -> VaeDecode:
        import torch

        from bench.run.build import build_component

        vae = build_component(self.spec.components["vae"], self.device, self.dtype)
        z = torch.randn(1, *self.geometry.latent, device=self.device, dtype=self.dtype)
        # LTX 0.9.1+ decodes conditioned on a timestep (LTXPipeline's decode_timestep, 0 unless given)
        extra = [torch.zeros(1, device=self.device, dtype=self.dtype)] \
            if vae.config.get("timestep_conditioning") else []
        samples = _timed(lambda: vae.decode(z, *extra, return_dict=False), self.sync, self.repeats)
        return VaeDecode(class_name=type(vae).__name__, latent_shape=[1, *self.geometry.latent],
                         weights_bytes=_bytes(vae), samples_s=samples, decode_s=statistics.median(samples))

    def denoiser_inputs(self) -> Callable[[Any], dict[str, Any]]:
        family, batch = FAMILIES[self.spec.family], denoiser_call(self.spec, self.settings).batch
        return lambda config: family.inputs(config, self.geometry, self.settings, self.spec.pipeline_config, batch,
                                            self.device, self.dtype)

    def text_inputs(self, name: str) -> Callable[[Any], dict[str, Any]]:
        class_name = self.spec.components[name]["class"].rpartition(".")[2]
        return lambda config: text_inputs(class_name, config, self.settings, self.device)

    def stack(self, name: str, calls: int, inputs: Callable[[Any], dict[str, Any]]) -> Stack:
        """A stacked component timed on its builds of 1 and 2 blocks of each kind, one build on the device at a
        time."""
        entry = self.spec.components[name]
        class_name = entry["class"].rpartition(".")[2]
        if class_name not in STACKS:
            raise UsageError(f"calibrate cannot cut {name} ({class_name}) into blocks yet; it cuts "
                             f"{', '.join(STACKS)}")
        kinds, layers = STACKS[class_name], _layers(entry, STACKS[class_name])
        self.current = name
        self.progress(f"timing {name} ({class_name}) with 1, then 2 blocks")
        one = self._time_build(entry, kinds, 1, inputs)
        _free(self.device)
        two = self._time_build(entry, kinds, 2, inputs)
        _free(self.device)
        figures = stack_figures(two.samples)
        return Stack(component=name, class_name=class_name, calls=calls, input_shape=two.input_shape,
                     kinds=[BlockKind(blocks=k.blocks, layers=n, attention_modules=list(k.attention),
                                      block_weights_bytes=b, **f)
                            for k, n, b, f in zip(kinds, layers, two.block_weights_bytes, figures["kinds"])],
                     rest_weights_bytes=two.weights_bytes - 2 * sum(two.block_weights_bytes), samples=two.samples,
                     plain_1_block_s=one.plain_s, plain_2_blocks_s=two.plain_s, rest_s=figures["rest_s"])

    def _time_build(self, entry: dict[str, Any], kinds: tuple[Kind, ...], blocks: int,
                    inputs: Callable[[Any], dict[str, Any]]) -> _Build:
        """Plain forwards of a build with `blocks` blocks of each kind, and with 2 hooked ones too."""
        model = self._build(entry, kinds, blocks)
        kwargs = inputs(model.config)
        plain = _timed(lambda: model(**kwargs), self.sync, self.repeats)
        samples = _hooked(model, kinds, kwargs, self.sync, self.repeats) if blocks == 2 else []
        # the last block: T5's first carries the relative position bias, which belongs to the rest
        block_bytes = [_bytes(blocks_of(model, k)[-1]) for k in kinds]
        return _Build(list(next(iter(kwargs.values())).shape), _bytes(model), block_bytes, plain, samples)

    def _build(self, entry: dict[str, Any], kinds: tuple[Kind, ...], blocks: int) -> Any:
        from bench.run.build import build_component

        config = {**entry["config"], **{k.layers_key: blocks for k in kinds}}
        model = build_component({**entry, "config": config}, self.device, self.dtype)
        if self.attention_backend is not None and hasattr(model, "set_attention_backend"):
            model.set_attention_backend(self.attention_backend)
        return model


def _layers(entry: dict[str, Any], kinds: tuple[Kind, ...]) -> list[int]:
    """The whole model's count of each kind of block: counted on a meta-device build, so a count the spec leaves
    to the class's default is the default."""
    import torch

    from bench.run.build import build_component

    model = build_component(entry, "meta", torch.bfloat16)
    return [len(blocks_of(model, k)) for k in kinds]


def _timed(call: Callable[[], Any], sync: Sync, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls after WARMUP untimed ones, the device synchronized around each."""
    import torch

    out = []
    with torch.inference_mode():
        for k in range(WARMUP + repeats):
            sync()
            start = time.perf_counter()
            call()
            sync()
            if k >= WARMUP:
                out.append(time.perf_counter() - start)
    return out


def _hooked(model: Any, kinds: tuple[Kind, ...], kwargs: dict[str, Any], sync: Sync, repeats: int) -> list[Sample]:
    """Hooked forwards: each block of each kind and each attention module inside it, timed between
    synchronizations."""
    import torch

    spent: dict[tuple[str, int, int], float] = {}
    handles = []
    counts = []
    for k, kind in enumerate(kinds):
        blocks = blocks_of(model, kind)
        counts.append(len(blocks))
        for i, block in enumerate(blocks):
            handles += _watch(block, ("block", k, i), spent, sync)
            for path in kind.attention:
                handles += _watch(block.get_submodule(path), ("attention", k, i), spent, sync)
    samples = []
    try:
        with torch.inference_mode():
            for _ in range(repeats):
                spent.clear()
                sync()
                start = time.perf_counter()
                model(**kwargs)
                sync()
                forward_s = time.perf_counter() - start
                samples.append(Sample(
                    forward_s=forward_s,
                    block_s=[[spent[("block", k, i)] for i in range(n)] for k, n in enumerate(counts)],
                    attention_s=[[spent[("attention", k, i)] for i in range(n)] for k, n in enumerate(counts)]))
    finally:
        for handle in handles:
            handle.remove()
    return samples


def _watch(module: Any, key: tuple[str, int, int], spent: dict[tuple[str, int, int], float], sync: Sync) -> list[Any]:
    """Add the seconds spent inside module's forward to spent[key] (several modules may share a key)."""
    started: list[float] = []

    def before(*_: Any) -> None:
        sync()
        started.append(time.perf_counter())

    def after(*_: Any) -> None:
        sync()
        spent[key] = spent.get(key, 0.0) + time.perf_counter() - started.pop()

    return [module.register_forward_pre_hook(before), module.register_forward_hook(after)]


def _bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _free(device: str) -> None:
    """Give back what the last build held (the caller has dropped its references)."""
    import gc

    import torch

    gc.collect()
    if device != "cpu":
        torch.cuda.empty_cache()
