"""FLOPs of one training step (forward + backward of the denoiser loss) of a latent diffusion stage, per window length.

Counted with torch.utils.flop_counter on the math attention path (the counter sees the CPU flash kernel as 0 FLOPs),
random weights and inputs of the stage's shapes: latents (B, C, F, h, w), a context of --tokens tokens, every frame
of the window known-or-not as in training (the known input is a concatenated channel, so its cost does not depend
on the mask). The frozen text encoder and VAE are not counted: they cost the same per sample whatever the stage.

Used to give a one-stage model the same training compute as the keyframe + interpolation models together
(docs/benchmarks.md, "Hierarchy vs one stage"):

    .venv/bin/python tools/training_flops.py configs/shapes-keyframes.yaml --frames 4
    .venv/bin/python tools/training_flops.py configs/shapes-interpolation.yaml --frames 3 4 5 6
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def step_flops(cfg, frames: int, batch: int, latent_size: int, tokens: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from vidiff.diffusion import Denoiser
    from vidiff.diffusion.cond import Cond
    from vidiff.models import UNet3D

    model_cfg = dataclasses.replace(cfg.model_config(), attention_backend="math", temporal_attention_backend="math")
    denoiser = Denoiser(UNet3D(model_cfg), cfg.diffusion.parameterization, cfg.diffusion.sigma_data)
    c = model_cfg.in_channels
    x0 = torch.randn(batch, c, frames, latent_size, latent_size)
    mask = torch.zeros(batch, frames)
    mask[:, 0] = 1.0
    cond = Cond(context=torch.randn(batch, tokens, model_cfg.context_dim),
                context_mask=torch.ones(batch, tokens, dtype=torch.bool), known=x0 * mask[:, None, :, None, None],
                known_mask=mask, frame_stride=torch.ones(batch), cond_sigma=torch.zeros(batch))
    sigma = torch.full((batch,), 1.0)
    with FlopCounterMode(display=False) as counter:
        loss = denoiser.loss(x0, sigma, cond, noise=torch.randn_like(x0), min_snr_gamma=None).mean()
        loss.backward()
    return counter.get_total_flops()


def main() -> None:
    from vidiff.training.config import load_train_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--frames", type=int, nargs="+", required=True, help="window lengths; the mean is reported too")
    p.add_argument("--batch", type=int, default=None, help="default: the config's train.batch_size")
    p.add_argument("--latent-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="also print the total over this many steps")
    p.add_argument("--set", action="append", default=[], help="config override key=value, as for vidiff train")
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = load_train_config(args.config, args.set)
    batch = args.batch or cfg.train.batch_size
    per_frames = {f: step_flops(cfg, f, batch, args.latent_size, args.tokens) for f in args.frames}
    for f, n in per_frames.items():
        print(f"{args.config}: batch {batch}, {f} frames: {n / 1e9:.2f} GFLOP per training step")
    mean = sum(per_frames.values()) / len(per_frames)
    print(f"mean over frames {args.frames}: {mean / 1e9:.2f} GFLOP per step")
    if args.steps:
        print(f"{args.steps} steps: {mean * args.steps / 1e12:.2f} TFLOP")


if __name__ == "__main__":
    main()
