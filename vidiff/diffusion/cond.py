"""Cond: everything a denoising network is conditioned on, as one typed, batch-major object.

The same object travels unchanged through the sampler, guidance, the parameterization wrapper and the U-Net
(`UNet3D.forward(x, c_noise, cond)`), so no layer guesses which keyword argument has a batch axis: every tensor
field of a Cond has the batch B first, and the methods here are the only places that split, join or drop them.

Fields (None = not given; the network then sees its "nothing" input, DESIGN section 5):
    context       (B, L, D)     text token embeddings
    context_mask  (B, L) bool   True where a token is real
    known         (B, C, F, h, w) known latents (noise-augmented), multiplied by the mask by the network
    known_mask    (B, F)        1 where a frame is known, or
                  (B, F, h, w)  1 where a latent pixel is known (region edits: known content per pixel)
    frame_stride  (B,)          output frames between neighbouring frames of the model's window
    cond_sigma    (B,)          noise level of the known latents (0 where nothing is known)
    control       (B, Cc, F, H, W) structure-control maps in [0, 1] at pixel resolution (H = h * the VAE's
                                factor), one per model frame; the U-Net's attached ControlAdapter reads them
    control_scale (B,)          weight of the control features (missing = 1; 0 = exactly no control)
    anchor        (B, C, F, h, w) latents a part trained with `anchor: known_flow` denoises around: the known
                                ends warped along optical flow to each in-between time, encoded (the caller
                                computes them from pixels: vidiff/diffusion/anchor.py)

Guidance keeps the control in every pass (`without_text` / `without_known` leave it), as ControlNet does.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from vidiff.errors import InputError


@dataclass(frozen=True)
class Cond:
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    known: torch.Tensor | None = None
    known_mask: torch.Tensor | None = None
    frame_stride: torch.Tensor | None = None
    cond_sigma: torch.Tensor | None = None
    control: torch.Tensor | None = None
    control_scale: torch.Tensor | None = None
    anchor: torch.Tensor | None = None

    def items(self) -> dict[str, torch.Tensor]:
        """The given (non-None) fields by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @property
    def batch_size(self) -> int | None:
        """B, or None for an empty Cond (unconditional model)."""
        sizes = {name: value.shape[0] for name, value in self.items().items()}
        if len(set(sizes.values())) > 1:
            raise InputError(f"cond: fields disagree on the batch size: {sizes}")
        return next(iter(sizes.values()), None)

    @property
    def has_known(self) -> bool:
        """Whether any row knows any frame (the image pass of guidance then differs from the unconditional one)."""
        return self.known is not None and self.known_mask is not None and bool((self.known_mask != 0).any())

    def known_volume(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The known mask as a (B, 1, F, h, w) tensor for latents of `shape` (B, C, F, h, w): a per-frame mask
        (B, F) broadcast over the pixels (an expanded view), a per-pixel one (B, F, h, w) as it is."""
        return known_volume(self.known_mask, shape)

    def rows(self, index) -> Cond:
        """The batch rows `index` (an int slice, a list or a tensor of row indices) of every field."""
        return dataclasses.replace(self, **{name: value[index] for name, value in self.items().items()})

    def to(self, device=None, dtype: torch.dtype | None = None) -> Cond:
        """Moves every field to `device`; floating fields that carry features (context, known, control) take
        `dtype`. Masks, strides, noise levels and the control scale keep their own dtype."""
        out = {name: value.to(device) for name, value in self.items().items()}
        for name in ("context", "known", "control", "anchor"):
            if dtype is not None and name in out:
                out[name] = out[name].to(dtype)
        return dataclasses.replace(self, **out)

    def without_text(self, null_context: torch.Tensor, null_mask: torch.Tensor) -> Cond:
        """Every row's text replaced by the null encoding (1, L0, D) / (1, L0): classifier-free "no text". A
        per-row encoding (B, L0, D) / (B, L0) (negative prompts) replaces each row's text by its own."""
        if self.context is None:
            raise InputError("cond: text guidance needs a text context")
        batch = self.context.shape[0]
        if null_context.shape[-1] != self.context.shape[-1]:
            raise InputError(f"null_context: width {null_context.shape[-1]} does not match context width "
                             f"{self.context.shape[-1]}")
        return dataclasses.replace(self, context=null_context.to(self.context).expand(batch, -1, -1),
                                   context_mask=null_mask.to(self.context.device).expand(batch, -1))

    def without_known(self) -> Cond:
        """Nothing known: known latents, mask, their noise level and the flow anchor made from them all zero (what
        training feeds when the known frames are dropped). The control maps stay."""
        zeros = {name: torch.zeros_like(getattr(self, name)) for name in ("known", "known_mask", "cond_sigma", "anchor")
                 if getattr(self, name) is not None}
        return dataclasses.replace(self, **zeros)

    @staticmethod
    def cat(conds: list[Cond]) -> Cond:
        """Joins conds along the batch axis. Text contexts of different lengths are zero-padded to the longest,
        with the padded tokens masked out, so that guidance passes share one batch."""
        names = set(conds[0].items())
        if any(set(c.items()) != names for c in conds):
            raise InputError("cond: cannot join conds that give different fields")
        lengths = {c.context.shape[1] for c in conds} if "context" in names else set()
        if len(lengths) > 1 or "context_mask" in names:
            length = max(c.context.shape[1] for c in conds)
            conds = [c.padded_context(length) for c in conds]
            names.add("context_mask")  # padding adds the mask that hides the padded tokens
        return Cond(**{name: torch.cat([getattr(c, name) for c in conds]) for name in names})

    def padded_context(self, length: int) -> Cond:
        """Context (and its mask, all True when not given) zero-padded to `length` tokens."""
        ctx = self.context
        mask = self.context_mask
        if mask is None:
            mask = torch.ones(ctx.shape[:2], dtype=torch.bool, device=ctx.device)
        mask = mask.bool()
        extra = length - ctx.shape[1]
        if extra:
            ctx = torch.cat([ctx, ctx.new_zeros(ctx.shape[0], extra, ctx.shape[2])], dim=1)  # (B, length, D)
            mask = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)  # (B, length)
        return dataclasses.replace(self, context=ctx, context_mask=mask)


def known_volume(known_mask: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(B, 1, F, h, w) view of a known mask (B, F) or (B, F, h, w) for latents of `shape` (B, C, F, h, w)."""
    b, _, f, h, w = shape
    if known_mask.ndim == 2 and tuple(known_mask.shape) == (b, f):
        return known_mask[:, None, :, None, None].expand(b, 1, f, h, w)
    if known_mask.ndim == 4 and tuple(known_mask.shape) == (b, f, h, w):
        return known_mask[:, None]
    raise InputError(f"cond.known_mask must be ({b}, {f}) per frame or ({b}, {f}, {h}, {w}) per latent pixel, "
                     f"got {tuple(known_mask.shape)}")
