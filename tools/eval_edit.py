"""SDEdit on a Shapes pipeline: change only the colour of held-out clips and check what was kept.

    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_edit.py [--model vidiff/bundled/shapes] [--num 50] [--strength 0.6]

Clip i is held-out Shapes clip i (seed 1000; training used seed 1); the prompt names another colour (cycling over
the four others), the clip's own shape and direction. Judged by the Shapes analyzer: the new colour, the shape and
the direction kept, and the share of frames whose object centre is within 3 px of the input's. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import COLOURS, prompt_for, render_clip, sample_clip_params  # noqa: E402
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"))
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--strength", type=float, nargs="+", default=[0.6])
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    results = {}
    for strength in args.strength:
        counts = {"new_colour": 0, "shape_kept": 0, "direction_kept": 0, "all": 0}
        near, frames_total = 0, 0
        for i in range(args.num):
            params = sample_clip_params(1000, i)
            clip = render_clip(params)
            colour = [c for c in COLOURS if c != params.colour][i % 4]
            out, _ = pipe.edit_video(clip, prompt_for(colour, params.shape, params.direction), strength=strength,
                                     seed=i, progress=False)
            got, src = analyze_clip(out.numpy()), analyze_clip(clip.numpy())
            ok = {"new_colour": got.colour == colour, "shape_kept": got.shape == params.shape,
                  "direction_kept": got.direction == params.direction}
            ok["all"] = all(ok.values())
            for k, v in ok.items():
                counts[k] += v
            for a, b in zip(got.centres, src.centres):
                frames_total += 1
                near += a is not None and b is not None and ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5 <= 3
        results[str(strength)] = {**{k: round(100 * v / args.num, 1) for k, v in counts.items()},
                                  "frames_centre_within_3px": round(100 * near / frames_total, 1)}
        print(strength, results[str(strength)], flush=True)
    print(json.dumps({"model": args.model, "num": args.num, "results": results}))


if __name__ == "__main__":
    main()
