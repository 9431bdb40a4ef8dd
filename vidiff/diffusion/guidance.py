"""Classifier-free guidance with separate text and image scales (Brooks et al. 2023, InstructPix2Pix eq. 3).

With U = D(x | no image, no text), I = D(x | image, no text) and C = D(x | image, text):
    D~ = U + s_I (I - U) + s_T (C - I) = (1 - s_I) U + (s_I - s_T) I + s_T C.
The combination is linear and its weights sum to 1, so guiding the denoised estimate equals guiding eps or v.

"Dropping" a condition means exactly (vidiff/diffusion/cond.py):
- text: `Cond.without_text`: the context becomes `null_context` (given at construction, (L, D) or (1, L, D), e.g.
  the embedding of the empty prompt the model was trained to drop to) and its mask `null_context_mask` (all True
  when not given). Passes with contexts of different lengths are zero-padded to share a batch (`Cond.cat`).
  Negative prompts: when `negative_context` is given, it takes the null context's place in every pass without
  the text (U and I), so guidance pushes away from the negative prompt instead of from "no prompt". It may be
  one encoding for every row (L, D) / (1, L, D) or one per row (B, L, D); a row without a negative prompt passes
  the null encoding in its place.
- image: `Cond.without_known`: known latents, mask and their noise level become zeros (the "no known frame" input
  the model sees in training).
Every other field (frame_stride, ...) is passed unchanged to every pass.

Only passes with a non-zero weight are run, all in one batched call to the inner denoiser: (1, 1) is one
conditional pass; with no image conditioning (no known mask, or an all-zero one) U == I, so it is U + s_T (C - U)
in two passes and image_scale does not matter.

Two optional refinements (off by default; with the defaults the output is bit-identical to plain guidance):
- Guidance rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", sec. 3.4):
  strong guidance inflates the prediction's scale (over-exposed, washed-out frames, worst with zero-terminal-SNR
  schedules). The guided estimate is rescaled so that its std per sample equals the conditional estimate's,
  D_r = D~ * std(C) / std(D~), then mixed back: phi D_r + (1 - phi) D~ (the paper uses phi = 0.7).
  Space: the rescale acts on the denoised estimate (x0), not on eps or v. The guided denoiser only ever sees x0
  estimates, so this keeps guidance independent of the network's parameterization; x0 is where over-exposure
  shows; and at the zero-SNR end, where the rescale matters most, a v-prediction is minus the x0 prediction
  (v = alpha eps - sigma_vp x0 with alpha = 0), so there x0 and v space give the same factor. (Rescaling is not
  linear, so away from that end eps- or v-space rescaling, as in diffusers, gives slightly different results.)
- Guidance interval (Kynkaanniemi et al. 2024, "Applying Guidance in a Limited Interval Improves Sample and
  Distribution Quality"): guidance only for rows with lo <= sigma <= hi; elsewhere one conditional pass C,
  which also saves the other passes' evaluations there.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError
from vidiff.limits import check_scale


def _text_encoding(context, mask, name: str, per_row: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, D) / (1, L, D) (or (B, L, D) when per_row) and its mask (all True when None) as (N, L, D), (N, L) bool."""
    context = torch.as_tensor(context)
    if context.ndim == 2:
        context = rearrange(context, "l d -> 1 l d")
    if context.ndim != 3 or (context.shape[0] != 1 and not per_row):
        expected = "(L, D), (1, L, D) or (B, L, D)" if per_row else "(L, D) or (1, L, D)"
        raise InputError(f"{name}: expected {expected}, got {tuple(context.shape)}")
    if mask is None:
        mask = torch.ones(context.shape[:2], dtype=torch.bool)
    mask = torch.as_tensor(mask).bool().to(context.device)  # the context may be on a GPU; the mask goes with it
    mask = mask.reshape(1, -1) if mask.ndim == 1 else mask  # (N, L)
    if tuple(mask.shape) != tuple(context.shape[:2]):
        raise InputError(f"{name}_mask: shape {tuple(mask.shape)}, expected {tuple(context.shape[:2])} for {name}")
    return context, mask


class GuidedDenoiser(nn.Module):
    """A denoiser (x, sigma, cond) -> denoised that applies text / image classifier-free guidance.

    null_context / null_context_mask: the dropped-text encoding (see the module docstring); negative_context /
    negative_context_mask: the negative prompt's encoding, one or one per row, replacing the null one;
    rescale: phi in [0, 1] of guidance rescale (0 = off); interval: (lo, hi) noise levels where guidance
    applies (None = everywhere)."""

    def __init__(
        self,
        denoiser,
        text_scale: float = 1.0,
        image_scale: float = 1.0,
        null_context: torch.Tensor | None = None,
        null_context_mask: torch.Tensor | None = None,
        *,
        negative_context: torch.Tensor | None = None,
        negative_context_mask: torch.Tensor | None = None,
        rescale: float = 0.0,
        interval: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.denoiser = denoiser
        self.text_scale = check_scale(text_scale, "text_scale")
        self.image_scale = check_scale(image_scale, "image_scale")
        if null_context is not None:
            null_context, null_context_mask = _text_encoding(null_context, null_context_mask, "null_context", False)
        elif null_context_mask is not None:
            raise InputError("null_context_mask: given without null_context")
        if negative_context is not None:
            negative_context, negative_context_mask = _text_encoding(
                negative_context, negative_context_mask, "negative_context", True)
        elif negative_context_mask is not None:
            raise InputError("negative_context_mask: given without negative_context")
        self.register_buffer("null_context", null_context, persistent=False)
        self.register_buffer("null_context_mask", null_context_mask, persistent=False)
        self.register_buffer("negative_context", negative_context, persistent=False)
        self.register_buffer("negative_context_mask", negative_context_mask, persistent=False)
        if self.text_scale != 1.0 and null_context is None and negative_context is None:
            raise InputError(f"null_context: text_scale={self.text_scale} needs the null (dropped-text) context")
        self.rescale = check_scale(rescale, "rescale")
        if self.rescale > 1:
            raise InputError(f"rescale: the guidance rescale phi must be in [0, 1], got {rescale!r}")
        if interval is not None:
            if len(interval) != 2:
                raise InputError(f"interval: expected (lo, hi), got {interval!r}")
            lo, hi = (float(v) for v in interval)
            if math.isnan(lo) or math.isnan(hi) or not 0 <= lo <= hi:
                raise InputError(f"interval: expected noise levels 0 <= lo <= hi, got {interval!r}")
            interval = (lo, hi)
        self.interval = interval

    def weights(self, has_image: bool) -> dict[str, float]:
        """Non-zero weights of the passes "uncond", "image" (image, no text) and "full" (image + text)."""
        s_i, s_t = self.image_scale, self.text_scale
        w = {"uncond": 1 - s_i, "image": s_i - s_t, "full": s_t}
        if not has_image:  # U == I: fold the image-only pass into the unconditional one
            w = {"uncond": 1 - s_t, "full": s_t}
        return {k: v for k, v in w.items() if v != 0.0}

    def _null_text(self, cond: Cond, rows: torch.Tensor | None) -> Cond:
        if self.negative_context is not None:
            ctx, mask = self.negative_context, self.negative_context_mask
            batch = cond.batch_size
            if ctx.shape[0] != 1:
                if rows is None and ctx.shape[0] != batch:
                    raise InputError(f"negative_context: {ctx.shape[0]} rows for a batch of {batch}")
                if rows is not None:
                    ctx, mask = ctx[rows.to(ctx.device)], mask[rows.to(mask.device)]
            return cond.without_text(ctx, mask)
        if self.null_context is None:
            raise InputError("null_context: needed to drop the text but not given at construction")
        return cond.without_text(self.null_context, self.null_context_mask)

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        cond = Cond() if cond is None else cond
        if list(self.weights(cond.has_known)) == ["full"]:  # weight 1 on the conditional pass: nothing to combine
            return self.denoiser(x, sigma, cond)
        if self.interval is None:
            return self._guided(x, sigma, cond, None)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma  # (B,)
        lo, hi = self.interval
        inside = (sigma >= lo) & (sigma <= hi)  # (B,)
        if bool(inside.all()):
            return self._guided(x, sigma, cond, None)
        if not bool(inside.any()):
            return self.denoiser(x, sigma, cond)
        rows_in, rows_out = inside.nonzero().squeeze(1), (~inside).nonzero().squeeze(1)
        out = torch.empty_like(x)
        out[rows_in] = self._guided(x[rows_in], sigma[rows_in], cond.rows(rows_in), rows_in)
        out[rows_out] = self.denoiser(x[rows_out], sigma[rows_out], cond.rows(rows_out)).to(x.dtype)
        return out

    def _guided(self, x: torch.Tensor, sigma, cond: Cond, rows: torch.Tensor | None) -> torch.Tensor:
        """The guided estimate for every row of x; `rows`: which rows of the full batch these are (for per-row
        negative prompts), None for all."""
        batch = x.shape[0]
        weights = self.weights(cond.has_known)
        if self.rescale > 0 and "full" not in weights:
            weights["full"] = 0.0  # the rescale's reference: run the conditional pass even at weight 0
        builders = {
            "uncond": lambda: self._null_text(cond.without_known(), rows),
            "image": lambda: self._null_text(cond, rows),
            "full": lambda: cond,
        }
        names = list(weights)
        conds = [builders[n]() for n in names]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        sigma = sigma.expand(batch) if sigma.ndim == 0 else sigma  # (B,)
        xs = torch.cat([x] * len(names))  # (passes * B, ...)
        denoised = self.denoiser(xs, torch.cat([sigma] * len(names)), Cond.cat(conds))
        parts = denoised.chunk(len(names))
        out = sum(w * p for w, p in zip(weights.values(), parts))
        if self.rescale > 0 and len(names) > 1:
            out = self._rescaled(out, parts[names.index("full")])
        return out.to(x.dtype)

    def _rescaled(self, guided: torch.Tensor, conditional: torch.Tensor) -> torch.Tensor:
        """phi * guided * std(C) / std(guided) + (1 - phi) * guided, std per sample over all its elements (one
        row at a time, so that a row's factor never depends on the batch around it)."""
        std_cond = torch.stack([row.std() for row in conditional.flatten(1)])  # (B,)
        std_guided = torch.stack([row.std() for row in guided.flatten(1)]).clamp(min=torch.finfo(guided.dtype).tiny)
        factor = self.rescale * std_cond / std_guided + (1 - self.rescale)  # (B,)
        return guided * factor.reshape(-1, *([1] * (guided.ndim - 1)))
