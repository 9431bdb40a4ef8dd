"""The temporal convolution of the U-Net and of the VAE's temporal decoder: one block, two normalisations.

x + Conv_t(Dropout(SiLU(GN(Conv_t(SiLU(GN(x))))))) over the frames of each clip, kernel 3 with zero padding at
the clip ends and a hidden width of `mult` * channels; the second convolution is zero-initialised, so the block
starts as the identity (Make-A-Video's pseudo-3D convolution; Video LDM's temporal decoder layers).

Video is frames-folded, `(b f) c h w`. Each convolution runs as a Conv2d with kernel (3, 1) over the view
`b c f (h w)`, which on this CPU is several times faster than a (3, 1, 1) Conv3d (PERF_NOTES).

- clip norm (the U-Net): GroupNorm over the `b c f (h w)` view, statistics across the whole clip;
- frame norm (the VAE decoder): GroupNorm per frame, so an output frame depends on exactly `radius` frames each
  side: windowed decoding is exact and a frame's decoding does not depend on the clip's length.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vidiff.models.group_norm import GroupNorm
from vidiff.models.resnet import norm_silu, silu_fresh


class TemporalConv(nn.Module):
    recompute_activations = True  # norm_silu's memory-for-time trade (models/recompute.py)
    radius = 2  # frames each side an output frame depends on (two kernel-3 convolutions), with the frame norm

    def __init__(self, channels: int, groups: int, mult: int = 2, dropout: float = 0.0, frame_norm: bool = False,
                 eps: float = 1e-5):
        super().__init__()
        hidden = channels * mult
        self.frame_norm = frame_norm
        self.norm1 = GroupNorm(groups, channels, eps=eps)
        self.conv1 = nn.Conv2d(channels, hidden, (3, 1), padding=(1, 0))  # over (frames, pixels): 1-D in time
        self.norm2 = GroupNorm(groups, hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(hidden, channels, (3, 1), padding=(1, 0))
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        w = x.shape[-1]
        if self.frame_norm:  # normalise each frame, ((b f), c, h, w), then convolve over time
            h = self._over_time(self.conv1, silu_fresh(self.norm1(x)), num_frames, w)
            h = self._over_time(self.conv2, self.dropout(silu_fresh(self.norm2(h))), num_frames, w)
            return h.add_(x)  # in place: nothing keeps the conv output
        t = rearrange(x, "(b f) c h w -> b c f (h w)", f=num_frames)  # a view in channels-last memory
        t = self.conv1(norm_silu(self.norm1, t, self.recompute_activations))  # (b, mult*c, f, h*w)
        t = self.conv2(self.dropout(norm_silu(self.norm2, t, self.recompute_activations)))  # (b, c, f, h*w)
        return x + rearrange(t, "b c f (h w) -> (b f) c h w", w=w)

    @staticmethod
    def _over_time(conv: nn.Conv2d, x: torch.Tensor, num_frames: int, w: int) -> torch.Tensor:
        t = conv(rearrange(x, "(b f) c h w -> b c f (h w)", f=num_frames))
        return rearrange(t, "b c f (h w) -> (b f) c h w", w=w)
