"""A classical optical-flow frame interpolator: the baseline a learned interpolator has to beat on real footage.

OpenCV's DIS flow (Kroeger et al. 2016) is computed in both directions between the two neighbouring keyframes,
F_0->1 and F_1->0. The flow from the frame at time t in (0, 1) back to each end is approximated from those two as
in Super SloMo (Jiang et al. 2018, eq. 4):

    F_t->0 = -(1 - t) t F_0->1 + t^2 F_1->0        F_t->1 = (1 - t)^2 F_0->1 - t (1 - t) F_1->0

each keyframe is warped backwards to time t along its flow (bilinear, edges repeated), and the two warps are
blended by t: I_t = (1 - t) warp(I_0, F_t->0) + t warp(I_1, F_t->1). No occlusion reasoning.

Needs opencv-python-headless (`pip install 'vidiff[eval]'`).
"""
from __future__ import annotations

import numpy as np
import torch

from vidiff.errors import InputError


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InputError("the optical-flow baseline needs OpenCV: pip install opencv-python-headless "
                         "(or 'vidiff[eval]')") from None
    cv2.setNumThreads(max(1, torch.get_num_threads()))
    return cv2


def flow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("cv2") is not None


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float32 (H,W,2) flow (dx, dy) from uint8 RGB frame a to b: a(y, x) ~ b(y + dy, x + dx)."""
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray_a, gray_b = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b))
    return dis.calc(gray_a, gray_b, None)


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """float32 (H,W,3): image sampled at (x + dx, y + dy) for every pixel, bilinear, edge pixels repeated."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flow_between(left: np.ndarray, right: np.ndarray, times) -> list[np.ndarray]:
    """uint8 (H,W,3) frames at each t in `times` (0 < t < 1) between `left` (t = 0) and `right` (t = 1)."""
    f01, f10 = dis_flow(left, right), dis_flow(right, left)
    out = []
    for t in times:
        ft0 = -(1 - t) * t * f01 + t * t * f10
        ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
        frame = (1 - t) * backward_warp(left, ft0) + t * backward_warp(right, ft1)
        out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return out


def flow_fill(keyframes: torch.Tensor, stride: int, seed: int = 0) -> torch.Tensor:
    """The optical-flow fill: uint8 ((K-1)*stride+1, H, W, 3), keyframes unchanged at 0, stride, 2 stride, ...
    (the `fill(keyframes, stride, seed)` form of vidiff.eval.interpolation; the seed is unused)."""
    keys = keyframes.numpy()
    frames = []
    for left, right in zip(keys[:-1], keys[1:]):
        frames.append(left)
        frames += flow_between(left, right, [t / stride for t in range(1, stride)])
    frames.append(keys[-1])
    return torch.from_numpy(np.stack(frames))
