"""A pipeline folder assembled from training run folders (`vidiff export RUN_DIRS... -o FOLDER`).

Each run folder holds config.yaml (the resolved training config) and export/ (the EMA weights as a part folder,
with trained_on.yaml for the diffusion stages). Every setting that training fixed (parameterization, sigma_data,
keyframe count and stride, largest gap, noise schedule, text encoder, frame size) is taken from the runs, so the
pipeline samples the parts exactly as they were trained; sampling defaults (steps, guidance, fps) are options.
The folder is written beside the target under a temporary name and renamed into place when complete
(vidiff/pipeline/folder_writer.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidiff.errors import InputError
from vidiff.parts import WEIGHTS_NAME
from vidiff.pipeline.config import (
    InterpolationStageConfig, PartsConfig, PipelineConfig, StageConfig, validate_pipeline_config,
)
from vidiff.pipeline.folder_writer import (  # noqa: F401  (remove_stale_exports, write_pipeline_folder: public here)
    refuse_existing, refuse_output_over_inputs, refuse_replacing_other_folders, remove_stale_exports,
    write_pipeline_folder,
)

@dataclass(frozen=True)
class SamplingDefaults:
    keyframe_steps: int = 20
    interpolation_steps: int = 10
    guidance_scale: float = 4.0  # text guidance of the keyframe stage
    image_guidance_scale: float = 1.5  # known-frame guidance of the keyframe stage
    sigma_max: float = 80.0
    fps: float = 8.0
    keyframe_sampler: str = "dpmpp_2m"
    interpolation_sampler: str = "dpmpp_2m"
    extension_strength: float = PipelineConfig.extension_strength  # how far `extend` re-noises (1: from noise)
    guidance_interval: tuple[float, float] | None = None  # the keyframe stage's text guidance only for sigma in it


# SamplingDefaults field -> the pipeline.yaml keys pipeline_config sets from it
DEFAULT_KEYS = {"keyframe_steps": ("keyframes.steps",), "interpolation_steps": ("interpolation.steps",),
                "guidance_scale": ("keyframes.guidance_scale",),
                "image_guidance_scale": ("keyframes.image_guidance_scale",),
                "sigma_max": ("keyframes.sigma_max", "interpolation.sigma_max"), "fps": ("fps",),
                "keyframe_sampler": ("keyframes.sampler",), "interpolation_sampler": ("interpolation.sampler",),
                "extension_strength": ("extension_strength",), "guidance_interval": ("keyframes.guidance_interval",)}


def check_sampling_defaults(defaults: SamplingDefaults, names: dict[str, str] | None = None) -> SamplingDefaults:
    """Each default through pipeline.yaml's own checks (validate_pipeline_config), one at a time and before any
    run is read: InputError naming the field, or `names[field]` (the option a user typed), and the reason. Found
    only at the end, the error named pipeline.yaml, a file the user never wrote."""
    from dataclasses import replace

    from vidiff.config import ConfigError

    for name, keys in DEFAULT_KEYS.items():
        cfg = PipelineConfig()
        for key in keys:  # "keyframes.steps": replaced inside the stage
            stage, _, leaf = key.rpartition(".")
            value = {leaf: getattr(defaults, name)}
            cfg = replace(cfg, **({stage: replace(getattr(cfg, stage), **value)} if stage else value))
        try:
            validate_pipeline_config(cfg, where="")
        except ConfigError as e:  # ": keyframes.steps: must be in [1, 1000], got 0" or ": fps must be in ..."
            reason = re.sub(r"^[\w.]+:? ", "", str(e).removeprefix(": "), count=1)  # the key this value went to
            label = (names or {}).get(name, name)
            raise InputError(f"{label} {reason}" if reason.startswith("must") else f"{label}: {reason}") from None
    return defaults


def find_runs(run_dirs: list[Path]) -> dict:
    """{stage: (part folder, training config)} for the vae / keyframes / interpolation runs given (any order): a
    run's part is its export/. The VAE may also be a part folder as it is (e.g. vidiff/bundled/shapes/vae, which
    latent caches and runs are built on): nothing of its training goes into pipeline.yaml (config None)."""
    from vidiff.io import check_folder
    from vidiff.training.config import load_run_config

    runs = {}
    for run in (check_folder(run, "RUN_DIR") for run in run_dirs):
        if _is_vae_part(run):
            stage, part, cfg = "vae", run, None
        else:
            if not (run / "config.yaml").is_file():
                raise InputError(f"{run}: not a training run folder (no config.yaml)")
            if not (run / "export" / "model.safetensors").is_file():
                # a finished run killed before its export was in place, or whose export/ was deleted, has none either
                raise InputError(f"{run}: the run has no export/; `vidiff train --config {run / 'config.yaml'} --set "
                                 f"output_dir={run} --resume auto` trains it to the end and writes it (at once "
                                 "when the run is already at its last step)")
            cfg = load_run_config(run / "config.yaml")
            stage, part = cfg.stage, run / "export"
        if stage not in ("vae", "keyframes", "interpolation"):
            raise InputError(f"{run}: a {stage!r} run is not a pipeline part")
        if stage in runs:
            raise InputError(f"{run}: a second {stage} run (the first is {runs[stage][0]})")
        runs[stage] = (part, cfg)
    missing = {"vae", "interpolation"} - set(runs)  # without a keyframe run: an interpolation-only pipeline
    if missing:
        raise InputError(f"export: no {' / '.join(sorted(missing))} run among the folders given (a pipeline needs "
                         "a vae and an interpolation run; a keyframes run adds text to video)")
    return runs


def _is_vae_part(folder: Path) -> bool:
    """A saved VAE part (config.yaml of a VAEConfig beside model.safetensors), not a training run folder."""
    from vidiff.config import ConfigError
    from vidiff.models.vae import VAEConfig
    from vidiff.parts import load_part_config

    if not (folder / WEIGHTS_NAME).is_file() or (folder / "export").exists():
        return False
    try:
        load_part_config(folder, VAEConfig)
    except (ConfigError, InputError):
        return False
    return True


def _stage_settings(cfg) -> dict:
    d = cfg.diffusion
    return dict(parameterization=d.parameterization, sigma_data=d.sigma_data, anchor=d.anchor, schedule=dict(d.noise))


def _interpolation_settings(it, defaults: SamplingDefaults) -> InterpolationStageConfig:
    return InterpolationStageConfig(
        **_stage_settings(it), sigma_max=defaults.sigma_max, steps=defaults.interpolation_steps, guidance_scale=1.0,
        image_guidance_scale=1.0, cond_sigma=min(0.02, it.conditioning.cond_noise_max_sigma),
        max_gap=it.conditioning.max_gap, sampler=defaults.interpolation_sampler)


def _text_encoder(run_config) -> str:
    """The run's text encoder as pipeline.yaml must name it: "default", or the folder as an absolute path (the run's
    config names it relative to where training ran, and pipeline.yaml's relative paths are the pipeline folder's);
    a folder that is not there is refused now, not when the pipeline is first loaded."""
    from vidiff.pipeline.trained import encoder_reference

    ref = encoder_reference(run_config.text_encoder)
    if ref != "default" and not Path(ref).is_dir():
        raise InputError(f"export: the runs' text_encoder {run_config.text_encoder} is not a folder here ({ref}); "
                         "run export from where the training ran, or copy the encoder there")
    return ref


def pipeline_config(runs: dict, defaults: SamplingDefaults) -> PipelineConfig:
    from vidiff.pipeline.trained import same_text_encoder

    it = runs["interpolation"][1]
    if "keyframes" not in runs:  # fills frames between given ones (vidiff interpolate, fill_between); no text to video
        return PipelineConfig(text_encoder=_text_encoder(it), fps=defaults.fps, height=it.data.size,
                              width=it.data.size, parts=PartsConfig(keyframes=None),
                              interpolation=_interpolation_settings(it, defaults))
    kf = runs["keyframes"][1]
    c = kf.conditioning
    text_encoder = _text_encoder(kf)
    if not same_text_encoder(_text_encoder(it), text_encoder):
        raise InputError(f"export: keyframes trained with text encoder {kf.text_encoder!r}, interpolation with "
                         f"{it.text_encoder!r}")
    return PipelineConfig(
        text_encoder=text_encoder, num_frames=(c.num_keyframes - 1) * c.keyframe_stride + 1,
        num_keyframes=c.num_keyframes, keyframe_stride=c.keyframe_stride, fps=defaults.fps,
        height=kf.data.size, width=kf.data.size,
        keyframes=StageConfig(**_stage_settings(kf), sigma_max=defaults.sigma_max, steps=defaults.keyframe_steps,
                              guidance_scale=defaults.guidance_scale, image_guidance_scale=defaults.image_guidance_scale,
                              guidance_interval=defaults.guidance_interval,
                              cond_sigma=min(0.02, c.cond_noise_max_sigma), sampler=defaults.keyframe_sampler),
        interpolation=_interpolation_settings(it, defaults),
        # trained on the Shapes caption grammar: the keyframe part reads only Shapes words (vidiff generate warns)
        prompt_vocabulary="shapes" if c.captions == "shapes_grammar" else None,
        extension_strength=defaults.extension_strength,
    )


def export_pipeline(run_dirs: list[Path], out: Path, defaults: SamplingDefaults = SamplingDefaults(),
                    overwrite: bool = False, names: dict[str, str] | None = None) -> Path:
    """Writes the pipeline folder `out` from the runs; returns it. `names`: how an error names each default (the
    command's options), as check_sampling_defaults takes them."""
    out = Path(out)
    check_sampling_defaults(defaults, names)  # first: before any run folder is read
    refuse_output_over_inputs(out, [*run_dirs, *(Path(d) / "export" for d in run_dirs)])  # before any run is read
    refuse_replacing_other_folders(out)  # first: --force would not replace such a folder either
    refuse_existing(out, overwrite)
    runs = find_runs(run_dirs)
    cfg = pipeline_config(runs, defaults)
    return write_pipeline_folder(out, {name: runs[name][0] for name in runs}, cfg, overwrite=overwrite)
