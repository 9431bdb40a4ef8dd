"""Shapes clips rendered in memory, for training: exact flat colours, with no video codec between the renderer and
the model (an H.264 round trip of a Shapes clip is about 35 dB, and its error changes from frame to frame, which a
decoder learning to remove flicker should not be taught to reproduce).
"""
from __future__ import annotations

import torch

from vidiff.data.shapes import render_clip, sample_clip_params
from vidiff.errors import InputError


class ShapesDataset(torch.utils.data.Dataset):
    """Item i is clip i of the Shapes generator with `seed` (what `vidiff data shapes --seed` would write), rendered
    at `num_frames` x `size` x `size`. Yields {"video": float (3,F,H,W) in [-1,1], "caption": str, "index": int},
    as VideoFolderDataset does."""

    def __init__(self, seed: int, num: int, num_frames: int, size: int):
        if num < 1 or num_frames < 1 or size < 1:
            raise InputError(f"shapes dataset: num, num_frames and size must be >= 1, got {num}, {num_frames}, {size}")
        self.seed, self.num, self.num_frames, self.size = seed, num, num_frames, size

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> dict:
        params = sample_clip_params(self.seed, index, self.num_frames, self.size)
        frames = render_clip(params)  # uint8 (F, H, W, 3)
        video = frames.permute(3, 0, 1, 2).float() / 127.5 - 1.0  # (3, F, H, W)
        return {"video": video, "caption": params.caption, "index": index}
