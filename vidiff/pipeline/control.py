"""Structure control in the pipeline (docs/control.md): the control parts of a pipeline folder (checked, loaded
and attached to their U-Nets) and the control maps of a request (checked, then handed to each stage).

A request's maps cover the whole clip, (F, H, W) at the output's size. The keyframe stage gets the maps at the
keyframe indices (0, S, 2S, ...), the interpolation stage the maps of each window's frames; a stage whose U-Net
has no adapter attached samples without control. Without `control` nothing here runs, so a pipeline with
control parts makes exactly the frames it makes without them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError
from vidiff.limits import plain_number, short_repr
from vidiff.parts import PART_FILES
from vidiff.pipeline.config import CONTROL_PARTS, MAX_CONTROL_SCALE, control_scale_ok
from vidiff.pipeline.input_checks import check_has_data


# ---- parts ------------------------------------------------------------------------------------------------------

def control_part_configs(config, paths: dict[str, Path], vae_cfg, net_cfgs: dict) -> dict:
    """{control part name: ControlAdapterConfig}, each checked against its U-Net, the VAE and pipeline.yaml's
    control_maps; cheap (configs and hashes, no weights). Their trained_on.yaml records are checked with the
    diffusion parts' (trained.read_trained_records)."""
    from vidiff.models.control_adapter import ControlAdapterConfig
    from vidiff.parts import file_sha256, load_part_config

    out = {}
    for name in config.control_parts():
        cfg = load_part_config(paths[name], ControlAdapterConfig)
        net = net_cfgs.get(CONTROL_PARTS[name])
        where = f"{paths[name].name}/config.yaml"
        if net is None:
            raise InputError(f"pipeline.yaml: parts.{name} needs a {CONTROL_PARTS[name]} part")
        if tuple(cfg.block_out_channels) != tuple(net.block_out_channels):
            raise InputError(f"{where}: block_out_channels {list(cfg.block_out_channels)} do not match the "
                             f"{CONTROL_PARTS[name]} U-Net's {list(net.block_out_channels)}")
        if cfg.downsample_factor != vae_cfg.downsample_factor:
            raise InputError(f"{where}: downsample_factor {cfg.downsample_factor} is not the VAE's "
                             f"{vae_cfg.downsample_factor}")
        missing = [k for k in config.control_maps if k not in cfg.map_kinds]
        if missing:
            raise InputError(f"{where}: trained on {list(cfg.map_kinds)} maps, pipeline.yaml control_maps asks for "
                             f"{missing} too")
        if cfg.base_sha256 and cfg.base_sha256 != file_sha256(paths[CONTROL_PARTS[name]] / "model.safetensors"):
            raise InputError(f"{where}: trained against another {CONTROL_PARTS[name]} part than "
                             f"{paths[CONTROL_PARTS[name]]} (base_sha256 differs); retrain it for this one")
        out[name] = cfg
    return out


def install_control_parts(folder: str | Path, exports: dict[str, str | Path], scale: float | None = None) -> Path:
    """Copies exported control parts ({"control_keyframes": run/export, ...}) into the pipeline folder (as
    control-keyframes/, control-interpolation/) and names them in its pipeline.yaml, with control_maps the kinds
    every part was trained on and, when given, `scale` as its default control_scale. Checks the result by loading
    its configs (no weights)."""
    import shutil

    from vidiff.models.control_adapter import ControlAdapterConfig
    from vidiff.parts import load_part_config
    from vidiff.pipeline.config import read_pipeline_folder, write_pipeline_yaml

    folder = Path(folder)
    config = read_pipeline_folder(folder)
    kinds = None
    parts = {}
    for name, export in exports.items():
        if name not in CONTROL_PARTS:
            raise InputError(f"control part {name!r}: one of {list(CONTROL_PARTS)}")
        cfg = load_part_config(export, ControlAdapterConfig)
        kinds = [k for k in cfg.map_kinds if kinds is None or k in kinds]
        target = folder / name.replace("_", "-")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for file in PART_FILES:
            if (Path(export) / file).is_file():
                shutil.copyfile(Path(export) / file, target / file)
        parts[name] = target.name
    if not kinds:
        raise InputError("control parts: no map kind that every part was trained on")
    config = dataclasses.replace(config, parts=dataclasses.replace(config.parts, **parts), control_maps=tuple(kinds),
                                 control_scale=config.control_scale if scale is None else check_control_scale(scale))
    write_pipeline_yaml(config, folder)
    read_pipeline_folder(folder)
    return folder


def attach_control_parts(nets: dict, paths: dict[str, Path], cfgs: dict, load_weights) -> None:
    """Loads each control part (strict) and attaches it to its U-Net. load_weights(build, folder) loads a module
    with one-line errors (load.py)."""
    from vidiff.models.control_adapter import ControlAdapter
    from vidiff.parts import load_part_weights

    for name, cfg in cfgs.items():
        adapter = ControlAdapter(cfg)
        state = load_weights(lambda: load_part_weights(paths[name]), paths[name])
        load_weights(lambda: adapter.load_state_dict(state, strict=True), paths[name])
        nets[CONTROL_PARTS[name]].attach_control(adapter.eval())


def save_control_parts(folder_paths: dict[str, Path], stages: dict) -> None:
    """Writes the attached adapters of `stages` ({"keyframes": stage, ...}) to their part folders."""
    from vidiff.parts import save_part

    for name, stage_name in CONTROL_PARTS.items():
        adapter = adapter_of(stages.get(stage_name))
        if adapter is not None and name in folder_paths:
            save_part(folder_paths[name], adapter.config, adapter.state_dict())


def adapter_of(stage):
    """The ControlAdapter attached to a DiffusionStage's U-Net, or None."""
    return None if stage is None else getattr(stage.net, "control_adapter", None)


# ---- requests ---------------------------------------------------------------------------------------------------

def check_control_scale(scale, what: str = "control_scale") -> float:
    scale = plain_number(scale)
    if not control_scale_ok(scale):
        raise InputError(f"{what}: must be a finite number in [0, {MAX_CONTROL_SCALE:g}], got {scale!r}")
    return float(scale)


def check_control_maps(control, num_frames: int, height: int, width: int, what: str = "control") -> torch.Tensor:
    """float32 (F, H, W) maps in [0, 1] from uint8 (F,H,W) / (F,H,W,3) (a channel > 127 = on; 0/1 when no value
    is above 1) / (F,H,W,4) (RGBA: transparent = off), float (F,H,W) or bool (F,H,W) (True = on, as edit masks take
    it; it was refused)."""
    import numpy as np

    from vidiff.data.control_maps import maps_from_frames

    if isinstance(control, str):  # was "got <U4 ()", numpy's reading of the string
        raise InputError(f"{what}: expected maps, got the string {short_repr(control)} (maps of a kind, 'blob' or "
                         "'silhouette', are read off a clip by edit_video; here give the maps themselves)")
    if torch.is_tensor(control):
        check_has_data(control, what)
        control = control.detach().cpu()
        if control.is_floating_point() and control.dtype != torch.float64:  # bf16 has no numpy dtype (TypeError);
            control = control.float()  # every half / bf16 value is exact in float32, as the maps are kept
    try:
        arr = control.numpy() if torch.is_tensor(control) else np.asarray(control)
    except ValueError as e:  # a list of maps of different shapes: numpy's "inhomogeneous shape" ValueError
        raise InputError(f"{what}: not one array of maps ({str(e).splitlines()[0]})") from None
    if arr.dtype == np.uint8:
        # maps of 0 and 1 only are 0/1, as edit masks read them: "> 127" found every pixel off, and the clip
        # followed empty maps without a word
        maps = maps_from_frames(arr * np.uint8(255) if arr.size and arr.max() == 1 else arr)
    elif arr.dtype.kind == "f" and arr.ndim == 3:
        if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
            raise InputError(f"{what}: float maps must be finite and in [0, 1]")
        maps = arr.astype(np.float32)
    elif arr.dtype == bool and arr.ndim == 3:
        maps = arr.astype(np.float32)
    else:
        raise InputError(f"{what}: expected uint8 (F,H,W) / (F,H,W,3) / (F,H,W,4), float or bool (F,H,W) maps, got "
                         f"{arr.dtype} {tuple(arr.shape)}")
    if maps.shape[0] != num_frames:
        raise InputError(f"{what}: {maps.shape[0]} frames, the clip has {num_frames}")
    if tuple(maps.shape[1:]) != (height, width):
        raise InputError(f"{what}: {maps.shape[2]}x{maps.shape[1]} pixels, the clip is {width}x{height}")
    return torch.from_numpy(np.ascontiguousarray(maps))


def request_control(stages: dict, control, control_scale, req,
                    default_scale: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(maps (B, 1, F, H, W), scale (B,)) for a request, or None without control; every check before sampling.
    control_scale: the caller's (None: `default_scale`, pipeline.yaml's); without maps it is refused, as the
    command line refuses --control-scale without --control (it was taken, even NaN, and weighed nothing)."""
    if control is None:
        if control_scale is not None:
            raise InputError(f"control_scale: weighs control maps, and this request has none (got "
                             f"{short_repr(control_scale)}; give control maps too, or leave control_scale out)")
        return None
    if all(adapter_of(s) is None for s in stages.values()):
        raise InputError("control: this pipeline has no control parts (pipeline.yaml parts.control_keyframes / "
                         "control_interpolation); train them with tools/train_control.sh (docs/control.md)")
    scale = check_control_scale(default_scale if control_scale is None else control_scale)
    maps = check_control_maps(control, req.layout.output_frames, req.height, req.width)
    if req.layout.trim_to is not None:  # the grid runs past the clip asked for: its last map holds there
        maps = torch.cat([maps, maps[-1:].expand(req.layout.num_frames - maps.shape[0], -1, -1)])
    batch = len(req.seeds)
    return maps[None, None].expand(batch, 1, *maps.shape).contiguous(), torch.full((batch,), scale)


def with_control(cond: Cond, stage, control, rows: list[int], positions: list[list[int]]) -> Cond:
    """`cond` plus, for each request row rows[n], the maps at timeline frames positions[n], when the request has
    control and the stage has an adapter; else `cond` unchanged."""
    if control is None or adapter_of(stage) is None:
        return cond
    maps, scale = control
    picked = torch.stack([maps[b][:, [int(t) for t in p]] for b, p in zip(rows, positions)])  # (N, 1, F', H, W)
    return dataclasses.replace(cond, control=picked, control_scale=scale[rows])
