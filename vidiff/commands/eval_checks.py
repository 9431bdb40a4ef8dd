"""What the eval commands check before anything loads: counts within their limits, --seed and --sampler, the
device, and each clip of a folder probed and decoded once (its size, its length) so that a bad clip late in the
folder is named before a model has scored the ones before it.
"""
from __future__ import annotations

from vidiff.pipeline.config import SAMPLERS


def device_and_dtype(args) -> tuple[str, object]:
    """--device / --threads / --dtype as `vidiff interpolate` resolves them (vidiff/commands/device_args.py)."""
    from vidiff.commands.device_args import resolve_device, torch_dtype

    device = resolve_device(args)
    return device, torch_dtype(args.dtype, device)


def selected_files(folder: str, num: int | None, option: str = "videos"):
    from vidiff.errors import InputError
    from vidiff.eval.fvd import video_files

    if num is not None and num < 1:
        raise InputError(f"--num must be positive, got {num}")
    files = video_files(folder, option)
    return files[:num] if num is not None else files


def check_positive(name: str, value) -> None:
    """--NAME must be positive and at most its limit (vidiff/limits.py), before anything loads."""
    from vidiff import limits
    from vidiff.errors import InputError

    high = {"frames": limits.MAX_FRAMES, "size": limits.MAX_SIDE, "stride": limits.MAX_STRIDE,
            "steps": limits.MAX_STEPS, "batch-size": 4096, "num": 10_000_000}.get(name)
    if value is not None and value < 1:
        raise InputError(f"--{name} must be positive, got {value}")
    if value is not None and high is not None and value > high:
        raise InputError(f"--{name} must be at most {high}, got {value}")


def check_seed_and_sampler(args) -> None:
    """--seed and --sampler of `eval interpolation`, as `vidiff interpolate` checks them: before the clips are
    read or the pipeline loads (clip i's passes use seed + i + pass * 2**32, wrapping around at 2**63)."""
    from vidiff.errors import InputError
    from vidiff.limits import check_seed, short_repr

    check_seed(args.seed, "--seed")
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise InputError(f"--sampler {short_repr(args.sampler)} is unknown; choose one of {', '.join(SAMPLERS)}")


def check_frame_sizes(files, folder, multiple: int, check_size: bool = True, frames_needed: int = 0,
                       needed_by: str = "", reads: int | None = None, option: str = "videos",
                       names: list[str] | None = None) -> list[int]:
    """Each clip's frames (from its header, upright) at least the SSIM window and, for a VAE round trip, a multiple
    of its factor (unless not `check_size`: --size resizes them), and at least `frames_needed` frames (what the
    option `needed_by` asks); checked before anything loads, naming the clip by its path in `folder` (a clip late in
    the folder failed after the earlier ones were scored, its size naming no clip). The frames the command reads
    (the first `reads`, or all) are decoded once, none kept: a damaged frame or a size change part-way through a
    clip late in the folder was met after the model had scored the clips before it. `names`: how the clips are
    named instead (two folders: their paths). Returns the decoded counts."""
    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.eval.fvd import clip_names
    from vidiff.eval.metrics import SSIM_WINDOW

    counts = []
    for path, name in zip(files, names or clip_names(files, folder)):
        try:
            info = io.probe_video(path)
            count = io.count_frames(path, reads)
        except VideoDecodeError as e:
            raise InputError(f"--{option}: {e}") from None
        if count < frames_needed:
            raise InputError(f"{name}: {count} frames is too short for {needed_by} (needs {frames_needed})")
        counts.append(count)
        if not check_size:
            continue
        if min(info.width, info.height) < SSIM_WINDOW or info.width % multiple or info.height % multiple:
            need = f"at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (the SSIM window)"
            if multiple > 1:
                need += f" and sides that are multiples of the VAE's factor {multiple}"
            raise InputError(f"{name}: frames of {info.width}x{info.height}; the scores need {need}: --size "
                             "N scores the centre square resized to N x N")
    return counts


def check_eval_device(device: str) -> None:
    """--device of the eval commands, before a network loads ("cuda" on a CPU machine was reported as a TorchScript
    file that could not be loaded)."""
    from vidiff.pipeline.placement import check_placement

    check_placement(device, None, device_label=f"--device {device}")
