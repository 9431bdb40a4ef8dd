"""Structure control on Shapes: do generated clips follow control maps along paths the text cannot say?

    .venv/bin/python tools/eval_control.py --model PIPELINE --num 50 --out runs/eval-control.json

For clip i (seed 5000 + i: held out from training, whose clips come from the training seed's draws) a control clip
is drawn with a diagonal straight path (even i) or a curved path (odd i), colour and shape cycling over all 15
pairs; its silhouette maps and its blob maps each drive one text-to-video sample with the prompt
"a {colour} {shape}" (seed i). The Shapes analyzer (vidiff/data/shapes_analysis.py) reads each clip; per map kind:
- centre: % of frames whose main object's centroid lies within --tolerance (2) px of the map's centroid;
- colour / shape: % of clips whose colour / shape is the prompt's; one object: % with one object in every frame.
The same figures at control_scale 0 (the pipeline without control) are the baseline. --keyframes K --stride S
run another layout ((K - 1) * S + 1 frames). Writes JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.control_maps import map_centres, render_control_clip, sample_control_clip  # noqa: E402
from vidiff.data.shapes import COLOURS, SHAPES  # noqa: E402

SEED_BASE = 5000


def eval_clips(num: int, frames: int = 16, size: int = 64) -> list[dict]:
    """The evaluation set: control clips with their maps and prompts (pure: depends on num / frames / size)."""
    pairs = [(c, s) for s in SHAPES for c in COLOURS]
    out = []
    for i in range(num):
        colour, shape = pairs[i % len(pairs)]
        clip = sample_control_clip(np.random.default_rng(SEED_BASE + i), frames, size, colour=colour, shape=shape,
                                   path="diagonal" if i % 2 == 0 else "curved")
        _, maps = render_control_clip(clip)
        out.append({"index": i, "clip": clip, "maps": maps, "prompt": clip.caption(with_direction=False)})
    return out


def score(frames: np.ndarray, maps: np.ndarray, prompt: str, tolerance: float) -> dict:
    """The analyzer's verdict on one generated clip (uint8 (F,H,W,3)) against its maps (F,H,W) and prompt."""
    from vidiff.data.shapes_analysis import analyze_clip

    analysis = analyze_clip(frames)
    verdict = analysis.matches(prompt)
    hits = []
    for got, want in zip(analysis.centres, map_centres(maps)):
        hits.append(got is not None and want is not None and math.dist(got, want) <= tolerance)
    return {"centre_frames": int(sum(hits)), "frames": len(hits), "hits": [int(h) for h in hits],
            "colour": bool(verdict["colour"]),
            "shape": bool(verdict["shape"]), "one_object": bool(analysis.one_object),
            "colour_seen": analysis.colour, "shape_seen": analysis.shape}


def summarize(rows: list[dict]) -> dict:
    if not rows:
        return {}
    pct = lambda xs: round(100.0 * sum(xs) / max(len(xs), 1), 1)  # noqa: E731
    return {"clips": len(rows),
            "centre_within_tol_pct": round(100.0 * sum(r["centre_frames"] for r in rows)
                                           / max(sum(r["frames"] for r in rows), 1), 1),
            "colour_pct": pct([r["colour"] for r in rows]), "shape_pct": pct([r["shape"] for r in rows]),
            "one_object_pct": pct([r["one_object"] for r in rows]),
            # % of clips whose frame f is within the tolerance: keyframes against in-between frames
            "centre_by_frame_pct": [pct(col) for col in zip(*(r["hits"] for r in rows))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="pipeline folder with control parts")
    parser.add_argument("--num", type=int, default=50, help="control clips (each scored with both map kinds)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--scale", type=float, default=None,
                        help="control scale (default: the pipeline's control_scale, as vidiff generate --control uses)")
    parser.add_argument("--tolerance", type=float, default=2.0, help="px between object and map centroids")
    parser.add_argument("--kinds", nargs="+", default=["silhouette", "blob"], choices=["silhouette", "blob"])
    parser.add_argument("--no-baseline", action="store_true", help="skip the control_scale 0 runs")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: pipeline.yaml)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--keyframes", type=int, default=None, help="keyframe count of the layout (default: pipeline's)")
    parser.add_argument("--stride", type=int, default=None, help="keyframe stride of the layout (default: pipeline's)")
    args = parser.parse_args()
    if not 1 <= args.num <= 10000 or not (args.scale is None or math.isfinite(args.scale) and 0 <= args.scale <= 5):
        parser.error("--num must be in [1, 10000] and --scale in [0, 5]")
    import torch

    from vidiff import VideoPipeline

    torch.set_num_threads(args.threads)
    pipe = VideoPipeline.from_pretrained(args.model)
    if args.scale is None:  # what a user of the pipeline gets (the bundled Shapes pipeline: 2)
        args.scale = pipe.config.control_scale
    k = args.keyframes or pipe.config.num_keyframes
    stride = args.stride or pipe.config.keyframe_stride
    clips = eval_clips(args.num, (k - 1) * stride + 1, pipe.config.height)
    scales = [args.scale] + ([] if args.no_baseline else [0.0])
    results, t0 = {}, time.perf_counter()
    for scale in scales:
        for kind in args.kinds:
            rows = []
            for c in clips:
                frames, _ = pipe.text_to_video(c["prompt"], seed=c["index"], control=c["maps"][kind],
                                               control_scale=scale, steps=args.steps, progress=False,
                                               num_keyframes=k, keyframe_stride=stride)
                rows.append({"index": c["index"], "path": c["clip"].path, "prompt": c["prompt"],
                             **score(frames.numpy(), c["maps"][kind], c["prompt"], args.tolerance)})
            results[f"{kind}@{scale:g}"] = {"summary": summarize(rows), "clips": rows}
            print(f"{kind} scale {scale:g}: {results[f'{kind}@{scale:g}']['summary']}", flush=True)
    report = {"model": str(Path(args.model).resolve()), "num": args.num, "tolerance_px": args.tolerance,
              "layout": f"{(k - 1) * stride + 1} frames = {k} x {stride}",
              "seeds": f"{SEED_BASE}+i (maps), i (sampling)", "elapsed_s": round(time.perf_counter() - t0, 1),
              "summary": {k: v["summary"] for k, v in results.items()}, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
