"""Control maps read off a clip: what an edit that keeps a clip's structure follows (VideoPipeline.edit_video).

The control parts learn silhouette and blob maps of a rendered object (control_maps.py). To keep a clip's layout
and motion through an edit, the same kinds of map are derived from the clip itself:
- the foreground of a frame is every pixel whose colour is farther than FOREGROUND_THRESHOLD (largest channel
  difference) from the frame's background, taken as its median colour (the background covers most of a frame);
- "silhouette": the foreground;
- "blob": a disc of control_maps.BLOB_RADIUS at the centroid of each foreground component of at least
  MIN_COMPONENT pixels (4-connected), so two objects give two discs and speckle gives none.

This reads footage with a flat background, as Shapes clips have; on cluttered footage the foreground is not an
object and the maps mean little.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from vidiff.data.control_maps import MAP_KINDS, disc_mask, mask_centroid
from vidiff.errors import InputError

FOREGROUND_THRESHOLD = 24  # grey levels: above VAE / codec noise on a flat background, below any Shapes contrast
MIN_COMPONENT = 6  # pixels: smaller foreground specks are noise, not objects


def foreground(frame: np.ndarray, threshold: int = FOREGROUND_THRESHOLD) -> np.ndarray:
    """Boolean (H, W): pixels of uint8 (H, W, 3) `frame` farther than `threshold` from its median colour."""
    background = np.median(frame.reshape(-1, frame.shape[-1]), axis=0)
    return (np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > threshold)


def components(mask: np.ndarray, min_size: int = MIN_COMPONENT) -> list[np.ndarray]:
    """The 4-connected components of boolean (H, W) `mask` with at least `min_size` pixels, as boolean masks."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    out = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, pixels = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            pixels.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if len(pixels) >= min_size:
            part = np.zeros_like(mask, dtype=bool)
            ys, xs = zip(*pixels)
            part[list(ys), list(xs)] = True
            out.append(part)
    return out


def maps_from_clip(frames, kind: str) -> np.ndarray:
    """float32 (F, H, W) maps in {0, 1} of `kind` ("silhouette" or "blob") from uint8 (F, H, W, 3) frames."""
    if kind not in MAP_KINDS:
        raise InputError(f"control map kind must be one of {MAP_KINDS}, got {kind!r}")
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"frames: expected uint8 (F,H,W,3), got {arr.dtype} {arr.shape}")
    f, h, w = arr.shape[:3]
    maps = np.zeros((f, h, w), np.float32)
    for t in range(f):
        mask = foreground(arr[t])
        if kind == "silhouette":
            maps[t] = mask
            continue
        for part in components(mask):
            maps[t][disc_mask(mask_centroid(part), h, w)] = 1.0
    return maps
