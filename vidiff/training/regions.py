"""Region masks for training region edits: which latent pixels of a window are known (1) and which the model must
generate (0), so that one mechanism (known content per latent pixel) serves image-to-video, extension, user
keyframes and region edits alike.

Three kinds, one drawn per sample from its own generator, in latent pixels:
- box: an axis-aligned box, the same in every frame (a user's rectangle mask);
- moving box: a smaller box whose centre moves on a straight line from the first frame to the last (a mask that
  follows an object);
- blob: the union of one to three ellipses, the same in every frame (a painted mask).
Region sides run from a quarter to three quarters of the latent size, so both small and large edits are seen.
"""
from __future__ import annotations

import torch

KINDS = ("box", "moving_box", "blob")


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _box(h: int, w: int, cy: float, cx: float, half_h: float, half_w: float) -> torch.Tensor:
    """(h, w) bool, True inside the box of centre (cy, cx) and half sides (half_h, half_w), in pixel centres."""
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    return ((ys - cy).abs() <= half_h) & ((xs - cx).abs() <= half_w)


def region_keep_mask(num_frames: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """(F, h, w) float: 0 inside the drawn region, 1 outside (known). Every frame has at least one generated and
    one known pixel."""
    kind = KINDS[int(torch.randint(0, len(KINDS), (1,), generator=gen))]
    region = torch.zeros(num_frames, h, w, dtype=torch.bool)
    if kind == "box":
        half_h, half_w = _uniform(gen, h / 8, 3 * h / 8), _uniform(gen, w / 8, 3 * w / 8)
        cy, cx = _uniform(gen, half_h, h - half_h), _uniform(gen, half_w, w - half_w)
        region[:] = _box(h, w, cy, cx, half_h, half_w)
    elif kind == "moving_box":
        half_h, half_w = _uniform(gen, h / 8, h / 4), _uniform(gen, w / 8, w / 4)
        y0, x0 = _uniform(gen, half_h, h - half_h), _uniform(gen, half_w, w - half_w)
        y1, x1 = _uniform(gen, half_h, h - half_h), _uniform(gen, half_w, w - half_w)
        for f in range(num_frames):
            t = f / max(1, num_frames - 1)
            region[f] = _box(h, w, y0 + t * (y1 - y0), x0 + t * (x1 - x0), half_h, half_w)
    else:  # blob
        ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
        xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
        blob = torch.zeros(h, w, dtype=torch.bool)
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            ry, rx = _uniform(gen, h / 8, h / 3), _uniform(gen, w / 8, w / 3)
            cy, cx = _uniform(gen, 0, h), _uniform(gen, 0, w)
            blob |= ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
        region[:] = blob
    for f in range(num_frames):  # a degenerate draw (empty or everything) becomes one centre pixel / one corner
        if not region[f].any():
            region[f, h // 2, w // 2] = True
        if region[f].all():
            region[f, 0, 0] = False
    return (~region).float()
