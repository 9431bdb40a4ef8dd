"""How much of the flow anchor's error a flow-anchored interpolation part removes, in latents, on windows of a
training window cache (docs/real_footage.md, "The flow anchor"):

    .venv/bin/python tools/probe_flow_correction.py --model PIPELINE --cache WORK/windows [--windows 150]

For random windows (random gap 2..8, both ends known, the cache's 64 px frames), the part's denoised estimate
D(anchor + sigma * noise, sigma) is compared with the true latents of the in-between frames; printed per sigma:
its mean squared error over the anchor's. Under 1: the part corrects the flow; 1: it adds nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.real_windows import WindowCacheDataset  # noqa: E402
from vidiff.optical_flow import flow_anchor  # noqa: E402
from vidiff.pipeline import VideoPipeline  # noqa: E402
from vidiff.pipeline.timeline import encode_text  # noqa: E402


@torch.inference_mode()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--windows", type=int, default=150)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0, 80.0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    if pipe.config.interpolation.anchor != "known_flow":
        raise SystemExit(f"{args.model}: the interpolation part does not denoise around the flow anchor")
    text, _ = encode_text(pipe.text_encoder, [""])
    data = WindowCacheDataset(args.cache, seed=0, reverse_prob=0.0)
    rng = np.random.default_rng(args.seed)
    errors = {sigma: [0.0, 0.0] for sigma in args.sigmas}
    for n in range(args.windows):
        item = data[int(rng.integers(len(data)))]
        if "pixels" not in item:
            raise SystemExit(f"{args.cache}: built without --pixels")
        gap = int(rng.integers(2, 9))
        x0, pixels = item["latents"][None, :, :gap + 1], item["pixels"][:gap + 1]
        anchor = flow_anchor(pipe.vae, pixels[[0, -1]], gap)[0]
        anchor[:, :, [0, -1]] = x0[:, :, [0, -1]]
        mask = torch.zeros(1, gap + 1)
        mask[:, [0, -1]] = 1
        cond = dataclasses.replace(text, known=x0 * mask[:, None, :, None, None], known_mask=mask,
                                   frame_stride=torch.ones(1), cond_sigma=torch.full((1,), 0.02), anchor=anchor)
        base = float(((anchor - x0)[:, :, 1:-1] ** 2).sum())
        for sigma in args.sigmas:
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(n))
            denoised = pipe.interpolation.denoiser(anchor + sigma * noise, sigma, cond)
            errors[sigma][0] += float(((denoised - x0)[:, :, 1:-1] ** 2).sum())
            errors[sigma][1] += base
    for sigma, (model, anchor_only) in errors.items():
        print(f"sigma {sigma:g}: mse(part) / mse(anchor) = {model / anchor_only:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
