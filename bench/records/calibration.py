"""Calibration records: what `t2vbench calibrate` measured of a model's own parts, on one device, in seconds.

A stacked component (the denoiser, each expert of a two-expert model, each text encoder) is built from its spec's
config with 1 and with 2 blocks of each of its kinds of block, random weights, at the model's real input shapes. The
2-block build is timed with hooks that synchronize the device around every block and every attention module inside
it, so each repeat gives the whole forward, each block, and each block's attention; the rest of the forward
(embeddings, head) is the forward less its blocks. Both builds are also timed without hooks, and their difference is
a second figure for one block of each kind (the difference method), kept as a check. One forward of the whole model
is predicted as rest + the sum over its kinds of layers x block; the whole model is never built, so models whose
single block fits where the whole does not can be calibrated.

Frozen, strict, versioned, validated on load (every figure recomputed from its raw repeats), written atomically and
never overwritten, like result records (bench.records.schema); a file of another kind or version is refused in one
line, and `matching` refuses one made on another hardware class, dtype or set of serving options than asked.

Versions (bump CALIBRATION_VERSION for every change; add an update step if old files must still load):
  1  first version: spec, settings, device, dtype, options, hardware class, environment; per stack the raw repeats
     (hooked forward, blocks, attention) and plain forwards of the 1- and 2-block builds, with medians; one VAE
     decode of the real latent.
  2  block kinds: a stack has one or two kinds of block (HunyuanVideo's double-stream `transformer_blocks` and
     single-stream `single_transformer_blocks`), each with its module path, count, weights and medians, and each
     sample times every kind's blocks; the text encoders are a list (HunyuanVideo has a Llama and a CLIP).
     update_to_2 migrates a v1 file (one kind per stack; its text encoder the list's one).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from bench.core import metrics
from bench.core.errors import UsageError
from bench.core.files import write_atomic
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.records.fields import HardwareClassName, OptionName, OptionValue, Slug, Strict, Text
from bench.records.io import field_error
from bench.records.schema import DETAIL_KEYS, GenerationSettings, SpecRef

CALIBRATION_VERSION = 2
KIND = "calibration"
MAX_CALIBRATION_BYTES = 4 * 1024 * 1024  # calibrations come from strangers: bound what we parse
MAX_REPEATS = 1000
BUILT_BLOCKS = 2  # the hooked build; the difference method also builds 1
MAX_KINDS = 2  # kinds of block in one stack (HunyuanVideo: double- and single-stream)
_REL = 1e-9  # stored figures must equal their recomputation up to float rounding
DIFFERENCE_TOLERANCE = 0.25  # the difference method's block may stray this far from the hooked one before a warning

Seconds = Annotated[float, Field(ge=0, le=1e7)]
PositiveSeconds = Annotated[float, Field(gt=0, le=1e7)]
Bytes = Annotated[int, Field(ge=0, le=2**50)]
Repeats = Annotated[list[PositiveSeconds], Field(min_length=1, max_length=MAX_REPEATS)]
Shape = Annotated[list[Annotated[int, Field(ge=1, le=10**7)]], Field(min_length=1, max_length=8)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,100}$")]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL, abs_tol=1e-12)


Timings = Annotated[list[PositiveSeconds], Field(min_length=BUILT_BLOCKS, max_length=BUILT_BLOCKS)]
AttentionTimings = Annotated[list[Seconds], Field(min_length=BUILT_BLOCKS, max_length=BUILT_BLOCKS)]


class Sample(Strict):
    """One hooked forward of the 2-block build: the whole forward, and per kind of block each block and the
    attention inside it ([kind][block], kinds in the Stack's order)."""

    forward_s: PositiveSeconds
    block_s: Annotated[list[Timings], Field(min_length=1, max_length=MAX_KINDS)]
    attention_s: Annotated[list[AttentionTimings], Field(min_length=1, max_length=MAX_KINDS)]

    @model_validator(mode="after")
    def _nested(self) -> Sample:
        """Attention runs inside its block and blocks inside the forward, so neither can take longer."""
        if len(self.attention_s) != len(self.block_s):
            raise ValueError("attention_s and block_s give different numbers of kinds of block")
        for attention, blocks in zip(self.attention_s, self.block_s):
            if any(a > b * (1 + _REL) for a, b in zip(attention, blocks)):
                raise ValueError("a block's attention took longer than the block")
        if sum(map(sum, self.block_s)) > self.forward_s * (1 + _REL):
            raise ValueError("the blocks took longer than the forward they ran in")
        return self

    @property
    def rest_s(self) -> float:
        return max(0.0, self.forward_s - sum(map(sum, self.block_s)))


class BlockKind(Strict):
    """One kind of block of a stack: where its blocks are, how many the model has, and what one costs (medians over
    the repeats of the mean over the built blocks, recomputed on load)."""

    blocks: Identifier  # the ModuleList's path: blocks, transformer_blocks, single_transformer_blocks, encoder.block
    layers: Annotated[int, Field(ge=1, le=10000)]  # the model's own count of this kind
    attention_modules: Annotated[list[Identifier], Field(min_length=1, max_length=8)]  # timed as attention
    block_weights_bytes: Bytes
    block_s: PositiveSeconds
    attention_s: Seconds
    other_s: Seconds  # block_s - attention_s: norms, feed-forward, modulation


class Stack(Strict):
    """A component made of blocks of one or two kinds, timed on builds of 1 and 2 blocks of each kind (seconds per
    forward)."""

    component: Identifier  # its name in the spec: transformer, transformer_2, text_encoder, text_encoder_2
    class_name: Identifier
    calls: Annotated[int, Field(ge=1, le=64)]  # forwards per step (denoiser) or per video (text encoder)
    input_shape: Shape  # of its main input, batch first, as its pipeline shapes it
    kinds: Annotated[list[BlockKind], Field(min_length=1, max_length=MAX_KINDS)]
    rest_weights_bytes: Bytes
    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_REPEATS)]
    plain_1_block_s: Repeats  # forwards of the build with 1 block of each kind, without hooks
    plain_2_blocks_s: Repeats  # and of the build with 2 of each
    rest_s: Seconds  # embeddings and head: the forward less its blocks (median, recomputed on load)

    @model_validator(mode="after")
    def _figures_recompute(self) -> Stack:
        if any(len(x.block_s) != len(self.kinds) for x in self.samples):
            raise ValueError(f"a sample times {len(self.samples[0].block_s)} kinds of block, the stack has "
                             f"{len(self.kinds)}")
        expected = stack_figures(self.samples)
        if not _close(self.rest_s, expected["rest_s"]):
            raise ValueError(f"rest_s {self.rest_s} does not follow from the samples ({expected['rest_s']})")
        for kind, figures in zip(self.kinds, expected["kinds"]):
            for name, value in figures.items():
                if not _close(getattr(kind, name), value):
                    raise ValueError(f"{kind.blocks} {name} {getattr(kind, name)} does not follow from the samples "
                                     f"({value})")
        return self

    def forward_s(self, layers: Sequence[int] | None = None) -> float:
        """One forward of the model with `layers` blocks of each kind (default: its own): rest + the sum over kinds
        of layers x block, in seconds."""
        counts = [k.layers for k in self.kinds] if layers is None else layers
        return self.rest_s + sum(n * k.block_s for n, k in zip(counts, self.kinds, strict=True))

    @property
    def predicted_s(self) -> float:
        """calls x one whole forward: a denoising step of this expert, or the text encoding of one video."""
        return self.calls * self.forward_s()

    @property
    def blocks_s(self) -> float:
        """One block of each kind by the hooks: what the difference method measures too."""
        return sum(k.block_s for k in self.kinds)

    @property
    def block_by_difference_s(self) -> float:
        """The 2-block build's plain forward less the 1-block build's (medians): one block of each kind; noisy where
        a block is short."""
        return statistics.median(self.plain_2_blocks_s) - statistics.median(self.plain_1_block_s)

    @property
    def whole_weights_bytes(self) -> int:
        return self.rest_weights_bytes + sum(k.layers * k.block_weights_bytes for k in self.kinds)


def stack_figures(samples: Sequence[Sample]) -> dict[str, Any]:
    """The medians a Stack stores: per kind of block, per repeat the mean of its blocks and of their attention
    ({"kinds": [{"block_s", "attention_s", "other_s"}, ...]}), and the rest ("rest_s")."""
    kinds = []
    for k in range(len(samples[0].block_s)):
        block = statistics.median(statistics.fmean(s.block_s[k]) for s in samples)
        attention = statistics.median(statistics.fmean(s.attention_s[k]) for s in samples)
        kinds.append({"block_s": block, "attention_s": attention, "other_s": max(0.0, block - attention)})
    return {"kinds": kinds, "rest_s": statistics.median(s.rest_s for s in samples)}


class VaeDecode(Strict):
    class_name: Identifier
    latent_shape: Shape
    weights_bytes: Bytes
    samples_s: Repeats
    decode_s: PositiveSeconds  # median of samples_s

    @model_validator(mode="after")
    def _median(self) -> VaeDecode:
        if not _close(self.decode_s, statistics.median(self.samples_s)):
            raise ValueError(f"decode_s {self.decode_s} is not the median of samples_s")
        return self


def quality_warnings(stacks: list[Stack], vae: VaeDecode, repeats: int) -> list[str]:
    """A weak calibration said so: too few repeats, spread above metrics.MAX_REL_STDEV, and a difference-method
    block that strays from the hooked one (hook overhead, or noise on a short block)."""
    out = []
    if repeats < metrics.MIN_GENERATIONS:
        out.append(f"only {repeats} repeat(s): use --repeats {metrics.MIN_GENERATIONS} or more for figures you "
                   "can trust")
    series = {f"{s.component} forward": [x.forward_s for x in s.samples] for s in stacks}
    series["vae decode"] = vae.samples_s
    for name, values in series.items():
        spread = statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0
        if spread > metrics.MAX_REL_STDEV:
            out.append(f"{name} spread {spread:.0%} (relative stdev) is above {metrics.MAX_REL_STDEV:.0%}: the "
                       "machine may be busy or throttling; rerun with more --repeats")
    for s in stacks:
        if abs(s.block_by_difference_s - s.blocks_s) > DIFFERENCE_TOLERANCE * s.blocks_s:
            one = "one block" if len(s.kinds) == 1 else "one block of each kind"
            out.append(f"{s.component}: {one} is {s.blocks_s:.4g} s by hooks but {s.block_by_difference_s:.4g} s "
                       "by the difference of the 1- and 2-block builds: the block is short against the timing "
                       "noise, or the hooks' synchronizations cost time; rerun with more --repeats")
    return out


class CalibrationSettings(GenerationSettings):
    device: Annotated[str, Field(max_length=50)]
    dtype: Slug
    options: Annotated[dict[OptionName, OptionValue], Field(max_length=64)]  # serving options as applied
    repeats: Annotated[int, Field(ge=1, le=MAX_REPEATS)]
    warmup: Annotated[int, Field(ge=0, le=100)]


class CalibrationRecord(Strict):
    schema_version: Literal[2]
    kind: Literal["calibration"]
    t2vbench_version: Annotated[str, Field(max_length=50)]
    command: Annotated[list[Text], Field(max_length=200)]
    calibration_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8,32}$")]
    created_utc: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
    spec: SpecRef
    settings: CalibrationSettings
    weights: Literal["random"]
    hardware_class: HardwareClassName
    environment: dict[str, Text | int | None]
    denoisers: Annotated[list[Stack], Field(min_length=1, max_length=2)]  # two-expert models: both, in step order
    text_encoders: Annotated[list[Stack], Field(min_length=1, max_length=2)]  # text_encoder, then text_encoder_2
    vae_decode: VaeDecode
    warnings: Annotated[list[Text], Field(max_length=1000)]

    @property
    def whole_weights_bytes(self) -> int:
        """The weights of the whole model at the calibrated dtype (never built: rest + layers x block per stack)."""
        return (sum(d.whole_weights_bytes for d in [*self.denoisers, *self.text_encoders])
                + self.vae_decode.weights_bytes)

    @property
    def text_encode_s(self) -> float:
        """The text encoding of one video: every text encoder's calls x forward, in seconds."""
        return sum(t.predicted_s for t in self.text_encoders)


def comparable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as they decide what a part costs: set ones only, without those that merely describe others."""
    return {k: v for k, v in options.items() if v not in (None, False) and k not in DETAIL_KEYS}


def matching(calibration: CalibrationRecord, hardware_class: str, dtype: str, options: Mapping[str, Any],
             spec_name: str | None = None) -> str | None:
    """Why this calibration cannot stand for the asked class, dtype, serving options (and model), as one line; None
    when it can. Options compare as `comparable_options`."""
    c, where = calibration, f"calibration {calibration.calibration_id}"
    if spec_name is not None and c.spec.name != spec_name:
        return f"{where} is of {c.spec.name}, not {spec_name}: calibrate {spec_name}"
    if c.hardware_class != hardware_class:
        return f"{where} was made on {c.hardware_class}, not {hardware_class}: calibrate on {hardware_class}"
    if c.settings.dtype != dtype:
        return f"{where} was made in {c.settings.dtype}, not {dtype}: calibrate with --dtype {dtype}"
    have, want = comparable_options(c.settings.options), comparable_options(options)
    if have != want:
        return f"{where} was made with options {_shown(have)}, not {_shown(want)}: calibrate with those options"
    return None


def _shown(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "plain"


def require_matching(calibration: CalibrationRecord, hardware_class: str, dtype: str, options: Mapping[str, Any],
                     spec_name: str | None = None) -> None:
    """`matching` as a refusal. Raises UsageError with its line."""
    reason = matching(calibration, hardware_class, dtype, options, spec_name)
    if reason is not None:
        raise UsageError(reason)


V1_BLOCKS = {"WanTransformer3DModel": "blocks", "UMT5EncoderModel": "encoder.block"}  # the classes v1 cut


def _stack_to_2(stack: Any) -> Any:
    """A v1 stack as v2: its one kind of block, its samples' blocks and attention as that kind's."""
    if not isinstance(stack, dict):
        return stack
    out = {k: v for k, v in stack.items() if k not in ("layers", "attention_modules", "block_weights_bytes",
                                                        "block_s", "attention_s", "other_s")}
    kind = {k: stack[k] for k in ("layers", "attention_modules", "block_weights_bytes", "block_s", "attention_s",
                                  "other_s") if k in stack}
    out["kinds"] = [{"blocks": V1_BLOCKS.get(str(stack.get("class_name")), "blocks"), **kind}]
    samples = stack.get("samples")
    if isinstance(samples, list):
        out["samples"] = [{**x, "block_s": [x.get("block_s")], "attention_s": [x.get("attention_s")]}
                          if isinstance(x, dict) else x for x in samples]
    return out


def update_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: every v1 stack has one kind of block (Wan's `blocks`, UMT5's `encoder.block`), and its one text
    encoder becomes the list's one. Figures are moved, never recomputed: a forged one is still caught."""
    out = {k: v for k, v in data.items() if k != "text_encoder"}
    out["schema_version"] = 2
    if isinstance(data.get("denoisers"), list):
        out["denoisers"] = [_stack_to_2(d) for d in data["denoisers"]]
    if "text_encoder" in data:
        out["text_encoders"] = [_stack_to_2(data["text_encoder"])]
    return out


MIGRATIONS = {1: update_to_2}  # version N -> the step that makes it N + 1


def _v2_field(data: dict[str, Any]) -> str | None:
    """A field version 2 introduced ('text_encoders'; a stack's 'kinds'), where a version-1 file holds one: the
    migration would overwrite or keep it unseen, so a file claiming 1 with it was edited."""
    if "text_encoders" in data:
        return "text_encoders"
    stacks = [*(data.get("denoisers") or []), data.get("text_encoder")]
    return "kinds" if any(isinstance(x, dict) and "kinds" in x for x in stacks) else None


def parse_calibration(text: str | bytes, origin: str = "calibration") -> CalibrationRecord:
    """Parse, migrate and validate a calibration record. Raises UsageError naming the field and the fix."""
    data = loads_strict(text, origin)
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"{origin}: not a calibration record (no \"kind\": \"{KIND}\"); give a file that "
                         "t2vbench calibrate wrote")
    version = data.get("schema_version")
    known = isinstance(version, int) and not isinstance(version, bool)
    if not known or not (min(MIGRATIONS) <= version <= CALIBRATION_VERSION):
        newer = known and version > CALIBRATION_VERSION
        fix = "upgrade t2vbench" if newer else "calibrate again with this t2vbench"
        raise UsageError(f"{origin}: calibration schema_version {str(version)[:20]} is not one this t2vbench "
                         f"reads (1 to {CALIBRATION_VERSION}); {fix}")
    if version == 1 and (newer_field := _v2_field(data)) is not None:  # as records.io refuses for result records
        raise UsageError(f"{origin}: calibration schema_version 1 with '{newer_field}', which version 2 introduced: "
                         "the version was edited; give the file as t2vbench calibrate wrote it")
    while data["schema_version"] < CALIBRATION_VERSION:
        data = MIGRATIONS[data["schema_version"]](data)
    try:
        return CalibrationRecord.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc, origin, "calibration") from None


def load_calibration(path: str | Path) -> CalibrationRecord:
    """Load a calibration file strictly: bounded size, strict JSON, schema, figures recomputed. Raises UsageError."""
    path = Path(path)
    return parse_calibration(read_bounded(path, MAX_CALIBRATION_BYTES, "calibration"), str(path))


def calibration_json(record: CalibrationRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def write_calibration(path: Path, record: CalibrationRecord) -> Path:
    """Write atomically, group-readable, never over an existing file (raises FileExistsError)."""
    return write_atomic(path, calibration_json(record))
