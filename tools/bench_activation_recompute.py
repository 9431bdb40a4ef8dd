"""Training step of the Shapes recipes' U-Nets with the blocks' activation recompute on and off, interleaved in one
process (docs/training.md, "Activation recompute").

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_activation_recompute.py [--config configs/shapes-keyframes.yaml]
        [--frames 4] [--frame-budget 32] [--rounds 10]

A step is forward + backward + AdamW of the recipe's model on random latents (4 x 16 x 16) with text, known frames,
stride and cond_sigma given, as the training stage feeds them; the batch is frame_budget // frames samples, as
`train.max_batch_frames` makes it. Prints the median seconds per step of each setting and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.diffusion.cond import Cond  # noqa: E402
from vidiff.models import UNet3D, UNet3DConfig  # noqa: E402
from vidiff.models.recompute import set_activation_recompute  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/shapes-keyframes.yaml")
    ap.add_argument("--frames", type=int, default=4, help="frames per sample (keyframes, or gap + 1)")
    ap.add_argument("--frame-budget", type=int, default=32, help="model frames per step (train.max_batch_frames)")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    model_cfg = yaml.safe_load(Path(args.config).read_text())["model"]
    model = UNet3D(UNet3DConfig(**model_cfg)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b, f = max(1, args.frame_budget // args.frames), args.frames
    x = torch.randn(b, model_cfg["in_channels"], f, 16, 16)
    cond = Cond(context=torch.randn(b, 32, model_cfg["context_dim"]), context_mask=torch.ones(b, 32, dtype=torch.bool),
                known=torch.randn_like(x), known_mask=torch.ones(b, f), frame_stride=torch.full((b,), 5.0),
                cond_sigma=torch.zeros(b))

    def step():
        model(x, torch.zeros(b), cond).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    times = {True: [], False: []}
    for _ in range(args.rounds):
        for enabled in (True, False):
            set_activation_recompute(model, enabled)
            start = time.perf_counter()
            step()
            step()
            times[enabled].append((time.perf_counter() - start) / 2)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"{args.config}: batch {b} x {f} frames, {torch.get_num_threads()} thread(s): recompute on {on:.3f} s/step, "
          f"off {off:.3f} s/step, off / on {off / on:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
