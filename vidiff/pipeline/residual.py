"""Keyframe residual carry for fill_between: the VAE's round-trip error of the two known ends, added to the frames
between them.

A latent interpolator can be no sharper than its VAE: every in-between frame is decoded from latents, while the
known ends come back exactly. Where the picture does not move, the detail the VAE loses is the same in the
keyframes and in the frames between; so each in-between frame gets the ends' errors (truth - decoded), weighted
by closeness like a linear blend: (1 - t/s) * left error + t/s * right error for the frame t after the left end.
Moving detail is carried to the old / new place as a blend would; static detail comes back exactly. Given the
optical flow of each gap (a part with the flow anchor computes it anyway), the errors are carried along the motion
instead, as vidiff/optical_flow.py carries the frames: moving detail comes back at its new place too.
"""
from __future__ import annotations

import torch


def carry_keyframe_residual(frames: torch.Tensor, keyframes: torch.Tensor, stride: int, flows=None) -> torch.Tensor:
    """frames uint8 ((K-1)*stride+1,H,W,3) decoded (keyframe positions included, as decoded), keyframes uint8
    (K,H,W,3) the truth -> uint8 frames with the keyframes exact and each in-between frame corrected. flows:
    [(F_0->1, F_1->0)] per gap (vidiff.optical_flow.flow_timeline) to carry the errors along the motion."""
    error = keyframes.to(torch.float64) - frames[::stride].to(torch.float64)  # (K,H,W,3)
    if flows is not None:
        carried = torch.from_numpy(carry_along_flow(error.float().numpy(), flows, stride)).to(torch.float64)
    else:
        t = torch.arange(stride, dtype=torch.float64).view(1, stride, 1, 1, 1) / stride
        carried = ((1 - t) * error[:-1, None] + t * error[1:, None]).flatten(0, 1)  # ((K-1)*stride,H,W,3)
    out = frames.to(torch.float64)
    out[:-1] += carried
    out = out.round().clamp(0, 255).to(torch.uint8)
    out[::stride] = keyframes
    return out


def carry_along_flow(error, flows, stride: int):
    """float32 ((K-1)*stride,H,W,3): per gap, the left end's error, then each in-between frame's errors of both
    ends warped to its time along the flow and blended by it."""
    import numpy as np

    from vidiff.optical_flow import warp_blend

    out = []
    for (f01, f10), left, right in zip(flows, error[:-1], error[1:]):
        out += [left] + [warp_blend(left, right, f01, f10, k / stride) for k in range(1, stride)]
    return np.stack(out)
