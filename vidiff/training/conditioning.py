"""Training-time conditioning draws (DESIGN section 5): which frames are known, classifier-free dropout, and
noise augmentation of the known frames. Every draw is per sample, from `SampleDraws`."""
from __future__ import annotations

import torch

from vidiff.diffusion.cond import Cond, known_volume
from vidiff.pipeline.trained import PATTERNS
from vidiff.random import SampleDraws
from vidiff.training.config import ConditioningSection
from vidiff.training.regions import region_keep_mask


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
    elif pattern == "region":  # every frame, known outside a region (per_pixel below cuts the region out)
        mask[:] = 1.0
    elif pattern != "none":
        raise ValueError(f"unknown pattern {pattern!r}")
    return mask


def keyframe_masks(draws: SampleDraws, num_frames: int, cfg: ConditioningSection,
                   size: tuple[int, int] | None = None) -> torch.Tensor:
    """Known masks: (B, F) per frame, a pattern drawn per sample with the configured probabilities; when some
    sample draws "region" (pattern_region > 0), (B, F, h, w) per latent pixel for the whole batch, that sample's
    frames known outside a region. Then all known content dropped with drop_cond_prob."""
    weights = [cfg.pattern_none, cfg.pattern_first, cfg.pattern_first_k, cfg.pattern_random_subset]
    if cfg.pattern_region > 0:  # only then a fifth category, so recipes without regions draw as before
        weights.append(cfg.pattern_region)
    probs = torch.tensor(weights)
    rows, regions = [], {}
    for i in range(len(draws)):
        g = draws.gen(i, "mask")
        pattern = PATTERNS[int(torch.multinomial(probs / probs.sum(), 1, generator=g))]
        rows.append(pattern_mask(pattern, num_frames, g, cfg.max_first_k))
        if pattern == "region":
            regions[i] = region_keep_mask(num_frames, *_latent_size(size), draws.gen(i, "region"))
    return drop_rows(per_pixel(torch.stack(rows), regions, size), draws, cfg.drop_cond_prob, "drop_cond")


def interpolation_masks(draws: SampleDraws, num_frames: int, cfg: ConditioningSection,
                        size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, F) masks with both ends known; with pattern_region > 0, (B, F, h, w) with the frames between the ends
    of a share pattern_region of the samples known outside a region. Then dropped with drop_cond_prob."""
    mask = torch.zeros(len(draws), num_frames)
    mask[:, 0] = mask[:, -1] = 1.0
    regions = {}
    if cfg.pattern_region > 0:
        for i, hit in enumerate(draws.rand((), "region_pick") < cfg.pattern_region):
            if hit:
                keep = region_keep_mask(num_frames, *_latent_size(size), draws.gen(i, "region"))
                keep[0] = keep[-1] = 1.0
                regions[i] = keep
    return drop_rows(per_pixel(mask, regions, size), draws, cfg.drop_cond_prob, "drop_cond")


def _latent_size(size: tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        raise ValueError("region patterns need the latent size (h, w)")
    return size


def per_pixel(frame_mask: torch.Tensor, regions: dict[int, torch.Tensor], size) -> torch.Tensor:
    """(B, F) frame masks as they are when no sample has a region; else (B, F, h, w) with the frame masks
    broadcast over the pixels and each region sample's (F, h, w) keep mask in its row."""
    if not regions:
        return frame_mask
    b, f = frame_mask.shape
    out = known_volume(frame_mask, (b, 1, f, *size))[:, 0].clone()  # (B, F, h, w)
    for i, keep in regions.items():
        out[i] = keep
    return out


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
    """Known content with a little noise: returns (cond_latents (B,C,F,h,w), cond_sigma (B,)); mask (B,F) or
    (B,F,h,w).

    cond_sigma ~ U(0, max_sigma) per sample (0 for samples with no known frame); the network gets it as an
    input, so at sampling time the same level can be given (a little noise makes the model trust a known
    frame less than a perfect one, which helps with frames from a different source)."""
    b = latents.shape[0]
    device = latents.device
    sigma = draws.rand((), "cond_sigma", device=device) * max_sigma  # (B,)
    sigma = sigma * (mask.flatten(1).sum(dim=1) > 0).to(device)  # nothing known -> no noise level
    noise = draws.randn(tuple(latents.shape[1:]), "cond_noise", device=device, dtype=latents.dtype)
    m = known_volume(mask.to(device=device, dtype=latents.dtype), tuple(latents.shape))  # (B, 1, F, h, w)
    cond = (latents + sigma.reshape(b, 1, 1, 1, 1).to(latents.dtype) * noise) * m  # (B, C, F, h, w)
    return cond, sigma


def training_inputs(x0: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor, known_mask: torch.Tensor,
                    frame_stride: float, draws: SampleDraws, cfg: ConditioningSection, noise_cfg,
                    null_text: tuple[torch.Tensor, torch.Tensor], *, known: bool = True, **extra
                    ) -> tuple[torch.Tensor, torch.Tensor, Cond]:
    """(sigma (B,), noise like x0, Cond) of one training batch of a latent diffusion stage: the text dropped to
    the null encoding per sample, the known content (known_mask (B,F) or (B,F,h,w)) noise-augmented, a training
    noise level and the noise per sample, all from the samples' own draws. known=False leaves the known fields out
    (a network without known-frame conditioning); `extra` are further Cond fields (e.g. control maps)."""
    from vidiff.diffusion import sample_training_sigmas

    b, device = x0.shape[0], x0.device
    context, context_mask = drop_text(context.to(device), context_mask.to(device), null_text, draws,
                                      cfg.drop_text_prob)
    fields = {}
    if known:
        cond_latents, cond_sigma = augment_known(x0, known_mask, draws, cfg.cond_noise_max_sigma)
        fields = dict(known=cond_latents, known_mask=known_mask.to(device), cond_sigma=cond_sigma)
    sigma = sample_training_sigmas(b, noise_cfg, [draws.gen(i, "sigma") for i in range(b)]).to(device)
    noise = draws.randn(tuple(x0.shape[1:]), "noise", device=device)  # (B, C, F, h, w)
    return sigma, noise, Cond(context=context, context_mask=context_mask,
                              frame_stride=torch.full((b,), frame_stride, device=device), **fields, **extra)
