"""Conditioning embeddings of the U-Net: noise level, frame stride, noise level of the known frames, the pooled
text, and the learned relative-position bias of temporal attention.

Scalars are turned into sinusoidal features (Transformer positional encoding, Vaswani et al. 2017, applied to a
continuous value) and then an MLP. Each scalar is first mapped to a range of about [-3, 3]:
- c_noise is already the network's conditioning value (log(sigma) / 4, set by the Denoiser);
- frame_stride s >= 1 enters as log(s) (a stride of 1, the default when missing, gives 0);
- cond_sigma (noise added to known frames) enters as log(max(cond_sigma, 1e-3)) / 4 (missing = 0 noise = 1e-3).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_features(value: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """(B,) float -> (B, dim) [cos | sin] features with frequencies geometric from 1 to `max_period`."""
    if dim % 2:
        raise ValueError(f"sinusoidal_features: dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(max_period), half, device=value.device, dtype=torch.float32))
    angles = value.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ScalarEmbedding(nn.Module):
    """Scalar per sample -> sinusoidal features -> Linear-SiLU-Linear, an embedding of size `out_dim`."""

    def __init__(self, features: int, out_dim: int, zero_init: bool = False):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))
        if zero_init:  # an added conditioning term that starts as a no-op
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        dtype = self.mlp[0].weight.dtype
        return self.mlp(sinusoidal_features(value, self.features).to(dtype))  # (B, out_dim)


def _batch_scalar(value, batch: int, default: float, name: str, device) -> torch.Tensor:
    """Accepts None, a number or a (B,) tensor; returns a (B,) float tensor."""
    if value is None:
        return torch.full((batch,), default, device=device)
    value = torch.as_tensor(value, device=device, dtype=torch.float32)
    if value.ndim == 0:
        value = value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(f"{name} must be a number or a ({batch},) tensor, got shape {tuple(value.shape)}")
    return value


class ConditioningEmbedding(nn.Module):
    """Sum of the embeddings of c_noise, frame_stride (optional) and cond_sigma (optional): (B, emb_dim)."""

    def __init__(self, features: int, emb_dim: int, use_frame_stride: bool, use_cond_sigma: bool):
        super().__init__()
        self.noise = ScalarEmbedding(features, emb_dim)
        self.frame_stride = ScalarEmbedding(features, emb_dim, zero_init=True) if use_frame_stride else None
        self.cond_sigma = ScalarEmbedding(features, emb_dim, zero_init=True) if use_cond_sigma else None

    def forward(self, c_noise, batch: int, device, frame_stride=None, cond_sigma=None) -> torch.Tensor:
        emb = self.noise(_batch_scalar(c_noise, batch, 0.0, "c_noise", device))  # (B, E)
        if self.frame_stride is not None:
            stride = _batch_scalar(frame_stride, batch, 1.0, "frame_stride", device)
            # a data-dependent check is a graph break under torch.compile; there the pipeline's layout checks,
            # made before sampling, stand for it
            if not torch.compiler.is_compiling() and bool((stride <= 0).any()):
                raise ValueError("frame_stride must be > 0")
            emb = emb + self.frame_stride(stride.log())
        if self.cond_sigma is not None:
            sigma = _batch_scalar(cond_sigma, batch, 0.0, "cond_sigma", device)
            emb = emb + self.cond_sigma(sigma.clamp_min(1e-3).log() / 4)
        return emb


class PooledTextEmbedding(nn.Module):
    """Masked mean of the text context (B, L, D) -> LayerNorm-Linear-SiLU-Linear -> (B, emb_dim), added to the
    noise embedding (Imagen, Saharia et al. 2022). Cross-attention reaches only the attention levels; this term
    reaches every residual block, so prompt facts that concern the whole clip (the direction of motion) steer
    every layer. The last layer starts at zero: the term starts as a no-op."""

    def __init__(self, context_dim: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(context_dim)
        self.mlp = nn.Sequential(nn.Linear(context_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        dtype = self.mlp[0].weight.dtype
        if context_mask is None:
            pooled = context.float().mean(dim=1)  # (B, D)
        else:  # a row with no real token pools to zeros
            w = context_mask.float()[:, :, None]  # (B, L, 1)
            pooled = (context.float() * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        return self.mlp(self.norm(pooled.to(dtype)))


class RelativePositionBias(nn.Module):
    """Learned per-head bias b[h, clip(j - i)] added to attention scores over frames (T5 / Shaw et al. 2018 style);
    distances beyond `max_distance` share the end buckets, so any clip length works. Starts at zero."""

    def __init__(self, heads: int, max_distance: int = 32):
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(heads, 2 * max_distance + 1))

    def forward(self, num_frames: int) -> torch.Tensor:
        pos = torch.arange(num_frames, device=self.table.device)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance) + self.max_distance
        return self.table[:, rel]  # (heads, F, F)
