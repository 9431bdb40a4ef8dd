"""The factorized 3D U-Net: the keyframe and interpolation networks of vidiff.

A 2D U-Net (Ronneberger et al. 2015, as in LDM) applied per frame, with temporal layers interleaved
(Ho et al. 2022 "Video Diffusion Models"; Singer et al. 2022 "Make-A-Video"): after every residual block a
temporal convolution, and after every spatial transformer a temporal transformer. Temporal layers start as the
identity, so the network also runs on single frames. Frames are never down-sampled; only h and w are.

Input  x (B, C, F, h, w) (already scaled by c_in), c_noise (B,) the noise-level conditioning value.
Output (B, out_channels, F, h, w), in the parameterization chosen by the Denoiser that wraps the network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.config import ConfigError
from vidiff.limits import MAX_LAYERS_PER_LEVEL, MAX_LEVELS, MAX_WIDTH
from vidiff.diffusion.cond import Cond, known_volume
from vidiff.models.embeddings import ConditioningEmbedding, PooledTextEmbedding, ScalarEmbedding
from vidiff.models.group_norm import GroupNorm
from vidiff.models.resnet import CL, Downsample, ResBlock, Upsample
from vidiff.models.temporal_conv import TemporalConv
from vidiff.models.transformer import SpatialTransformer, TemporalTransformer

Backend = Literal["sdpa", "math", "xformers"]


@dataclass(frozen=True)
class UNet3DConfig:
    in_channels: int = 4  # latent channels of x (the VAE's latent channels)
    out_channels: int = 4  # channels of the prediction (normally = in_channels)
    block_out_channels: tuple[int, ...] = (64, 128, 256)  # width of each resolution level, top to bottom
    layers_per_block: int = 2  # residual blocks per level on the way down (the way up has one more)
    attention_levels: tuple[bool, ...] = (True, True, False)  # per level: spatial + temporal transformers there
    mid_attention: bool = True  # transformers in the middle block (at the deepest resolution)
    num_head_channels: int = 64  # channels per attention head (heads = width // num_head_channels, at least 1)
    context_dim: int = 384  # feature size D of the text context (B, L, D)
    conditioning: bool = False  # input is cat(x, cond_latents * mask, mask): in_channels * 2 + 1 channels
    anchor_input: bool = False  # input also has cond.anchor (a flow anchor, anchor.py): + in_channels channels
    temporal: bool = True  # temporal convolutions + temporal attention; False gives a per-frame 2D U-Net
    use_frame_stride: bool = False  # add an embedding of log(frame_stride) to the noise embedding
    use_cond_sigma: bool = False  # add an embedding of the noise level of the known frames
    pooled_text: bool = False  # add an embedding of the mean-pooled text context to the noise embedding
    frame_position: bool = False  # add an embedding of each frame's index in the window (per-frame embedding)
    norm_groups: int = 32  # GroupNorm groups (must divide every width)
    gradient_checkpointing: bool = False  # recompute each layer in backward (training only) to save memory
    attention_backend: Backend = "sdpa"  # backend of spatial self- and cross-attention
    temporal_attention_backend: Backend = "math"  # backend of attention over frames (short sequences: math wins)
    temporal_conv_mult: int = 2  # hidden width of the temporal convolution pair, in multiples of the block width
    temporal_max_distance: int = 32  # relative frame distances beyond this share one learned bias
    dropout: float = 0.0  # dropout probability in residual blocks and feed-forwards

    def __post_init__(self):
        levels = len(self.block_out_channels)
        if levels < 1:
            raise ConfigError("block_out_channels: needs at least one level")
        if len(self.attention_levels) != levels:
            raise ConfigError(f"attention_levels: needs {levels} entries (one per level), "
                              f"got {len(self.attention_levels)}")
        # sizes a config file can carry: zero divided, negatives crashed deep in torch, huge ones allocated tens
        # of GiB or built for minutes before any weights were read (MAX_* in vidiff/limits.py)
        for key, value, hi in (("norm_groups", self.norm_groups, MAX_WIDTH), ("num_head_channels", self.num_head_channels,
                               MAX_WIDTH), ("layers_per_block", self.layers_per_block, MAX_LAYERS_PER_LEVEL),
                               ("in_channels", self.in_channels, MAX_WIDTH), ("out_channels", self.out_channels, MAX_WIDTH),
                               ("context_dim", self.context_dim, MAX_WIDTH), ("temporal_conv_mult", self.temporal_conv_mult,
                               16)):
            if not 1 <= value <= hi:
                raise ConfigError(f"{key}: must be in 1..{hi}, got {value}")
        if not 0 <= self.temporal_max_distance <= 4096:
            raise ConfigError(f"temporal_max_distance: must be in 0..4096, got {self.temporal_max_distance}")
        if levels > MAX_LEVELS:
            raise ConfigError(f"block_out_channels: at most {MAX_LEVELS} levels, got {levels}")
        for ch in self.block_out_channels:
            if not 1 <= ch <= MAX_WIDTH:
                raise ConfigError(f"block_out_channels: width {ch} is not in 1..{MAX_WIDTH}")
            if ch % self.norm_groups:
                raise ConfigError(f"block_out_channels: width {ch} is not divisible by norm_groups={self.norm_groups}")
        # heads split only the widths that have attention: the attention levels and, with mid_attention, the last
        attended = [ch for ch, attn in zip(self.block_out_channels, self.attention_levels) if attn]
        if self.mid_attention:
            attended.append(self.block_out_channels[-1])
        for ch in attended:
            if ch % max(1, min(self.num_head_channels, ch)):
                raise ConfigError(f"num_head_channels: {self.num_head_channels} does not divide width {ch}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: {self.dropout} is not in [0, 1)")

    def heads(self, width: int) -> int:
        return max(1, width // self.num_head_channels)


class SpaceTimeLayer(nn.Module):
    """ResBlock [+ TemporalConv] [+ SpatialTransformer [+ TemporalTransformer]]: one checkpointable unit."""

    def __init__(self, cfg: UNet3DConfig, in_ch: int, out_ch: int, emb_dim: int, attn: bool):
        super().__init__()
        g = cfg.norm_groups
        self.res = ResBlock(in_ch, out_ch, emb_dim, g, cfg.dropout)
        self.tconv = TemporalConv(out_ch, g, cfg.temporal_conv_mult, cfg.dropout) if cfg.temporal else None
        heads = cfg.heads(out_ch)
        self.sattn = (SpatialTransformer(out_ch, heads, cfg.context_dim, g, cfg.attention_backend, cfg.dropout)
                      if attn else None)
        self.tattn = (TemporalTransformer(out_ch, heads, cfg.temporal_attention_backend, cfg.dropout,
                                          cfg.temporal_max_distance)
                      if attn and cfg.temporal else None)

    def forward(self, x, emb, context, context_mask, num_frames: int):
        x = self.res(x, emb, num_frames)  # ((b f), out, h, w)
        if self.tconv is not None:
            x = self.tconv(x, num_frames)
        if self.sattn is not None:
            x = self.sattn(x, context, context_mask, num_frames)
        if self.tattn is not None:
            x = self.tattn(x, num_frames)
        return x


class UNet3D(nn.Module):
    def __init__(self, config: UNet3DConfig):
        super().__init__()
        if not isinstance(config, UNet3DConfig):
            raise TypeError(f"UNet3D(config): expected a UNet3DConfig, got {type(config).__name__}")
        self.config = cfg = config
        chans = cfg.block_out_channels
        emb_dim = 4 * chans[0]
        self.embed = ConditioningEmbedding(chans[0], emb_dim, cfg.use_frame_stride, cfg.use_cond_sigma)
        self.text_embed = PooledTextEmbedding(cfg.context_dim, emb_dim) if cfg.pooled_text else None
        self.frame_embed = ScalarEmbedding(chans[0], emb_dim, zero_init=True) if cfg.frame_position else None
        in_ch = (cfg.in_channels * 2 + 1 if cfg.conditioning else cfg.in_channels) + cfg.anchor_input * cfg.in_channels
        self.conv_in = nn.Conv2d(in_ch, chans[0], 3, padding=1)

        skips = [chans[0]]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = chans[0]
        for level, width in enumerate(chans):
            layers = nn.ModuleList()
            for _ in range(cfg.layers_per_block):
                layers.append(SpaceTimeLayer(cfg, ch, width, emb_dim, cfg.attention_levels[level]))
                ch = width
                skips.append(ch)
            self.down.append(layers)
            last = level == len(chans) - 1
            self.downsample.append(nn.Identity() if last else Downsample(ch))
            if not last:
                skips.append(ch)

        self.mid = nn.ModuleList([SpaceTimeLayer(cfg, ch, ch, emb_dim, cfg.mid_attention),
                                  SpaceTimeLayer(cfg, ch, ch, emb_dim, False)])

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(chans))):
            width = chans[level]
            layers = nn.ModuleList()
            for _ in range(cfg.layers_per_block + 1):
                layers.append(SpaceTimeLayer(cfg, ch + skips.pop(), width, emb_dim, cfg.attention_levels[level]))
                ch = width
            self.up.append(layers)
            self.upsample.append(Upsample(ch) if level > 0 else nn.Identity())

        self.norm_out = GroupNorm(cfg.norm_groups, ch)
        self.conv_out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # the network starts by predicting zero
        nn.init.zeros_(self.conv_out.bias)
        # activations are channels-last; convolution weights in the same layout avoid a weight copy per call
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=CL)

    def attach_control(self, adapter) -> None:
        """Attaches a ControlAdapter (or None to detach). It is not a submodule: the U-Net's state dict, and so its
        part folder, stay as they are; `.to()` moves it along (`_apply`)."""
        if adapter is not None and tuple(adapter.config.block_out_channels) != tuple(self.config.block_out_channels):
            raise ValueError(f"control adapter: block_out_channels {list(adapter.config.block_out_channels)} do not "
                             f"match the U-Net's {list(self.config.block_out_channels)}")
        object.__setattr__(self, "control_adapter", adapter)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if getattr(self, "control_adapter", None) is not None:
            self.control_adapter._apply(fn, *args, **kwargs)
        return self

    def _control_features(self, cond: Cond, x: torch.Tensor) -> list[torch.Tensor] | None:
        """scale * adapter features per level, ((b f), C_l, h_l, w_l); None without control maps."""
        if cond.control is None:
            return None
        adapter = getattr(self, "control_adapter", None)
        if adapter is None:
            raise ValueError("cond.control was given, but no control adapter is attached (UNet3D.attach_control)")
        b, _, f, h, w = x.shape
        adapter.check_maps(cond.control, f, h, w)
        scale = torch.ones(b) if cond.control_scale is None else cond.control_scale
        scale = scale.to(x.device, x.dtype).repeat_interleave(f)[:, None, None, None]  # ((b f), 1, 1, 1)
        return [(feat.to(x.dtype) * scale).contiguous(memory_format=CL) for feat in adapter(cond.control)]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _run(self, layer, x, emb, context, context_mask, num_frames):
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(layer, x, emb, context, context_mask, num_frames, use_reentrant=False)
        return layer(x, emb, context, context_mask, num_frames)

    def _check_inputs(self, x: torch.Tensor, cond: Cond) -> None:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must be (B, {cfg.in_channels}, F, h, w), got {tuple(x.shape)}")
        b, _, f, h, w = x.shape
        factor = 2 ** (len(cfg.block_out_channels) - 1)
        if h % factor or w % factor:
            raise ValueError(f"x: spatial size {h}x{w} must be divisible by {factor} "
                             f"(2 ** (levels - 1) for {len(cfg.block_out_channels)} levels)")
        expected = {"context": None, "context_mask": None, "known": tuple(x.shape), "known_mask": None,
                    "frame_stride": (b,), "cond_sigma": (b,), "control": None, "control_scale": (b,),
                    "anchor": tuple(x.shape)}
        context = cond.context
        if context is not None and (context.ndim != 3 or context.shape[2] != cfg.context_dim):
            raise ValueError(f"cond.context must be ({b}, L, {cfg.context_dim}), got {tuple(context.shape)}")
        if cond.context_mask is not None:
            if context is None:
                raise ValueError("cond.context_mask was given without cond.context")
            expected["context_mask"] = tuple(context.shape[:2])
        for name, value in cond.items().items():
            if value.shape[0] != b or (expected[name] is not None and tuple(value.shape) != expected[name]):
                raise ValueError(f"cond.{name} must be {expected[name] or (b, '...')}, got {tuple(value.shape)}")
        if cond.known_mask is not None and tuple(cond.known_mask.shape) not in ((b, f), (b, f, h, w)):
            raise ValueError(f"cond.known_mask must be ({b}, {f}) or ({b}, {f}, {h}, {w}), "
                             f"got {tuple(cond.known_mask.shape)}")
        if not cfg.conditioning and (cond.known is not None or cond.known_mask is not None):
            raise ValueError("cond.known / cond.known_mask given, but this model has conditioning=False")

    def forward(self, x: torch.Tensor, c_noise, cond: Cond | None = None) -> torch.Tensor:
        """x (B,C,F,h,w); c_noise (B,) or a number; cond (vidiff/diffusion/cond.py): context (B,L,D) with
        context_mask (B,L) (no context = no cross-attention); known (B,C,F,h,w) with known_mask (B,F) 1 where a
        frame is known or (B,F,h,w) 1 where a latent pixel is (missing = nothing known); frame_stride (B,) (missing = 1); cond_sigma (B,) (missing = 0);
        control (B,Cc,F,H,W) maps for the attached ControlAdapter, weighted by control_scale (B,) (missing = 1).
        Returns (B, out_channels, F, h, w)."""
        cond = Cond() if cond is None else cond
        self._check_inputs(x, cond)
        context, context_mask = cond.context, cond.context_mask
        b, _, f, h, w = x.shape
        if self.config.conditioning:
            mask = x.new_zeros(b, f) if cond.known_mask is None else cond.known_mask.to(x.dtype)
            mask = known_volume(mask, tuple(x.shape))  # (B, 1, F, h, w)
            known = torch.zeros_like(x) if cond.known is None else cond.known.to(x.dtype) * mask
            x = torch.cat([x, known, mask], dim=1)  # (B, 2C+1, F, h, w)
        if self.config.anchor_input:  # what the part denoises around: where the flow put the content
            anchor = torch.zeros_like(x[:, : self.config.in_channels]) if cond.anchor is None else cond.anchor
            x = torch.cat([x, anchor.to(x.dtype)], dim=1)
        if context_mask is not None:
            context_mask = context_mask.bool()

        emb = self.embed(c_noise, b, x.device, cond.frame_stride, cond.cond_sigma)  # (B, E)
        if self.text_embed is not None and context is not None:
            emb = emb + self.text_embed(context, context_mask)
        if self.frame_embed is not None:  # one embedding per frame: ((b f), E)
            index = torch.arange(f, device=x.device, dtype=torch.float32)
            emb = (emb[:, None, :] + self.frame_embed(index)[None]).flatten(0, 1)
        control = self._control_features(cond, x)  # per-level features (None without control maps)
        hid = rearrange(x, "b c f h w -> (b f) c h w").contiguous(memory_format=CL)
        hid = self.conv_in(hid)  # ((b f), C0, h, w)
        skips = [hid]
        for level, (layers, down) in enumerate(zip(self.down, self.downsample)):
            for layer in layers:
                hid = self._run(layer, hid, emb, context, context_mask, f)
                skips.append(hid)
            if control is not None:  # structure control: the adapter's feature of this level (and its skip)
                hid = skips[-1] = hid + control[level]
            if not isinstance(down, nn.Identity):
                hid = down(hid)
                skips.append(hid)
        for layer in self.mid:
            hid = self._run(layer, hid, emb, context, context_mask, f)
        for layers, up in zip(self.up, self.upsample):
            for layer in layers:
                hid = torch.cat([hid, skips.pop()], dim=1)  # ((b f), c + skip, h, w)
                hid = self._run(layer, hid, emb, context, context_mask, f)
            hid = up(hid)
        hid = self.conv_out(F.silu(self.norm_out(hid)))  # ((b f), out, h, w)
        return rearrange(hid, "(b f) c h w -> b c f h w", f=f).contiguous()
