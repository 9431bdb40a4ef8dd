"""Building blocks of the KL autoencoder (the Stable Diffusion / diffusers AutoencoderKL layout), per image.

Module and parameter names follow the diffusers `AutoencoderKL` state dict (`encoder.down_blocks.0.resnets.0.conv1`,
`decoder.mid_block.attentions.0.to_q`, ...), so its weights load without renaming. Everything here works on
images `(N, C, H, W)`; vidiff/vae.py folds frames into N.

Architecture: Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models", appendix G.
The optional temporal decoder adds, after the mid block and after each up block, a zero-initialised temporal
convolution block over the clip's frames (Blattmann et al. 2023, "Align your Latents", section 3.1.1: a decoder
fine-tuned on video so that frames decoded one by one stop flickering). At zero it is the per-image decoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.models.attention import attention
from vidiff.models.resnet import silu_fresh
from vidiff.models.temporal_conv import TemporalConv

NORM_EPS = 1e-6  # GroupNorm epsilon used throughout the SD autoencoder


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(f"norm_groups={groups} does not divide the channel count {channels}")
    return nn.GroupNorm(groups, channels, eps=NORM_EPS, affine=True)


class ResnetBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3, twice, plus a (1x1-projected when widths differ) skip connection."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(silu_fresh(self.norm1(x)))  # (N, out, H, W)
        h = self.conv2(silu_fresh(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return h.add_(skip)  # in place: nothing keeps the conv output (its backward needs only its input)


def temporal_block(channels: int, groups: int) -> TemporalConv:
    """The temporal decoder's block: the U-Net's temporal convolution at width 1x, normalised per frame."""
    return TemporalConv(channels, groups, mult=1, frame_norm=True, eps=NORM_EPS)


class SelfAttention(nn.Module):
    """Single-head spatial self-attention over all H*W positions, with a residual connection, through the one
    attention() of models/attention.py (`backend`: sdpa by default)."""

    def __init__(self, channels: int, groups: int, backend: str = "sdpa"):
        super().__init__()
        self.backend = backend
        self.group_norm = group_norm(channels, groups)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        # A ModuleList so the parameter name is `to_out.0.weight`, as in diffusers.
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_size, w_size = x.shape[-2:]
        h = rearrange(self.group_norm(x), "n c h w -> n (h w) c")
        q, k, v = (rearrange(proj(h), "n l c -> n 1 l c") for proj in (self.to_q, self.to_k, self.to_v))
        out = attention(q, k, v, backend=self.backend)  # (N, 1, H*W, C)
        out = self.to_out[0](rearrange(out, "n 1 l c -> n l c"))
        return x + rearrange(out, "n (h w) c -> n c h w", h=h_size, w=w_size)


class Downsample(nn.Module):
    """Halves H and W: pad one pixel on the right and bottom only, then a stride-2 3x3 conv (no padding)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # (N, C, H/2, W/2)


class Upsample(nn.Module):
    """Doubles H and W: nearest-neighbour repeat, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (N, C, 2H, 2W)


class MidBlock(nn.Module):
    """ResNet -> (optional) self-attention -> ResNet at the lowest resolution."""

    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups), ResnetBlock(channels, channels, groups)])
        self.attentions = nn.ModuleList([SelfAttention(channels, groups)]) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class _ResnetLevel(nn.Module):
    """`num_layers` ResNet blocks, then (except at the last level) a resampling convolution, stored under
    `resample_key` (diffusers' name for it, so its weights load as they are)."""

    resample_key = ""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int,
                 resample: nn.Module | None):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups) for i in range(num_layers)]
        )
        setattr(self, self.resample_key, nn.ModuleList([resample]) if resample is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        resample = getattr(self, self.resample_key)
        return x if resample is None else resample[0](x)


class DownBlock(_ResnetLevel):
    """ResNet blocks, then (except at the last level) a Downsample."""

    resample_key = "downsamplers"

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int, downsample: bool):
        resample = Downsample(out_channels) if downsample else None
        super().__init__(in_channels, out_channels, num_layers, groups, resample)


class UpBlock(_ResnetLevel):
    """ResNet blocks, then (except at the last level) an Upsample."""

    resample_key = "upsamplers"

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int, upsample: bool):
        resample = Upsample(out_channels) if upsample else None
        super().__init__(in_channels, out_channels, num_layers, groups, resample)


class Encoder(nn.Module):
    """Image (N, in, H, W) -> Gaussian moments (N, 2*latent, H/s, W/s), s = 2 ** (len(widths) - 1)."""

    def __init__(self, in_channels, latent_channels, widths, layers_per_block, groups, mid_attention):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        prev = widths[0]
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            self.down_blocks.append(DownBlock(prev, width, layers_per_block, groups, downsample=not last))
            prev = width
        self.mid_block = MidBlock(widths[-1], groups, mid_attention)
        self.conv_norm_out = group_norm(widths[-1], groups)
        self.conv_out = nn.Conv2d(widths[-1], 2 * latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)  # (N, widths[0], H, W)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)  # (N, widths[-1], h, w)
        return self.conv_out(silu_fresh(self.conv_norm_out(x)))  # (N, 2*latent, h, w)


class Decoder(nn.Module):
    """Latent (N, latent, h, w) -> image (N, out, h*s, w*s); the encoder mirrored, one extra ResNet per level.
    With `temporal`, N is (clips x num_frames) and frames of one clip mix (see the module docstring)."""

    def __init__(self, latent_channels, out_channels, widths, layers_per_block, groups, mid_attention,
                 temporal: bool = False):
        super().__init__()
        rev = list(reversed(widths))
        self.conv_in = nn.Conv2d(latent_channels, rev[0], 3, padding=1)
        self.mid_block = MidBlock(rev[0], groups, mid_attention)
        self.up_blocks = nn.ModuleList()
        prev = rev[0]
        for i, width in enumerate(rev):
            last = i == len(rev) - 1
            self.up_blocks.append(UpBlock(prev, width, layers_per_block + 1, groups, upsample=not last))
            prev = width
        self.conv_norm_out = group_norm(widths[0], groups)
        self.conv_out = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        # one temporal block after the mid block, then one after each up block (at that block's width)
        self.temporal = (nn.ModuleList([temporal_block(w, groups) for w in [rev[0], *rev]]) if temporal else None)

    @property
    def temporal_radius(self) -> int:
        """Frames on each side that one output frame depends on (0 for the per-image decoder)."""
        return 0 if self.temporal is None else sum(block.radius for block in self.temporal)

    def forward(self, z: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))  # (N, widths[-1], h, w)
        if self.temporal is not None:
            x = self.temporal[0](x, num_frames)
        for i, block in enumerate(self.up_blocks):
            x = block(x)
            if self.temporal is not None:
                x = self.temporal[i + 1](x, num_frames)
        return self.conv_out(silu_fresh(self.conv_norm_out(x)))  # (N, out, H, W)
