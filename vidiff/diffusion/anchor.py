"""Anchors a diffusion part can denoise around (`Denoiser(anchor=...)`):

- "known_blend": a per-pixel linear blend in time of the known latents, computed here from the Cond;
- "known_flow": the two known ends warped along optical flow to each in-between time (vidiff/optical_flow.py)
  and encoded by the VAE (vidiff.optical_flow.flow_anchor). Flow needs pixels, which the denoiser never sees, so
  the caller computes it (training: LatentDiffusionStage._flow_anchor in vidiff/training/stages.py; sampling: the
  pipeline's fill_between) and passes it as `cond.anchor`.

A part trained with the anchor learns the residual x0 - anchor instead of x0: where the picture does not move,
or moves little, that residual is near zero, so the network spends its capacity on motion and an untrained or
uncertain part falls back to the blend rather than to the mean of the data. The anchor is computed from the Cond
alone (the noise-augmented known latents and their mask), so training and sampling compute it the same way, and
a guidance pass that drops the known frames has no anchor (it is 0), as it has no known frames.

For each latent pixel and frame t: the known value itself where known; between the nearest known frames before
and after t, the linear blend (1 - w) * before + w * after, w = (t - before) / (after - before); before the
first or after the last known frame, that frame's value (held); 0 where the pixel is known in no frame.
"""
from __future__ import annotations

import torch

from vidiff.diffusion.cond import Cond, known_volume
from vidiff.errors import InputError

ANCHORS = ("none", "known_blend", "known_flow")


def known_blend(known: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
    """known (B,C,F,h,w) latents (values where unknown are ignored), known_mask (B,F) per frame or (B,F,h,w) per
    latent pixel -> (B,C,F,h,w) the blend described above, in known's dtype."""
    b, c, f, h, w = known.shape
    is_known = known_volume(known_mask, tuple(known.shape))[:, 0] > 0  # (B,F,h,w)
    t = torch.arange(f, device=known.device).view(1, f, 1, 1).expand(b, f, h, w)
    before = torch.where(is_known, t, torch.full_like(t, -1)).cummax(dim=1).values  # last known index <= t
    after = torch.where(is_known, t, torch.full_like(t, f)).flip(1).cummin(dim=1).values.flip(1)  # first >= t
    has_before, has_after = before >= 0, after < f
    lo = torch.where(has_before, before, after).clamp(0, f - 1)  # hold the first known frame before it
    hi = torch.where(has_after, after, before).clamp(0, f - 1)  # hold the last known frame after it
    span = (hi - lo).clamp(min=1).to(known.dtype)
    weight = ((t - lo).to(known.dtype) / span).clamp(0, 1) * (hi > lo).to(known.dtype)  # (B,F,h,w)
    pick = lambda idx: known.gather(2, idx[:, None].expand(b, c, f, h, w))  # noqa: E731
    blend = pick(lo) * (1 - weight[:, None]) + pick(hi) * weight[:, None]
    return blend * (has_before | has_after)[:, None].to(known.dtype)


def anchor_of(cond: Cond | None, like: torch.Tensor, kind: str = "known_blend") -> torch.Tensor | None:
    """The anchor of `kind` for latents shaped like `like` (B,C,F,h,w), or None when cond knows nothing (no
    known field; or every mask zero, as in a guidance pass without the known frames)."""
    if kind == "none" or cond is None or not cond.has_known:
        return None
    if kind == "known_flow":
        if cond.anchor is None or tuple(cond.anchor.shape) != tuple(like.shape):
            got = "none" if cond.anchor is None else tuple(cond.anchor.shape)
            raise InputError(f"this part denoises around the flow anchor (anchor: known_flow), which the caller "
                             f"computes from pixel frames: cond.anchor must be {tuple(like.shape)}, got {got}")
        return cond.anchor.to(like.dtype)
    return known_blend(cond.known.to(like.dtype), cond.known_mask).to(like.dtype)
