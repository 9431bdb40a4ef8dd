"""Full-reference frame metrics: PSNR and SSIM on uint8 or float frames, in torch.

Frames are `(F,H,W,3)` or a single `(H,W,3)`; both inputs must have the same shape. Each metric is computed
per frame; `per_frame=True` returns the `(F,)` values, otherwise their mean as a float.

SSIM follows Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
structural similarity" (IEEE TIP 2004), eq. 13, with the usual settings: an 11x11 Gaussian window of
sigma 1.5, K1 = 0.01, K2 = 0.03, population (not sample) statistics, and the mean taken over the
positions where the window fits inside the frame. RGB SSIM is the mean over the three channels.
"""
from __future__ import annotations

import torch
from einops import rearrange

from vidiff.errors import InputError

SSIM_WINDOW = 11  # taps of the Gaussian window (radius 5 = int(3.5 * 1.5 + 0.5))
SSIM_SIGMA = 1.5  # standard deviation of the window, in pixels
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_CHUNK = 256  # frames per filtering pass, bounds memory on long clips


def _as_frames(a, b, data_range: float | None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Checks shapes, returns float64 `(F,H,W,C)` tensors and the data range (255 for uint8 by default)."""
    a = torch.as_tensor(a)
    b = torch.as_tensor(b)
    if a.shape != b.shape:
        raise InputError(f"frames to compare differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise InputError(f"frames must be (F,H,W,3) or (H,W,3), got shape {tuple(a.shape)}")
    if data_range is None:
        if a.dtype != torch.uint8 or b.dtype != torch.uint8:
            raise InputError("data_range is required for float frames (e.g. 1.0 for [0,1], 2.0 for [-1,1])")
        data_range = 255.0
    if data_range <= 0:
        raise InputError(f"data_range must be positive, got {data_range}")
    return a.to(torch.float64), b.to(torch.float64), float(data_range)


def _reduce(values: torch.Tensor, per_frame: bool):
    return values if per_frame else float(values.mean())


def psnr(a, b, data_range: float | None = None, per_frame: bool = False):
    """Peak signal-to-noise ratio in dB, 10 log10(range^2 / MSE) per frame; +inf for identical frames."""
    a, b, data_range = _as_frames(a, b, data_range)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)  # (F,)
    with torch.no_grad():
        values = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 gives +inf, as it should
    return _reduce(values, per_frame)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalized 1D Gaussian taps (float64)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _valid_filter_matrix(length: int, taps: torch.Tensor) -> torch.Tensor:
    """(length, length - k + 1) banded matrix M with (x @ M)[j] = sum_i taps[i] x[j + i] ('valid' filtering)."""
    k = taps.numel()
    matrix = torch.zeros(length, length - k + 1, dtype=taps.dtype)
    for j in range(length - k + 1):
        matrix[j : j + k, j] = taps
    return matrix


def _blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of (N,1,H,W) as two banded matmuls (far faster than conv2d on CPU)."""
    rows = _valid_filter_matrix(x.shape[-2], taps)
    cols = _valid_filter_matrix(x.shape[-1], taps)
    return rows.T @ x @ cols


def ssim(
    a,
    b,
    data_range: float | None = None,
    per_frame: bool = False,
    window_size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
):
    """Structural similarity (Wang et al. 2004) per frame, mean over channels and window positions."""
    a, b, data_range = _as_frames(a, b, data_range)
    height, width = a.shape[1:3]
    if window_size % 2 != 1 or window_size < 3:
        raise InputError(f"window_size must be odd and >= 3, got {window_size}")
    if min(height, width) < window_size:
        raise InputError(f"frames of {height}x{width} are smaller than the {window_size}x{window_size} SSIM window")
    taps = gaussian_window(window_size, sigma).float()
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    values = []
    for start in range(0, a.shape[0], _CHUNK):
        x = rearrange(a[start : start + _CHUNK], "f h w c -> (f c) 1 h w")
        y = rearrange(b[start : start + _CHUNK], "f h w c -> (f c) 1 h w")
        # Moments are taken in float32 for speed, about a common per-plane offset so that
        # E[x^2] - E[x]^2 does not cancel badly; the window taps sum to 1, so the offset adds back exactly.
        offset = x.mean(dim=(2, 3), keepdim=True)
        xc, yc = (x - offset).float(), (y - offset).float()
        moments = _blur(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc]), taps).double()
        mu_xc, mu_yc, xx, yy, xy = moments.chunk(5)
        var_x = xx - mu_xc**2
        var_y = yy - mu_yc**2
        cov = xy - mu_xc * mu_yc
        mu_x, mu_y = mu_xc + offset, mu_yc + offset
        num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
        den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        per_channel = (num / den).flatten(1).mean(dim=1)  # ((f c),)
        values.append(rearrange(per_channel, "(f c) -> f c", c=a.shape[-1]).mean(dim=1))
    return _reduce(torch.cat(values), per_frame)

