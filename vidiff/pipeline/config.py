"""The pipeline folder format: `pipeline.yaml` (typed `PipelineConfig`) naming the parts `vae/`, `keyframes/`,
`interpolation/` (each config.yaml + model.safetensors) and referencing the text encoder.

Everything here is pure Python + YAML, so a command line can check a pipeline folder and its own arguments in
well under a second, before torch is imported or any weights are touched.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from vidiff.config import ConfigError, from_dict, to_dict
from vidiff.errors import InputError
from vidiff.limits import MAX_FRAMES, MAX_GUIDANCE, MAX_KEYFRAMES, MAX_SIDE, MAX_STEPS, MAX_STRIDE, short_repr
from vidiff.video_writer import FPS_MAX, FPS_MIN

PIPELINE_FILE = "pipeline.yaml"
# The methods of vidiff.diffusion.sample; kept here so argument checks need no torch import (a test keeps them equal).
SAMPLERS = ("dpmpp_2m", "ddim", "ddpm", "euler", "heun", "euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde", "pc")
SPACINGS = ("karras", "trailing", "leading", "linspace")
MAX_CHURN = 100.0  # EDM's S_churn; past about num_steps * (sqrt(2) - 1) each step's gamma is capped anyway
MAX_PC_STEPS = 20  # Langevin corrector steps per noise level
Sampler = Literal["dpmpp_2m", "ddim", "ddpm", "euler", "heun", "euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde", "pc"]


@dataclass(frozen=True)
class StageConfig:
    """How one diffusion part (keyframes or interpolation) is wrapped and sampled."""

    parameterization: Literal["eps", "v", "x0"] = "v"  # what the network predicts (fixed by its training)
    sigma_data: float = 1.0  # std of the (scaled) latents the part was trained on
    anchor: Literal["none", "known_blend", "known_flow"] = "none"  # what the part denoises around (fixed by its training)
    sigma_min: float = 0.002  # smallest nonzero sampling noise level
    sigma_max: float = 80.0  # first sampling noise level; the start noise is randn * sigma_max
    spacing: Literal["karras", "trailing", "leading", "linspace"] = "karras"  # sampling grid between the two
    rho: float = 7.0  # Karras grid exponent (only for spacing "karras")
    steps: int = 25  # sampler steps
    sampler: Sampler = "dpmpp_2m"  # sampler method
    guidance_scale: float = 5.0  # classifier-free guidance scale on the text (1 = off)
    image_guidance_scale: float = 1.5  # classifier-free guidance scale on the known frames (1 = off)
    cond_sigma: float = 0.02  # noise level added to known frames' latents at inference (noise augmentation)
    guidance_rescale: float = 0.0  # phi of guidance rescale (Lin et al. 2024), 0 = off; for zero-terminal-SNR parts
    guidance_interval: tuple[float, ...] | None = None  # (lo, hi): guidance only for sigma in [lo, hi]; None = always
    churn: float = 0.0  # EDM stochastic sampling (S_churn, Karras et al. 2022 Alg. 2); the heun sampler only
    pc_steps: int = 1  # Langevin corrector steps per noise level (sampler "pc")
    pc_snr: float = 0.16  # the corrector's target signal-to-noise ratio (sampler "pc")
    # The part's discrete VP schedule as vidiff.diffusion.NoiseScheduleConfig fields (copy of the training recipe's
    # diffusion.noise); only the trailing / leading / linspace spacings read it.
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InterpolationStageConfig(StageConfig):
    """The interpolation part also says the largest gap it was trained to fill; larger gaps are filled recursively."""

    max_gap: int = 5  # largest gap (in frames of the final clip) between the two known ends filled in one pass
    # fill_between: add the known ends' VAE round-trip error to the frames between them, weighted by closeness
    # (vidiff/pipeline/residual.py), so detail the VAE loses comes back where the picture does not move
    carry_residual: bool = False


@dataclass(frozen=True)
class PartsConfig:
    """Sub-folders of the pipeline folder holding each part."""

    vae: str = "vae"
    keyframes: Optional[str] = "keyframes"  # null: an interpolation-only pipeline (fills frames between given ones)
    interpolation: str = "interpolation"
    # optional structure-control adapters (docs/control.md), attached to the keyframe / interpolation U-Net
    control_keyframes: Optional[str] = None
    control_interpolation: Optional[str] = None


CONTROL_PARTS = {"control_keyframes": "keyframes", "control_interpolation": "interpolation"}  # part -> its U-Net
CONTROL_MAP_KINDS = ("silhouette", "blob")  # vidiff/data/control_maps.py
PROMPT_VOCABULARIES = (None, "shapes")  # vidiff/data/shapes_prompt.py
MAX_CONTROL_SCALE = 5.0  # largest control_scale (pipeline/control.py, vidiff generate --control-scale)


def control_scale_ok(value) -> bool:
    """A control scale is a finite number in [0, MAX_CONTROL_SCALE] (pipeline.yaml, the API and the CLI alike)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and 0 <= value <= MAX_CONTROL_SCALE)


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
    control_maps: tuple[str, ...] = ()  # kinds of control map the control parts expect (silhouette, blob)
    control_scale: float = 1.0  # the control parts' default weight, when a request gives none (docs/control.md)
    # extend_video: SDEdit strength of each new keyframe from the clip's last frame moved on at the clip's measured
    # velocity (1 = from noise; pipeline/extension.py)
    extension_strength: float = 1.0
    # "shapes": the keyframe part knows only the Shapes words (colours, shapes, directions), so `vidiff generate`
    # notes which of them a prompt leaves to chance; None for a pipeline trained on open text
    prompt_vocabulary: str | None = None
    # with prompt_vocabulary shapes: a colour name no training caption used is read as the palette colour it names
    # ("scarlet" -> red) and the text encoder gets that word (vidiff/data/colour_names.py); false: as written (with
    # read_as_template false too: its reader knows some colour names itself)
    read_colour_names: bool = True
    # with prompt_vocabulary shapes: a shape noun no training caption used is read as the shape WordNet defines it as
    # ("cube" -> square) and the text encoder gets that shape's word (vidiff/data/shape_nouns.py); false: as written
    # (with read_as_template false too)
    read_shape_nouns: bool = True
    # with prompt_vocabulary shapes: a word no vocabulary holds, one letter from one colour, shape or direction word
    # ("squre", "yelow"), is read as that word (vidiff/data/prompt_spelling.py); false: as written
    read_misspellings: bool = True
    # with prompt_vocabulary shapes: a prompt whose one colour, shape and direction the prompt reader finds goes to the
    # text encoder in the plain template, "a red circle moving left" (vidiff/data/prompt_template.py); false: the
    # prompt with its colour names and shape nouns read
    read_as_template: bool = True

    def control_parts(self) -> list[str]:
        """The control parts named in parts (control_keyframes, control_interpolation)."""
        return [name for name in CONTROL_PARTS if getattr(self.parts, name) is not None]


def _check_stage(stage: StageConfig, where: str) -> None:
    def bad(key: str, why: str) -> None:
        raise ConfigError(f"{where}.{key}: {why}")

    if stage.sigma_data <= 0:
        bad("sigma_data", f"must be > 0, got {stage.sigma_data}")
    if not 0 < stage.sigma_min < stage.sigma_max:
        bad("sigma_min", f"need 0 < sigma_min < sigma_max, got {stage.sigma_min} and {stage.sigma_max}")
    if not 1 <= stage.steps <= MAX_STEPS:
        bad("steps", f"must be in [1, {MAX_STEPS}], got {stage.steps}")
    for key in ("sigma_data", "sigma_min", "sigma_max", "rho"):
        if not math.isfinite(getattr(stage, key)):
            bad(key, f"must be finite, got {getattr(stage, key)}")
    if stage.rho <= 0:  # the Karras grid's exponent: found out by the sampler, after every weight had loaded
        bad("rho", f"must be > 0, got {stage.rho}")
    for key in ("guidance_scale", "image_guidance_scale"):
        value = getattr(stage, key)
        if not 0 <= value <= MAX_GUIDANCE:  # NaN fails too
            bad(key, f"must be a finite number in [0, {MAX_GUIDANCE:g}], got {value}")
    if not math.isfinite(stage.cond_sigma) or stage.cond_sigma < 0:
        bad("cond_sigma", f"must be >= 0, got {stage.cond_sigma}")
    if not 0 <= stage.guidance_rescale <= 1:
        bad("guidance_rescale", f"must be in [0, 1], got {stage.guidance_rescale}")
    interval = stage.guidance_interval
    if interval is not None and (len(interval) != 2 or not 0 <= interval[0] < interval[1]):
        bad("guidance_interval", f"must be [lo, hi] with 0 <= lo < hi, got {list(interval)}")
    if not math.isfinite(stage.churn) or not 0 <= stage.churn <= MAX_CHURN:
        bad("churn", f"must be in [0, {MAX_CHURN}], got {stage.churn}")
    if stage.churn and stage.sampler != "heun":
        bad("churn", f"applies to the heun sampler (EDM stochastic sampling), not {stage.sampler!r}")
    if not 1 <= stage.pc_steps <= MAX_PC_STEPS:
        bad("pc_steps", f"must be in [1, {MAX_PC_STEPS}], got {stage.pc_steps}")
    if not math.isfinite(stage.pc_snr) or not 0 < stage.pc_snr <= 1:
        bad("pc_snr", f"must be in (0, 1], got {stage.pc_snr}")


def validate_pipeline_config(cfg: PipelineConfig, where: str = PIPELINE_FILE) -> PipelineConfig:
    """Cross-field checks that the typed loader cannot express; raises ConfigError naming the key."""
    from vidiff.pipeline.layout import frames_for

    if not 0 <= cfg.extension_strength <= 1:  # NaN fails too
        raise ConfigError(f"{where}: extension_strength must be in [0, 1], got {cfg.extension_strength}")
    if not 2 <= cfg.num_keyframes <= MAX_KEYFRAMES:
        raise ConfigError(f"{where}: num_keyframes must be in [2, {MAX_KEYFRAMES}], got {cfg.num_keyframes}")
    if not 1 <= cfg.keyframe_stride <= MAX_STRIDE:
        raise ConfigError(f"{where}: keyframe_stride must be in [1, {MAX_STRIDE}], got {cfg.keyframe_stride}")
    if not 2 <= cfg.num_frames <= MAX_FRAMES:
        raise ConfigError(f"{where}: num_frames must be in [2, {MAX_FRAMES}], got {cfg.num_frames}")
    if cfg.num_frames != frames_for(cfg.num_keyframes, cfg.keyframe_stride):
        raise ConfigError(
            f"{where}: num_frames {cfg.num_frames} does not fit num_keyframes {cfg.num_keyframes} at "
            f"keyframe_stride {cfg.keyframe_stride} (that layout has "
            f"{frames_for(cfg.num_keyframes, cfg.keyframe_stride)} frames)"
        )
    for key in ("height", "width"):
        if not 1 <= getattr(cfg, key) <= MAX_SIDE:
            raise ConfigError(f"{where}: {key} must be in [1, {MAX_SIDE}], got {getattr(cfg, key)}")
    if not FPS_MIN <= cfg.fps <= FPS_MAX:
        raise ConfigError(f"{where}: fps must be in [{FPS_MIN:g}, {FPS_MAX:g}], got {cfg.fps}")
    if not 2 <= cfg.interpolation.max_gap <= MAX_STRIDE:
        raise ConfigError(f"{where}: interpolation.max_gap must be in [2, {MAX_STRIDE}], got {cfg.interpolation.max_gap}")
    if cfg.prompt_vocabulary not in PROMPT_VOCABULARIES:
        raise ConfigError(f"{where}: prompt_vocabulary: {short_repr(cfg.prompt_vocabulary)} unknown; valid: "
                          f"{list(PROMPT_VOCABULARIES)}")
    bad = [k for k in cfg.control_maps if k not in CONTROL_MAP_KINDS]
    if bad:
        raise ConfigError(f"{where}: control_maps: {bad} unknown; valid kinds: {list(CONTROL_MAP_KINDS)}")
    if not control_scale_ok(cfg.control_scale):
        raise ConfigError(f"{where}: control_scale must be in [0, {MAX_CONTROL_SCALE:g}], got {cfg.control_scale!r}")
    if bool(cfg.control_parts()) != bool(cfg.control_maps):
        raise ConfigError(f"{where}: control_maps and parts.control_* go together (the maps the control parts expect)")
    if cfg.parts.control_keyframes is not None and cfg.parts.keyframes is None:
        raise ConfigError(f"{where}: parts.control_keyframes needs a keyframe part")
    _check_stage(cfg.keyframes, f"{where}: keyframes")
    _check_stage(cfg.interpolation, f"{where}: interpolation")
    return cfg


def pipeline_config_from_dict(data: dict, where: str = PIPELINE_FILE) -> PipelineConfig:
    return validate_pipeline_config(from_dict(PipelineConfig, data, where=where), where)


def part_paths(folder: Path, cfg: PipelineConfig) -> dict[str, Path]:
    """{"vae": folder/vae, "keyframes": ..., "interpolation": ...} as named in pipeline.yaml; an interpolation-only
    pipeline (parts.keyframes null) has no "keyframes" entry; control parts are there when named.

    Each part must stay inside the pipeline folder once symlinks are resolved: an absolute path, `..` or a link
    that leads out is a ConfigError naming the key (`parts.vae`)."""
    from vidiff.output_safety import real_path

    folder = Path(folder)
    root = real_path(folder)
    paths = {}
    for name in ("vae", "keyframes", "interpolation", *CONTROL_PARTS):
        rel = getattr(cfg.parts, name)
        if rel is None and name != "vae" and name != "interpolation":
            continue
        path = folder / rel
        resolved = real_path(path)
        if not rel or Path(rel).is_absolute() or not resolved.is_relative_to(root) or resolved == root:
            raise ConfigError(f"{folder / PIPELINE_FILE}: parts.{name} {short_repr(rel, 120)} leads outside the "
                              "pipeline folder; part paths must be sub-folders of it")
        paths[name] = path
    return paths


def text_encoder_ref(folder: Path, cfg: PipelineConfig) -> str:
    """"default", or the text-encoder folder resolved against the pipeline folder."""
    if cfg.text_encoder == "default":
        return "default"
    path = Path(cfg.text_encoder)
    return str(path if path.is_absolute() else folder / path)


def read_pipeline_folder(folder: str | Path) -> PipelineConfig:
    """Reads pipeline.yaml and checks that every part folder has its two files; touches no weights."""
    from vidiff.io import check_folder
    from vidiff.safe_yaml import load_file

    given = Path(folder)
    if given.name == PIPELINE_FILE and given.is_file():  # the file, not its folder
        raise InputError(f"pipeline folder {given}: is its {PIPELINE_FILE}; give the folder that holds it, "
                         f"{given.parent}")
    folder = check_folder(folder, "pipeline folder")
    path = folder / PIPELINE_FILE
    if not os.path.lexists(path):
        # a part folder (keyframes/, vae/) of a pipeline: name the pipeline folder around it
        around = folder.resolve().parent
        inside = f"; it is inside the pipeline folder {around}, give that" if os.path.isfile(around / PIPELINE_FILE) \
            else ""
        if not inside and any((folder / part).is_dir() for part in ("vae", "keyframes", "interpolation")):
            # save_pretrained removes pipeline.yaml first and writes it last: one is at work, or was stopped
            inside = ("; it holds part folders, as it does while a save_pretrained writes it (pipeline.yaml comes "
                      "last): wait for the save to end, or save again if one was stopped")
        raise InputError(f"{folder} is not a pipeline folder (missing {PIPELINE_FILE}){inside}")
    data = load_file(path)
    if data is None:  # a truncated save or an emptied file: the defaults would run in its place without a word
        raise InputError(f"{path}: is empty; a pipeline folder needs its pipeline.yaml (save_pretrained or vidiff "
                         "export writes it)")
    cfg = pipeline_config_from_dict(data, where=str(path))
    for name, part in part_paths(folder, cfg).items():
        for file in ("config.yaml", "model.safetensors"):
            if not (part / file).is_file():
                there = part / file  # a folder or a pipe in its place was called missing
                what = ("is a folder, not a file" if there.is_dir() else "is not a regular file" if there.exists()
                        else None)
                raise InputError(f"{folder}: part {name!r}: {there} {what}" if what else
                                 f"{folder}: part {name!r} is missing {there}")
    ref = text_encoder_ref(folder, cfg)
    if ref != "default" and not Path(ref).exists():
        raise InputError(f"{path}: text_encoder folder {ref} not found")
    return cfg


def write_pipeline_yaml(cfg: PipelineConfig, folder: str | Path) -> Path:
    import yaml

    from vidiff.output_safety import write_text

    # atomically, as the save's last step: a stop mid-write leaves no pipeline.yaml (refused by name), not half of one
    return write_text(Path(folder) / PIPELINE_FILE, yaml.safe_dump(to_dict(validate_pipeline_config(cfg)),
                                                                   sort_keys=False))
