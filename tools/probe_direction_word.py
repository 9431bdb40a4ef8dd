"""Does a Shapes keyframe model read the direction word? Denoising loss on held-out clips with the true caption,
with the opposite direction ("left" for "right") and with a perpendicular one ("up" for "right"), at a high and a
middle noise level, with and without the first keyframe known.

    .venv/bin/python tools/probe_direction_word.py [--model vidiff/bundled/shapes] [--clips 256]

A model that ignores the word has the same loss for all three captions. One that knows only the axis has a higher
loss with the perpendicular word but not with the opposite one (it cannot tell left from right). Held-out clips
come from Shapes seed 1000 (training used seed 1); the noise is fixed, so two models compare on the same draws.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_bundled import HELD_OUT_SEED  # noqa: E402  (a sibling script: the same held-out seed)
from vidiff import VideoPipeline  # noqa: E402
from vidiff.diffusion.cond import Cond  # noqa: E402
from vidiff.data.shapes import OPPOSITE_DIRECTION as OPPOSITE, render_clip, sample_clip_params  # noqa: E402
PERPENDICULAR = {"left": "up", "right": "down", "up": "right", "down": "left"}


def held_out_keyframes(pipe, clips: int):
    """(N,C,K,h,w) latents of the keyframes of N held-out clips, and their parameters."""
    layout = pipe.config
    idx = [i * layout.keyframe_stride for i in range(layout.num_keyframes)]
    params = [sample_clip_params(HELD_OUT_SEED, 2000 + i, num_frames=layout.num_frames, size=layout.width)
              for i in range(clips)]
    with torch.no_grad():
        latents = [pipe.vae.encode_frames(torch.as_tensor(render_clip(p))[idx]) for p in params]
    return torch.cat(latents).float(), params


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vidiff/bundled/shapes", help="pipeline folder")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--sigmas", type=float, nargs="+", default=[30.0, 8.0])
    args = p.parse_args()

    pipe = VideoPipeline.from_pretrained(args.model)
    den = pipe.keyframes.denoiser
    x0, params = held_out_keyframes(pipe, args.clips)
    n, k = x0.shape[0], x0.shape[2]
    captions = {
        "true": [q.caption for q in params],
        "opposite": [q.caption.replace(q.direction, OPPOSITE[q.direction]) for q in params],
        "perpendicular": [q.caption.replace(q.direction, PERPENDICULAR[q.direction]) for q in params],
    }
    text = {name: pipe.text_encoder.encode(caps) for name, caps in captions.items()}
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    stride = torch.full((n,), float(pipe.config.keyframe_stride))
    print(f"{args.model}: x0 MSE on {n} held-out clips (relative change against the true caption)")
    for first_known in (True, False):
        mask = torch.zeros(n, k)
        mask[:, 0] = float(first_known)
        for sigma in args.sigmas:
            loss, per_clip = {}, {}
            for name, (context, context_mask) in text.items():
                with torch.no_grad():
                    cond = Cond(context=context, context_mask=context_mask, known=x0 * mask[:, None, :, None, None],
                                known_mask=mask, frame_stride=stride, cond_sigma=torch.zeros(n))
                    out = den(x0 + sigma * noise, torch.full((n,), sigma), cond)
                per_clip[name] = ((out - x0) ** 2).flatten(1).mean(1)  # (N,)
                loss[name] = float(per_clip[name].mean())
            rel = {name: 100 * (v / loss["true"] - 1) for name, v in loss.items() if name != "true"}
            known = "known  " if first_known else "unknown"
            print(f"  first keyframe {known} sigma {sigma:4g}: true {loss['true']:.4f}"
                  f"  opposite {loss['opposite']:.4f} ({rel['opposite']:+.1f}%)"
                  f"  perpendicular {loss['perpendicular']:.4f} ({rel['perpendicular']:+.1f}%)")
            # the opposite word's cost per true direction: a sign learned for one axis end only shows here
            by_dir = []
            for d in ("left", "right", "up", "down"):
                rows = torch.tensor([q.direction == d for q in params])
                cost = 100 * (float(per_clip["opposite"][rows].mean()) / float(per_clip["true"][rows].mean()) - 1)
                by_dir.append(f"{d} {cost:+.1f}%")
            print("      opposite word, by true direction: " + ", ".join(by_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
