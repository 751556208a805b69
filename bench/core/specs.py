"""Model specs: one TOML file per model under models/, loaded into frozen dataclasses.

A spec names the diffusers pipeline class, the hub repo id, every component's architecture config (enough to build
the full-size model with random weights) and the authors' canonical generation settings. Settings a model cannot
take are refused here, before anything is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import re
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.text import shown
from bench.core.tomlfile import read_toml

DEFAULT_MODEL = "tiny-wan"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # spec names become file and folder names
MAX_SPEC_BYTES = 256 * 1024

# What any model can take, before its own constraints: large enough for every published setting, small enough
# that a typo is refused in a second instead of after minutes of building.
LIMITS = {"height": (16, 8192), "width": (16, 8192), "num_frames": (1, 2049), "fps": (0.1, 240.0),
          "steps": (1, 1000), "guidance_scale": (0.0, 100.0), "max_sequence_length": (1, 4096),
          "guidance_scale_2": (0.0, 100.0)}
FLAGS = {"height": "--height", "width": "--width", "num_frames": "--frames", "fps": "--fps", "steps": "--steps",
         "guidance_scale": "--guidance", "max_sequence_length": "max_sequence_length",
         "guidance_scale_2": "--guidance-2"}
FLOAT_SETTINGS = ("fps", "guidance_scale", "guidance_scale_2")


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
    guidance_scale_2: float | None = None  # two-expert models (Wan 2.2 A14B): guidance of the low-noise expert

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
    pipeline_config: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. Wan 2.2's boundary_ratio
    presets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> Settings overrides


def models_dir() -> Path:
    """The folder of model specs: bench/models inside a wheel, models/ at the top of a checkout."""
    here = Path(__file__).resolve().parent.parent  # the package: bench/
    for candidate in (here / "models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no models/ folder beside {here}; the installation is incomplete")


def spec_names() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def load_spec(name: str) -> Spec:
    """Load models/<name>.toml: names from models/ only (a user's own file goes through load_spec_file).
    Raises UsageError (with a 'did you mean') for an unknown name."""
    path = models_dir() / f"{name}.toml"
    if not NAME_PATTERN.match(name) or not path.is_file():
        names = spec_names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise UsageError(f"unknown model '{shown}': {hint}run 't2vbench models' to list them, "
                         "or run your own spec file with 't2vbench run --spec FILE'")
    return load_spec_file(path)


def load_spec_file(path: str | Path) -> Spec:
    """Load a spec from a TOML file. Raises UsageError naming the file and the bad field."""
    path = Path(path)
    data, raw = read_toml(path, MAX_SPEC_BYTES, f"--spec {shown(str(path))}", "a model spec")
    try:
        return _spec_from_dict(data, path, hashlib.sha256(raw).hexdigest())
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--spec {path}: {_describe(exc)}; compare with a file under models/") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise TypeError(f"field '{key}' must be {getattr(kind, '__name__', kind)}, not {type(value).__name__}")
    return value


def _spec_from_dict(data: dict[str, Any], path: Path, sha256: str) -> Spec:
    name = _typed(data, "name", str)
    if not NAME_PATTERN.match(name):
        raise ValueError(f"name {name[:80]!r} must be a lowercase slug (letters, digits, '.', '_', '-'; at most 64)")
    settings = Settings(**_settings_fields(_typed(data, "settings", dict), "settings", required=True))
    check_limits(settings)
    constraints = _typed(data, "constraints", dict)
    for key in ("frames_multiple", "spatial_multiple"):
        if not 1 <= _typed(constraints, key, int) <= 256:
            raise ValueError(f"constraints.{key} must be between 1 and 256")
    if not all(isinstance(v, dict) and isinstance(v.get("class"), str) for v in _typed(data, "components", dict).values()):
        raise ValueError("every component needs a 'class' string")
    spec = Spec(
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
        pipeline_config=_pipeline_config(data.get("pipeline_config", {})),
    )
    return dataclasses.replace(spec, presets=_presets(spec, data.get("presets", {})))


def _settings_fields(raw: dict[str, Any], where: str, required: bool) -> dict[str, Any]:
    """Settings fields from a TOML table: known names only, typed; every field without a default when required."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown setting {unknown[0]!r}; known: {', '.join(fields)}")
    wanted = [n for n, f in fields.items() if n in raw or required and f.default is dataclasses.MISSING]
    return {n: _typed(raw, n, (int, float) if n in FLOAT_SETTINGS else int) for n in wanted}


def _pipeline_config(raw: Any) -> dict[str, Any]:
    """Extra arguments of the pipeline class (e.g. Wan 2.2's boundary_ratio): plain scalars only."""
    if not isinstance(raw, dict) or not all(isinstance(v, (bool, int, float, str)) for v in raw.values()):
        raise ValueError("pipeline_config must be a table of numbers, booleans and strings")
    ratio = raw.get("boundary_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1):
        raise ValueError("pipeline_config.boundary_ratio must be a number in (0, 1]")
    return raw


def _presets(spec: Spec, raw: Any) -> dict[str, dict[str, Any]]:
    """Named settings: each a table of Settings overrides that must fit the model like any command line."""
    if not isinstance(raw, dict):
        raise ValueError("presets must be tables: [presets.<name>]")
    presets = {}
    for name, table in raw.items():
        if not NAME_PATTERN.match(name) or not isinstance(table, dict):
            raise ValueError(f"preset {name[:80]!r} must be a lowercase slug naming a table of settings")
        presets[name] = _settings_fields(table, f"presets.{name}", required=False)
        try:
            check_settings(spec, spec.settings.replace(**presets[name]))
        except UsageError as exc:
            raise ValueError(f"presets.{name}: {exc}") from None
    return presets


def preset_settings(spec: Spec, preset: str | None) -> Settings:
    """The spec's settings with the named preset applied (None: as they are). Raises UsageError for a name the spec
    does not define, listing the ones it does."""
    if preset is None:
        return spec.settings
    if preset not in spec.presets:
        known = f"its presets are {', '.join(sorted(spec.presets))}" if spec.presets else "it has none"
        shown = preset if len(preset) <= 80 else preset[:77] + "..."
        raise UsageError(f"--preset {shown!r} is not a preset of {spec.name}: {known}")
    return spec.settings.replace(**spec.presets[preset])


def check_limits(settings: Settings) -> None:
    """Refuse non-finite or out-of-range numbers. Raises ValueError naming the flag, the value and the range."""
    for field, (low, high) in LIMITS.items():
        value = getattr(settings, field)
        if value is None and field == "guidance_scale_2":  # optional: the pipeline's own default applies
            continue
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{FLAGS[field]} {value} is out of range: give a number from {low:g} to {high:g}")


def check_settings(spec: Spec, settings: Settings) -> None:
    """Refuse settings the model's architecture cannot take. Raises UsageError naming the value and the fix."""
    try:
        check_limits(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
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
    if settings.guidance_scale_2 is not None and spec.pipeline_config.get("boundary_ratio") is None:
        raise UsageError(f"--guidance-2 {settings.guidance_scale_2:g} does not fit {spec.name}: only two-expert "
                         "models (a boundary_ratio, e.g. wan2.2-t2v-a14b) have a second guidance scale")


def all_specs() -> list[Spec]:
    return [load_spec(n) for n in spec_names()]
