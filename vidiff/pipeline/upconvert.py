"""Frame-rate up-conversion of a whole clip at its own resolution (`vidiff interpolate`), over any fill function.

A clip of F frames becomes factor * (F - 1) + 1 frames with the input frames exactly at every factor-th position.
Memory stays bounded whatever the clip:
- in time, the clip is cut into chunks of `chunk` input frames that share their boundary frame; each gap is
  filled from its two ends only, so the chunks join without a seam;
- in space, frames are padded (edge pixels repeated) to a multiple of `multiple` (the VAE factor times the
  U-Net's downsampling) and, when larger than `tile`, cut into overlapping tiles whose results are blended with
  weights that ramp linearly across the overlap; the padding is cropped off at the end.
`plan_passes` picks the chunk and tile from a memory budget and the VAE's decode passes: the VAE decode is the
largest working set (a temporal decoder holds its context frames too), and a chunk whose frames fit one decoder
pass avoids decoding context frames twice.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from vidiff.limits import MAX_STRIDE, check_int, offset_seed

Fill = Callable[[torch.Tensor, int, int], torch.Tensor]  # (keyframes uint8 (K,H,W,3), stride, seed) -> frames


def output_length(num_frames: int, factor: int) -> int:
    return factor * (num_frames - 1) + 1


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def effective_tiling(tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """(tile, overlap) as the tiler uses them: the tile a multiple of the part's, the overlap at most half of it."""
    tile = max(multiple, tile // multiple * multiple)
    return tile, min(overlap, tile // 2)


def tiling_ran(tile: int, overlap: int, multiple: int, height: int, width: int) -> tuple[int, int]:
    """(tile, overlap) as they ran on height x width frames: `effective_tiling`, the tile no larger than the padded
    frame's longer side (a 64x48 clip runs as one 64x48 tile whatever --tile planned), the overlap at most half
    of that. Given back as --tile and --overlap, they tile the frame the same way."""
    tile, overlap = effective_tiling(tile, overlap, multiple)
    ph, pw = round_up(height, multiple), round_up(width, multiple)
    side = max(min(tile, ph), min(tile, pw))
    return side, min(overlap, side // 2)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of length `tile` covering [0, size), neighbours overlapping by at least `overlap`."""
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def _ramp(length: int, start: int, size: int, overlap: int) -> torch.Tensor:
    """(length,) weights: 1 inside, rising linearly over `overlap` pixels at an edge that another tile shares."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap <= 0:
        return w
    ramp = torch.arange(1, overlap + 1, dtype=torch.float64) / (overlap + 1)
    n = min(overlap, length)
    if start > 0:
        w[:n] = torch.minimum(w[:n], ramp[:n])
    if start + length < size:
        w[-n:] = torch.minimum(w[-n:], ramp[:n].flip(0))
    return w


def pad_edges(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 (F,H,W,3) -> (F,height,width,3) with the last row / column repeated."""
    rows = torch.arange(height).clamp(max=frames.shape[1] - 1)
    cols = torch.arange(width).clamp(max=frames.shape[2] - 1)
    return frames[:, rows][:, :, cols]


def decode_peak(frames: int, tile: int, height: int, width: int, decode_windows: Callable[[int], list],
                decode_bytes: Callable[[int, int, int], int]) -> int:
    """Bytes of the widest VAE decode pass of a chunk of `frames` output frames in tiles of `tile` pixels, for
    frames padded to height x width (plan_passes' measure of a chunk and tile against the budget)."""
    widest = max(hi - lo for lo, hi, _ in decode_windows(frames))
    return decode_bytes(widest, min(tile, height), min(tile, width))


ACCUMULATION_BYTES = 3 * 8  # per pixel of an output frame: upconvert_frames blends a chunk's tiles in float64 RGB


def accumulation_bytes(frames: int, height: int, width: int) -> int:
    """Bytes of upconvert_frames' blend of a chunk of `frames` output frames padded to height x width, held while
    its tiles are filled and decoded (3.9 GiB for 17 frames of 3840x2160)."""
    return frames * height * width * ACCUMULATION_BYTES


def plan_passes(factor: int, height: int, width: int, *, multiple: int, budget: int,
                decode_windows: Callable[[int], list], decode_bytes: Callable[[int, int, int], int],
                max_tile: int = 384, chunks=range(2, 9)) -> tuple[int, int]:
    """(chunk, tile) for `upconvert`: of `chunks` (input frames per pass), the one whose decode passes and blend
    (accumulation_bytes, held meanwhile) fit `budget` bytes at the largest tile and decode the fewest frames per
    output frame (ties: the longer chunk, fewer passes); when none fits, the shortest chunk and the largest tile
    whose decode passes fit (never below `multiple`; the blend of the shortest chunk is not shrunk by the tile).

    decode_windows(F) -> [(lo, hi, start), ...] and decode_bytes(F, H, W) -> bytes describe the VAE
    (AutoencoderKL.decode_windows / decode_bytes)."""
    ph, pw = round_up(height, multiple), round_up(width, multiple)
    tile = max(multiple, max_tile // multiple * multiple)

    def peak(frames: int, side: int) -> int:
        return decode_peak(frames, side, ph, pw, decode_windows, decode_bytes)

    best = None
    for chunk in sorted(chunks):
        frames = factor * (chunk - 1) + 1
        if peak(frames, tile) + accumulation_bytes(frames, ph, pw) > budget:
            continue
        cost = sum(hi - lo for lo, hi, _ in decode_windows(frames)) / (frames - 1)
        if best is None or cost <= best[0] + 1e-9:
            best = (cost, chunk)
    if best is not None:
        return best[1], tile
    chunk = min(chunks)
    while tile > multiple and peak(factor * (chunk - 1) + 1, tile) > budget:
        tile -= multiple
    return chunk, tile


def upconvert_frames(fill: Fill, frames: Iterable[torch.Tensor], factor: int, *, seed: int = 0, multiple: int = 8,
                     tile: int = 384, overlap: int = 32, chunk: int = 8, progress: bool = True,
                     total: int | None = None, desc: str = "interpolate", leave: bool = True
                     ) -> Iterator[torch.Tensor]:
    """Input frames (uint8 (H,W,3) each, one size) -> output frames, one at a time: factor - 1 new frames between
    every two, the input frames exactly at 0, factor, 2 factor ... Frames are read and returned chunk by chunk,
    so a clip of any length runs in the memory of one chunk. fill(keyframes, factor, seed) fills the gaps of one
    chunk of one tile; chunk i uses seed + i. The progress bar, labelled `desc`, counts output frames; `total`: the
    input's frame count if known, from which the bar's total follows; `leave`: the bar stays when done."""
    # a Python caller's factor (docs/pipeline.md): 0 was "slice step cannot be zero", -1 and 2.0 torch's errors
    factor = check_int(factor, "factor", 1, MAX_STRIDE)
    frames = iter(frames)
    keys = list(itertools.islice(frames, chunk))
    if len(keys) < 2:
        raise ValueError(f"need at least 2 frames, got {len(keys)}")
    height, width = keys[0].shape[:2]
    tile, overlap = effective_tiling(tile, overlap, multiple)
    ph, pw = round_up(height, multiple), round_up(width, multiple)
    th, tw = min(tile, ph), min(tile, pw)
    tiles = [(top, left) for top in tile_starts(ph, th, overlap) for left in tile_starts(pw, tw, overlap)]
    weights = {(top, left): _ramp(th, top, ph, overlap)[:, None] * _ramp(tw, left, pw, overlap)[None, :]
               for top, left in tiles}  # (th, tw)
    bar = tqdm(total=None if total is None else output_length(total, factor), desc=desc, unit="frame",
               disable=not progress, leave=leave)
    bar.update(1)
    c = 0
    while True:
        if any(k.shape != keys[0].shape for k in keys):
            raise ValueError(f"frame size changed within the clip: {tuple(keys[0].shape)} and then another")
        given = torch.stack(keys)  # (K,H,W,3)
        padded = pad_edges(given, ph, pw)
        total_w = torch.zeros((output_length(len(keys), factor), ph, pw, 3), dtype=torch.float64)
        norm = torch.zeros((ph, pw), dtype=torch.float64)
        step = (len(keys) - 1) * factor  # output frames this chunk moves the bar on, shared out over its tiles
        for i, (top, left) in enumerate(tiles):
            part = fill(padded[:, top:top + th, left:left + tw].contiguous(), factor, offset_seed(seed, c))
            w = weights[(top, left)]
            total_w[:, top:top + th, left:left + tw] += part.to(torch.float64) * w[None, :, :, None]
            norm[top:top + th, left:left + tw] += w
            bar.update((i + 1) * step // len(tiles) - i * step // len(tiles))
            if len(tiles) > 1:  # a large frame's chunk takes minutes: the bar moves per tile, not once per chunk
                # drawn now: update() shows nothing while the count stands still or within tqdm's intervals
                bar.set_postfix_str(f"tile {i + 1}/{len(tiles)}")
        # in place: out of place, each step held another copy of the blend (3.5 GiB peak for 0.9 GiB of 4K frames)
        filled = total_w.div_(norm[None, :, :, None]).round_().clamp_(0, 255).to(torch.uint8)[:, :height, :width]
        del total_w
        filled[::factor] = given  # exact, whatever the blending rounded
        more = list(itertools.islice(frames, chunk - 1))
        yield from (filled if not more else filled[:-1])  # the last frame starts the next chunk
        if not more:
            break
        keys, c = [keys[-1], *more], c + 1
    bar.close()


def upconvert(fill: Fill, frames: torch.Tensor, factor: int, **options) -> torch.Tensor:
    """uint8 (F,H,W,3) -> uint8 (factor*(F-1)+1,H,W,3): `upconvert_frames` over a whole clip held in memory."""
    return torch.stack(list(upconvert_frames(fill, iter(frames), factor, total=frames.shape[0], **options)))
