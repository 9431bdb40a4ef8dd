"""Convolutional blocks of the factorized 3D U-Net.

Inside the U-Net the video is kept frames-folded, `(b f) c h w`, in channels-last memory (b f h w c): spatial
convolutions see independent images, and the temporal views `b c f (h w)` and `(b f) (h w) c` are free (no copy).

- ResBlock: GroupNorm-SiLU-Conv3x3, + projected time embedding, GroupNorm-SiLU-Dropout-Conv3x3, + skip
  (the residual block of Ho et al. 2020 / LDM), applied per frame.
- the temporal convolution between them lives in temporal_conv.py (shared with the VAE's temporal decoder).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.models.group_norm import GroupNorm

CL = torch.channels_last


def silu_fresh(x: torch.Tensor) -> torch.Tensor:
    """SiLU of a tensor that nothing else holds (a norm's output): in place when no graph is being recorded, which
    saves an activation-sized allocation per call (decoding 9 frames at 240x320 on one thread: 10% faster)."""
    return F.silu(x, inplace=not torch.is_grad_enabled())


def _norm_silu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return silu_fresh(norm(x))


def norm_silu(norm: nn.GroupNorm, x: torch.Tensor, recompute: bool = True) -> torch.Tensor:
    """SiLU(GroupNorm(x)); with `recompute`, recomputed in backward from x (which is kept anyway) rather than
    storing the normalised tensor too: one activation-sized tensor less per norm, for the price of re-running two
    elementwise passes (the same values either way; models/recompute.py switches it per model)."""
    if recompute and torch.is_grad_enabled() and x.requires_grad:
        return checkpoint(_norm_silu, norm, x, use_reentrant=False)
    return _norm_silu(norm, x)


class ResBlock(nn.Module):
    """Per-frame residual block with an additive embedding; in_ch -> out_ch."""

    recompute_activations = True  # norm_silu's memory-for-time trade (models/recompute.py)

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor, num_frames: int) -> torch.Tensor:
        # x: ((b f), c, h, w) channels-last; emb: (b, E) per clip or ((b f), E) per frame
        h = self.conv1(norm_silu(self.norm1, x, self.recompute_activations))  # ((b f), out, h, w)
        e = self.emb(F.silu(emb))  # (b or (b f), out)
        if e.shape[0] != x.shape[0]:
            e = e.repeat_interleave(num_frames, dim=0)  # ((b f), out)
        h = h + e[:, :, None, None]
        h = self.conv2(self.dropout(norm_silu(self.norm2, h, self.recompute_activations)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Spatial 2x downsampling by a stride-2 3x3 convolution (frames are never down-sampled)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # ((b f), c, h/2, w/2)


class Upsample(nn.Module):
    """Spatial 2x upsampling: nearest neighbour, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # ((b f), c, 2h, 2w)
        return self.conv(x.contiguous(memory_format=CL))
