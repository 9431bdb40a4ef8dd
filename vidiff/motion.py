"""How a clip's content moves: its translation per frame, measured from the frames themselves.

extend_video uses it to start each new keyframe from the clip's last frame moved on at the clip's own velocity
(pipeline/extension.py): the keyframe part does not read a slow clip's speed from two known keyframes that differ
by less than one latent pixel, and a clip-wide speed given to it as a conditioning input was not learned in the
fine-tuning a CPU allows (docs/shapes_measured.md).

The measure is one global Lucas-Kanade translation per pair of neighbouring frames (the least-squares solution of
I_x u + I_y v + I_t = 0 over every pixel and channel) on Gaussian-blurred frames with exact derivative-of-Gaussian
gradients, refined twice on the next frame moved back by the motion found so far, so that displacements of a few
pixels come out unbiased. Frames are first area-reduced to a short side of at most 64 pixels, and the result is
scaled back to the frames' own pixels. It is exact for one object translating over a flat background (the Shapes
world) and for a camera pan; where several things move differently it gives their gradient-weighted mean, so
opposite motions partly cancel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

WORK_SIDE = 64  # frames are measured at a short side of at most this many pixels
BLUR_SIGMA = 2.0  # pixels at the working size
REFINEMENTS = 2  # passes after the first, each on the next frame moved back by the motion found so far


def _gaussian_kernels(sigma: float, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, dg): a normalised Gaussian and its derivative as a correlation kernel, 2r+1 taps (r = 3 sigma)."""
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    dg = -t / (sigma * sigma) * g  # d/dt of the Gaussian: correlating with it gives the blurred gradient
    return g.to(dtype=dtype, device=device), dg.flip(0).to(dtype=dtype, device=device)


def _separable(x: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) correlated with kx along the width and ky along the height, edges repeated."""
    c, r = x.shape[1], kx.numel() // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kx.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), ky.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _shift(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) frames sampled at (x + d_x, y + d_y) per frame (bilinear, edges repeated): each moved back by d."""
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = 2 * d[:, 0] / w, 2 * d[:, 1] / h  # pixels -> grid units (align_corners=False)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _lucas_kanade(it: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """(N, 2): per frame pair, the translation (x, y) that best explains the temporal change `it` from the spatial
    gradients (least squares of I_x u + I_y v + I_t = 0 over every pixel and channel)."""
    total = lambda t: t.sum(dim=(1, 2, 3))  # noqa: E731
    sxx, sxy, syy = total(ix * ix), total(ix * iy), total(iy * iy)
    bx, by = -total(ix * it), -total(iy * it)
    ridge = 1e-6 * (sxx + syy) + 1e-12  # a flat pair (no gradient) gives zero motion, not a division by zero
    sxx, syy = sxx + ridge, syy + ridge
    det = sxx * syy - sxy * sxy
    return torch.stack([(syy * bx - sxy * by) / det, (sxx * by - sxy * bx) / det], dim=1)


def pair_velocities(frames: torch.Tensor) -> torch.Tensor:
    """(F, C, H, W) frames (any scale; uint8 (F, H, W, 3) is also taken) -> (F-1, 2) the global translation
    (x, y) from each frame to the next, in pixels of the given frames."""
    frames = torch.as_tensor(frames)
    if frames.dtype == torch.uint8 and frames.ndim == 4 and frames.shape[-1] in (1, 3):
        frames = frames.permute(0, 3, 1, 2)
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"motion: frames must be (F >= 2, C, H, W), got {tuple(frames.shape)}")
    x = frames.float()
    scale = 1.0
    short = min(x.shape[-2:])
    if short > WORK_SIDE:
        scale = short / WORK_SIDE
        size = (max(1, round(x.shape[-2] / scale)), max(1, round(x.shape[-1] / scale)))
        x = F.interpolate(x, size=size, mode="area")
    g, dg = _gaussian_kernels(BLUR_SIGMA, x.dtype, x.device)
    # the blurred frames and their exact gradients (derivative-of-Gaussian filters: a central difference
    # overstates the motion of fine detail by k / sin(k) at frequency k)
    smooth, gx, gy = _separable(x, g, g), _separable(x, dg, g), _separable(x, g, dg)
    # the repeated edges do not move with the content: measure inside them, where the frame allows
    border = min(g.numel() // 2 + 1, (min(x.shape[-2:]) - 1) // 2)
    inside = (..., slice(border, -border or None), slice(border, -border or None))
    a, ax, ay = smooth[:-1][inside], gx[:-1][inside], gy[:-1][inside]
    moved = torch.zeros(x.shape[0] - 1, 2, dtype=x.dtype, device=x.device)  # (F-1, 2) (x, y) so far
    for _ in range(REFINEMENTS + 1):
        # the next frame moved back by the motion found so far: what is left is small, where the linearisation
        # I_t = -grad I . d holds (one pass overstates a displacement d by about tan(k d / 2) * 2 / (k d))
        b, bx_, by_ = (_shift(t[1:], moved)[inside] for t in (smooth, gx, gy))
        moved = moved + _lucas_kanade(b - a, 0.5 * (ax + bx_), 0.5 * (ay + by_))
    return moved * scale  # (F-1, 2)


def pair_speeds(frames: torch.Tensor) -> torch.Tensor:
    """(F-1,) pixels moved from each frame to the next (see pair_velocities)."""
    return pair_velocities(frames).norm(dim=1)


def clip_velocity(frames: torch.Tensor) -> torch.Tensor:
    """(2,) the clip's velocity (x, y), pixels per frame: the least-squares slope of its position track (the running
    sum of the pair translations) over time. Where content is drawn at whole pixels a slow object jumps 1 pixel
    every few frames, and the mean of the pairs is only as good as the first and last jumps; the slope uses every
    frame (on the Shapes test clips: within 15% of the true speed from 8 frames in 94% of clips, against 72%)."""
    v = pair_velocities(frames)  # (F-1, 2)
    track = torch.cat([v.new_zeros(1, 2), v.cumsum(dim=0)])  # (F, 2) position relative to frame 0
    t = torch.arange(track.shape[0], dtype=track.dtype, device=track.device)
    t = t - t.mean()
    return (t[:, None] * (track - track.mean(dim=0))).sum(dim=0) / (t * t).sum()


def carry_forward(frame: torch.Tensor, velocity: torch.Tensor, offsets: list[float]) -> torch.Tensor:
    """uint8 (N, H, W, 3): `frame` (H, W, 3) uint8 with its content moved on by velocity * offset for each offset
    (frames after it), bilinear, edges repeated: where a clip that kept its motion would have it."""
    x = frame.permute(2, 0, 1).float()[None].expand(len(offsets), -1, -1, -1)  # (N, 3, H, W)
    d = -torch.as_tensor(offsets, dtype=torch.float32)[:, None] * velocity.float()[None]  # sample back along it
    return _shift(x, d).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
