"""Twenty prompts with words users reach for, written by hand on 2026-12-04 before any pipeline was run on them:
17 carry a word that is in neither vocabulary of the caption grammar (vidiff/data/captions.py: TRAIN, HELD_OUT and
the attribute-free words), e.g. "sphere", "cube", "rolling", "leftwards", "across the screen"; 3 turned out to
be in the training vocabulary after all ("dark blue", "bright red ... sliding", "moves downwards"). How far the
new words carry through the text encoder. Each clip is judged by the Shapes analyzer against the colour, shape
and direction the prompt means.

    OMP_NUM_THREADS=1 .venv/bin/python tools/probe_unseen_words.py [--model FOLDER]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = (  # (prompt, colour, shape, direction)
    ("a red sphere moving left", "red", "circle", "left"),
    ("a blue cube moving up", "blue", "square", "up"),
    ("a green orb rolling to the right", "green", "circle", "right"),
    ("a yellow ball rolling left", "yellow", "circle", "left"),
    ("a white square moving towards the top", "white", "square", "up"),
    ("a red triangle moving leftwards", "red", "triangle", "left"),
    ("a blue circle flying to the right", "blue", "circle", "right"),
    ("a green square falling down", "green", "square", "down"),
    ("a yellow triangle rising", "yellow", "triangle", "up"),
    ("a dark blue ball moving down", "blue", "circle", "down"),
    ("a light green cube going right", "green", "square", "right"),
    ("a bright red square sliding to the right", "red", "square", "right"),
    ("a white sphere sinking", "white", "circle", "down"),
    ("a yellow square racing to the left", "yellow", "square", "left"),
    ("a blue triangle climbing upwards", "blue", "triangle", "up"),
    ("a red circle travelling across the screen from left to right", "red", "circle", "right"),
    ("a green triangle moving to the bottom of the screen", "green", "triangle", "down"),
    ("a white triangle zooming left", "white", "triangle", "left"),
    ("a yellow circle that moves downwards", "yellow", "circle", "down"),
    ("a blue square drifting rightwards", "blue", "square", "right"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vidiff/bundled/shapes")
    parser.add_argument("--seed", type=int, default=100, help="prompt i uses seed + i")
    args = parser.parse_args()
    from vidiff import VideoPipeline
    from vidiff.data.shapes_analysis import analyze_clip

    pipe = VideoPipeline.from_pretrained(args.model)
    right = 0
    for i, (prompt, *want) in enumerate(PROMPTS):
        frames, _ = pipe.text_to_video(prompt, seed=args.seed + i, progress=False)
        a = analyze_clip(frames.numpy())
        ok = [a.colour, a.shape, a.direction] == want and a.one_object
        right += ok
        print(f"{'ok  ' if ok else 'MISS'} {prompt!r}: {a.colour} {a.shape} {a.direction}"
              f"{'' if a.one_object else ', not one object'}", flush=True)
    print(f"{right} of {len(PROMPTS)} all correct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
