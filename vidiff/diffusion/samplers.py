"""Samplers: pure functions that walk a decreasing sigma grid with a denoiser D(x, sigma, cond) -> x0 estimate.

Each takes `(denoiser, x, sigmas, cond=None, *, generator=None, callback=None, progress=False, ...)`, where x
arrives as noise * sigmas[0] (VE form x = x0 + sigma * noise) and sigmas (N+1,) ends in 0. No hidden step state,
and the caller's x is never changed in place. The callback receives dict(i, x, sigma, denoised) before each
update, with denoised = D(x, sigma). Stochastic samplers draw their noise from `noise_sampler(sigma, sigma_next)`
when given, else from `generator`: one torch.Generator, or a list with one per batch row, so that row i gives
the same result whatever the batch size (sampler_base.py).

This file: the probability-flow ODE solvers (euler, heun, dpmpp_2m), EDM's stochastic Heun (the churn options of
heun), DDIM and DDPM, and the dispatcher over every sampler of the package (stochastic.py, pc.py).
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from vidiff.diffusion.pc import sample_pc
from vidiff.diffusion.sampler_base import (
    NoiseSampler, ancestral_split, check_inputs, check_number, denoise, levels, noise_source, steps,
)
from vidiff.diffusion.stochastic import sample_dpmpp_2m_sde, sample_dpmpp_sde, sample_euler_ancestral
from vidiff.errors import InputError
from vidiff.random import Generators

# ---------------------------------------------------------------------------------------------------------
# Euler and Heun on the probability-flow ODE dx/dsigma = (x - D) / sigma (Karras et al. 2022, Algorithm 1)
# ---------------------------------------------------------------------------------------------------------


def sample_euler(denoiser, x, sigmas, cond=None, *, generator=None, callback=None, progress=False):
    sigmas = check_inputs(x, sigmas)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        d = (x - denoised) / sigma  # dx/dsigma
        x = x + d * (sigma_next - sigma)
    return x


def sample_heun(denoiser, x, sigmas, cond=None, *, generator: Generators = None, callback=None, progress=False,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
                noise_sampler: NoiseSampler | None = None):
    """Heun's method; with s_churn > 0 it is EDM's stochastic sampler (Karras et al. 2022, Algorithm 2).

    Churn: at each step with s_tmin <= sigma_i <= s_tmax, gamma = min(s_churn / N, sqrt(2) - 1) (N = number of
    steps) raises the noise level to sigma_hat = (1 + gamma) sigma_i by adding fresh noise of std
    s_noise * sqrt(sigma_hat^2 - sigma_i^2) (drawn as noise_sampler(sigma_i, sigma_hat)), then takes the Heun
    step from sigma_hat to sigma_{i+1}. s_noise slightly above 1 offsets the detail a denoiser removes. The
    callback then reports the churned x and sigma_hat. With s_churn = 0 (the default) nothing is drawn and the
    result is plain Heun, bit for bit."""
    sigmas = check_inputs(x, sigmas)
    s_churn = check_number(s_churn, "s_churn")
    s_tmin = check_number(s_tmin, "s_tmin", allow_inf=True)
    s_tmax = check_number(s_tmax, "s_tmax", allow_inf=True)
    s_noise = check_number(s_noise, "s_noise")
    noise = noise_source(generator, noise_sampler)
    n = len(sigmas) - 1
    for i in steps(n, progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_churn > 0 and s_tmin <= sigma <= s_tmax else 0.0
        if gamma > 0:
            sigma_hat = sigma * (1 + gamma)
            x = x + noise(sigma, sigma_hat, x) * (s_noise * (sigma_hat**2 - sigma**2).sqrt())
            sigma = sigma_hat
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if sigma_next == 0:  # last step: the correction would evaluate D at sigma 0
            x = x_euler
            continue
        d_next = (x_euler - denoise(denoiser, x_euler, sigma_next, cond)) / sigma_next
        x = x + (d + d_next) / 2 * (sigma_next - sigma)  # trapezoidal rule
    return x


# ---------------------------------------------------------------------------------------------------------
# DDIM (Song et al. 2021, eq. 12) and DDPM ancestral sampling (Ho et al. 2020), written in the VE form.
# Dividing the VP update by sqrt(alpha_bar) gives x_next = D + sigma_down * eps_hat + sigma_up * z with
# eps_hat = (x - D) / sigma; DDIM's eta = 1 is the DDPM posterior.
# ---------------------------------------------------------------------------------------------------------


def sample_ddim(denoiser, x, sigmas, cond=None, *, eta: float = 0.0, generator: Generators = None, callback=None,
                progress=False, noise_sampler: NoiseSampler | None = None):
    sigmas = check_inputs(x, sigmas)
    if not (math.isfinite(eta) and eta >= 0):
        raise InputError(f"eta: must be a finite number >= 0, got {eta!r}")
    noise = noise_source(generator, noise_sampler)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        eps = (x - denoised) / sigma  # predicted noise
        down, up = ancestral_split(sigma, sigma_next, eta)
        x = denoised + down * eps
        if eta > 0 and sigma_next > 0:
            x = x + up * noise(sigma, sigma_next, x)
    return x


def sample_ddpm(denoiser, x, sigmas, cond=None, *, generator: Generators = None, callback=None, progress=False,
                noise_sampler: NoiseSampler | None = None):
    """Ancestral sampling from the posterior q(x_next | x, x0 = D): for x = x0 + sigma n and x_next =
    x0 + sigma_next n', mean = D + r^2 (x - D) and std = sigma_next sqrt(1 - r^2), r = sigma_next / sigma."""
    sigmas = check_inputs(x, sigmas)
    noise = noise_source(generator, noise_sampler)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        r2 = (sigma_next / sigma) ** 2
        x = denoised + r2 * (x - denoised)  # posterior mean
        if sigma_next > 0:
            std = sigma_next * (1 - r2).clamp(min=0).sqrt()
            x = x + std * noise(sigma, sigma_next, x)
    return x


# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in t = -log(sigma): the data prediction of the previous step
# gives a second-order (multistep) correction; the first and last steps are first order.
# ---------------------------------------------------------------------------------------------------------


def sample_dpmpp_2m(denoiser, x, sigmas, cond=None, *, generator=None, callback=None, progress=False):
    sigmas = check_inputs(x, sigmas)
    old_denoised, h_last = None, None
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
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
    "euler_ancestral": sample_euler_ancestral,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_sde": sample_dpmpp_sde,
    "pc": sample_pc,
}


def _options(fn) -> set[str]:
    """A sampler's own keyword-only options."""
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def sample(denoiser, x, sigmas, method: str = "dpmpp_2m", *, cond=None, generator: Generators = None,
           callback=None, **options):
    """Runs sampler `method` on denoiser(x, sigma, cond) and returns the sample x(sigma = 0).

    Methods and their own options (every sampler also takes `progress`; those marked * draw noise and take
    `noise_sampler(sigma, sigma_next) -> noise shaped like x`, which replaces the draws from `generator`):
      dpmpp_2m          DPM-Solver++(2M), 2nd-order multistep ODE solver (the default)
      euler             Euler on the probability-flow ODE (1st order)
      heun              Heun on the ODE (2nd order, 2 evaluations per step); with s_churn > 0 EDM's stochastic
                        sampler*: s_churn, s_tmin, s_tmax, s_noise
      ddim              DDIM; eta > 0 adds noise* (eta = 1 is ddpm)
      ddpm              ancestral sampling from the DDPM posterior*
      euler_ancestral   Euler steps to sigma_down + fresh noise*: eta, s_noise
      dpmpp_2m_sde      DPM-Solver++(2M) SDE*: eta, s_noise, solver_type ("midpoint" | "heun")
      dpmpp_sde         single-step 2nd-order DPM-Solver++ SDE* (2 evaluations per step): eta, s_noise, r
      pc                ScoreSDE predictor-corrector*: predictor ("reverse_diffusion" | "euler_maruyama"),
                        corrector_steps, snr
    An option the sampler does not take is an error."""
    if method not in SAMPLERS:
        raise InputError(f"method: unknown sampler {method!r}; valid: {', '.join(SAMPLERS)}")
    fn = SAMPLERS[method]
    unknown = set(options) - _options(fn)
    if unknown:
        valid = sorted(_options(fn) - {"generator", "callback"})
        raise InputError(f"sampler {method!r} does not take option(s) {sorted(unknown)}; it takes {valid}")
    return fn(denoiser, x, sigmas, cond, generator=generator, callback=callback, **options)
