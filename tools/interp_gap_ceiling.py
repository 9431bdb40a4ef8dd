"""What bounds a latent interpolator at each gap: the VAE's own round trip of the frames to fill, beside the model,
the model with the keyframe residual carried (pipeline.yaml interpolation.carry_residual) and the linear blend.

    OMP_NUM_THREADS=1 .venv/bin/python tools/interp_gap_ceiling.py [--model vidiff/bundled/shapes] [--num 50]
        [--gaps 2 4 6 8] [--steps N] [--sampler S] [--image-guidance W] [--first I] [--no-carry]

Clip i is held-out Shapes clip FIRST + i (seed 1000, 16 frames; FIRST defaults to 0, and the figures of
docs/shapes_measured.md use clips 0..49: choose settings on another range, e.g. --first 100). At gap G the keyframes are
frames 0, G, 2G, ... up to the last multiple of G in the clip, and the frames between them are scored (PSNR, dB, mean over frames):
- blend: the linear blend of the two neighbouring keyframes;
- model: `fill_between` from the true keyframes (seed i), the keyframes pasted back;
- model + carry: the same with the keyframes' VAE error carried to the frames between (vidiff/pipeline/residual.py;
  --no-carry leaves it out, half the time);
- VAE ceiling: the true in-between frames encoded (posterior mean) and decoded, what a perfect latent
  interpolator would give without the carry.
Prints a table and JSON last.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import render_clip, sample_clip_params  # noqa: E402
from vidiff.eval.interpolation import linear_blend  # noqa: E402
from vidiff.eval.metrics import psnr  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vidiff/bundled/shapes")
    ap.add_argument("--num", type=int, default=50)
    ap.add_argument("--gaps", type=int, nargs="+", default=[2, 4, 6, 8])
    ap.add_argument("--steps", type=int, default=None, help="interpolation steps (default: pipeline.yaml's)")
    ap.add_argument("--sampler", default=None, help="interpolation sampler (default: pipeline.yaml's)")
    ap.add_argument("--image-guidance", type=float, default=None,
                    help="interpolation known-frame guidance scale (default: pipeline.yaml's)")
    ap.add_argument("--first", type=int, default=0, help="first held-out clip index")
    ap.add_argument("--no-carry", action="store_true", help="leave out the model + carry row (half the time)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    if args.image_guidance is not None:
        pipe.interpolation.config = dataclasses.replace(pipe.interpolation.config,
                                                        image_guidance_scale=args.image_guidance)
    plain_cfg = pipe.config
    carry_cfg = dataclasses.replace(plain_cfg, interpolation=dataclasses.replace(plain_cfg.interpolation,
                                                                                  carry_residual=True))
    rows = ("blend", "model") + (() if args.no_carry else ("model + carry",)) + ("VAE ceiling",)
    scores = {g: {k: [] for k in rows} for g in args.gaps}
    for i in range(args.first, args.first + args.num):
        clip = torch.as_tensor(render_clip(sample_clip_params(1000, i)))
        with torch.inference_mode():
            recon = pipe.vae.decode_to_frames(pipe.vae.encode_frames(clip), progress=False)[0]
        for g in args.gaps:
            n = (clip.shape[0] - 1) // g * g + 1
            truth = clip[:n]
            keyframes = truth[::g]
            between = torch.arange(n) % g != 0
            filled = {"blend": linear_blend(keyframes, g)}
            pipe.config = plain_cfg
            filled["model"] = pipe.fill_between(keyframes, g, seed=i, steps=args.steps, sampler=args.sampler)
            if not args.no_carry:
                pipe.config = carry_cfg
                filled["model + carry"] = pipe.fill_between(keyframes, g, seed=i, steps=args.steps,
                                                            sampler=args.sampler)
            filled["VAE ceiling"] = recon[:n]
            for k, frames in filled.items():
                scores[g][k].append(psnr(frames[between], truth[between], per_frame=True))
    pipe.config = plain_cfg
    table = {g: {k: float(torch.cat(v).mean()) for k, v in row.items()} for g, row in scores.items()}
    print(f"{args.num} held-out clips from {args.first}; mean PSNR (dB) of the in-between frames")
    print(f"{'gap':>4} " + " ".join(f"{k:>14}" for k in next(iter(table.values()))) + f" {'model - blend':>14}")
    for g, row in table.items():
        print(f"{g:>4} " + " ".join(f"{v:14.2f}" for v in row.values()) + f" {row['model'] - row['blend']:14.2f}")
    print(json.dumps({"model": args.model, "num": args.num, "first": args.first, "steps": args.steps,
                      "sampler": args.sampler, "image_guidance": args.image_guidance, "psnr": table}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
