"""Animate held-out Shapes stills with prompts that name only the motion, as people write them for an image they give
("make it float up", "it drifts east"), judged by the Shapes analyzer from the frames.

    .venv/bin/python tools/eval_animate_motion.py [--trials 40] [--no-still] [--extend]

--no-still: the prompt template without the still's colour and shape (read_as_template as before 2026-12-06):
the prompt reaches the encoder as its words are read. The phrases were written here, five per direction, before
the still's colour and shape were put in the template; results in docs/shapes_measured.md, "Animate: the image's
colour and shape in the template". --extend: the same prompts continue the clip's first 8 frames by 8 (extend_video),
judged on the 8 new frames; the clip's last frame gives the colour and shape.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import prompt_for, render_clip, sample_clip_params  # noqa: E402
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402

PHRASES = {
    "left": ("make it slide to the left", "it drifts west", "moving left",
             "the shape heads toward the left side of the frame", "glides off to the left"),
    "right": ("make it slide to the right", "it drifts east", "moving right",
              "the shape heads toward the right side of the frame", "glides off to the right"),
    "up": ("make it float up", "it rises skyward", "moving up", "the shape climbs toward the top of the frame",
           "floats upward"),
    "down": ("make it sink down", "it falls toward the ground", "moving down",
             "the shape drops toward the bottom of the frame", "sinks downward"),
}
HELD_OUT_SEED = 1000  # the stills of tools/eval_bundled.py's animate check (training used seed 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vidiff/bundled/shapes")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--no-still", action="store_true", help="leave the still's colour and shape out of the template")
    p.add_argument("--extend", action="store_true", help="extend the clip's first 8 frames by 8 instead of animating")
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the prompt notes, once per clip
    pipe = VideoPipeline.from_pretrained(args.model)
    if args.no_still:
        import vidiff.data.prompt_template as template

        template.still_attributes = lambda image: None
    right = 0
    for i in range(args.trials):
        params = sample_clip_params(HELD_OUT_SEED, i)
        clip = torch.as_tensor(render_clip(params))
        prompt = PHRASES[params.direction][i % 5]
        if args.extend:
            frames = pipe.extend_video(clip[:8], prompt, num_frames=8, seed=i, progress=False)[0][8:]
        else:
            frames, _ = pipe.image_to_video(clip[0], prompt, seed=i, progress=False)
        ok = analyze_clip(frames.numpy()).matches(prompt_for(params.colour, params.shape, params.direction))
        right += all(ok.values())
        print(f"{i:3d} {all(ok.values())!s:5} {prompt!r} ({params.colour} {params.shape})")
    print(f"moved as asked, colour and shape kept, one object: {right} of {args.trials}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
