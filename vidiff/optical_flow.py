"""Classical optical flow between two frames, and frames interpolated along it.

Two users: the optical-flow baseline of `vidiff eval interpolation --flow` (vidiff/eval/optical_flow.py), and
interpolation parts trained with the flow anchor (`diffusion.anchor: known_flow`, vidiff/diffusion/anchor.py),
which denoise around the known ends warped along the flow to each in-between time.

OpenCV's DIS flow (Kroeger et al. 2016) is computed in both directions between the two neighbouring keyframes,
F_0->1 and F_1->0. The flow from the frame at time t in (0, 1) back to each end is approximated from those two as
in Super SloMo (Jiang et al. 2018, eq. 4):

    F_t->0 = -(1 - t) t F_0->1 + t^2 F_1->0        F_t->1 = (1 - t)^2 F_0->1 - t (1 - t) F_1->0

each keyframe is warped backwards to time t along its flow (bilinear, edges repeated), and the two warps are
blended by t: I_t = (1 - t) warp(I_0, F_t->0) + t warp(I_1, F_t->1). No occlusion reasoning.

Needs opencv-python-headless (`pip install 'vidiff[flow]'`).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from vidiff.errors import InputError


@contextmanager
def _cv2():
    """OpenCV on torch's thread count (`--threads`; OpenCV's own default is every core), the caller's OpenCV
    thread count given back after: it was left at torch's, a process-wide setting changed under a notebook."""
    try:
        import cv2
    except ImportError:
        raise InputError("optical flow needs OpenCV: pip install opencv-python-headless (or 'vidiff[flow]')") from None
    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, torch.get_num_threads()))
    try:
        yield cv2
    finally:
        cv2.setNumThreads(before)


def flow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("cv2") is not None


# OpenCV's DIS refuses frames under 12 px, and OpenCV 5.1 kills the process (SIGSEGV) on frames 12..15 px tall and
# 40 px or more wide (a 64x1 clip, padded); no frame with both sides 16..4096 did. Smaller frames are flowed with
# their edges repeated out to it.
DIS_MIN_SIDE = 16


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float32 (H,W,2) flow (dx, dy) from uint8 RGB frame a to b: a(y, x) ~ b(y + dy, x + dx)."""
    h, w = a.shape[:2]
    pad = ((0, max(0, DIS_MIN_SIDE - h)), (0, max(0, DIS_MIN_SIDE - w)), (0, 0))
    with _cv2() as cv2:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        gray_a, gray_b = (cv2.cvtColor(np.ascontiguousarray(np.pad(x, pad, mode="edge")), cv2.COLOR_RGB2GRAY)
                          for x in (a, b))
        return dis.calc(gray_a, gray_b, None)[:h, :w]


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """float32 (H,W,C): image sampled at (x + dx, y + dy) for every pixel, bilinear, edge pixels repeated."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    with _cv2() as cv2:
        out = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                        interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)  # remap drops a single channel axis


def flows_to_time(f01: np.ndarray, f10: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(F_t->0, F_t->1), the flows from time t back to each end (the approximation above)."""
    return -(1 - t) * t * f01 + t * t * f10, (1 - t) * (1 - t) * f01 - t * (1 - t) * f10


def warp_blend(left: np.ndarray, right: np.ndarray, f01: np.ndarray, f10: np.ndarray, t: float) -> np.ndarray:
    """float32 (1 - t) warp(left, F_t->0) + t warp(right, F_t->1), for any (H,W,C) arrays on the frames' grid
    (frames, or per-pixel errors carried along the motion)."""
    ft0, ft1 = flows_to_time(f01, f10, t)
    return (1 - t) * backward_warp(left, ft0) + t * backward_warp(right, ft1)


def flow_timeline(keyframes: torch.Tensor, stride: int) -> tuple[torch.Tensor, list[tuple[np.ndarray, np.ndarray]]]:
    """uint8 keyframes (K,H,W,3) -> (uint8 frames ((K-1)*stride+1,H,W,3), the keyframes at 0, stride, ... and
    every frame between interpolated along the flow; [(F_0->1, F_1->0)] per gap, float32 (H,W,2) each). The
    keyframes may be on a GPU (a training batch is); the flow runs on the CPU (OpenCV)."""
    keys = keyframes.cpu().numpy()
    frames, flows = [], []
    for left, right in zip(keys[:-1], keys[1:]):
        f01, f10 = dis_flow(left, right), dis_flow(right, left)
        flows.append((f01, f10))
        frames.append(left)
        frames += [np.clip(np.rint(warp_blend(left, right, f01, f10, k / stride)), 0, 255).astype(np.uint8)
                   for k in range(1, stride)]
    frames.append(keys[-1])
    return torch.from_numpy(np.stack(frames)), flows


@torch.no_grad()
def flow_anchor(vae, keyframes: torch.Tensor, stride: int) -> tuple[torch.Tensor, list[tuple[np.ndarray, np.ndarray]]]:
    """The flow anchor of a keyframe timeline: (latents (1,C,(K-1)*stride+1,h,w), the VAE's posterior mean of
    `flow_timeline`'s frames; the flows per gap). The latents a part with `anchor: known_flow` denoises around."""
    frames, flows = flow_timeline(keyframes, stride)
    return vae.encode_frames(frames).float(), flows
