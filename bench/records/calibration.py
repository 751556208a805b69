"""Calibration records: what `t2vbench calibrate` measured of a model's own parts, on one device, in seconds.

A stacked component (the denoiser, each expert of a two-expert model, the text encoder) is built from its spec's
config with 1 and with 2 of its blocks, random weights, at the model's real input shapes. The 2-block build is timed
with hooks that synchronize the device around every block and every attention module inside it, so each repeat gives
the whole forward, each block, and each block's attention; the rest of the forward (embeddings, head) is the forward
less its blocks. Both builds are also timed without hooks, and their difference is a second figure for one block
(the difference method), kept as a check. One forward of the whole model is predicted as rest + layers x block; the
whole model is never built, so models whose single block fits where the whole does not can be calibrated.

Frozen, strict, versioned, validated on load (every figure recomputed from its raw repeats), written atomically and
never overwritten, like result records (bench.records.schema); a file of another kind or version is refused in one
line, and `matching` refuses one made on another hardware class, dtype or set of serving options than asked.

Versions (bump CALIBRATION_VERSION for every change; add an update step if old files must still load):
  1  first version: spec, settings, device, dtype, options, hardware class, environment; per stack the raw repeats
     (hooked forward, blocks, attention) and plain forwards of the 1- and 2-block builds, with medians; one VAE
     decode of the real latent.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.core import metrics
from bench.core.errors import UsageError
from bench.core.files import write_atomic
from bench.core.jsonsafe import loads_strict, read_bounded
from bench.records.io import field_error
from bench.records.schema import (
    DETAIL_KEYS,
    GenerationSettings,
    HardwareClassName,
    OptionName,
    OptionValue,
    Slug,
    SpecRef,
    Text,
)

CALIBRATION_VERSION = 1
KIND = "calibration"
MAX_CALIBRATION_BYTES = 4 * 1024 * 1024  # calibrations come from strangers: bound what we parse
MAX_REPEATS = 1000
BUILT_BLOCKS = 2  # the hooked build; the difference method also builds 1
_REL = 1e-9  # stored figures must equal their recomputation up to float rounding
DIFFERENCE_TOLERANCE = 0.25  # the difference method's block may stray this far from the hooked one before a warning

Seconds = Annotated[float, Field(ge=0, le=1e7)]
PositiveSeconds = Annotated[float, Field(gt=0, le=1e7)]
Bytes = Annotated[int, Field(ge=0, le=2**50)]
Repeats = Annotated[list[PositiveSeconds], Field(min_length=1, max_length=MAX_REPEATS)]
Shape = Annotated[list[Annotated[int, Field(ge=1, le=10**7)]], Field(min_length=1, max_length=8)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,100}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL, abs_tol=1e-12)


class Sample(_Strict):
    """One hooked forward of the 2-block build: the whole forward, each block, and the attention inside each."""

    forward_s: PositiveSeconds
    block_s: Annotated[list[PositiveSeconds], Field(min_length=BUILT_BLOCKS, max_length=BUILT_BLOCKS)]
    attention_s: Annotated[list[Seconds], Field(min_length=BUILT_BLOCKS, max_length=BUILT_BLOCKS)]

    @model_validator(mode="after")
    def _nested(self) -> Sample:
        """Attention runs inside its block and blocks inside the forward, so neither can take longer."""
        if any(a > b * (1 + _REL) for a, b in zip(self.attention_s, self.block_s)):
            raise ValueError("a block's attention took longer than the block")
        if sum(self.block_s) > self.forward_s * (1 + _REL):
            raise ValueError("the blocks took longer than the forward they ran in")
        return self

    @property
    def rest_s(self) -> float:
        return max(0.0, self.forward_s - sum(self.block_s))


class Stack(_Strict):
    """A component made of `layers` alike blocks, timed on builds of 1 and 2 of them (seconds per forward)."""

    component: Identifier  # its name in the spec: transformer, transformer_2, text_encoder
    class_name: Identifier
    layers: Annotated[int, Field(ge=1, le=10000)]  # the model's own block count
    calls: Annotated[int, Field(ge=1, le=64)]  # forwards per step (denoiser) or per video (text encoder)
    input_shape: Shape  # of its main input, batch first, as its pipeline shapes it
    attention_modules: Annotated[list[Identifier], Field(min_length=1, max_length=8)]  # timed as attention
    block_weights_bytes: Bytes
    rest_weights_bytes: Bytes
    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_REPEATS)]
    plain_1_block_s: Repeats  # forwards of the 1-block build without hooks
    plain_2_blocks_s: Repeats  # and of the 2-block build
    # Medians over the repeats, recomputed on load:
    block_s: PositiveSeconds
    attention_s: Seconds
    other_s: Seconds  # block_s - attention_s: norms, feed-forward, modulation
    rest_s: Seconds  # embeddings and head: the forward less its blocks

    @model_validator(mode="after")
    def _figures_recompute(self) -> Stack:
        expected = stack_figures(self.samples)
        for name, value in expected.items():
            if not _close(getattr(self, name), value):
                raise ValueError(f"{name} {getattr(self, name)} does not follow from the samples ({value})")
        return self

    def forward_s(self, layers: int | None = None) -> float:
        """One forward of the model with `layers` blocks (default: its own): rest + layers x block, in seconds."""
        return self.rest_s + (self.layers if layers is None else layers) * self.block_s

    @property
    def predicted_s(self) -> float:
        """calls x one whole forward: a denoising step of this expert, or the text encoding of one video."""
        return self.calls * self.forward_s()

    @property
    def block_by_difference_s(self) -> float:
        """The 2-block build's plain forward less the 1-block build's (medians); noisy where a block is short."""
        return statistics.median(self.plain_2_blocks_s) - statistics.median(self.plain_1_block_s)

    @property
    def whole_weights_bytes(self) -> int:
        return self.rest_weights_bytes + self.layers * self.block_weights_bytes


def stack_figures(samples: Sequence[Sample]) -> dict[str, float]:
    """The medians a Stack stores: per repeat the mean of its blocks and of their attention, and the rest."""
    block = statistics.median(statistics.fmean(s.block_s) for s in samples)
    attention = statistics.median(statistics.fmean(s.attention_s) for s in samples)
    return {"block_s": block, "attention_s": attention, "other_s": max(0.0, block - attention),
            "rest_s": statistics.median(s.rest_s for s in samples)}


class VaeDecode(_Strict):
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
        if abs(s.block_by_difference_s - s.block_s) > DIFFERENCE_TOLERANCE * s.block_s:
            out.append(f"{s.component}: one block is {s.block_s:.4g} s by hooks but {s.block_by_difference_s:.4g} s "
                       "by the difference of the 1- and 2-block builds: the block is short against the timing "
                       "noise, or the hooks' synchronizations cost time; rerun with more --repeats")
    return out


class CalibrationSettings(GenerationSettings):
    device: Annotated[str, Field(max_length=50)]
    dtype: Slug
    options: Annotated[dict[OptionName, OptionValue], Field(max_length=64)]  # serving options as applied
    repeats: Annotated[int, Field(ge=1, le=MAX_REPEATS)]
    warmup: Annotated[int, Field(ge=0, le=100)]


class CalibrationRecord(_Strict):
    schema_version: Literal[1]
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
    text_encoder: Stack
    vae_decode: VaeDecode
    warnings: Annotated[list[Text], Field(max_length=1000)]

    @property
    def whole_weights_bytes(self) -> int:
        """The weights of the whole model at the calibrated dtype (never built: rest + layers x block per stack)."""
        return (sum(d.whole_weights_bytes for d in self.denoisers) + self.text_encoder.whole_weights_bytes
                + self.vae_decode.weights_bytes)


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


def parse_calibration(text: str | bytes, origin: str = "calibration") -> CalibrationRecord:
    """Parse and validate a calibration record. Raises UsageError naming the field and the fix."""
    data = loads_strict(text, origin)
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"{origin}: not a calibration record (no \"kind\": \"{KIND}\"); give a file that "
                         "t2vbench calibrate wrote")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != CALIBRATION_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > CALIBRATION_VERSION
        fix = "upgrade t2vbench" if newer else "calibrate again with this t2vbench"
        raise UsageError(f"{origin}: calibration schema_version {str(version)[:20]} is not the one this t2vbench "
                         f"reads ({CALIBRATION_VERSION}); {fix}")
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
