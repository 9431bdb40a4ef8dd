"""Training-time conditioning draws (DESIGN section 5): which frames are known, classifier-free dropout, and
noise augmentation of the known frames. Every draw is per sample, from `SampleDraws`."""
from __future__ import annotations

import torch

from vidiff.training.config import ConditioningSection
from vidiff.random import SampleDraws

PATTERNS = ("none", "first", "first_k", "random_subset")


def pattern_mask(pattern: str, num_frames: int, gen: torch.Generator, max_first_k: int) -> torch.Tensor:
    """(F,) float, 1 where a frame is known, for one sample and one pattern."""
    mask = torch.zeros(num_frames)
    if pattern == "first":
        mask[0] = 1.0
    elif pattern == "first_k":
        top = max(1, min(max_first_k, num_frames - 1))
        k = int(torch.randint(1, top + 1, (1,), generator=gen))
        mask[:k] = 1.0
    elif pattern == "random_subset":  # each frame known with p = 1/2, never all of them
        mask = (torch.rand(num_frames, generator=gen) < 0.5).float()
        if num_frames > 1 and bool(mask.all()):
            mask[int(torch.randint(0, num_frames, (1,), generator=gen))] = 0.0
    elif pattern != "none":
        raise ValueError(f"unknown pattern {pattern!r}")
    return mask


def keyframe_masks(draws: SampleDraws, num_frames: int, cfg: ConditioningSection) -> torch.Tensor:
    """(B, F) known-frame masks: a pattern drawn per sample with the configured probabilities, then all
    known frames dropped with drop_cond_prob."""
    probs = torch.tensor([cfg.pattern_none, cfg.pattern_first, cfg.pattern_first_k, cfg.pattern_random_subset])
    rows = []
    for i in range(len(draws)):
        g = draws.gen(i, "mask")
        pattern = PATTERNS[int(torch.multinomial(probs / probs.sum(), 1, generator=g))]
        rows.append(pattern_mask(pattern, num_frames, g, cfg.max_first_k))
    return drop_rows(torch.stack(rows), draws, cfg.drop_cond_prob, "drop_cond")


def interpolation_masks(draws: SampleDraws, num_frames: int, cfg: ConditioningSection) -> torch.Tensor:
    """(B, F) masks with both ends known (then dropped with drop_cond_prob)."""
    mask = torch.zeros(len(draws), num_frames)
    mask[:, 0] = mask[:, -1] = 1.0
    return drop_rows(mask, draws, cfg.drop_cond_prob, "drop_cond")


def drop_rows(mask: torch.Tensor, draws: SampleDraws, prob: float, purpose: str) -> torch.Tensor:
    """Zeros row i of `mask` (B, ...) with probability `prob`, drawn per sample."""
    keep = draws.rand((), purpose) >= prob  # (B,)
    return mask * keep.reshape(-1, *([1] * (mask.ndim - 1))).to(mask.dtype)


def drop_text(context: torch.Tensor, context_mask: torch.Tensor, null: tuple[torch.Tensor, torch.Tensor],
              draws: SampleDraws, prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Replaces sample i's text by the null encoding (of "") with probability `prob`."""
    drop = (draws.rand((), "drop_text") < prob).to(context.device)  # (B,)
    null_ctx, null_mask = null[0].to(context), null[1].to(context_mask.device)  # (1, L, D), (1, L)
    ctx = torch.where(drop[:, None, None], null_ctx, context)  # (B, L, D)
    ctx_mask = torch.where(drop[:, None], null_mask, context_mask)  # (B, L)
    return ctx, ctx_mask


def augment_known(latents: torch.Tensor, mask: torch.Tensor, draws: SampleDraws, max_sigma: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Known frames with a little noise: returns (cond_latents (B,C,F,h,w), cond_sigma (B,)).

    cond_sigma ~ U(0, max_sigma) per sample (0 for samples with no known frame); the network gets it as an
    input, so at sampling time the same level can be given (a little noise makes the model trust a known
    frame less than a perfect one, which helps with frames from a different source)."""
    b = latents.shape[0]
    device = latents.device
    sigma = draws.rand((), "cond_sigma", device=device) * max_sigma  # (B,)
    sigma = sigma * (mask.sum(dim=1) > 0).to(device)  # nothing known -> no noise level
    noise = draws.randn(tuple(latents.shape[1:]), "cond_noise", device=device, dtype=latents.dtype)
    m = mask.to(device=device, dtype=latents.dtype).reshape(b, 1, -1, 1, 1)  # (B, 1, F, 1, 1)
    cond = (latents + sigma.reshape(b, 1, 1, 1, 1).to(latents.dtype) * noise) * m  # (B, C, F, h, w)
    return cond, sigma
