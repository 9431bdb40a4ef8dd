"""Seam matching for `extend_video`: the input clip is returned as given, the new frames come out of the VAE, and
the VAE's reconstruction error (35.6 dB on Shapes: about as large as one frame of motion) would otherwise show as
a jump at the seam. The error of the clip's last frame as the VAE renders it, `last - decode(encode(last))`, is
added to the new frames with a weight that falls linearly from 1 (first new frame) to 0 over `fade` frames, so the
step across the seam is a decoded-to-decoded step, like every later one.
"""
from __future__ import annotations

import torch

from vidiff.errors import InputError
from vidiff.limits import MAX_FRAMES, short_repr


def check_seam_fade(fade) -> int:
    """Frames over which the seam residual fades out: an integer in [0, MAX_FRAMES] (an extension adds at most
    MAX_FRAMES; a fade of 10**20 frames ended in an OverflowError after the whole sampling)."""
    if isinstance(fade, bool) or not isinstance(fade, int) or not 0 <= fade <= MAX_FRAMES:
        raise InputError(f"seam_fade: number of frames must be an integer in [0, {MAX_FRAMES}], got {short_repr(fade)}")
    return fade


def carry_seam_residual(last: torch.Tensor, decoded: torch.Tensor, fade: int) -> torch.Tensor:
    """last uint8 (H,W,3): the clip's last frame; decoded uint8 (B,1+N,H,W,3): that frame as the VAE decodes it,
    then the N new frames. Returns uint8 (B,N,H,W,3), the new frames with the residual faded in."""
    new = decoded[:, 1:]
    if fade == 0 or new.shape[1] == 0:
        return new.clone()
    residual = last.float()[None] - decoded[:, 0].float()  # (B,H,W,3)
    j = torch.arange(new.shape[1], dtype=torch.float32)
    weight = (1.0 - j / fade).clamp_min(0.0)  # (N,): 1, 1 - 1/fade, ..., 0
    out = new.float() + weight[None, :, None, None, None] * residual[:, None]
    return out.round().clamp(0, 255).to(torch.uint8)
