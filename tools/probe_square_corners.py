"""Where do the squares' corners go? The Shapes analyzer's fill ratio (object area / bounding box: 1 for a square,
pi/4 = 0.785 for a circle; the analyzer calls a square a circle somewhere below about 0.89) of held-out square clips,
measured at each step of the chain:

    OMP_NUM_THREADS=1 .venv/bin/python tools/probe_square_corners.py [--model vidiff/bundled/shapes] [--num 40]

- rendered: the renderer's frames;
- VAE round trip: those frames encoded (posterior mean) and decoded by the pipeline's VAE;
- keyframes / in-between frames: text to video from the plain prompt of the same clip (seed i), split into the
  frames the keyframe stage made and the frames the interpolation stage filled;
- interpolation from true keyframes: the clip's own keyframes given, the in-between frames filled.

Clip i is the i-th square among held-out Shapes clips (seed 1000). Prints per row: mean fill ratio, the share of
frames read as squares, and the share of clips whose majority verdict is square. Prints JSON last.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import prompt_for, render_clip, sample_clip_params  # noqa: E402
from vidiff.data.shapes_analysis import analyze_frame  # noqa: E402


def frame_verdicts(frames: np.ndarray) -> list[tuple[float, bool]]:
    """(fill ratio, read as square) of the largest object of each uint8 (H, W, 3) frame (frames without one skip)."""
    out = []
    for frame in frames:
        objects, _ = analyze_frame(frame)
        if objects:
            out.append((objects[0].features[0], objects[0].shape == "square"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"))
    parser.add_argument("--num", type=int, default=40)
    parser.add_argument("--steps", type=int, default=None, help="keyframe sampler steps (default: pipeline's)")
    parser.add_argument("--sampler", default=None, help="sampler (default: pipeline's)")
    parser.add_argument("--guidance", type=float, default=None, help="keyframe guidance scale (default: pipeline's)")
    parser.add_argument("--t2v-only", action="store_true", help="only the text-to-video rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    stride = pipe.config.keyframe_stride
    rows = {k: {"frames": [], "clips": []} for k in
            ("rendered", "VAE round trip", "keyframes (t2v)", "in-between (t2v)", "in-between (true keyframes)")}
    index, found = 0, 0
    while found < args.num:
        params = sample_clip_params(1000, index)
        index += 1
        if params.shape != "square":
            continue
        clip = render_clip(params)  # (F,H,W,3)
        n = clip.shape[0]
        key = np.arange(n) % stride == 0
        made, _ = pipe.text_to_video(prompt_for(params.colour, params.shape, params.direction), seed=found,
                                     num_frames=n, progress=False, steps=args.steps, sampler=args.sampler,
                                     guidance_scale=args.guidance)
        chain = [("keyframes (t2v)", made.numpy()[key]), ("in-between (t2v)", made.numpy()[~key])]
        if not args.t2v_only:
            with torch.no_grad():
                decoded = pipe._decode(pipe.vae.encode_frames(clip).float(), progress=False)[0].numpy()
            filled = pipe.fill_between(clip[::stride], stride, seed=found).numpy()
            chain += [("rendered", clip.numpy()), ("VAE round trip", decoded),
                      ("in-between (true keyframes)", filled[~key])]
        for name, frames in chain:
            verdicts = frame_verdicts(frames)
            rows[name]["frames"] += verdicts
            rows[name]["clips"].append(np.mean([v for _, v in verdicts]) > 0.5 if verdicts else False)
        found += 1
    report = {}
    for name, r in rows.items():
        if not r["frames"]:
            continue
        fills = [f for f, _ in r["frames"]]
        report[name] = {"mean_fill": round(float(np.mean(fills)), 4), "frames_square_pct":
                        round(100 * float(np.mean([v for _, v in r["frames"]])), 1),
                        "clips_square_pct": round(100 * float(np.mean(r["clips"])), 1), "frames": len(fills)}
        print(f"{name:30s} {report[name]}", flush=True)
    print(json.dumps({"model": args.model, "num": args.num, "rows": report}))


if __name__ == "__main__":
    main()
