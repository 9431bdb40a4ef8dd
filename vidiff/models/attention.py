"""Scaled dot-product attention with named backends.

One function, `attention(q, k, v, backend=...)`, over tensors laid out (B, heads, N, d):

- "sdpa": torch.nn.functional.scaled_dot_product_attention (the default; flash / memory-efficient kernels,
  so the N x M score matrix is never stored for long sequences);
- "math": an explicit softmax(q k^T / sqrt(d) + bias) v, the reference; on this CPU it is also the faster choice
  for short sequences such as attention over a few frames (PERF_NOTES), so the temporal layers may ask for it;
- "xformers": xformers.ops.memory_efficient_attention, usable only on CUDA tensors after one probe call succeeds.

A backend that is requested but not usable raises AttentionBackendError naming it; there is no silent fallback.
`mask` is boolean, True where a key takes part, broadcastable to (B, heads, N, M); `bias` is an additive float
term broadcastable to the same shape (e.g. a relative-position bias). Every query row must keep at least one key.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidiff.errors import VidiffError

BACKENDS = ("sdpa", "math", "xformers")


class AttentionBackendError(VidiffError, RuntimeError):
    """An attention backend was requested that does not exist or cannot run here."""


_xformers_probe: dict[str, bool] = {}


def _xformers_ops(device: torch.device):
    """Imports xformers and proves it runs on `device` once; raises AttentionBackendError otherwise."""
    if device.type != "cuda":
        raise AttentionBackendError(
            f"attention backend 'xformers' needs CUDA tensors, got device {device.type!r}; use backend='sdpa'"
        )
    try:
        import xformers.ops as xops
    except ImportError as e:
        raise AttentionBackendError(
            "attention backend 'xformers' was requested but xformers is not installed"
        ) from e
    key = str(device)
    if key not in _xformers_probe:
        try:
            probe = torch.zeros(1, 8, 1, 16, device=device, dtype=torch.float16)
            xops.memory_efficient_attention(probe, probe, probe)
            _xformers_probe[key] = True
        except (NotImplementedError, RuntimeError, ValueError) as e:
            raise AttentionBackendError(f"attention backend 'xformers' does not run on {device}: {e}") from e
    return xops


def _additive_mask(mask: torch.Tensor | None, bias: torch.Tensor | None, dtype: torch.dtype):
    """Combines a boolean keep-mask and an additive bias into one additive float term (or None)."""
    if mask is None:
        return None if bias is None else bias.to(dtype)
    term = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    return term if bias is None else term + bias.to(dtype)


# CPU training in bf16 / fp16 runs SDPA in fp32: the CPU flash kernel's half-precision backward took 5-14x the fp32
# time for the U-Net's attention shapes on a Xeon with AMX, one thread (docs/benchmarks.md, "bf16 on a CPU: the norms
# and the attention"); its forward alone (sampling) is as fast in bf16, so sampling keeps it
TRAIN_SDPA_IN_FP32 = True


def _trains_in_half_on_cpu(q, k, v) -> bool:
    return (TRAIN_SDPA_IN_FP32 and q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
            and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad))


def _sdpa_in_fp32(q, k, v, mask, bias):
    with torch.autocast("cpu", enabled=False):  # autocast would cast SDPA's inputs back to half
        attn_mask = mask if bias is None else _additive_mask(mask, bias, torch.float32)
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask)
    return out.to(q.dtype)


def _math(q, k, v, mask, bias):
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))  # (B, h, N, M)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)  # (B, h, N, d)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    backend: str = "sdpa",
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias, masked) v for q (B, h, N, d), k and v (B, h, M, d); returns (B, h, N, d)."""
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"attention: q, k, v must be (B, heads, N, d), got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(f"attention: mask must be boolean (True = attend), got {mask.dtype}")
    if backend == "sdpa":
        if _trains_in_half_on_cpu(q, k, v):
            return _sdpa_in_fp32(q, k, v, mask, bias)
        attn_mask = mask if bias is None else _additive_mask(mask, bias, q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    if backend == "math":
        return _math(q, k, v, mask, bias)
    if backend == "xformers":
        xops = _xformers_ops(q.device)
        attn_bias = _additive_mask(mask, bias, q.dtype)
        if attn_bias is not None:
            attn_bias = attn_bias.expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        # xformers wants (B, N, heads, d)
        out = xops.memory_efficient_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=attn_bias
        )
        return out.transpose(1, 2)
    raise AttentionBackendError(f"unknown attention backend {backend!r}; choose one of {list(BACKENDS)}")


def check_backend(backend: str) -> None:
    """Raises AttentionBackendError for a name that is not a backend (cheap; usability is checked at call time)."""
    if backend not in BACKENDS:
        raise AttentionBackendError(f"unknown attention backend {backend!r}; choose one of {list(BACKENDS)}")
