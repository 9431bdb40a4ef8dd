"""Loading a pipeline folder: every cheap check first (pipeline.yaml, part configs, training records, safetensors
headers), then the text encoder and the weights. A bad folder fails with one line naming the file, before any
weights load."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from vidiff.errors import InputError
from vidiff.limits import short_repr
from vidiff.pipeline.control import attach_control_parts, control_part_configs
from vidiff.parts import check_safetensors_header, weights_mismatch
from vidiff.pipeline.config import PIPELINE_FILE, PipelineConfig, part_paths, read_pipeline_folder, text_encoder_ref
from vidiff.pipeline.trained import read_trained_records

DIFFUSION_PARTS = ("keyframes", "interpolation")


def load_pipeline(folder: str | Path, batch_invariant: bool):
    """(config, vae, keyframe net, interpolation net, text encoder, training records) of a pipeline folder; the
    keyframe net is None for an interpolation-only pipeline (parts.keyframes null). Control parts, if named, come
    attached to their U-Nets (control.py)."""
    if not isinstance(folder, (str, os.PathLike)) or not os.fspath(folder):  # None: a pathlib TypeError before
        raise InputError(f"from_pretrained: expected a pipeline folder path, got {short_repr(folder)}")
    folder = Path(folder).expanduser()  # as save_pretrained writes "~/my-pipe", and a text_encoder folder is read
    try:
        with _unchanged_pipeline_file(folder):
            return _load_pipeline(folder, batch_invariant)
    except _Rewritten:  # once more: a save or an export's swap (two renames) is most likely over by now
        with _unchanged_pipeline_file(folder):
            return _load_pipeline(folder, batch_invariant)


def _load_pipeline(folder: Path, batch_invariant: bool):
    from vidiff.config import from_dict
    from vidiff.diffusion import NoiseScheduleConfig
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.parts import load_part_config
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL, VAEConfig

    config = read_pipeline_folder(folder)
    paths = part_paths(folder, config)
    vae_cfg = load_part_config(paths["vae"], VAEConfig)
    net_cfgs = {name: load_part_config(paths[name], UNet3DConfig) for name in DIFFUSION_PARTS if name in paths}
    check_parts(config, vae_cfg, net_cfgs.get("keyframes"), net_cfgs["interpolation"], None)
    for name in net_cfgs:  # the discrete schedules, if any, before any weights
        from_dict(NoiseScheduleConfig, getattr(config, name).schedule, f"pipeline.yaml: {name}.schedule")
    records = read_trained_records(folder, config)
    shapes = {name: check_safetensors_header(path / "model.safetensors") for name, path in paths.items()}
    with torch.device("meta"):  # the models' tensor names and shapes, no memory: each file must fit its config
        models = {"vae": AutoencoderKL(vae_cfg), **{name: UNet3D(cfg) for name, cfg in net_cfgs.items()}}
    for name, model in models.items():  # before the control parts, whose check would blame themselves
        why = weights_mismatch(model.state_dict(), shapes[name])
        if why:
            raise InputError(f"{paths[name] / 'model.safetensors'}: does not fit {name}/config.yaml's model ({why})")
    # after the headers: a control part's check hashes its U-Net's file, so a broken file is named as such first
    control_cfgs = control_part_configs(config, paths, vae_cfg, net_cfgs)
    # building each module draws its initial weights (then overwritten) from torch's global generator: forked, so
    # that loading leaves a caller's torch.manual_seed stream where it was
    with torch.random.fork_rng(devices=[]):
        text_encoder = TextEncoder.load(text_encoder_ref(folder, config))
        vae = _load_weights(lambda: AutoencoderKL.load(paths["vae"]), paths["vae"])
        nets = {name: _load_net(UNet3D(cfg), paths[name]) for name, cfg in net_cfgs.items()}
        attach_control_parts(nets, paths, control_cfgs, _load_weights)
    return config, vae, nets.get("keyframes"), nets["interpolation"], text_encoder, records


class _Rewritten(InputError):
    pass


@contextmanager
def _unchanged_pipeline_file(folder: Path) -> Iterator[None]:
    """Refuses a pipeline folder rewritten while the block loaded it, which gave a pipeline of two (one's VAE, the
    other's U-Nets, no error: 7 of 125 loads beside a loop of save_pretrained). Both writers make a new
    pipeline.yaml: save_pretrained removes it first and writes it last, `vidiff export` swaps in a whole new folder.
    So a pipeline.yaml that is the same file before the first read and after the last means no part was rewritten in
    between. The file stays open meanwhile: a removed file's inode number was given to its successor. load_pipeline
    loads a rewritten folder once more before it refuses it."""
    import stat

    path, fd = folder / PIPELINE_FILE, None
    try:
        if stat.S_ISREG(os.stat(path).st_mode):  # else read_pipeline_folder names what is wrong
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        pass
    from vidiff.output_safety import shown

    rewritten = (f"{shown(folder)}: the pipeline folder was rewritten while it loaded, twice (by a `vidiff export` "
                 "or save_pretrained into it), so its parts may come from two pipelines; run again once it is written")
    try:
        try:
            yield  # it read pipeline.yaml: none at the start means it was written since
        except (InputError, OSError) as error:  # a part missing or of another pipeline, met mid-swap
            if _replaced(fd, path):
                raise _Rewritten(rewritten) from error
            raise
        if _replaced(fd, path):
            raise _Rewritten(rewritten)
    finally:
        if fd is not None:
            os.close(fd)


def _replaced(fd: int | None, path: Path) -> bool:
    """Whether pipeline.yaml at `path` is no longer the file open as `fd` (None: there was none): removed, written
    anew, or there now."""
    held = os.fstat(fd) if fd is not None else None
    try:
        now = os.stat(path)
    except OSError:
        now = None
    if held is None or now is None:
        return (held is None) != (now is None)
    return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)


def check_parts(config: PipelineConfig, vae_cfg, keyframe_cfg, interpolation_cfg, text_dim: int | None) -> None:
    """The parts agree with each other and with pipeline.yaml; raises InputError naming the mismatch.
    keyframe_cfg is None for an interpolation-only pipeline."""
    channels = vae_cfg.latent_channels
    factor = vae_cfg.downsample_factor
    for name, cfg in (("keyframes", keyframe_cfg), ("interpolation", interpolation_cfg)):
        if cfg is None:
            continue
        if cfg.in_channels != channels or cfg.out_channels != channels:
            raise InputError(f"{name}/config.yaml: in/out_channels {cfg.in_channels}/{cfg.out_channels} do not match "
                             f"the VAE's latent_channels {channels}")
        if text_dim is not None and cfg.context_dim != text_dim:
            raise InputError(f"{name}/config.yaml: context_dim {cfg.context_dim} does not match the text encoder "
                             f"width {text_dim}")
    if not interpolation_cfg.conditioning:
        raise InputError("interpolation/config.yaml: conditioning must be true (both ends of a gap are known)")
    if config.interpolation.anchor == "known_flow":
        from vidiff.optical_flow import flow_available

        if keyframe_cfg is not None:
            raise InputError("pipeline.yaml: interpolation.anchor known_flow fills between given pixel frames only "
                             "(optical flow needs pixels), so it cannot fill between a keyframe part's latents: "
                             "use it in an interpolation-only pipeline (parts.keyframes: null)")
        if not flow_available():
            raise InputError("this pipeline's interpolation part denoises around optical flow (pipeline.yaml: "
                             "interpolation.anchor known_flow), which needs OpenCV: pip install "
                             "opencv-python-headless (or 'vidiff[flow]')")
    if interpolation_cfg.anchor_input and config.interpolation.anchor != "known_flow":
        raise InputError("interpolation/config.yaml: anchor_input is true, but pipeline.yaml's interpolation.anchor "
                         f"is {config.interpolation.anchor!r}: the part reads the flow anchor (known_flow)")
    if config.height % factor or config.width % factor:
        raise InputError(f"pipeline.yaml: height/width {config.height}x{config.width} are not multiples of the VAE's "
                         f"downsampling factor {factor}")


def _load_weights(load, folder: Path):
    from safetensors import SafetensorError

    try:
        return load()
    except (OSError, RuntimeError, ValueError, KeyError, SafetensorError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{folder}/model.safetensors: cannot load weights ({str(e).splitlines()[0]})") from None


def _load_net(net: torch.nn.Module, folder: Path) -> torch.nn.Module:
    from vidiff.parts import load_part_weights

    state = _load_weights(lambda: load_part_weights(folder), folder)
    _load_weights(lambda: net.load_state_dict(state, strict=True), folder)
    return net.eval()
