"""PSNR of the frames a flow-anchored real-interp pipeline returns, on windows of a training window cache, beside
its anchor alone and the optical-flow frames (docs/real_footage.md, "The decoded loss"):

    .venv/bin/python tools/probe_decoded.py --cache WORK/windows --model PIPELINE [PIPELINE ...] [--windows 80]

For random windows (gap 4 or 8, both ends known, the cache's 64 px frames, whole frames) each pipeline's part is
asked for its estimate at the pipeline's sigma_max, the known ends are put back, decoded, and the keyframe errors
carried along the flow: what the decoded loss (vidiff/training/decoded_loss.py) scores and fill_between returns.
"the anchor alone" is the same with the part's estimate replaced by the flow anchor (the first pipeline's VAE).
Printed per gap: PSNR of the mean squared error over all in-between frames.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.real_windows import WindowCacheDataset  # noqa: E402
from vidiff.optical_flow import flow_anchor, flow_timeline  # noqa: E402
from vidiff.pipeline import VideoPipeline  # noqa: E402
from vidiff.pipeline.timeline import encode_text  # noqa: E402
from vidiff.training.decoded_loss import DecodedLoss  # noqa: E402


def _anchor_only(x, sigma, cond):
    return cond.anchor


@torch.inference_mode()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, nargs="+")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--windows", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    pipes = {m: VideoPipeline.from_pretrained(m) for m in args.model}
    first = next(iter(pipes.values()))
    if any(p.config.interpolation.anchor != "known_flow" for p in pipes.values()):
        raise SystemExit("every --model must denoise around the flow anchor (anchor: known_flow)")
    text, _ = encode_text(first.text_encoder, [""])
    scorers = {m: (DecodedLoss(p.interpolation.denoiser, p.vae, carry=True), p) for m, p in pipes.items()}
    scorers["the anchor alone"] = (DecodedLoss(_anchor_only, first.vae, carry=True), first)
    data = WindowCacheDataset(args.cache, seed=0, reverse_prob=0.0)
    if "pixels" not in data[0]:
        raise SystemExit(f"{args.cache}: built without --pixels")
    rng = np.random.default_rng(args.seed)
    mse = {}
    for n in range(args.windows):
        item = data[int(rng.integers(len(data)))]
        gap = int(rng.choice([4, 8]))
        x0, pixels = item["latents"][None, :, :gap + 1], item["pixels"][:gap + 1]
        truth = pixels.permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        flow = flow_timeline(pixels[[0, -1]], gap)[0].permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        mse.setdefault(("optical flow", gap), []).append(float(((flow - truth)[:, :, 1:-1] ** 2).mean()))
        mask = torch.zeros(1, gap + 1)
        mask[:, [0, -1]] = 1
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(n))
        for name, (score, pipe) in scorers.items():
            anchor, flows = flow_anchor(pipe.vae, pixels[[0, -1]], gap)
            c = dataclasses.replace(text, known=x0 * mask[:, None, :, None, None], known_mask=mask,
                                    frame_stride=torch.ones(1), cond_sigma=torch.full((1,), 0.02), anchor=anchor)
            sigma = torch.full((1,), float(pipe.config.interpolation.sigma_max))
            full = (0, 0, min(x0.shape[-2:]))
            mse.setdefault((name, gap), []).append(float(score(x0, sigma, noise, c, truth, flows, full)[0]))
    for gap in (4, 8):
        cells = [f"{name} {10 * math.log10(4 / np.mean(v)):.2f}" for (name, g), v in mse.items() if g == gap]
        print(f"gap {gap} ({len(mse[('optical flow', gap)])} windows), PSNR dB: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
