"""Noise levels: the VP beta schedules, the training noise distribution and the sampling grids.

Everything here speaks the variance-exploding form `x = x0 + sigma * noise` (architecture.md). A discrete
VP schedule with cumulative product `alphas_cumprod` maps to it by `sigma = sqrt((1 - a) / a)`.

Two different things live here and are named so they cannot be confused:
- `sample_training_sigmas(...)`: random noise levels for the training loss (log-normal or discrete);
- `sampling_sigmas(...)`: the deterministic, decreasing grid a sampler walks, ending in 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from vidiff.config import ConfigError
from vidiff.errors import InputError
from vidiff.random import Generators, batch_rand, batch_randn

# A zero-terminal-SNR schedule has sigma = inf at its last timestep. Samplers and the loss need a finite
# number: this is the one place that says which. At sigma = 1e4 the SNR is 1e-8 (indistinguishable from
# pure noise) and x = noise * sigma still keeps ~1e-3 absolute precision in float32.
ZERO_SNR_SIGMA_MAX = 1.0e4



@dataclass(frozen=True)
class NoiseScheduleConfig:
    kind: Literal["linear", "scaled_linear", "cosine"] = "scaled_linear"  # VP beta schedule shape
    num_train_steps: int = 1000  # number of discrete timesteps T of the VP schedule
    beta_start: float = 0.00085  # beta at the first timestep (linear / scaled_linear only)
    beta_end: float = 0.012  # beta at the last timestep (linear / scaled_linear only)
    zero_terminal_snr: bool = False  # rescale so the last timestep is pure noise (Lin et al. 2023)
    training_noise: Literal["lognormal", "discrete"] = "lognormal"  # distribution of training sigmas
    p_mean: float = -1.2  # lognormal: mean of log(sigma) (EDM P_mean)
    p_std: float = 1.2  # lognormal: std of log(sigma) (EDM P_std)
    sigma_min: float = 0.002  # smallest sampling noise level (Karras grid end), in data units
    sigma_max: float = 80.0  # largest sampling noise level (Karras grid start), in data units
    sigma_data: float = 1.0  # std of the (scaled) latents, used by the preconditioning

    def __post_init__(self):
        if self.num_train_steps < 2:
            raise ConfigError(f"num_train_steps: need at least 2, got {self.num_train_steps}")
        if self.kind != "cosine" and not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise ConfigError(
                f"beta_start/beta_end: need 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}"
            )
        if not self.p_std > 0:
            raise ConfigError(f"p_std: must be > 0, got {self.p_std}")
        if not 0.0 < self.sigma_min < self.sigma_max < math.inf:
            raise ConfigError(
                f"sigma_min/sigma_max: need 0 < sigma_min < sigma_max < inf, got {self.sigma_min}, {self.sigma_max}"
            )
        if not self.sigma_data > 0:
            raise ConfigError(f"sigma_data: must be > 0, got {self.sigma_data}")


# ---------------------------------------------------------------------------------------------------------
# VP beta schedules (DDPM linear; Stable Diffusion scaled_linear; Nichol & Dhariwal 2021 eq. 17 cosine)
# ---------------------------------------------------------------------------------------------------------


def make_betas(kind: str, num_train_steps: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Betas (T,) in float64 for a VP schedule."""
    n = num_train_steps
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
    if kind == "cosine":
        s = 0.008  # small offset so beta_0 is not vanishingly small (Nichol & Dhariwal sec. 3.2)
        t = torch.arange(n + 1, dtype=torch.float64) / n
        alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
        betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
        return betas.clamp(max=0.999)  # the paper clips to avoid a singularity at t = T
    raise InputError(f"kind: unknown beta schedule {kind!r}; valid: 'linear', 'scaled_linear', 'cosine'")


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2023, Algorithm 1: shift and scale sqrt(alphas_cumprod) so its last value is 0 and its
    first value is unchanged; returns the new betas (the last one is 1)."""
    betas = betas.to(torch.float64)
    sqrt_ac = torch.cumprod(1 - betas, 0).sqrt()
    first, last = sqrt_ac[0].clone(), sqrt_ac[-1].clone()
    sqrt_ac = (sqrt_ac - last) * first / (first - last)
    ac = sqrt_ac**2
    alphas = torch.cat([ac[:1], ac[1:] / ac[:-1]])
    return 1 - alphas


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas.to(torch.float64), 0)


def sigmas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """VE noise levels sigma = sqrt((1 - a) / a); a == 0 (zero terminal SNR) gives inf."""
    a = alphas_cumprod.to(torch.float64)
    return ((1 - a) / a).sqrt()


def schedule_sigmas(config: NoiseScheduleConfig) -> torch.Tensor:
    """The discrete schedule's sigmas (T,), float64, increasing with the timestep; may end in inf."""
    betas = make_betas(config.kind, config.num_train_steps, config.beta_start, config.beta_end)
    if config.zero_terminal_snr:
        betas = rescale_zero_terminal_snr(betas)
    return sigmas_from_alphas_cumprod(alphas_cumprod_from_betas(betas))


def clamp_infinite_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """Replaces inf (zero terminal SNR) by ZERO_SNR_SIGMA_MAX so samplers and the loss stay finite."""
    return torch.where(torch.isinf(sigmas), torch.full_like(sigmas, ZERO_SNR_SIGMA_MAX), sigmas)


# ---------------------------------------------------------------------------------------------------------
# Random draws that can be seeded per sample (one generator per batch row: row i does not depend on B)
# ---------------------------------------------------------------------------------------------------------


def sample_training_sigmas(
    batch_size: int, config: NoiseScheduleConfig, generator: Generators = None, device=None
) -> torch.Tensor:
    """Random training noise levels (B,) float32: log(sigma) ~ N(p_mean, p_std^2), or sigma of a uniformly
    drawn timestep of the discrete schedule (inf at a zero-SNR end is clamped to ZERO_SNR_SIGMA_MAX)."""
    if batch_size < 1:
        raise InputError(f"batch_size: must be >= 1, got {batch_size}")
    if config.training_noise == "lognormal":
        normal = batch_randn((batch_size,), generator, dtype=torch.float32, device=device)  # (B,)
        return torch.exp(config.p_mean + config.p_std * normal)
    u = batch_rand(batch_size, generator, device)  # (B,) uniform in [0, 1)
    sig = clamp_infinite_sigmas(schedule_sigmas(config)).to(u.device)  # (T,)
    t = (u * config.num_train_steps).long().clamp(max=config.num_train_steps - 1)  # (B,) timestep index
    return sig[t].float()


# ---------------------------------------------------------------------------------------------------------
# Sampling grids: Karras et al. 2022 eq. 5; timestep spacings of Lin et al. 2023 Table 2
# ---------------------------------------------------------------------------------------------------------

SPACINGS = ("karras", "trailing", "leading", "linspace")


def sampling_timesteps(num_steps: int, num_train_steps: int, spacing: str) -> torch.Tensor:
    """Decreasing 0-based timestep indices (num_steps,) of a discrete schedule for one spacing."""
    n, T = num_steps, num_train_steps
    if n > T:
        raise InputError(f"num_steps: {n} is more than the schedule's {T} timesteps")
    if spacing == "linspace":  # evenly from 0 to T-1, both ends included
        t = torch.linspace(0, T - 1, n, dtype=torch.float64).round()
    elif spacing == "leading":  # multiples of T // n from 0: never reaches the last timestep
        t = torch.arange(n, dtype=torch.float64) * (T // n)
    elif spacing == "trailing":  # from the last timestep T-1 down in steps of T / n
        t = (T - torch.arange(n, dtype=torch.float64) * (T / n)).round() - 1
        return t.long()
    else:
        raise InputError(f"spacing: {spacing!r} is not a timestep spacing; valid: {', '.join(SPACINGS)}")
    return t.long().flip(0)


def sampling_sigmas(
    num_steps: int,
    spacing: str = "karras",
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    schedule_sigmas: torch.Tensor | None = None,
) -> torch.Tensor:
    """The sampler's grid: num_steps + 1 decreasing sigmas (float32) ending in 0.

    karras: sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
    trailing / leading / linspace: `schedule_sigmas` (T,) (see `schedule_sigmas(config)`) at the spacing's
    timesteps. An infinite first sigma (zero terminal SNR) becomes ZERO_SNR_SIGMA_MAX."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"num_steps: must be an integer >= 1, got {num_steps!r}")
    if spacing == "karras":
        if not (0 < sigma_min < sigma_max < math.inf):
            raise InputError(f"sigma_min/sigma_max: need 0 < sigma_min < sigma_max < inf, got {sigma_min}, {sigma_max}")
        if not rho > 0:
            raise InputError(f"rho: must be > 0, got {rho}")
        ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64) if num_steps > 1 else torch.zeros(1, dtype=torch.float64)
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        sig = (hi + ramp * (lo - hi)) ** rho
    elif spacing in SPACINGS:
        if schedule_sigmas is None:
            raise InputError(f"schedule_sigmas: spacing {spacing!r} needs the discrete schedule's sigmas")
        schedule_sigmas = torch.as_tensor(schedule_sigmas, dtype=torch.float64).cpu()
        if schedule_sigmas.ndim != 1 or schedule_sigmas.numel() < 2:
            raise InputError(f"schedule_sigmas: expected a 1-D tensor (T,), got shape {tuple(schedule_sigmas.shape)}")
        t = sampling_timesteps(num_steps, schedule_sigmas.numel(), spacing)
        sig = clamp_infinite_sigmas(schedule_sigmas[t])
    else:
        raise InputError(f"spacing: unknown {spacing!r}; valid: {', '.join(SPACINGS)}")
    out = torch.cat([sig, sig.new_zeros(1)]).float()
    if not bool((out[:-1] > out[1:]).all()):
        raise InputError(f"sampling_sigmas: grid is not strictly decreasing ({spacing}, {num_steps} steps): {out.tolist()}")
    return out
