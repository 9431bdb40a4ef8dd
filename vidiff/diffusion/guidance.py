"""Classifier-free guidance with separate text and image scales (Brooks et al. 2023, InstructPix2Pix eq. 3).

With U = D(x | no image, no text), I = D(x | image, no text) and C = D(x | image, text):
    D~ = U + s_I (I - U) + s_T (C - I) = (1 - s_I) U + (s_I - s_T) I + s_T C.
The combination is linear and its weights sum to 1, so guiding the denoised estimate equals guiding eps or v.

"Dropping" a condition means exactly:
- text: `context` becomes `null_context` (given at construction, (L, D) or (1, L, D), e.g. the embedding of the
  empty prompt the model was trained to drop to) and `context_mask` becomes `null_context_mask` (all True when
  not given). When the two lengths differ, the shorter is zero-padded with mask False so the passes share a batch.
- image: `cond_latents` and `cond_mask` become zeros (the "no known frame" input the model sees in training).
Every other kwarg (frame_stride, cond_sigma, ...) is passed unchanged to every pass.

Only passes with a non-zero weight are run, all in one batched call to the inner denoiser: (1, 1) is one
conditional pass; with no image conditioning (no cond_mask, or an all-zero one) U == I, so it is U + s_T (C - U)
in two passes and image_scale does not matter.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from vidiff.errors import InputError


def _check_scale(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: must be a finite number >= 0, got {value!r}")
    return float(value)


def _pad_context(ctx: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pads (B, L, D) / (B, L) to `length` tokens; padded tokens are masked out."""
    extra = length - ctx.shape[1]
    if extra == 0:
        return ctx, mask
    ctx = torch.cat([ctx, ctx.new_zeros(ctx.shape[0], extra, ctx.shape[2])], dim=1)  # (B, length, D)
    mask = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)  # (B, length)
    return ctx, mask


class GuidedDenoiser(nn.Module):
    """A denoiser (x, sigma, **cond) -> denoised that applies text / image classifier-free guidance."""

    def __init__(
        self,
        denoiser,
        text_scale: float = 1.0,
        image_scale: float = 1.0,
        null_context: torch.Tensor | None = None,
        null_context_mask: torch.Tensor | None = None,
    ):
        super().__init__()
        self.denoiser = denoiser
        self.text_scale = _check_scale(text_scale, "text_scale")
        self.image_scale = _check_scale(image_scale, "image_scale")
        if null_context is not None:
            null_context = torch.as_tensor(null_context)
            if null_context.ndim == 2:
                null_context = rearrange(null_context, "l d -> 1 l d")
            if null_context.ndim != 3 or null_context.shape[0] != 1:
                raise InputError(f"null_context: expected (L, D) or (1, L, D), got {tuple(null_context.shape)}")
            if null_context_mask is None:
                null_context_mask = torch.ones(null_context.shape[:2], dtype=torch.bool)
            null_context_mask = torch.as_tensor(null_context_mask).bool().reshape(1, -1)  # (1, L)
            if null_context_mask.shape[1] != null_context.shape[1]:
                raise InputError(
                    f"null_context_mask: {null_context_mask.shape[1]} tokens, null_context has {null_context.shape[1]}"
                )
        elif null_context_mask is not None:
            raise InputError("null_context_mask: given without null_context")
        self.register_buffer("null_context", null_context, persistent=False)
        self.register_buffer("null_context_mask", null_context_mask, persistent=False)
        if self.text_scale != 1.0 and null_context is None:
            raise InputError(f"null_context: text_scale={self.text_scale} needs the null (dropped-text) context")

    def weights(self, has_image: bool) -> dict[str, float]:
        """Non-zero weights of the passes "uncond", "image" (image, no text) and "full" (image + text)."""
        s_i, s_t = self.image_scale, self.text_scale
        w = {"uncond": 1 - s_i, "image": s_i - s_t, "full": s_t}
        if not has_image:  # U == I: fold the image-only pass into the unconditional one
            w = {"uncond": 1 - s_t, "full": s_t}
        return {k: v for k, v in w.items() if v != 0.0}

    def _null_text(self, cond: dict, batch: int) -> dict:
        if self.null_context is None:
            raise InputError("null_context: needed to drop the text but not given at construction")
        if "context" not in cond or cond["context"] is None:
            raise InputError("context: text guidance needs the text context among the conditioning kwargs")
        ctx = cond["context"]  # (B, L, D)
        null = self.null_context.to(ctx).expand(batch, -1, -1)  # (B, L0, D)
        if null.shape[2] != ctx.shape[2]:
            raise InputError(f"null_context: width {null.shape[2]} does not match context width {ctx.shape[2]}")
        out = dict(cond)
        out["context"] = null
        out["context_mask"] = self.null_context_mask.to(ctx.device).expand(batch, -1)  # (B, L0)
        return out

    @staticmethod
    def _no_image(cond: dict) -> dict:
        out = dict(cond)
        # cond_sigma too: training feeds 0 as the known frames' noise level when no frame is known
        for key in ("cond_latents", "cond_mask", "cond_sigma"):
            if out.get(key) is not None:
                out[key] = torch.zeros_like(out[key])
        return out

    def _concat(self, conds: list[dict], batch: int) -> dict:
        """Joins per-pass kwargs along the batch axis (contexts padded to a common length)."""
        contexts = [c.get("context") for c in conds]
        if all(ctx is not None for ctx in contexts):
            lengths = {ctx.shape[1] for ctx in contexts}
            if len(lengths) > 1 or any(c.get("context_mask") is not None for c in conds):
                conds = [dict(c) for c in conds]
                for c in conds:
                    mask = c.get("context_mask")
                    if mask is None:  # every token of this pass is real
                        mask = torch.ones(c["context"].shape[:2], dtype=torch.bool, device=c["context"].device)
                    c["context"], c["context_mask"] = _pad_context(c["context"], mask.bool(), max(lengths))
        out = {}
        for key, first in conds[0].items():
            if torch.is_tensor(first) and first.ndim > 0 and first.shape[0] == batch:
                out[key] = torch.cat([c[key] for c in conds])  # (passes * B, ...)
            else:
                out[key] = first
        return out

    def forward(self, x: torch.Tensor, sigma, **cond) -> torch.Tensor:
        batch = x.shape[0]
        mask = cond.get("cond_mask")
        has_image = cond.get("cond_latents") is not None and mask is not None and bool((mask != 0).any())
        weights = self.weights(has_image)
        if list(weights) == ["full"]:  # weight 1 on the fully conditional pass: nothing to combine
            return self.denoiser(x, sigma, **cond)
        builders = {
            "uncond": lambda: self._null_text(self._no_image(cond), batch),
            "image": lambda: self._null_text(cond, batch),
            "full": lambda: cond,
        }
        names = list(weights)
        conds = [builders[n]() for n in names]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        sigma = sigma.expand(batch) if sigma.ndim == 0 else sigma  # (B,)
        xs = torch.cat([x] * len(names))  # (passes * B, ...)
        denoised = self.denoiser(xs, torch.cat([sigma] * len(names)), **self._concat(conds, batch))
        parts = denoised.chunk(len(names))
        out = sum(w * p for w, p in zip(weights.values(), parts))
        return out.to(x.dtype)
