"""What every sampler shares: input checks, the progress bar, the denoiser call, the ancestral split and the
noise source. The samplers themselves live in samplers.py (ODE solvers, DDIM / DDPM, EDM churn), stochastic.py
(ancestral and DPM-Solver++ SDE) and pc.py (predictor-corrector); this module imports none of them.

Noise: a stochastic sampler gets its fresh noise from `noise_sampler(sigma, sigma_next) -> tensor shaped like x`,
called once per injection with the two noise levels the injected noise bridges. When none is given it draws
standard normal noise from `generator` (one torch.Generator, or a list with one per batch row: row i then
depends only on generator i, whatever the batch size).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vidiff.errors import InputError
from vidiff.random import Generators, batch_randn

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_inputs(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The sigma grid (N+1,) as float32 on x's device, after checking it is finite, >= 0, non-increasing."""
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise InputError(f"sigmas: expected a 1-D grid with at least 2 values, got shape {tuple(sigmas.shape)}")
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise InputError("sigmas: every value must be finite and >= 0 (clamp an infinite zero-SNR start first)")
    if not bool((sigmas[:-1] >= sigmas[1:]).all()) or not sigmas[0] > 0:
        raise InputError("sigmas: must be non-increasing and start above 0")
    if not torch.is_tensor(x) or x.ndim < 1:
        raise InputError("x: expected a tensor with a batch dimension")
    return sigmas.to(device=x.device, dtype=torch.float32)


def check_number(value, name: str, *, low: float = 0.0, allow_inf: bool = False) -> float:
    """A real number >= low (finite unless allow_inf), else an InputError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name}: expected a number, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not allow_inf) or value < low:
        raise InputError(f"{name}: must be a {'' if allow_inf else 'finite '}number >= {low}, got {value!r}")
    return float(value)


def steps(n: int, progress: bool):
    """range(n), with a tqdm bar when progress is on."""
    if not progress:
        return range(n)
    from tqdm.auto import trange

    return trange(n, desc="sampling", leave=False)


def levels(sigmas: torch.Tensor, progress: bool):
    """(i, sigma, sigma_next) for each step of the grid, with a tqdm bar when progress is on."""
    for i in steps(len(sigmas) - 1, progress):
        yield i, sigmas[i], sigmas[i + 1]


def denoise(denoiser, x: torch.Tensor, sigma: torch.Tensor, cond, callback=None, i: int | None = None
            ) -> torch.Tensor:
    """D(x, sigma, cond) with sigma (B,), as the denoiser contract asks; with a callback (step i), it first sees
    dict(i, x, sigma, denoised), before the sampler's update."""
    denoised = denoiser(x, sigma.expand(x.shape[0]), cond)
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
    return denoised


def per_row(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) so it broadcasts over x."""
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


def ancestral_split(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Splits sigma_next into a deterministic part sigma_down and fresh noise sigma_up (down^2 + up^2 = next^2).
    eta = 1 is the DDPM posterior variance sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2; eta = 0 is DDIM."""
    up = (eta * sigma_next * (1 - (sigma_next / sigma) ** 2).clamp(min=0).sqrt()).clamp(max=sigma_next)
    down = (sigma_next**2 - up**2).clamp(min=0).sqrt()
    return down, up


def noise_source(generator: Generators, noise_sampler: NoiseSampler | None):
    """The sampler's noise as draw(sigma, sigma_next, like) -> a tensor like `like` (the current x):
    `noise_sampler(sigma, sigma_next)` when given (its shape checked against x's), else standard normal draws
    from `generator` (per-row generators allowed), in like's dtype, on like's device."""
    if noise_sampler is None:
        return lambda sigma, sigma_next, like: batch_randn(like.shape, generator, dtype=like.dtype, device=like.device)
    if not callable(noise_sampler):
        raise InputError(f"noise_sampler: expected a function (sigma, sigma_next) -> noise, got {noise_sampler!r}")

    def checked(sigma, sigma_next, like):
        noise = torch.as_tensor(noise_sampler(sigma, sigma_next))
        if noise.shape != like.shape:
            raise InputError(f"noise_sampler: returned shape {tuple(noise.shape)}, expected x's {tuple(like.shape)}")
        return noise.to(device=like.device, dtype=like.dtype)

    return checked
