"""Attention blocks of the factorized 3D U-Net (Ho et al. 2022 "Video Diffusion Models", Make-A-Video):

- SpatialTransformer, per frame: GroupNorm, proj_in, then pre-LayerNorm self-attention over the h*w tokens,
  cross-attention to the text context (B, L, D) with an optional context_mask (B, L), a GEGLU feed-forward
  (Shazeer 2020), proj_out, plus the input (the LDM / Stable Diffusion transformer block).
- TemporalTransformer, per pixel: pre-LayerNorm self-attention over frames with a learned relative-position bias
  (clip length can vary), a GEGLU feed-forward; both output projections start at zero, so the block is the
  identity at initialisation and a model also runs on single frames.

Both read the frames-folded channels-last activations `(b f) c h w` through free views: `(b f) (h w) c` for
space and `b f (h w) c` for time (the temporal layout `(b h w) f c` is the same tensor with axes permuted).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.models.attention import attention
from vidiff.models.embeddings import RelativePositionBias
from vidiff.models.group_norm import GroupNorm


class _GatedProjection(torch.autograd.Function):
    """linear(value * gelu(gate), weight, bias) for h = [value | gate], storing only h: the gated activation
    (half the width of h) is recomputed in backward instead of being kept, which halves the activation memory of
    the feed-forward. Computes in h's dtype (under autocast, the dtype proj_in produced)."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        value, gate = h.chunk(2, dim=-1)
        act = value * F.gelu(gate)  # (..., inner)
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        return F.linear(act, weight.to(h.dtype), None if bias is None else bias.to(h.dtype))

    @staticmethod
    def backward(ctx, grad_out):
        h, weight = ctx.saved_tensors
        value, gate = h.chunk(2, dim=-1)
        gelu_gate = F.gelu(gate)
        act = (value * gelu_gate).flatten(0, -2)  # (tokens, inner)
        g = grad_out.to(h.dtype)
        grad_act = g @ weight.to(h.dtype)  # (..., inner)
        g2 = g.flatten(0, -2)  # (tokens, dim)
        grad_w = (g2.t() @ act).to(weight.dtype)
        grad_b = g2.sum(0).to(weight.dtype) if ctx.has_bias else None
        grad_value = grad_act * gelu_gate
        grad_gate = torch.ops.aten.gelu_backward(grad_act * value, gate)
        return torch.cat([grad_value, grad_gate], dim=-1), grad_w, grad_b


class GEGLU(nn.Module):
    """Linear(dim -> 2*inner), value * GELU(gate), Linear(inner -> dim) (the last two fused, see above, unless
    `recompute_activations` is switched off: then autograd keeps the gated activation)."""

    recompute_activations = True  # models/recompute.py

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0, zero_out: bool = False):
        super().__init__()
        inner = dim * mult
        self.proj_in = nn.Linear(dim, inner * 2)
        self.dropout = nn.Dropout(dropout)
        self.proj_out = nn.Linear(inner, dim)
        if zero_out:
            nn.init.zeros_(self.proj_out.weight)
            nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj_in(x)  # (..., 2 * inner)
        if (self.dropout.p > 0 and self.training) or not self.recompute_activations:
            value, gate = h.chunk(2, dim=-1)
            return self.proj_out(self.dropout(value * F.gelu(gate)))
        return _GatedProjection.apply(h, self.proj_out.weight, self.proj_out.bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection; tokens (..., N, C) -> same."""

    def __init__(self, dim: int, heads: int, backend: str, zero_out: bool = False):
        super().__init__()
        self.heads = heads
        self.backend = backend
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        if zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        o = attention(q, k, v, backend=self.backend)  # (b, heads, n, d)
        return self.out(rearrange(o, "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Attention from the video tokens to the text context. All frames of a sample share one set of keys, so the
    queries of a clip are attended as one sequence `b (f n)` and the context is never repeated per frame."""

    def __init__(self, dim: int, context_dim: int, heads: int, backend: str):
        super().__init__()
        self.heads = heads
        self.backend = backend
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, context, context_mask, num_frames: int) -> torch.Tensor:
        # x: ((b f), n, c); context: (b, L, D); context_mask: (b, L) bool or None
        q = rearrange(self.q(x), "(b f) n (h d) -> b h (f n) d", f=num_frames, h=self.heads)
        k, v = rearrange(self.kv(context), "b l (two h d) -> two b h l d", two=2, h=self.heads)
        if context_mask is None:
            o = attention(q, k, v, backend=self.backend)  # (b, heads, f*n, d)
        else:
            # a sample whose mask is all False attends to nothing: its cross-attention output is zero
            has_any = context_mask.any(dim=1)  # (b,)
            safe = context_mask | ~has_any[:, None]
            o = attention(q, k, v, backend=self.backend, mask=safe[:, None, None, :])
            o = o * has_any[:, None, None, None].to(o.dtype)
        o = rearrange(o, "b h (f n) d -> (b f) n (h d)", f=num_frames)
        return self.out(o)


class SpatialTransformer(nn.Module):
    """Per-frame transformer over h*w tokens with text cross-attention; ((b f), c, h, w) -> same."""

    def __init__(self, dim: int, heads: int, context_dim: int, groups: int, backend: str, dropout: float = 0.0):
        super().__init__()
        self.norm = GroupNorm(groups, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = SelfAttention(dim, heads, backend)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, backend)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = GEGLU(dim, dropout=dropout)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x, context, context_mask, num_frames: int) -> torch.Tensor:
        h_, w_ = x.shape[-2:]
        t = rearrange(self.norm(x), "bf c h w -> bf (h w) c")  # ((b f), h*w, c), a view in channels-last
        t = self.proj_in(t)
        t = t + self.attn1(self.norm1(t))
        if context is not None:
            t = t + self.attn2(self.norm2(t), context, context_mask, num_frames)
        t = t + self.ff(self.norm3(t))
        t = self.proj_out(t)
        return x + rearrange(t, "bf (h w) c -> bf c h w", h=h_, w=w_)


class TemporalTransformer(nn.Module):
    """Per-pixel transformer over frames; ((b f), c, h, w) -> same; the identity at initialisation."""

    def __init__(self, dim: int, heads: int, backend: str, dropout: float = 0.0, max_distance: int = 32):
        super().__init__()
        self.heads = heads
        self.backend = backend
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.rel_bias = RelativePositionBias(heads, max_distance)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = GEGLU(dim, dropout=dropout, zero_out=True)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        h_, w_ = x.shape[-2:]
        t = rearrange(x, "(b f) c h w -> b f (h w) c", f=num_frames)  # a view in channels-last memory
        qkv = self.qkv(self.norm1(t))  # (b, f, h*w, 3c)
        q, k, v = rearrange(qkv, "b f n (three h d) -> three (b n) h f d", three=3, h=self.heads)
        o = attention(q, k, v, backend=self.backend, bias=self.rel_bias(num_frames))  # ((b h w), heads, f, d)
        o = rearrange(o, "(b n) h f d -> b f n (h d)", n=h_ * w_)
        t = t + self.out(o)
        t = t + self.ff(self.norm2(t))
        return rearrange(t, "b f (h w) c -> (b f) c h w", h=h_, w=w_)
