"""Predictor-corrector sampling (Song et al. 2021, Score-Based Generative Modeling through SDEs, section 4.2 and
Algorithms 2 and 4), for the VE SDE dx = sqrt(d[sigma^2]/dt) dW that takes data to x = x0 + sigma * noise.

Each step from sigma to sigma_next has two parts:
- the predictor, one step of a numerical solver of the reverse-time SDE, with the score s = (D - x) / sigma^2
  (score.py) and fresh noise z:
      x <- x + v s(x, sigma) + sqrt(v) z,
  where v is the variance the step removes: "reverse_diffusion" (the paper's reverse-diffusion predictor, the
  discretisation of the forward chain) takes v = sigma^2 - sigma_next^2; "euler_maruyama" takes the SDE's
  diffusion g^2 = d[sigma^2]/dsigma = 2 sigma times the step, v = 2 sigma (sigma - sigma_next), which
  overshoots on coarse grids (a first-order method);
- the corrector, `corrector_steps` steps of Langevin MCMC at sigma_next that move x towards p_{sigma_next}
  (`langevin_correct`).
The last step (sigma_next = 0) returns D, the paper's final denoising step, and is not corrected.
Network evaluations: N + corrector_steps * (N - 1) for N steps.
"""
from __future__ import annotations

import torch

from vidiff.diffusion.sampler_base import (
    NoiseSampler, check_inputs, check_number, denoise, levels, noise_source, per_row,
)
from vidiff.diffusion.score import score
from vidiff.errors import InputError
from vidiff.random import Generators

PREDICTORS = ("reverse_diffusion", "euler_maruyama")


def _check_corrector(snr, corrector_steps) -> float:
    snr = check_number(snr, "snr")
    if snr <= 0:
        raise InputError(f"snr: the corrector's target signal-to-noise ratio must be > 0, got {snr!r}")
    if isinstance(corrector_steps, bool) or not isinstance(corrector_steps, int) or corrector_steps < 0:
        raise InputError(f"corrector_steps: must be an integer >= 0, got {corrector_steps!r}")
    return snr


def langevin_correct(denoiser, x: torch.Tensor, sigma, cond=None, *, snr: float = 0.16, corrector_steps: int = 1,
                     noise_sampler: NoiseSampler | None = None, generator: Generators = None) -> torch.Tensor:
    """`corrector_steps` Langevin MCMC steps at the fixed noise level sigma (a number or 0-d tensor > 0):
        x <- x + e s(x, sigma) + sqrt(2 e) z,    e = 2 (snr |z| / |s|)^2,
    whose stationary law, for small e, is p_sigma. The step size e makes the ratio of the signal (the score
    step) to the noise |e s| / |sqrt(2 e) z| equal `snr` (ScoreSDE Algorithm 4, alpha = 1 for VE). The norms are
    taken per batch row (ScoreSDE averages them over the batch, which would make a sample depend on its
    neighbours). Rows should therefore have many elements, as latents do (thousands): in a row of a few
    elements |z| / |s| fluctuates wildly and the chain is heavy-tailed or diverges. Noise: noise_sampler(sigma,
    sigma) per step."""
    snr = _check_corrector(snr, corrector_steps)
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if sigma.ndim != 0 or not sigma > 0:
        raise InputError(f"sigma: the corrector runs at one noise level > 0, got {sigma}")
    return _langevin(denoiser, x, sigma, cond, snr, corrector_steps, noise_source(generator, noise_sampler))


def _row_norms(t: torch.Tensor) -> torch.Tensor:
    """(B,) L2 norm of each row, reduced one row at a time: a (B, N) reduction may split its work (and so round)
    differently for another B, and row i must not depend on the batch around it."""
    return torch.stack([row.norm() for row in t.flatten(1)])


def _langevin(denoiser, x, sigma, cond, snr: float, corrector_steps: int, noise) -> torch.Tensor:
    for _ in range(corrector_steps):
        grad = score(denoiser, x, sigma, cond)
        z = noise(sigma, sigma, x)
        grad_norm = _row_norms(grad).clamp(min=torch.finfo(grad.dtype).tiny)  # (B,)
        noise_norm = _row_norms(z)  # (B,)
        step = per_row(2 * (snr * noise_norm / grad_norm) ** 2, x)
        x = x + step * grad + (2 * step).sqrt() * z
    return x


def sample_pc(denoiser, x, sigmas, cond=None, *, predictor: str = "reverse_diffusion", corrector_steps: int = 1,
              snr: float = 0.16, noise_sampler: NoiseSampler | None = None, generator: Generators = None,
              callback=None, progress=False):
    sigmas = check_inputs(x, sigmas)
    if predictor not in PREDICTORS:
        raise InputError(f"predictor: {predictor!r} is not one of {list(PREDICTORS)}")
    snr = _check_corrector(snr, corrector_steps)
    noise = noise_source(generator, noise_sampler)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        if sigma_next == 0:  # final denoising step
            x = denoised
            continue
        if predictor == "reverse_diffusion":
            var = sigma**2 - sigma_next**2
        else:
            var = 2 * sigma * (sigma - sigma_next)
        x = x + var / sigma**2 * (denoised - x) + var.sqrt() * noise(sigma, sigma_next, x)  # score = (D - x) / sigma^2
        x = _langevin(denoiser, x, sigma_next, cond, snr, corrector_steps, noise)
    return x
