"""Region edits: a user's pixel mask (white = regenerate) as known content per latent pixel, and the feathered
composite that keeps the input's pixels outside it.

- `check_region_mask`: a uint8/bool/float mask (H,W) for every frame or (F,H,W) per frame, any value > 0.5 (or
  > 127 for uint8) meaning "regenerate"; checked against the clip's frame count and size.
- `latent_keep_mask`: which latent pixels stay known: a latent pixel is regenerated when its cell of
  factor x factor pixels touches the (feather-grown) mask, grown by one more latent pixel, because a latent
  pixel's decoded footprint reaches past its own cell.
- `feather_weights` / `composite`: output = input * (1 - w) + generated * w, with w = 1 on the mask and a smooth
  fall to 0 over `feather` pixels outside it; beyond that band the output is the input's own pixels, exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidiff.errors import InputError
from vidiff.pipeline.input_checks import NUMERIC_KINDS, check_has_data, tensor_copy


def check_region_mask(mask, num_frames: int, height: int, width: int) -> torch.Tensor:
    """-> bool (F,H,W), True where the clip is regenerated. InputError naming what does not fit."""
    import numpy as np

    if isinstance(mask, np.ndarray):
        if mask.dtype.kind not in NUMERIC_KINDS:
            raise InputError(f"mask: expected a bool, uint8 or float array, got {mask.dtype} {mask.shape}")
        mask = tensor_copy(mask)
    if not torch.is_tensor(mask):
        raise InputError(f"mask: expected an array (H,W) or (F,H,W), got {type(mask).__name__}")
    check_has_data(mask, "mask")
    mask = mask.cpu()  # given on a GPU: composited with the CPU-held frames
    # torch has no min / max / amax of uint16 / uint32 / uint64 (a 16-bit PNG mask: NotImplementedError): those
    # alone are widened, before the mask is expanded over the frames (an int64 copy of a clip-long uint8 mask took
    # 8x its size: +644 MB at 256x512x512)
    wider = {torch.uint16: torch.int32, torch.uint32: torch.int64, torch.uint64: torch.int64}.get(mask.dtype)
    if wider is not None:
        mask = mask.to(wider)
    image = mask.ndim == 3 and mask.shape[-1] in (1, 3, 4) and tuple(mask.shape[:2]) == (height, width) \
        and tuple(mask.shape[1:]) != (height, width)  # one (H,W,C) image, even when H equals the frame count
    if image or (mask.ndim == 4 and mask.shape[-1] in (1, 3, 4)):  # or (F,H,W,C) frames of a mask video
        if mask.shape[-1] == 4:  # RGBA (np.array of an RGBA PNG): transparent is "keep" whatever its colour, as the
            # CLI reads a mask file and as control maps are read (it was taken for 64 frames of 64x4 pixels)
            mask = _redraw(mask[..., :3].amax(dim=-1)) & _redraw(mask[..., 3])
        else:
            mask = mask.amax(dim=-1)  # any colour channel
    if mask.ndim == 2:
        mask = mask[None].expand(num_frames, -1, -1)
    if mask.ndim != 3:
        raise InputError(f"mask: expected (H,W) for every frame or (F,H,W) per frame, got {tuple(mask.shape)}")
    if mask.shape[0] != num_frames:
        raise InputError(f"mask: {mask.shape[0]} frames, the clip has {num_frames} (give one mask for every frame "
                         "or one per frame)")
    if tuple(mask.shape[1:]) != (height, width):
        raise InputError(f"mask: {mask.shape[2]}x{mask.shape[1]} pixels, the clip is {width}x{height}")
    return _selects_some(_redraw(mask))


def _redraw(mask: torch.Tensor) -> torch.Tensor:
    """A mask's values -> bool: True, 1 of 0/1 integers, > 127 of 0..255 or > 0.5 of [0, 1]."""
    if mask.dtype == torch.bool:
        return mask.clone()
    if not mask.dtype.is_floating_point and not mask.dtype.is_complex:  # integers: 0/1, or 0..255 as an image
        low, high = int(mask.min()), int(mask.max())
        if low < 0 or high > 255:
            raise InputError(f"mask: integer values must lie in 0..255 (or 0/1), got {low}..{high}")
        # a 0/1 mask stored as uint8 read as 0..255 selected nothing: the edit ran and returned the clip unchanged
        return mask > (0 if high <= 1 else 127)
    mask = mask.float()
    if not bool(torch.isfinite(mask).all()):
        raise InputError("mask: has NaN or infinite values")
    if bool((mask < 0).any() | (mask > 1).any()):  # 0..255 given as floats would redraw every pixel above 0.5
        raise InputError(f"mask: float values must lie in [0, 1] (white = 1), got {float(mask.min()):g}.."
                         f"{float(mask.max()):g}; give uint8 for 0..255")
    return mask > 0.5


def _selects_some(mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):  # the whole sampling ran and the clip came back as it was
        raise InputError("mask: selects no pixel, so nothing would be redrawn (True, 1, > 127 of 0..255 or > 0.5 of "
                         "0..1 marks the region to redraw)")
    return mask


def _grow(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(F,H,W) bool grown by `radius` pixels (a square structuring element)."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask[:, None].float(), 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0


def latent_keep_mask(mask: torch.Tensor, factor: int, feather: int) -> torch.Tensor:
    """bool (F,H,W) regenerate-mask -> float (F,h,w): 1 where a latent pixel stays known, 0 where it is sampled."""
    grown = _grow(mask, feather).float()[:, None]  # (F,1,H,W): the feather band is generated too
    cells = F.max_pool2d(grown, factor, stride=factor)  # (F,1,h,w): 1 where a cell touches it
    cells = F.max_pool2d(cells, 3, stride=1, padding=1)  # one latent pixel more: the decoder's reach
    return 1.0 - cells[:, 0]


def feather_weights(mask: torch.Tensor, feather: int) -> torch.Tensor:
    """bool (F,H,W) -> float (F,H,W): 1 on the mask, falling linearly to 0 over `feather` pixels outside it."""
    w, grown = mask.float(), mask
    for r in range(1, feather + 1):  # ring r of a square element (r one-pixel growths): weight 1 - r / (feather + 1)
        grown = _grow(grown, 1)
        w = torch.maximum(w, grown.float() * (1.0 - r / (feather + 1)))
    return w


def composite(source: torch.Tensor, generated: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """uint8 (F,H,W,3) input, uint8 (B,F,H,W,3) output, float (F,H,W) weights -> uint8 (B,F,H,W,3)."""
    w = weights[None, :, :, :, None]
    out = source[None].float() * (1 - w) + generated.float() * w
    return out.round().clamp(0, 255).to(torch.uint8)
