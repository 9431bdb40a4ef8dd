"""A pipeline's decoded frames against the exact rendered frames of held-out Shapes clips (seed 1000).

`vidiff eval reconstruction` and `vidiff eval interpolation` compare against the clips as stored, H.264 mp4, whose
own error is about 35 dB and changes from frame to frame; a decoder that renders clean flat colours scores lower
there than one that learned the codec's look. This compares against the renderer's pixels instead:

- VAE round trip of 16-frame clips: PSNR, and the mean frame-to-frame difference (0-255 levels) next to the
  rendered clips' own (flicker shows as a larger step);
- interpolation: the frames `fill_between` makes between true keyframes at stride 5, PSNR.

    .venv/bin/python tools/decoder_vs_rendered.py [--model vidiff/bundled/shapes] [--clips 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_bundled import HELD_OUT_SEED, frame_diffs  # noqa: E402  (a sibling script: same held-out seed)
from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import render_clip, sample_clip_params  # noqa: E402
from vidiff.eval.metrics import psnr  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vidiff/bundled/shapes")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--stride", type=int, default=5, help="keyframe stride of the interpolation check")
    args = p.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    rows = {"round-trip PSNR (dB)": [], "round-trip mean step": [], "rendered mean step": [],
            "interpolated frames PSNR (dB)": []}
    for i in range(args.clips):
        truth = torch.as_tensor(render_clip(sample_clip_params(HELD_OUT_SEED, i)))  # (16,H,W,3)
        with torch.no_grad():
            round_trip = pipe.vae.decode_to_frames(pipe.vae.encode_frames(truth))[0]
        rows["round-trip PSNR (dB)"].append(float(psnr(round_trip, truth)))
        rows["round-trip mean step"].append(float(frame_diffs(round_trip).mean()))
        rows["rendered mean step"].append(float(frame_diffs(truth).mean()))
        filled = pipe.fill_between(truth[:: args.stride], args.stride, seed=i)
        between = torch.ones(filled.shape[0], dtype=torch.bool)
        between[:: args.stride] = False  # the keyframes come back as given
        rows["interpolated frames PSNR (dB)"].append(float(psnr(filled[between], truth[: filled.shape[0]][between])))
    print(f"{args.model}, {args.clips} held-out clips (seed {HELD_OUT_SEED}):")
    for key, values in rows.items():
        print(f"  {key:32s} {np.mean(values):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
