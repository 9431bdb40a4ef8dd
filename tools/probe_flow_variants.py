"""Classical in-between frames on the training clips of issue 18: the optical-flow baseline of `vidiff eval
interpolation --flow` (vidiff/optical_flow.py) beside variants of it, to see whether a better classical anchor is
within reach (docs/real_footage.md, "What is left of issue 18"). Training clips only; nothing held out is read.

    OMP_NUM_THREADS=1 .venv/bin/python tools/probe_flow_variants.py [--windows 8] [--size 128]

Variants: the blend weights times a visibility from the forward-backward consistency of each end's flow (Super
SloMo's visibility maps approximated without a network, sigma 1 or 3 px), and DIS with 10 variational refinement
iterations or down to the finest scale. Prints the mean PSNR of the in-between frames per gap.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidiff.data.real_footage import center_square  # noqa: E402
from vidiff.eval.interpolation import spread_windows  # noqa: E402
from vidiff.eval.metrics import psnr  # noqa: E402
from vidiff.io import read_video  # noqa: E402
from vidiff.optical_flow import backward_warp, flows_to_time, warp_blend  # noqa: E402

TRAINING_CLIPS = ("vtest.avi", "Megamind.avi", "newtonscradle.gif")


def dis(a: np.ndarray, b: np.ndarray, refine: int | None = None, finest: int | None = None) -> np.ndarray:
    import cv2

    d = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # the baseline's preset
    if refine is not None:
        d.setVariationalRefinementIterations(refine)
    if finest is not None:
        d.setFinestScale(finest)
    gray = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b)]
    return d.calc(gray[0], gray[1], None)


def visibility_blend(left, right, f01, f10, t, sigma: float):
    ft0, ft1 = flows_to_time(f01, f10, t)
    # an end's pixel is trusted where its flow and the other end's flow, followed back, cancel
    err0 = np.linalg.norm(f01 + backward_warp(f10, f01), axis=-1)[..., None]  # on frame 0's grid
    err1 = np.linalg.norm(f10 + backward_warp(f01, f10), axis=-1)[..., None]
    v0 = np.exp(-backward_warp(err0, ft0) ** 2 / (2 * sigma ** 2))  # (H,W,1), carried to time t
    v1 = np.exp(-backward_warp(err1, ft1) ** 2 / (2 * sigma ** 2))
    a0, a1 = (1 - t) * v0 + 1e-6, t * v1 + 1e-6
    return (a0 * backward_warp(left, ft0) + a1 * backward_warp(right, ft1)) / (a0 + a1)


VARIANTS = {
    "baseline (DIS medium)": (warp_blend, {}),
    "visibility, sigma 1": (lambda *a: visibility_blend(*a, sigma=1.0), {}),
    "visibility, sigma 3": (lambda *a: visibility_blend(*a, sigma=3.0), {}),
    "DIS, 10 refinement iterations": (warp_blend, {"refine": 10}),
    "DIS, finest scale 0": (warp_blend, {"finest": 0}),
}


def score(method, flow_options: dict, clips: list[torch.Tensor], gap: int, windows: int) -> float:
    values = []
    for clip in clips:
        for _, window in spread_windows(clip, gap, windows):
            w = window.numpy()
            left, right = w[0].astype(np.float32), w[-1].astype(np.float32)
            f01, f10 = dis(w[0], w[-1], **flow_options), dis(w[-1], w[0], **flow_options)
            made = np.stack([np.clip(np.rint(method(left, right, f01, f10, k / gap)), 0, 255)
                             for k in range(1, gap)]).astype(np.uint8)
            values.append(psnr(torch.from_numpy(made), window[1:-1], per_frame=True))
    return float(torch.cat(values).mean())


def main() -> None:
    import cv2

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", default=str(REPO / "third_party_samples"), help="folder of the training clips")
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--gaps", type=int, nargs="+", default=[4, 8])
    args = p.parse_args()
    cv2.setNumThreads(1)
    clips = [center_square(read_video(Path(args.samples) / name)[0], args.size) for name in TRAINING_CLIPS]
    for gap in args.gaps:
        for name, (method, options) in VARIANTS.items():
            print(f"gap {gap}  {name:32s} {score(method, options, clips, gap, args.windows):.3f} dB", flush=True)


if __name__ == "__main__":
    main()
