"""The parameterization wrapper: a bare network becomes a denoiser D(x, sigma) -> estimate of x0.

Variance-exploding form x = x0 + sigma * noise. With F = net(c_in * x, c_noise, cond) the denoised estimate is
    D(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F,       c_noise = log(sigma) / 4,
and the training target of F is (x0 - c_skip * x) / c_out. The scalings per parameterization
(s = sigma, d = sigma_data, c_in = 1 / sqrt(s^2 + d^2) for all three, which is the VP input scaling when d = 1):

  parameterization   c_skip              c_out                    target of F
  eps                1                   -s                       noise
  x0                 0                   1                        x0
  v                  d^2 / (s^2 + d^2)   -s d / sqrt(s^2 + d^2)   c_in (d noise - (s / d) x0)
The v row is the k-diffusion / EDM v preconditioning; with d = 1 its target is the usual
v = sqrt(a) noise - sqrt(1 - a) x0 (Salimans & Ho 2022) with a = 1 / (1 + s^2).

With anchor="known_blend" the part denoises around the blend A of its known frames (vidiff/diffusion/anchor.py):
D(x, sigma) = A + D_net(x - A, sigma), and training's x0 is replaced by x0 - A, so the network learns the residual
from the blend. With anchor="known_flow" A is the flow anchor the caller passes in cond.anchor. The sampler is
unchanged: it sees D as for any part.

Min-SNR-gamma weighting (Hang et al. 2023) with SNR = 1 / sigma^2: the weight in x0 space is min(SNR, gamma);
since D - x0 = c_out * (F - target), the weight on the network-target MSE is min(SNR, gamma) * c_out^2, i.e.
    eps: min(SNR, gamma) / SNR,    x0: min(SNR, gamma),    v (d = 1): min(SNR, gamma) / (SNR + 1).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from vidiff.random import Generators, batch_randn
from vidiff.diffusion.anchor import ANCHORS, anchor_of
from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError

PARAMETERIZATIONS = ("eps", "v", "x0")


def sigma_batch(sigma, x: torch.Tensor) -> torch.Tensor:
    """sigma (python float, 0-d or (B,)) as a float32 (B,) tensor on x's device."""
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.ndim != 1 or s.shape[0] != x.shape[0]:
        raise InputError(f"sigma: expected a number or a (B,) tensor with B={x.shape[0]}, got shape {tuple(s.shape)}")
    return s


def _per_row(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) so it broadcasts over x (B, C, F, H, W) or any other rank."""
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


class Denoiser(nn.Module):
    """Wraps `net(c_in * x, c_noise, cond)` (cond: a Cond, passed through unchanged); owns both the denoised
    estimate and the training loss."""

    def __init__(self, net: Callable[..., torch.Tensor], parameterization: str = "v", sigma_data: float = 1.0,
                 anchor: str = "none"):
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise InputError(f"parameterization: {parameterization!r} is not one of {list(PARAMETERIZATIONS)}")
        if anchor not in ANCHORS:
            raise InputError(f"anchor: {anchor!r} is not one of {list(ANCHORS)}")
        if not (isinstance(sigma_data, (int, float)) and math.isfinite(sigma_data) and sigma_data > 0):
            raise InputError(f"sigma_data: must be a finite number > 0, got {sigma_data!r}")
        self.net = net
        self.parameterization = parameterization
        self.sigma_data = float(sigma_data)
        self.anchor = anchor

    def _anchor(self, x: torch.Tensor, cond: Cond | None) -> torch.Tensor | None:
        return anchor_of(cond, x, self.anchor)

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in), each shaped like sigma (B,)."""
        d2 = self.sigma_data**2
        c_in = (sigma**2 + d2).rsqrt()
        if self.parameterization == "eps":
            return torch.ones_like(sigma), -sigma, c_in
        if self.parameterization == "x0":
            return torch.zeros_like(sigma), torch.ones_like(sigma), c_in
        c_skip = d2 / (sigma**2 + d2)
        c_out = -sigma * self.sigma_data * c_in
        return c_skip, c_out, c_in

    def _run_net(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond | None) -> torch.Tensor:
        _, _, c_in = self.scalings(sigma)
        c_noise = sigma.log() / 4  # (B,) the network never sees raw sigma
        out = self.net(x * _per_row(c_in, x).to(x.dtype), c_noise, cond)
        if out.shape != x.shape:
            raise RuntimeError(f"net returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
        return out

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        """Denoised estimate of x0 for x = x0 + sigma * noise; x (B, ...), sigma a number or (B,)."""
        sigma = sigma_batch(sigma, x)  # (B,)
        anchor = self._anchor(x, cond)
        if anchor is not None:
            x = x - anchor
        c_skip, c_out, _ = self.scalings(sigma)
        out = self._run_net(x, sigma, cond)  # (B, C, F, H, W)
        denoised = _per_row(c_skip, x) * x + _per_row(c_out, x) * out
        return (denoised if anchor is None else denoised + anchor).to(x.dtype)

    def min_snr_weight(self, sigma: torch.Tensor, gamma: float) -> torch.Tensor:
        """Weight (B,) on the network-target MSE: min(SNR, gamma) * c_out^2 with SNR = 1 / sigma^2."""
        if not (math.isfinite(gamma) and gamma > 0):
            raise InputError(f"min_snr_gamma: must be a finite number > 0, got {gamma!r}")
        snr = sigma.double() ** -2
        _, c_out, _ = self.scalings(sigma.double())
        return (snr.clamp(max=gamma) * c_out**2).to(sigma.dtype)

    def loss(
        self,
        x0: torch.Tensor,
        sigma,
        cond: Cond | None = None,
        *,
        noise: torch.Tensor | None = None,
        generator: Generators = None,
        min_snr_gamma: float | None = None,
    ) -> torch.Tensor:
        """Per-sample (B,) MSE of the network output against its target (eps / v / x0) at x = x0 + sigma * noise
        (with an anchor: at x0 - anchor, the residual the network learns)."""
        sigma = sigma_batch(sigma, x0)  # (B,)
        anchor = self._anchor(x0, cond)
        if anchor is not None:
            x0 = x0 - anchor
        if noise is None:
            noise = batch_randn(x0.shape, generator, dtype=x0.dtype, device=x0.device)
        elif noise.shape != x0.shape:
            raise InputError(f"noise: shape {tuple(noise.shape)} does not match x0 {tuple(x0.shape)}")
        x = x0 + _per_row(sigma, x0).to(x0.dtype) * noise  # (B, C, F, H, W)
        if self.parameterization == "eps":
            target = noise
        elif self.parameterization == "x0":
            target = x0
        else:  # (x0 - c_skip x) / c_out simplified, so small sigma does not divide by ~0
            d = self.sigma_data
            _, _, c_in = self.scalings(sigma)
            target = (d * noise - _per_row(sigma / d, x0) * x0) * _per_row(c_in, x0)
        out = self._run_net(x, sigma, cond)
        mse = (out.float() - target.float()).pow(2).flatten(1).mean(1)  # (B,)
        if min_snr_gamma is not None:
            mse = mse * self.min_snr_weight(sigma, min_snr_gamma)
        return mse
