"""Keyframe residual carry for fill_between: the VAE's round-trip error of the two known ends, added to the frames
between them.

A latent interpolator can be no sharper than its VAE: every in-between frame is decoded from latents, while the
known ends come back exactly. Where the picture does not move, the detail the VAE loses is the same in the
keyframes and in the frames between; so each in-between frame gets the ends' errors (truth - decoded), weighted
by closeness like a linear blend: (1 - t/s) * left error + t/s * right error for the frame t after the left end.
Moving detail is carried to the old / new place as a blend would; static detail comes back exactly.
"""
from __future__ import annotations

import torch


def carry_keyframe_residual(frames: torch.Tensor, keyframes: torch.Tensor, stride: int) -> torch.Tensor:
    """frames uint8 ((K-1)*stride+1,H,W,3) decoded (keyframe positions included, as decoded), keyframes uint8
    (K,H,W,3) the truth -> uint8 frames with the keyframes exact and each in-between frame corrected."""
    error = keyframes.to(torch.float64) - frames[::stride].to(torch.float64)  # (K,H,W,3)
    t = torch.arange(stride, dtype=torch.float64).view(1, stride, 1, 1, 1) / stride
    carried = ((1 - t) * error[:-1, None] + t * error[1:, None]).flatten(0, 1)  # ((K-1)*stride,H,W,3)
    out = frames.to(torch.float64)
    out[:-1] += carried
    out = out.round().clamp(0, 255).to(torch.uint8)
    out[::stride] = keyframes
    return out
