"""`vidiff generate --control MAPS.mp4 [--control-scale S]` and `vidiff edit --structure KIND`: structure control
from the command line (docs/control.md). Checked before torch is imported or any weights load; a maps file is read
(and its decoded frames checked again) before the weights load."""
from __future__ import annotations

from pathlib import Path

from vidiff.commands import path_argument


def add_control_arguments(parser) -> None:
    parser.add_argument("--control", type=path_argument, default=None,
                        help="control maps: a video (.mp4, .gif, ...) with the clip's frame count and frame size; "
                             "white (any channel > 127) = on. Silhouettes give shape and position, discs (blobs) "
                             "position only. Needs a pipeline with control parts (docs/control.md)")
    parser.add_argument("--control-scale", type=float, default=None,
                        help="weight of the control, 0..5 (default: the pipeline's control_scale; 0 = no control)")


def check_control_args(args, config, layout, model, longest: int | None = None) -> None:
    """Every check of --control / --control-scale that needs no torch: exit 2 with one line when one fails.
    longest: the most frames a clip with control maps may have (one pass of the keyframe part), None: the limit."""
    from vidiff.commands.inputs import check_file, probe_clip, stated_frames
    from vidiff.errors import InputError
    from vidiff.output_safety import shown

    control, scale = getattr(args, "control", None), getattr(args, "control_scale", None)
    if control is None:
        if scale is not None:
            raise InputError("--control-scale: give --control MAPS too")
        return
    if scale is not None:
        _check_scale_arg(scale)
    if not config.control_parts():
        raise InputError(f"--control: the pipeline {shown(model)} has no control parts (pipeline.yaml "
                         "parts.control_keyframes / control_interpolation; tools/train_control.sh adds them)")
    check_file(Path(control), "--control")
    info = probe_clip(control, "--control")  # header only
    frames = stated_frames(control, info, "--control")
    _check_size(control, frames, info.width, info.height, layout, config, longest, info,
                getattr(args, "fps", None) or config.fps)


def _check_scale_arg(scale) -> None:
    """--control-scale of generate and edit alike."""
    from vidiff.errors import InputError
    from vidiff.pipeline.config import MAX_CONTROL_SCALE, control_scale_ok

    if not control_scale_ok(scale):
        raise InputError(f"--control-scale must be a finite number in [0, {MAX_CONTROL_SCALE:g}], got {scale}")


def _check_size(path, frames: int, width: int, height: int, layout, config, longest: int | None = None, info=None,
                fps: float | None = None) -> None:
    from vidiff.commands.inputs import check_fits_clip
    from vidiff.limits import MAX_FRAMES

    # the clip's length may come from --keyframes and --stride, not --frames: both named, and the length that fits
    # (a --frames the command takes with maps: 1 frame is no clip, and extension windows past a pass take no maps)
    most = MAX_FRAMES if longest is None else longest
    fits = (f"--frames {frames} makes a clip as long as the maps" if 2 <= frames <= most else
            f"control maps for 2 to {most} frames fit this pipeline, one per frame of the clip")
    check_fits_clip("--control", path, (width, height), frames, (config.width, config.height), layout.output_frames,
                    f"(from --frames, or --keyframes and --stride; {fits})", info, fps)


def read_control(args, config, layout):
    """The --control file as uint8 (F,H,W,3) frames (decoded, so the real frame count is checked), or None."""
    if getattr(args, "control", None) is None:
        return None
    from vidiff.commands.inputs import read_clip

    frames, _ = read_clip(args.control, "--control")  # (F,H,W,3)
    _check_size(args.control, frames.shape[0], frames.shape[2], frames.shape[1], layout, config)
    return frames


def control_settings(args, config) -> dict:
    """What the sidecar records about control (nothing without it); the scale defaults to the pipeline's."""
    if getattr(args, "control", None) is None:
        return {}
    scale = config.control_scale if args.control_scale is None else args.control_scale
    return {"control": str(Path(args.control).resolve()), "control_scale": scale}


STRUCTURE_CHOICES = ("auto", "none", "blob", "silhouette")


def add_structure_arguments(parser) -> None:
    parser.add_argument("--structure", default="auto", choices=STRUCTURE_CHOICES,
                        help="control maps read off the input clip that the edit follows: blob (where each object "
                             "is, in every frame; shape and colour from the prompt), silhouette (shape too: for a "
                             "colour-only change, with --repeats 6), none; auto (default): blob when the pipeline "
                             "has control parts for them, unless --mask gives a mask file")
    parser.add_argument("--control-scale", type=float, default=None,
                        help="weight of the structure maps, 0..5 (default: the pipeline's control_scale)")


def structure_kind(args, config) -> str | None:
    """The map kind an edit follows (None: none), checked against the pipeline; no torch."""
    from vidiff.errors import InputError

    kind = args.structure
    if kind == "auto":
        own_mask = args.mask is not None and args.mask != "foreground"
        kind = "blob" if "blob" in config.control_maps and not own_mask else None
    elif kind == "none":
        kind = None
    elif kind not in config.control_maps:
        raise InputError(f"--structure {kind}: needs control parts trained on {kind} maps; this pipeline's take "
                         f"{list(config.control_maps) or 'none'}")
    if args.control_scale is not None:
        if kind is None:
            raise InputError("--control-scale: the edit follows no structure maps (--structure)")
        _check_scale_arg(args.control_scale)
    return kind


def structure_settings(args, config, kind: str | None) -> dict:
    """What the sidecar records about an edit's structure maps (`kind`: structure_kind's answer)."""
    if kind is None:
        return {"structure": None}
    return {"structure": kind, "control_scale": config.control_scale if args.control_scale is None
            else args.control_scale}
