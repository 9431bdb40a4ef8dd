"""A pipeline folder assembled from training run folders (`vidiff export RUN_DIRS... -o FOLDER`).

Each run folder holds config.yaml (the resolved training config) and export/ (the EMA weights as a part folder,
with trained_on.yaml for the diffusion stages). Every setting that training fixed (parameterization, sigma_data,
keyframe count and stride, largest gap, noise schedule, text encoder, frame size) is taken from the runs, so the
pipeline samples the parts exactly as they were trained; sampling defaults (steps, guidance, fps) are options.
The folder is written beside the target under a temporary name and renamed into place when complete.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vidiff.errors import InputError
from vidiff.parts import PART_FILES, WEIGHTS_NAME
from vidiff.pipeline.config import (
    PIPELINE_FILE, InterpolationStageConfig, PartsConfig, PipelineConfig, StageConfig, validate_pipeline_config,
    write_pipeline_yaml,
)

# what a pipeline folder holds (its part folders as export and save_pretrained name them): a folder holding anything
# else is no pipeline, and --force does not replace it
PIPELINE_ENTRIES = {PIPELINE_FILE, "vae", "keyframes", "interpolation", "control-keyframes", "control-interpolation"}


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


# SamplingDefaults field -> the pipeline.yaml keys pipeline_config sets from it
DEFAULT_KEYS = {"keyframe_steps": ("keyframes.steps",), "interpolation_steps": ("interpolation.steps",),
                "guidance_scale": ("keyframes.guidance_scale",),
                "image_guidance_scale": ("keyframes.image_guidance_scale",),
                "sigma_max": ("keyframes.sigma_max", "interpolation.sigma_max"), "fps": ("fps",),
                "keyframe_sampler": ("keyframes.sampler",), "interpolation_sampler": ("interpolation.sampler",),
                "extension_strength": ("extension_strength",)}


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
    _refuse_existing(out, overwrite)
    runs = find_runs(run_dirs)
    cfg = pipeline_config(runs, defaults)
    return write_pipeline_folder(out, {name: runs[name][0] for name in runs}, cfg, overwrite=overwrite)


def _refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise InputError(f"-o {out}: already exists (--force replaces it)")
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a folder")


def refuse_replacing_other_folders(out: Path) -> None:
    """InputError when the existing folder `out` is not a pipeline folder (nor empty), or is the working folder or
    holds it: --force renamed whatever folder -o named away and deleted it, a user's own folder with everything in
    it (`-o .` and `-o ""` ended in a traceback from the rename)."""
    from vidiff.output_safety import real_path, shown

    if not out.is_dir():
        return
    target, here = real_path(out), real_path(Path.cwd())
    if target == here or target in here.parents:
        raise InputError(f"-o {shown(out)}: is the working folder or holds it; give the pipeline folder's own name")
    others = sorted(p.name for p in out.iterdir() if p.name not in PIPELINE_ENTRIES)
    if others:
        raise InputError(f"-o {shown(out)}: exists and holds what a pipeline folder does not ({shown(others[0])}"
                         f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}), so it is kept (--force "
                         "too); give a new folder, or an earlier pipeline folder to replace")


def refuse_output_over_inputs(out: Path, inputs) -> None:
    """InputError when the folder `out` is one of `inputs` or holds one: replacing it (--force) would delete the
    input before or while it is read. Checked on resolved paths, so a symlink or `..` changes nothing."""
    from vidiff.output_safety import real_path, shown

    target = real_path(out)
    for item in inputs:
        source = real_path(item)
        if source == target or target in source.parents:
            held = "is" if source == target else "holds"
            raise InputError(f"-o {shown(out)}: {held} the input {shown(item)}; writing the pipeline there would "
                             "delete it (--force too), give another folder")


def remove_stale_exports(out: Path, older_than_s: float | None = None) -> list[Path]:
    """Removes the hidden folders a killed export of `out` left beside it (`.NAME.*.tmp`, and `.NAME.*.old` while
    `out` itself exists: without it, that folder is the only copy of the old pipeline) once they are older than a
    day, as output_safety does with its temporaries; a younger one may be another export's, still running (an
    export holds the folder's lock, vidiff/folder_lock.py, under which it removes them whatever their age:
    `older_than_s` < 0)."""
    import time

    from vidiff.output_safety import STALE_AFTER_S

    limit = STALE_AFTER_S if older_than_s is None else older_than_s
    gone = []
    for suffix in (".tmp", ".old") if out.exists() else (".tmp",):
        for folder in out.parent.glob(f".{out.name}.*{suffix}"):
            try:
                if folder.is_dir() and not folder.is_symlink() and time.time() - folder.stat().st_mtime > limit:
                    shutil.rmtree(folder)
                    gone.append(folder)
            except OSError:  # gone meanwhile, or not ours to remove: the export goes on
                continue
    return gone


def _check_weights_file(path: Path, source: Path) -> None:
    """A part's weights must be a readable safetensors file before the pipeline replaces anything: a damaged one was
    copied, the export said it was written, and `--force` had already set the old folder aside for it."""
    from safetensors import SafetensorError, safe_open

    from vidiff.output_safety import shown

    try:
        with safe_open(str(path), "pt") as f:
            if not list(f.keys()):
                raise InputError(f"{shown(source)}: {WEIGHTS_NAME} holds no tensors")
    except (SafetensorError, OSError) as e:
        raise InputError(f"{shown(source)}: {WEIGHTS_NAME} is not a readable safetensors file ({str(e)[:120]}); "
                         "nothing was exported") from None


def write_pipeline_folder(out: Path, parts: dict[str, Path], cfg: PipelineConfig, edit=None,
                          overwrite: bool = True) -> Path:
    """Copies each part folder's files into `out/<name>/` and writes pipeline.yaml, in a temporary folder beside
    `out` renamed into place when complete (replacing `out`, unless not `overwrite`). `edit(tmp)` may change the
    copies before the check that every part was trained with the pipeline's text encoder and VAE (trained_on.yaml)."""
    refuse_output_over_inputs(out, parts.values())
    refuse_replacing_other_folders(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from vidiff.folder_lock import folder_lock

    with folder_lock(out.parent):  # exports in one folder take turns
        # no other export in this folder runs while the lock is held: whatever an export left is a killed one's
        remove_stale_exports(out, older_than_s=-1.0)
        _refuse_existing(out, overwrite)  # again: an export that held the lock before this one may have written it
        _write_locked(out, parts, cfg, edit)
    return out


def _write_locked(out: Path, parts: dict[str, Path], cfg: PipelineConfig, edit) -> None:
    from vidiff.pipeline.trained import read_trained_records

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    # mkdtemp makes it 0700, which the renamed pipeline kept: other users of a shared folder could not read it
    tmp.chmod(0o777 & ~_umask())
    old = None
    try:
        for name, src in parts.items():
            (tmp / name).mkdir()
            for file in PART_FILES:
                if (src / file).is_file():
                    _copy(src / file, tmp / name / file, out / name / file)
        if edit is not None:
            edit(tmp)
        for name in parts:
            _check_weights_file(tmp / name / WEIGHTS_NAME, parts[name])
        write_pipeline_yaml(cfg, tmp)
        try:  # parts trained with another text encoder or VAE encoder: refuse
            read_trained_records(tmp, cfg)
        except InputError as e:  # named by the folders the user gave, not the hidden copy being written
            from vidiff.output_safety import shown

            message = str(e)
            for name, src in parts.items():
                message = message.replace(str(tmp / name), shown(src))
                if message.startswith(f"{name}/"):
                    message = shown(src) + message[len(name):]
            raise InputError(message) from None
        with _signals_held():  # the swap: a stop between its two renames would leave no folder under the name
            if out.exists():  # set aside, then removed: a stop mid-removal left part of the old folder under its name
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                out.rename(old)
            tmp.rename(out)
    finally:
        with _signals_held():  # a Ctrl-C inside rmtree left the old pipeline (or the copy) as a hidden folder
            if tmp.exists():
                shutil.rmtree(tmp)
            if old is not None and not out.exists():  # the new folder did not take its place: the old one goes back
                old.rename(out)
            elif old is not None:
                shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _copy(src: Path, dst: Path, named: Path) -> None:
    """Copies a part's file into the hidden copy of the pipeline; a full disk (or a file-size limit) is one line naming
    the file as it would be in the pipeline, not a traceback naming the hidden copy."""
    from vidiff.output_safety import OutputError, describe_write_error, shown

    try:
        shutil.copyfile(src, dst)
    except OSError as e:
        if e.filename2 is None and str(e.filename) == str(src):  # the part's own file could not be opened
            raise InputError(f"{shown(src)}: cannot read ({e.strerror})") from None
        raise OutputError(f"{shown(named)}: cannot write ({describe_write_error(e)}); nothing was exported") from None


@contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM wait until the block ends, then act as usual (main thread only). The Python-level handlers
    are swapped for ones that note the signal: a thread mask would not do, since another thread (torch's) takes a
    process-directed signal and the main thread still runs the handler at its next bytecode."""
    import signal
    import threading

    names = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not None]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    before = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in names}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # handled now, by the handler that was in place
