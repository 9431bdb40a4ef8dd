"""Stochastic samplers: solvers of the reverse-time SDE that inject fresh noise at every step.

Song et al. 2021 (Score-Based Generative Modeling through SDEs) read diffusion as an SDE whose reverse has a
family of solutions with the same marginals: the probability-flow ODE (no noise; euler, heun, dpmpp_2m) and
stochastic ones that remove more noise than a deterministic step would and add fresh noise back. The fresh noise
keeps correcting the errors earlier steps made (Karras et al. 2022, section 4), at the price of needing more
steps to converge. Here, in the VE form x = x0 + sigma * noise with the data prediction D = D(x, sigma):

  euler_ancestral   an Euler step down to sigma_down, then noise sigma_up (sigma_down^2 + sigma_up^2 =
                    sigma_next^2); eta scales sigma_up (eta = 1: the DDPM posterior variance; equal to ddim
                    with the same eta, written as an ODE step).
  dpmpp_2m_sde      DPM-Solver++(2M) SDE (Lu et al. 2022, "DPM-Solver++", the SDE variant): exact
                    integration of the linear part in lambda = -log(sigma), with the multistep 2nd-order term.
  dpmpp_sde         the single-step 2nd-order DPM-Solver++ SDE: an ancestral half step to the lambda-midpoint,
                    a second evaluation there, then an ancestral full step with the midpoint's data prediction.

Every sampler takes `eta` (0 gives the corresponding ODE solver), `s_noise` (scales the injected noise) and
`noise_sampler(sigma, sigma_next)` (sampler_base.py); noise defaults to per-row draws from `generator`.
"""
from __future__ import annotations

import torch

from vidiff.diffusion.sampler_base import (
    NoiseSampler, ancestral_split, check_inputs, check_number, denoise, levels, noise_source,
)
from vidiff.errors import InputError
from vidiff.random import Generators

# ---------------------------------------------------------------------------------------------------------
# Euler ancestral: dx/dsigma = (x - D) / sigma integrated from sigma to sigma_down, then sigma_up fresh noise.
# ---------------------------------------------------------------------------------------------------------


def sample_euler_ancestral(denoiser, x, sigmas, cond=None, *, eta: float = 1.0, s_noise: float = 1.0,
                           noise_sampler: NoiseSampler | None = None, generator: Generators = None,
                           callback=None, progress=False):
    sigmas = check_inputs(x, sigmas)
    eta, s_noise = check_number(eta, "eta"), check_number(s_noise, "s_noise")
    noise = noise_source(generator, noise_sampler)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        down, up = ancestral_split(sigma, sigma_next, eta)
        x = x + (x - denoised) / sigma * (down - sigma)  # Euler step to sigma_down
        if sigma_next > 0 and eta > 0:
            x = x + noise(sigma, sigma_next, x) * (s_noise * up)
    return x


# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++(2M) SDE. With lambda = -log(sigma), h = lambda_next - lambda > 0 and H = (1 + eta) h, the
# reverse SDEs with the data's marginals (eta = 0: the probability-flow ODE dx/dlambda = D - x) are
#     dx = (1 + eta) (D - x) dlambda + sigma sqrt(2 eta) dW_lambda,
# and for D held fixed over the step the exact solution is
#     x_next = (sigma_next / sigma) e^{-eta h} x + (1 - e^{-H}) D + sigma_next sqrt(1 - e^{-2 eta h}) z.
# eta = 1 gives the DDPM posterior (mean D + r^2 (x - D), std sigma_next sqrt(1 - r^2)); eta = 0 gives
# DPM-Solver++(1) = DDIM. The second-order term takes D linear in lambda, with the slope from the previous
# step's data prediction: D' ~ (D - D_prev) / h_last, r = h_last / h. Integrating that line exactly against
# the kernel (1 + eta) e^{-(1 + eta)(h - u)} gives the coefficient (1 - (1 - e^{-H}) / H) / r on (D - D_prev)
# ("heun"); DPM-Solver++(2M)'s midpoint rule approximates it by (1 - e^{-H}) / (2 r) ("midpoint").
# The first step (no previous D) is first order; the last (sigma_next = 0) returns D.
# ---------------------------------------------------------------------------------------------------------

SOLVER_TYPES = ("midpoint", "heun")


def sample_dpmpp_2m_sde(denoiser, x, sigmas, cond=None, *, eta: float = 1.0, s_noise: float = 1.0,
                        solver_type: str = "midpoint", noise_sampler: NoiseSampler | None = None,
                        generator: Generators = None, callback=None, progress=False):
    sigmas = check_inputs(x, sigmas)
    eta, s_noise = check_number(eta, "eta"), check_number(s_noise, "s_noise")
    if solver_type not in SOLVER_TYPES:
        raise InputError(f"solver_type: {solver_type!r} is not one of {list(SOLVER_TYPES)}")
    noise = noise_source(generator, noise_sampler)
    old_denoised, h_last = None, None
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        h = sigma.log() - sigma_next.log()  # step in lambda, > 0 (inf at the last step, which returns D)
        if sigma_next == 0:
            x = denoised
            continue
        eta_h = eta * h
        big_h = h + eta_h  # H = (1 + eta) h
        one_minus = -torch.expm1(-big_h)  # 1 - e^{-H}
        x = (sigma_next / sigma) * torch.exp(-eta_h) * x + one_minus * denoised
        if old_denoised is not None and h_last > 0 and h > 0:  # (a repeated sigma is a zero step: first order)
            r = h_last / h
            if solver_type == "midpoint":
                x = x + one_minus / (2 * r) * (denoised - old_denoised)
            else:
                x = x + (1 - one_minus / big_h) / r * (denoised - old_denoised)
        if eta > 0:
            x = x + noise(sigma, sigma_next, x) * (s_noise * sigma_next * (-torch.expm1(-2 * eta_h)).sqrt())
        old_denoised, h_last = denoised, h
    return x


# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++ SDE, single-step second order. Per step from sigma to sigma_next (lambda step h):
#   1. sigma_mid = sigma^(1 - r) sigma_next^r, the point a fraction r of the way in lambda;
#   2. an ancestral first-order step to sigma_mid: x_mid = (s_d / sigma) x + (1 - s_d / sigma) D + s_u z1,
#      with (s_d, s_u) the ancestral split of sigma_mid (in the exponential-integrator form, x moves to
#      noise level s_d, then fresh noise brings it to sigma_mid); D_mid = D(x_mid, sigma_mid);
#   3. the same ancestral step from x to sigma_next, with the data prediction extrapolated along lambda,
#      D_r = (1 - 1 / (2 r)) D + 1 / (2 r) D_mid (r = 1/2: D_mid itself, the midpoint rule), and noise z2.
# With eta = 0 this is DPM-Solver++(2S). The second order needs z1 and z2 to be increments of ONE Brownian path
# W(sigma): z1 over [sigma_mid, sigma] and z2 over [sigma_next, sigma] (each divided by the root of its
# length), so z2 shares z1's part of the path. The default noise does exactly that, from two independent draws
# per step; with independent z1, z2 the method falls back to first order with a variance deficit (the Gaussian
# oracle at 50 steps: std -10% instead of -0.6%). A user's noise_sampler is called as (sigma, sigma_mid) and
# (sigma, sigma_next), in that order, as k-diffusion's Brownian-tree sampler expects.
# The last step (sigma_next = 0) is one Euler step, i.e. returns D.
# ---------------------------------------------------------------------------------------------------------


def _ancestral_exp_step(x, denoised, sigma, sigma_to, eta, s_noise, z):
    """x moved from sigma to sigma_to with data prediction `denoised`: exponential-integrator step to
    sigma_down, plus s_noise * sigma_up fresh noise z (None when eta = 0)."""
    down, up = ancestral_split(sigma, sigma_to, eta)
    ratio = down / sigma
    x = ratio * x + (1 - ratio) * denoised
    if z is not None:
        x = x + z * (s_noise * up)
    return x


def _brownian_pair(generator, noise_sampler):
    """(sigma, sigma_mid, sigma_next, x) -> (z1, z2), the step's two normalised increments of one Brownian path."""
    if noise_sampler is not None:
        noise = noise_source(None, noise_sampler)
        return lambda sigma, sigma_mid, sigma_next, x: (noise(sigma, sigma_mid, x), noise(sigma, sigma_next, x))
    draw = noise_source(generator, None)

    def pair(sigma, sigma_mid, sigma_next, x):
        first = draw(sigma, sigma_mid, x)  # W(sigma) - W(sigma_mid), normalised
        rest = draw(sigma_mid, sigma_next, x)  # W(sigma_mid) - W(sigma_next), normalised, independent of `first`
        a, b = (sigma - sigma_mid).sqrt(), (sigma_mid - sigma_next).sqrt()
        return first, (a * first + b * rest) / (sigma - sigma_next).sqrt().clamp(min=1e-30)

    return pair


def sample_dpmpp_sde(denoiser, x, sigmas, cond=None, *, eta: float = 1.0, s_noise: float = 1.0, r: float = 0.5,
                     noise_sampler: NoiseSampler | None = None, generator: Generators = None, callback=None,
                     progress=False):
    sigmas = check_inputs(x, sigmas)
    eta, s_noise = check_number(eta, "eta"), check_number(s_noise, "s_noise")
    r = check_number(r, "r")
    if not 0 < r <= 1:
        raise InputError(f"r: the intermediate point's fraction of the step must be in (0, 1], got {r!r}")
    noise_pair = _brownian_pair(generator, noise_sampler)
    for i, sigma, sigma_next in levels(sigmas, progress):
        denoised = denoise(denoiser, x, sigma, cond, callback, i)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_mid = sigma ** (1 - r) * sigma_next**r  # exp(-(lambda + r h))
        z1, z2 = noise_pair(sigma, sigma_mid, sigma_next, x) if eta > 0 else (None, None)
        x_mid = _ancestral_exp_step(x, denoised, sigma, sigma_mid, eta, s_noise, z1)
        denoised_mid = denoise(denoiser, x_mid, sigma_mid, cond)
        fac = 1 / (2 * r)
        denoised_r = (1 - fac) * denoised + fac * denoised_mid
        x = _ancestral_exp_step(x, denoised_r, sigma, sigma_next, eta, s_noise, z2)
    return x
