"""The optical-flow interpolator as a `fill(keyframes, stride, seed)` for `vidiff eval interpolation --flow`:
the classical baseline a learned interpolator has to beat on real footage (the method: vidiff/optical_flow.py).

Needs opencv-python-headless (`pip install 'vidiff[eval]'`).
"""
from __future__ import annotations

import torch

from vidiff.optical_flow import dis_flow, flow_available, flow_timeline

__all__ = ["dis_flow", "flow_available", "flow_fill"]


def flow_fill(keyframes: torch.Tensor, stride: int, seed: int = 0) -> torch.Tensor:
    """The optical-flow fill: uint8 ((K-1)*stride+1, H, W, 3), keyframes unchanged at 0, stride, 2 stride, ...
    (the `fill(keyframes, stride, seed)` form of vidiff.eval.interpolation; the seed is unused)."""
    return flow_timeline(keyframes, stride)[0]
