"""Samplers: pure functions that walk a decreasing sigma grid with a denoiser D(x, sigma, **cond) -> x0 estimate.

Each takes `(denoiser, x, sigmas, *, generator=None, callback=None, progress=False, **cond)`, where x arrives as
noise * sigmas[0] (VE form x = x0 + sigma * noise) and sigmas (N+1,) ends in 0. No hidden step state, and the
caller's x is never changed in place. The callback receives dict(i, x, sigma, denoised) before each update.
Stochastic samplers draw only from `generator`: one torch.Generator, or a list with one per batch row, so that
row i gives the same result whatever the batch size.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from vidiff.diffusion.schedule import Generators, batch_randn
from vidiff.errors import InputError


def _check_inputs(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
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


def _steps(n: int, progress: bool):
    if not progress:
        return range(n)
    from tqdm.auto import trange

    return trange(n, desc="sampling", leave=False)


def _call(denoiser: Denoiser, x: torch.Tensor, sigma: torch.Tensor, cond: dict) -> torch.Tensor:
    return denoiser(x, sigma.expand(x.shape[0]), **cond)  # sigma (B,) as the contract asks


def _ancestral_split(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Splits sigma_next into a deterministic part sigma_down and fresh noise sigma_up (down^2 + up^2 = next^2).
    eta = 1 is the DDPM posterior variance sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2; eta = 0 is DDIM."""
    up = (eta * sigma_next * (1 - (sigma_next / sigma) ** 2).clamp(min=0).sqrt()).clamp(max=sigma_next)
    down = (sigma_next**2 - up**2).clamp(min=0).sqrt()
    return down, up


# ---------------------------------------------------------------------------------------------------------
# Euler and Heun on the probability-flow ODE dx/dsigma = (x - D) / sigma (Karras et al. 2022, Algorithm 1)
# ---------------------------------------------------------------------------------------------------------


def sample_euler(denoiser, x, sigmas, *, generator=None, callback=None, progress=False, **cond):
    sigmas = _check_inputs(x, sigmas)
    for i in _steps(len(sigmas) - 1, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, sigma, cond)
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
        d = (x - denoised) / sigma  # dx/dsigma
        x = x + d * (sigma_next - sigma)
    return x


def sample_heun(denoiser, x, sigmas, *, generator=None, callback=None, progress=False, **cond):
    sigmas = _check_inputs(x, sigmas)
    for i in _steps(len(sigmas) - 1, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, sigma, cond)
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if sigma_next == 0:  # last step: the correction would evaluate D at sigma 0
            x = x_euler
            continue
        d_next = (x_euler - _call(denoiser, x_euler, sigma_next, cond)) / sigma_next
        x = x + (d + d_next) / 2 * (sigma_next - sigma)  # trapezoidal rule
    return x


# ---------------------------------------------------------------------------------------------------------
# DDIM (Song et al. 2021, eq. 12) and DDPM ancestral sampling (Ho et al. 2020), written in the VE form.
# Dividing the VP update by sqrt(alpha_bar) gives x_next = D + sigma_down * eps_hat + sigma_up * z with
# eps_hat = (x - D) / sigma; DDIM's eta = 1 is the DDPM posterior.
# ---------------------------------------------------------------------------------------------------------


def sample_ddim(denoiser, x, sigmas, *, eta: float = 0.0, generator: Generators = None, callback=None, progress=False, **cond):
    sigmas = _check_inputs(x, sigmas)
    if not (math.isfinite(eta) and eta >= 0):
        raise InputError(f"eta: must be a finite number >= 0, got {eta!r}")
    for i in _steps(len(sigmas) - 1, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, sigma, cond)
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
        eps = (x - denoised) / sigma  # predicted noise
        down, up = _ancestral_split(sigma, sigma_next, eta)
        x = denoised + down * eps
        if eta > 0 and sigma_next > 0:
            x = x + up * batch_randn(x.shape, generator, dtype=x.dtype, device=x.device)
    return x


def sample_ddpm(denoiser, x, sigmas, *, generator: Generators = None, callback=None, progress=False, **cond):
    """Ancestral sampling from the posterior q(x_next | x, x0 = D): for x = x0 + sigma n and x_next =
    x0 + sigma_next n', mean = D + r^2 (x - D) and std = sigma_next sqrt(1 - r^2), r = sigma_next / sigma."""
    sigmas = _check_inputs(x, sigmas)
    for i in _steps(len(sigmas) - 1, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, sigma, cond)
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
        r2 = (sigma_next / sigma) ** 2
        x = denoised + r2 * (x - denoised)  # posterior mean
        if sigma_next > 0:
            std = sigma_next * (1 - r2).clamp(min=0).sqrt()
            x = x + std * batch_randn(x.shape, generator, dtype=x.dtype, device=x.device)
    return x


# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in t = -log(sigma): the data prediction of the previous step
# gives a second-order (multistep) correction; the first and last steps are first order.
# ---------------------------------------------------------------------------------------------------------


def sample_dpmpp_2m(denoiser, x, sigmas, *, generator=None, callback=None, progress=False, **cond):
    sigmas = _check_inputs(x, sigmas)
    old_denoised, h_last = None, None
    for i in _steps(len(sigmas) - 1, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, sigma, cond)
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
        if sigma_next == 0:
            x = denoised
            continue
        h = sigma.log() - sigma_next.log()  # step in lambda = -log(sigma), > 0
        if old_denoised is None:
            d = denoised
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * old_denoised
        x = (sigma_next / sigma) * x - torch.expm1(-h) * d  # exp(-h) x + (1 - exp(-h)) d
        old_denoised, h_last = denoised, h
    return x


# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------

SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "dpmpp_2m": sample_dpmpp_2m,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "euler": sample_euler,
    "heun": sample_heun,
}


def _options(fn) -> set[str]:
    """A sampler's own keyword-only options (everything else goes to the denoiser as conditioning)."""
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def sample(denoiser, x, sigmas, method: str = "dpmpp_2m", generator: Generators = None, callback=None, **kwargs):
    """Runs sampler `method` (dpmpp_2m, ddim, ddpm, euler, heun); kwargs are its options (eta, progress) and
    the conditioning passed on to the denoiser."""
    if method not in SAMPLERS:
        raise ValueError(f"method: unknown sampler {method!r}; valid: {', '.join(SAMPLERS)}")
    fn = SAMPLERS[method]
    foreign = {k for k in kwargs if any(k in _options(f) for f in SAMPLERS.values())} - _options(fn)
    if foreign:
        raise ValueError(f"sampler {method!r} does not take option(s) {sorted(foreign)}")
    return fn(denoiser, x, sigmas, generator=generator, callback=callback, **kwargs)
