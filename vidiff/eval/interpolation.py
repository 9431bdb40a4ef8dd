"""Frame interpolation quality on held-out clips, beside the linear-blend baseline (and any other fill, such as
the optical-flow interpolator of vidiff/eval/optical_flow.py).

From each true clip the frames at 0, s, 2s, ... are kept as keyframes; a `fill(keyframes, stride, seed)` callable
(the interpolation model, or anything else) returns the full clip, and PSNR / SSIM are measured on the filled-in
frames only, never on the given keyframes. The baseline blends the two neighbouring keyframes linearly,
(1 - t/s) * left + t/s * right for the frame t steps after the left one. `spread_windows` cuts a long clip into
a few windows of s + 1 frames spread over it, so that every clip weighs the same whatever its length.
`chunked_fill` runs a model's fill as `vidiff interpolate` runs it, in chunks of keyframes, so that memory does not
grow with the clip's length (one pass over 33 frames of 320x240 peaked at 3.6 GB).
"""
from __future__ import annotations

import math

from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from vidiff.errors import InputError
from vidiff.eval.metrics import SSIM_WINDOW, psnr, ssim
from vidiff.limits import MAX_STRIDE, check_int, check_seed, offset_seed

Fill = Callable[[torch.Tensor, int, int], torch.Tensor]  # (keyframes (K,H,W,3) uint8, stride, seed) -> frames


def linear_blend(keyframes: torch.Tensor, stride: int, seed: int = 0) -> torch.Tensor:
    """The baseline fill: uint8 ((K-1)*stride+1, H, W, 3), each gap a linear blend of its two keyframes."""
    keys = keyframes.to(torch.float64)
    t = torch.arange(stride, dtype=torch.float64).view(1, stride, 1, 1, 1) / stride  # (1,s,1,1,1)
    gaps = (1 - t) * keys[:-1, None] + t * keys[1:, None]  # (K-1, s, H, W, 3)
    frames = torch.cat([gaps.flatten(0, 1), keys[-1:]])
    return frames.round().clamp(0, 255).to(torch.uint8)


def _split(clip: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The truth cut to (K-1)*stride+1 frames, and its keyframes."""
    num_keys = (clip.shape[0] - 1) // stride + 1
    truth = clip[: (num_keys - 1) * stride + 1]
    return truth, truth[::stride]


def spread_windows(clip: torch.Tensor, stride: int, count: int, name: str = "clip") -> list[tuple[int, torch.Tensor]]:
    """`count` windows of stride + 1 frames, (start, frames), with starts spread evenly from the first frame to
    the last window that fits (fewer when the clip has fewer distinct starts). `name` names the clip in errors."""
    last = clip.shape[0] - stride - 1
    if last < 0:
        raise InputError(f"{name}: {clip.shape[0]} frames is too short for stride {stride} (needs {stride + 1})")
    count = min(count, last + 1)  # more would repeat starts: a huge --windows counts to the clip's length only
    starts = sorted({round(i * last / max(1, count - 1)) for i in range(count)}) if count > 1 else [0]
    return [(s, clip[s:s + stride + 1]) for s in starts]


def evaluate_interpolation(
    clips: Iterable[torch.Tensor],
    fill: Fill | None,
    stride: int,
    seed: int = 0,
    names: Iterable[str] | None = None,
    others: dict[str, Fill] | None = None,
    groups: Iterable[str] | None = None,
    progress: bool = False,
) -> dict:
    """Scores `fill`, the linear blend and any `others` on the in-between frames of each uint8 clip (F,H,W,3).

    Clip i is filled with seed `seed + i`. Returns {"stride", "num_clips", "num_frames",
    "model": {"psnr", "ssim", "psnr_by_offset"}, "baseline": {...}, **{key: {...} for key in others},
    "clips": [...]}; "model" is left out when `fill` is None (baselines only). PSNR is +inf where a fill
    reproduces the truth exactly. Means are over all in-between frames of all clips; with `groups` (one name
    per clip, e.g. the source video of each window) also per group under "groups".
    """
    # checked here too for Python callers: stride "4" or 4.0 failed inside as a TypeError, seed -1 in the fill
    stride = check_int(stride, "stride", 2, MAX_STRIDE)  # 1 leaves no frame to fill
    seed = check_seed(seed, "seed")
    names = list(names) if names is not None else None
    groups = list(groups) if groups is not None else None
    fills = {**({"model": fill} if fill is not None else {}), "baseline": linear_blend, **(others or {})}
    scores = {which: {"psnr": [], "ssim": []} for which in fills}
    offsets = []
    per_clip = []
    clips = tqdm(clips, desc="eval interpolation", unit="clip", disable=not progress)
    for i, clip in enumerate(clips):
        name = names[i] if names else f"clip {i}"
        clip = torch.as_tensor(clip)
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise InputError(f"{name}: expected uint8 frames (F,H,W,3), got {clip.dtype} {tuple(clip.shape)}")
        if clip.shape[0] < stride + 1:
            raise InputError(f"{name}: {clip.shape[0]} frames is too short for stride {stride} (needs {stride + 1})")
        if min(clip.shape[1:3]) < SSIM_WINDOW:  # before the fills run; ssim's own refusal names no clip
            raise InputError(f"{name}: frames of {clip.shape[2]}x{clip.shape[1]} are smaller than the "
                             f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window (--size {SSIM_WINDOW} or more resizes them)")
        truth, keyframes = _split(clip, stride)
        filled = {which: f(keyframes.clone(), stride, offset_seed(seed, i)) for which, f in fills.items()}
        for which, frames in filled.items():
            if tuple(frames.shape) != tuple(truth.shape) or frames.dtype != torch.uint8:
                raise InputError(f"{name}: the {which} fill returned {frames.dtype} {tuple(frames.shape)}, "
                                 f"expected uint8 {tuple(truth.shape)}")
        between = torch.arange(truth.shape[0]) % stride != 0
        offsets.append(torch.arange(truth.shape[0])[between] % stride)
        row = {"name": name, "frames": int(between.sum())}
        if groups is not None:
            row["group"] = groups[i]
        for which, frames in filled.items():
            p = psnr(frames[between], truth[between], per_frame=True)
            s = ssim(frames[between], truth[between], per_frame=True)
            scores[which]["psnr"].append(p)
            scores[which]["ssim"].append(s)
            row[which] = {"psnr": float(p.mean()), "ssim": float(s.mean())}
        per_clip.append(row)
    clips.close()
    if not per_clip:
        raise InputError("no clips to evaluate")
    offsets = torch.cat(offsets)
    result = {"stride": stride, "num_clips": len(per_clip), "num_frames": int(offsets.numel())}
    for which, values in scores.items():
        p, s = torch.cat(values["psnr"]), torch.cat(values["ssim"])
        result[which] = {
            "psnr": float(p.mean()),
            "ssim": float(s.mean()),
            # Quality usually dips mid-gap: PSNR by distance t from the left keyframe, t = 1..s-1.
            "psnr_by_offset": [float(p[offsets == t].mean()) for t in range(1, stride)],
        }
    result["clips"] = per_clip
    if groups is not None:
        result["groups"] = _group_means(scores, per_clip)
    return result


def _group_means(scores: dict, per_clip: list[dict]) -> dict:
    """{group: {method: {"psnr", "ssim", "frames"}}}: means over all in-between frames of each group's clips."""
    out: dict = {}
    for group in dict.fromkeys(row["group"] for row in per_clip):
        members = [i for i, row in enumerate(per_clip) if row["group"] == group]
        out[group] = {}
        for which, values in scores.items():
            p = torch.cat([values["psnr"][i] for i in members])
            s = torch.cat([values["ssim"][i] for i in members])
            out[group][which] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "frames": int(p.numel())}
    return out


def passes_fill(fill: Fill, passes: list[int], seed_step: int) -> Fill:
    """A fill of gap prod(passes) made as `vidiff interpolate` makes it: pass i fills gaps of passes[i] between
    the frames of the pass before (seed + i * seed_step)."""

    def run(keyframes: torch.Tensor, stride: int, seed: int) -> torch.Tensor:
        if math.prod(passes) != stride:
            raise InputError(f"passes {passes} do not make stride {stride}")
        frames = keyframes
        for i, gap in enumerate(passes):
            frames = fill(frames, gap, offset_seed(seed, i * seed_step))
        return frames

    return run


def chunked_fill(fill: Fill, plan: Callable[[int, int, int], tuple[int, int]], *, multiple: int, overlap: int,
                 progress: bool = False) -> Fill:
    """`fill` as `vidiff interpolate` runs it (vidiff/pipeline/upconvert.py): in chunks of keyframes that share
    their boundary frame, and in tiles, (chunk, tile) = plan(stride, height, width); chunk i uses seed + i. Memory is
    that of one chunk whatever the clip's length; keyframes within one chunk and tile are filled as `fill` fills
    them. `progress`: a bar over each clip's frames, gone when it is done."""
    from vidiff.pipeline.upconvert import upconvert

    def run(keyframes: torch.Tensor, stride: int, seed: int) -> torch.Tensor:
        chunk, tile = plan(stride, keyframes.shape[1], keyframes.shape[2])
        return upconvert(fill, keyframes, stride, seed=seed, multiple=multiple, tile=tile, overlap=overlap,
                         chunk=chunk, progress=progress, desc="fill", leave=False)

    return run


def pipeline_fill(pipe, **sampling) -> Fill:
    """Adapts `VideoPipeline.fill_between` to the `fill(keyframes, stride, seed)` form."""

    def fill(keyframes: torch.Tensor, stride: int, seed: int) -> torch.Tensor:
        return pipe.fill_between(keyframes, stride, seed=seed, **sampling)

    return fill
