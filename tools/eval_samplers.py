"""Samplers and negative prompts on a Shapes pipeline, judged by the Shapes analyzer.

    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_samplers.py [--model vidiff/bundled/shapes] [--num 100] --out F.json

For each sampler, N text-to-video clips (every colour x shape x direction combination in a scrambled order, seeds
20000 + i) at equal network evaluations per stage: 20 for the one-evaluation-per-step samplers, 10 steps of the
two-evaluation ones (heun, EDM churn, dpmpp_sde). Reports colour / shape / direction / one-object / all-correct
accuracy and the mean frame-to-frame step (mean absolute pixel change between consecutive frames). Then, with the
default sampler, the negative-prompt check: a negative prompt naming the asked colour's complement should
change nothing that was asked; one naming the asked colour should lower colour accuracy (guidance pushes away).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import COLOURS, PALETTE, all_combinations, prompt_for  # noqa: E402
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402

SAMPLERS = {  # name: request settings at 20 network evaluations per stage
    "dpmpp_2m": dict(sampler="dpmpp_2m", steps=20),
    "heun": dict(sampler="heun", steps=10),
    "euler_ancestral": dict(sampler="euler_ancestral", steps=20),
    "dpmpp_2m_sde": dict(sampler="dpmpp_2m_sde", steps=20),
    "dpmpp_sde": dict(sampler="dpmpp_sde", steps=10),
    "edm_churn": dict(sampler="heun", steps=10, churn=1.0),  # gamma = churn / steps = 0.1 at every step
    "edm_churn_10": dict(sampler="heun", steps=10, churn=10.0),  # gamma capped at sqrt(2) - 1 at every step
}
KEYS = ("colour", "shape", "direction", "one_object", "all_correct")


def complement_colour(colour: str) -> str:
    """The palette colour nearest the asked colour's RGB complement (255 - r, 255 - g, 255 - b): red -> blue,
    green -> red, blue -> yellow, yellow -> blue, white -> green."""
    target = [255 - v for v in PALETTE[colour]]
    others = [c for c in COLOURS if c != colour]
    return min(others, key=lambda c: sum((a - b) ** 2 for a, b in zip(PALETTE[c], target)))


def run(pipe, num: int, settings: dict, negative=None) -> dict:
    combos = all_combinations()
    counts = {k: 0 for k in KEYS}
    steps, start = [], time.perf_counter()
    for i in range(num):
        colour, shape, direction = combos[(i * 7) % len(combos)]
        prompt = prompt_for(colour, shape, direction)
        extra = {} if negative is None else {"negative_prompt": negative(colour, shape, direction, i)}
        frames, _ = pipe.text_to_video(prompt, seed=20_000 + i, progress=False, **settings, **extra)
        verdict = analyze_clip(frames.numpy()).matches(prompt)
        for k in KEYS:
            counts[k] += bool(verdict[k])
        f = frames.float()
        steps.append(float((f[1:] - f[:-1]).abs().mean()))
    return {**{k: round(100 * v / num, 1) for k, v in counts.items()},
            "mean_frame_step": round(sum(steps) / len(steps), 3), "seconds_per_clip": round((time.perf_counter() - start) / num, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"))
    parser.add_argument("--num", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="sampler names to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.model)
    results = {"model": args.model, "num": args.num, "samplers": {}, "negative_prompt": {}}
    for name, settings in SAMPLERS.items():
        if (args.only is None and name != "edm_churn_10") or (args.only and name in args.only):
            results["samplers"][name] = run(pipe, args.num, settings)
            print(name, results["samplers"][name], flush=True)
    if args.only is None or "negative" in args.only:
        base = SAMPLERS["dpmpp_2m"]
        # the negative prompt names a colour only ("object" is no shape word), so it can steer nothing else
        for label, negative in (("the complement colour", lambda c, s, d, i: f"a {complement_colour(c)} object"),
                                ("the asked colour", lambda c, s, d, i: f"a {c} object")):
            results["negative_prompt"][label] = run(pipe, args.num, base, negative)
            print("negative:", label, results["negative_prompt"][label], flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
