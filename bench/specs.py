"""Model specs: one TOML file per model under models/, loaded into frozen dataclasses.

A spec names the diffusers pipeline class, the hub repo id, every component's architecture config (enough to build
the full-size model with random weights) and the authors' canonical generation settings. Settings a model cannot
take are refused here, before anything is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import sys
from pathlib import Path
from typing import Any

from bench.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODEL = "tiny-wan"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Generation settings: pixels, frames, playback rate (fps), denoising steps and guidance."""

    height: int
    width: int
    num_frames: int
    fps: float
    steps: int
    guidance_scale: float
    max_sequence_length: int

    def replace(self, **overrides: Any) -> Settings:
        """A copy with the non-None overrides applied."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    family: str
    title: str
    pipeline: str
    repo_id: str | None
    tiny: bool
    default_weights: str  # "random" or "hub"
    denoiser: str  # component name of the denoising network
    cfg_doubles_denoiser: bool  # does guidance_scale > 1 run the denoiser twice per step?
    published_params: float | None  # the authors' figure for the denoiser, for the meta-device check
    source: str
    settings: Settings
    frames_multiple: int  # num_frames must be frames_multiple * k + 1
    spatial_multiple: int  # height and width must be multiples of this
    components: dict[str, dict[str, Any]]
    path: Path
    sha256: str


def models_dir() -> Path:
    """The folder of model specs: bench/models inside a wheel, models/ at the top of a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no models/ folder beside {here}; the installation is incomplete")


def spec_names() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def load_spec(name: str) -> Spec:
    """Load models/<name>.toml. Raises UsageError (with a 'did you mean') for an unknown name."""
    path = models_dir() / f"{name}.toml"
    if not path.is_file():
        names = spec_names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"unknown model '{name}': {hint}run 't2vbench models' to list them")
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    return _spec_from_dict(data, path, hashlib.sha256(raw).hexdigest())


def _spec_from_dict(data: dict[str, Any], path: Path, sha256: str) -> Spec:
    settings = Settings(**data["settings"])
    constraints = data["constraints"]
    return Spec(
        name=data["name"],
        family=data["family"],
        title=data["title"],
        pipeline=data["pipeline"],
        repo_id=data.get("repo_id"),
        tiny=data.get("tiny", False),
        default_weights=data.get("default_weights", "hub"),
        denoiser=data.get("denoiser", "transformer"),
        cfg_doubles_denoiser=data["cfg_doubles_denoiser"],
        published_params=data.get("published_params"),
        source=data["source"],
        settings=settings,
        frames_multiple=constraints["frames_multiple"],
        spatial_multiple=constraints["spatial_multiple"],
        components=data["components"],
        path=path,
        sha256=sha256,
    )


def check_settings(spec: Spec, settings: Settings) -> None:
    """Refuse settings the model's architecture cannot take. Raises UsageError naming the value and the fix."""
    m = spec.frames_multiple
    if settings.num_frames < 1 or (settings.num_frames - 1) % m:
        lower = max(1, (settings.num_frames - 1) // m * m + 1)
        raise UsageError(
            f"--frames {settings.num_frames} does not fit {spec.name}: frames must be {m}k+1 "
            f"(e.g. {lower} or {lower + m})"
        )
    s = spec.spatial_multiple
    for flag, value in (("--height", settings.height), ("--width", settings.width)):
        if value < s or value % s:
            raise UsageError(f"{flag} {value} does not fit {spec.name}: it must be a positive multiple of {s}")
    if settings.steps < 1:
        raise UsageError(f"--steps {settings.steps} is impossible: at least 1 denoising step is needed")
    if not settings.fps > 0:
        raise UsageError(f"--fps {settings.fps} is impossible: the playback rate must be positive")
    if not settings.guidance_scale >= 0:
        raise UsageError(f"--guidance {settings.guidance_scale} is impossible: guidance must be >= 0")


def all_specs() -> list[Spec]:
    return [load_spec(n) for n in spec_names()]
