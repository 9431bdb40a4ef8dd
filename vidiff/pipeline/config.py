"""The pipeline folder format: `pipeline.yaml` (typed `PipelineConfig`) naming the parts `vae/`, `keyframes/`,
`interpolation/` (each config.yaml + model.safetensors) and referencing the text encoder.

Everything here is pure Python + YAML, so a command line can check a pipeline folder and its own arguments in
well under a second, before torch is imported or any weights are touched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidiff.config import ConfigError, from_dict, parse_yaml, to_dict
from vidiff.errors import InputError

PIPELINE_FILE = "pipeline.yaml"
# The methods of vidiff.diffusion.sample; kept here so argument checks need no torch import (a test keeps them equal).
SAMPLERS = ("dpmpp_2m", "ddim", "ddpm", "euler", "heun")
SPACINGS = ("karras", "trailing", "leading", "linspace")
Sampler = Literal["dpmpp_2m", "ddim", "ddpm", "euler", "heun"]


@dataclass(frozen=True)
class StageConfig:
    """How one diffusion part (keyframes or interpolation) is wrapped and sampled."""

    parameterization: Literal["eps", "v", "x0"] = "v"  # what the network predicts (fixed by its training)
    sigma_data: float = 1.0  # std of the (scaled) latents the part was trained on
    sigma_min: float = 0.002  # smallest nonzero sampling noise level
    sigma_max: float = 80.0  # first sampling noise level; the start noise is randn * sigma_max
    spacing: Literal["karras", "trailing", "leading", "linspace"] = "karras"  # sampling grid between the two
    rho: float = 7.0  # Karras grid exponent (only for spacing "karras")
    steps: int = 25  # sampler steps
    sampler: Sampler = "dpmpp_2m"  # sampler method
    guidance_scale: float = 5.0  # classifier-free guidance scale on the text (1 = off)
    image_guidance_scale: float = 1.5  # classifier-free guidance scale on the known frames (1 = off)
    cond_sigma: float = 0.02  # noise level added to known frames' latents at inference (noise augmentation)
    # The part's discrete VP schedule as vidiff.diffusion.NoiseScheduleConfig fields (copy of the training recipe's
    # diffusion.noise); only the trailing / leading / linspace spacings read it.
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InterpolationStageConfig(StageConfig):
    """The interpolation part also says the largest gap it was trained to fill; larger gaps are filled recursively."""

    max_gap: int = 5  # largest gap (in frames of the final clip) between the two known ends filled in one pass


@dataclass(frozen=True)
class PartsConfig:
    """Sub-folders of the pipeline folder holding each part."""

    vae: str = "vae"
    keyframes: str = "keyframes"
    interpolation: str = "interpolation"


@dataclass(frozen=True)
class PipelineConfig:
    """Root of pipeline.yaml."""

    text_encoder: str = "default"  # "default" (embedded MiniLM) or a text-encoder folder (relative to the pipeline)
    num_frames: int = 16  # default clip length; must equal (num_keyframes - 1) * keyframe_stride + 1
    num_keyframes: int = 4  # keyframes sampled by the keyframe part
    keyframe_stride: int = 5  # frames of the final clip between neighbouring keyframes
    fps: float = 8.0  # frame rate written to files
    height: int = 64  # frame height in pixels
    width: int = 64  # frame width in pixels
    parts: PartsConfig = field(default_factory=PartsConfig)
    keyframes: StageConfig = field(default_factory=StageConfig)
    interpolation: InterpolationStageConfig = field(default_factory=InterpolationStageConfig)


def _check_stage(stage: StageConfig, where: str) -> None:
    def bad(key: str, why: str) -> None:
        raise ConfigError(f"{where}.{key}: {why}")

    if stage.sigma_data <= 0:
        bad("sigma_data", f"must be > 0, got {stage.sigma_data}")
    if not 0 < stage.sigma_min < stage.sigma_max:
        bad("sigma_min", f"need 0 < sigma_min < sigma_max, got {stage.sigma_min} and {stage.sigma_max}")
    if stage.steps < 1:
        bad("steps", f"must be >= 1, got {stage.steps}")
    for key in ("guidance_scale", "image_guidance_scale"):
        value = getattr(stage, key)
        if not math.isfinite(value) or value < 0:
            bad(key, f"must be a finite number >= 0, got {value}")
    if not math.isfinite(stage.cond_sigma) or stage.cond_sigma < 0:
        bad("cond_sigma", f"must be >= 0, got {stage.cond_sigma}")


def validate_pipeline_config(cfg: PipelineConfig, where: str = PIPELINE_FILE) -> PipelineConfig:
    """Cross-field checks that the typed loader cannot express; raises ConfigError naming the key."""
    from vidiff.pipeline.layout import frames_for

    if cfg.num_keyframes < 2:
        raise ConfigError(f"{where}: num_keyframes must be >= 2, got {cfg.num_keyframes}")
    if cfg.keyframe_stride < 1:
        raise ConfigError(f"{where}: keyframe_stride must be >= 1, got {cfg.keyframe_stride}")
    if cfg.num_frames != frames_for(cfg.num_keyframes, cfg.keyframe_stride):
        raise ConfigError(
            f"{where}: num_frames {cfg.num_frames} does not fit num_keyframes {cfg.num_keyframes} at "
            f"keyframe_stride {cfg.keyframe_stride} (that layout has "
            f"{frames_for(cfg.num_keyframes, cfg.keyframe_stride)} frames)"
        )
    if cfg.height < 1 or cfg.width < 1:
        raise ConfigError(f"{where}: height and width must be >= 1, got {cfg.height}x{cfg.width}")
    if not cfg.fps > 0:
        raise ConfigError(f"{where}: fps must be > 0, got {cfg.fps}")
    if cfg.interpolation.max_gap < 2:
        raise ConfigError(f"{where}: interpolation.max_gap must be >= 2, got {cfg.interpolation.max_gap}")
    _check_stage(cfg.keyframes, f"{where}: keyframes")
    _check_stage(cfg.interpolation, f"{where}: interpolation")
    return cfg


def pipeline_config_from_dict(data: dict, where: str = PIPELINE_FILE) -> PipelineConfig:
    return validate_pipeline_config(from_dict(PipelineConfig, data, where=where), where)


def part_paths(folder: Path, cfg: PipelineConfig) -> dict[str, Path]:
    """{"vae": folder/vae, "keyframes": ..., "interpolation": ...} as named in pipeline.yaml."""
    return {name: folder / getattr(cfg.parts, name) for name in ("vae", "keyframes", "interpolation")}


def text_encoder_ref(folder: Path, cfg: PipelineConfig) -> str:
    """"default", or the text-encoder folder resolved against the pipeline folder."""
    if cfg.text_encoder == "default":
        return "default"
    path = Path(cfg.text_encoder)
    return str(path if path.is_absolute() else folder / path)


def read_pipeline_folder(folder: str | Path) -> PipelineConfig:
    """Reads pipeline.yaml and checks that every part folder has its two files; touches no weights."""
    import yaml

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--model {folder}: pipeline folder not found")
    path = folder / PIPELINE_FILE
    if not path.is_file():
        raise InputError(f"--model {folder}: not a pipeline folder (missing {PIPELINE_FILE})")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    cfg = pipeline_config_from_dict(data, where=str(path))
    for name, part in part_paths(folder, cfg).items():
        for file in ("config.yaml", "model.safetensors"):
            if not (part / file).is_file():
                raise InputError(f"{folder}: part {name!r} is missing {part / file}")
    ref = text_encoder_ref(folder, cfg)
    if ref != "default" and not Path(ref).exists():
        raise InputError(f"{path}: text_encoder folder {ref} not found")
    return cfg


def check_safetensors_header(path: str | Path) -> None:
    """Reads only the 8-byte length and the JSON header of a safetensors file; InputError if it is not one."""
    import json
    import struct

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= length <= min(size - 8, 100_000_000):
            raise InputError(f"{path}: not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(length))
        except ValueError:
            header = None
    if not isinstance(header, dict):
        raise InputError(f"{path}: not a safetensors file (unreadable header)")


def write_pipeline_yaml(cfg: PipelineConfig, folder: str | Path) -> Path:
    import yaml

    path = Path(folder) / PIPELINE_FILE
    path.write_text(yaml.safe_dump(to_dict(validate_pipeline_config(cfg)), sort_keys=False))
    return path
