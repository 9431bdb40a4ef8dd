"""SDEdit and region edits on a Shapes pipeline: change only the colour of held-out clips and check what was kept.

    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_edit.py [--model vidiff/bundled/shapes] [--num 50] [--strength 0.6]
        [--structure auto|none|blob|silhouette] [--repeats R] [--per-clip]
    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_edit.py --region [--model M] [--num 50] [--strength 1.0]
    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_edit.py --foreground [--num 50] [--strength 1.0]

With --foreground the edit is a region edit with mask="foreground" (each frame's objects, read off the clip, grown
by 2 px), with the same report outside the mask. With --region the edit is a region edit: the mask is the box around
the object's whole path (every frame's object box, 2 px of margin), the same for every frame, feather 3 px. Besides
the verdicts it reports the PSNR and the largest pixel difference against the input outside the mask's feather band,
and inside the box but outside the object's path the background is judged by the analyzer like any clip.

Clip i is held-out Shapes clip i (seed 1000; training used seed 1); the prompt names another colour (cycling over
the four others), the clip's own shape and direction. Judged by the Shapes analyzer: the new colour, the shape and
the direction kept, and the share of frames whose object centre is within 3 px of the input's. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import COLOURS, prompt_for, render_clip, sample_clip_params  # noqa: E402
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402
from vidiff.pipeline.editing import foreground_mask  # noqa: E402
from vidiff.pipeline.region import feather_weights  # noqa: E402


def path_box(params, margin: int = 2) -> np.ndarray:
    """bool (H, W): the box around every frame's object box, `margin` px wider, clipped to the frame."""
    xs, ys = zip(*params.centres())
    half = params.size / 2 + margin
    box = np.zeros((params.height, params.width), dtype=bool)
    top, bottom = max(0, math.floor(min(ys) - half)), min(params.height, math.ceil(max(ys) + half))
    left, right = max(0, math.floor(min(xs) - half)), min(params.width, math.ceil(max(xs) + half))
    box[top:bottom, left:right] = True
    return box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"))
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--first", type=int, default=0, help="first clip index (a fresh set to confirm a choice on)")
    parser.add_argument("--strength", type=float, nargs="+", default=None, help="default 0.6, or 1.0 with --region")
    parser.add_argument("--region", action="store_true", help="region edits inside a box around the object's path")
    parser.add_argument("--feather", type=int, default=3, help="px, the mask's feather (with --region or --foreground)")
    parser.add_argument("--negative-source", action="store_true",
                        help="give the input clip's own caption as the negative prompt (steers away from the old colour)")
    parser.add_argument("--guidance", type=float, default=None, help="keyframe guidance scale (default: pipeline's)")
    parser.add_argument("--same-prompt", action="store_true",
                        help="calibration: the clip's own caption as the prompt (nothing to change; 'new colour' "
                             "then means the colour kept)")
    parser.add_argument("--foreground", action="store_true",
                        help="region edit with mask='foreground' (each frame's objects read off the clip)")
    parser.add_argument("--structure", default="auto", choices=["auto", "none", "blob", "silhouette"],
                        help="control maps read off the input clip that the edit follows (edit_video's control; "
                             "default auto, the library's default: blob maps when the pipeline has control parts)")
    parser.add_argument("--repeats", type=int, default=1, help="edit_video's repeats (SDEdit passes over the keyframes)")
    parser.add_argument("--sampler", default=None, help="both stages' sampler (default: the pipeline's)")
    parser.add_argument("--per-clip", action="store_true",
                        help="also print one line per clip: the old colour, the one asked for, what came out")
    args = parser.parse_args()
    args.strength = args.strength or [1.0 if args.region or args.foreground else 0.6]
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    results = {}
    for strength in args.strength:
        counts = {"new_colour": 0, "shape_kept": 0, "direction_kept": 0, "one_object": 0, "all": 0}
        near, frames_total, outside_psnr, outside_max = 0, 0, [], 0
        for i in range(args.first, args.first + args.num):
            params = sample_clip_params(1000, i)
            clip = render_clip(params)
            colour = params.colour if args.same_prompt else [c for c in COLOURS if c != params.colour][i % 4]
            mask = path_box(params) if args.region else None
            if args.foreground:
                mask = "foreground"
            negative = prompt_for(params.colour, params.shape, params.direction) if args.negative_source else None
            out, _ = pipe.edit_video(clip, prompt_for(colour, params.shape, params.direction), strength=strength,
                                     seed=i, progress=False, mask=mask, negative_prompt=negative,
                                     feather=None if mask is None else args.feather,
                                     guidance_scale=args.guidance, repeats=args.repeats, sampler=args.sampler,
                                     control=None if args.structure == "none" else args.structure)
            got, src = analyze_clip(out.numpy()), analyze_clip(clip.numpy())
            ok = {"new_colour": got.colour == colour, "shape_kept": got.shape == params.shape,
                  "direction_kept": got.direction == params.direction, "one_object": got.one_object}
            if mask is not None:
                m = foreground_mask(clip) if args.foreground else torch.from_numpy(mask)
                outside = feather_weights(m if m.ndim == 3 else m[None].expand(clip.shape[0], -1, -1), args.feather) == 0
                diff = (out.float() - clip.float())[outside]  # (N, 3) pixels beyond the feather band
                mse = float(diff.square().mean())
                outside_psnr.append(float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse))
                outside_max = max(outside_max, int(diff.abs().max()))
            ok["all"] = all(ok.values())
            if args.per_clip:
                print(json.dumps({"clip": i, "old": params.colour, "asked": colour, "got": got.colour,
                                  "shape": params.shape, "got_shape": got.shape}), flush=True)
            for k, v in ok.items():
                counts[k] += v
            for a, b in zip(got.centres, src.centres):
                frames_total += 1
                near += a is not None and b is not None and ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5 <= 3
        results[str(strength)] = {**{k: round(100 * v / args.num, 1) for k, v in counts.items()},
                                  "frames_centre_within_3px": round(100 * near / frames_total, 1)}
        if outside_psnr:
            results[str(strength)].update(outside_psnr_min=min(outside_psnr), outside_max_abs_diff=outside_max)
        print(strength, results[str(strength)], flush=True)
    print(json.dumps({"model": args.model, "first": args.first, "num": args.num, "structure": args.structure,
                      "repeats": args.repeats,
                      "results": results}))


if __name__ == "__main__":
    main()
