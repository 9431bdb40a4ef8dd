"""Structure control: a small adapter that turns per-frame control maps into additive U-Net features.

In the manner of T2I-Adapter (Mou et al. 2023) and ControlNet's zero convolutions (Zhang et al. 2023): the maps
(B, Cc, F, H, W), at pixel resolution, are folded per frame into the latent grid by a pixel unshuffle (the VAE's
downsampling factor), then a feature pyramid with one residual conv block per U-Net level (2x down between
levels) gives, through a zero-initialised 1x1 convolution per level, a feature of that level's width. The U-Net
adds `scale * feature[l]` to its hidden state after the down layers of level l (UNet3D.forward).

Because the output convolutions start at zero, a fresh adapter changes nothing: a pipeline with an untrained
adapter, or with control at scale 0, gives exactly the frames it gives without one. The adapter sees frames one by
one (frames folded into the batch, `(b f) c h w`, like the U-Net's spatial layers); time is the U-Net's business.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.config import ConfigError
from vidiff.data.control_maps import MAP_KINDS  # the kinds of map a control part can be trained on


@dataclass(frozen=True)
class ControlAdapterConfig:
    in_channels: int = 1  # channels Cc of the control maps
    downsample_factor: int = 4  # the VAE's: maps of H x W pixels meet latents of H/f x W/f
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # must equal the U-Net's level widths
    hidden_channels: int = 32  # width of the adapter's own blocks
    norm_groups: int = 8  # GroupNorm groups (must divide hidden_channels)
    map_kinds: tuple[str, ...] = ("silhouette", "blob")  # the kinds of map it was trained on
    # sha256 of the frozen U-Net part's model.safetensors it was trained against (the pipeline refuses another)
    base_sha256: Optional[str] = None

    def __post_init__(self):
        if self.in_channels < 1 or self.downsample_factor < 1 or self.hidden_channels < 1:
            raise ConfigError("in_channels, downsample_factor and hidden_channels must be >= 1")
        if not self.block_out_channels:
            raise ConfigError("block_out_channels: needs at least one level")
        if self.norm_groups < 1 or self.hidden_channels % self.norm_groups:
            raise ConfigError(f"norm_groups: {self.norm_groups} does not divide hidden_channels {self.hidden_channels}")
        bad = [k for k in self.map_kinds if k not in MAP_KINDS]
        if bad or not self.map_kinds:
            raise ConfigError(f"map_kinds: each must be one of {MAP_KINDS}, got {list(self.map_kinds)}")


class _Block(nn.Module):
    """GroupNorm-SiLU-Conv3x3 twice, plus the input: one level of the adapter's pyramid."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class ControlAdapter(nn.Module):
    def __init__(self, config: ControlAdapterConfig):
        super().__init__()
        if not isinstance(config, ControlAdapterConfig):
            raise TypeError(f"ControlAdapter(config): expected a ControlAdapterConfig, got {type(config).__name__}")
        self.config = cfg = config
        hid = cfg.hidden_channels
        self.conv_in = nn.Conv2d(cfg.in_channels * cfg.downsample_factor**2, hid, 3, padding=1)
        self.blocks = nn.ModuleList([_Block(hid, cfg.norm_groups) for _ in cfg.block_out_channels])
        self.down = nn.ModuleList([nn.Conv2d(hid, hid, 3, stride=2, padding=1)
                                   for _ in cfg.block_out_channels[1:]])
        self.out = nn.ModuleList([nn.Conv2d(hid, width, 1) for width in cfg.block_out_channels])
        for conv in self.out:  # zero convolutions: a fresh adapter adds exactly nothing
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def check_maps(self, maps: torch.Tensor, num_frames: int, height: int, width: int) -> None:
        """maps must be (B, Cc, num_frames, height * f, width * f) for latents of (num_frames, height, width)."""
        cfg, f = self.config, self.config.downsample_factor
        expected = (cfg.in_channels, num_frames, height * f, width * f)
        if maps.ndim != 5 or tuple(maps.shape[1:]) != expected:
            raise ValueError(f"cond.control must be (B, {', '.join(map(str, expected))}) for latents of "
                             f"{num_frames} frames of {height}x{width} (downsample factor {f}), "
                             f"got {tuple(maps.shape)}")

    def forward(self, maps: torch.Tensor) -> list[torch.Tensor]:
        """maps (B, Cc, F, H, W) in [0, 1] -> one feature ((B F), C_l, h / 2**l, w / 2**l) per U-Net level."""
        f = self.config.downsample_factor
        x = rearrange(maps, "b c t (h p) (w q) -> (b t) (c p q) h w", p=f, q=f)  # pixel unshuffle per frame
        x = self.conv_in(x.to(self.conv_in.weight.dtype))
        feats = []
        for level, block in enumerate(self.blocks):
            if level:
                x = self.down[level - 1](x)
            x = block(x)
            feats.append(self.out[level](x))
        return feats

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
