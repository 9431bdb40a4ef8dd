"""The score of the noised data distribution, from the denoiser (Tweedie's formula).

In the variance-exploding (VE) form used throughout vidiff, x = x0 + sigma * noise, so the noised distribution is
p_sigma = p_data * N(0, sigma^2 I), and Tweedie's formula E[x0 | x] = x + sigma^2 grad log p_sigma(x) gives
    score(x, sigma) = grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 = -eps_hat / sigma,
with D the denoiser (the estimate of x0) and eps_hat = (x - D) / sigma the predicted noise.

Relation to the variance-preserving (VP / DDPM) form x_vp = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise:
x_vp = sqrt(alpha_bar) x_ve with sigma^2 = (1 - alpha_bar) / alpha_bar (so alpha_bar = 1 / (1 + sigma^2)). The
two describe the same noisy sample up to that scale, and the scores are related by
    grad log p_vp(x_vp) = score(x_ve, sigma) / sqrt(alpha_bar) = -eps_hat / sqrt(1 - alpha_bar),
the familiar DDPM expression; eps_hat is the same in both forms.
"""
from __future__ import annotations

import torch

from vidiff.diffusion.denoiser import sigma_batch
from vidiff.errors import InputError


def score(denoiser, x: torch.Tensor, sigma, cond=None) -> torch.Tensor:
    """grad_x log p_sigma(x) = (D(x, sigma, cond) - x) / sigma^2 for x (B, ...), sigma a number or (B,) > 0."""
    sigma = sigma_batch(sigma, x)  # (B,)
    if not bool((sigma > 0).all()):
        raise InputError("sigma: the score needs sigma > 0 (at sigma = 0 it is the data's own, unknown score)")
    denoised = denoiser(x, sigma, cond)
    s2 = sigma.reshape(sigma.shape[0], *([1] * (x.ndim - 1))) ** 2
    return (denoised - x) / s2
