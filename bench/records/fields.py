"""The value types every stored document shares (result records, journals, calibrations, references): strict,
frozen models that refuse unknown fields, NaN and coercion, and bounded numbers and strings, since these files come
from strangers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Seconds = Annotated[float, Field(ge=0, le=1e7)]
Joules = Annotated[float, Field(ge=0, le=1e12)]
Watts = Annotated[float, Field(ge=0, le=1e5)]
MHz = Annotated[float, Field(ge=0, le=1e5)]
Text = Annotated[str, Field(max_length=4096)]
# Names that end up in file names and registry paths: a safe slug, never a path.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
HardwareClassName = Annotated[str, Field(pattern=r"^(cpu:)?[a-z0-9][a-z0-9.-]{0,150}$")]
Seed = Annotated[int, Field(ge=-2**63, lt=2**64)]  # torch's manual_seed range; warm-up seeds count down from seed-1
OptionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
OptionValue = Annotated[str, Field(max_length=200)] | int | float | bool | None
Step = Annotated[int, Field(ge=0, le=9999)]  # a denoising step's index
