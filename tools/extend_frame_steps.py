"""Why the extension seam stands out: mean frame-to-frame difference (0-255 levels) of held-out Shapes clips as
rendered, after a VAE round trip, and of the frames `extend_video` adds to them (default steps and 40 keyframe
steps); then the seam check on an oracle continuation.

    .venv/bin/python tools/extend_frame_steps.py [--model vidiff/bundled/shapes] [--trials 6] [--oracle-trials 50]

The seam check compares the step into the new frames with the median step of the whole output, input included.
With `seam_fade` the seam step is a decoded-to-decoded step, so it is as large as the new part's steps; this shows
how far those run above the input's own. The oracle continues each clip with its own true next frames, encoded and
decoded by the pipeline's VAE with the same seam fade: the best any generator can do through this VAE.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_bundled import HELD_OUT_SEED, frame_diffs, seam_and_typical  # noqa: E402  (sibling: same clips, same check)
from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import prompt_for, render_clip, sample_clip_params  # noqa: E402
from vidiff.pipeline.seam import carry_seam_residual  # noqa: E402


SEAM_FADE = inspect.signature(VideoPipeline.extend_video).parameters["seam_fade"].default  # the pipeline's default


def mean_step(frames: torch.Tensor) -> float:
    return float(frame_diffs(frames).mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vidiff/bundled/shapes")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--given", type=int, default=8, help="input frames per trial (the rest of the clip is new)")
    p.add_argument("--oracle-trials", type=int, default=50, help="trials of the oracle continuation")
    args = p.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    rows = {"rendered input": [], "input after VAE round trip": [], "new frames": [],
            "new frames, 40 keyframe steps": []}
    for i in range(args.trials):
        params = sample_clip_params(HELD_OUT_SEED, 500 + i)  # the extend trials of tools/eval_bundled.py
        given = torch.as_tensor(render_clip(params))[: args.given]
        prompt = prompt_for(params.colour, params.shape, params.direction)
        rows["rendered input"].append(mean_step(given))
        with torch.no_grad():
            round_trip = pipe.vae.decode_to_frames(pipe.vae.encode_frames(given))[0]
        rows["input after VAE round trip"].append(mean_step(round_trip))
        for key, steps in (("new frames", None), ("new frames, 40 keyframe steps", 40)):
            out, _ = pipe.extend_video(given, prompt, num_frames=args.given, seed=i, steps=steps, progress=False)
            rows[key].append(mean_step(out[args.given:]))
    for key, values in rows.items():
        print(f"{key:32s} {np.mean(values):5.2f}")
    for name, through_vae in (("the true clip as rendered", False), ("oracle continuation through the VAE", True)):
        passed, ratios = oracle_seams(pipe, args.oracle_trials, args.given, through_vae)
        print(f"{name}, {args.oracle_trials} trials: seam <= typical {np.mean(passed):.0%}, "
              f"median seam / typical {np.median(ratios):.2f}")
    return 0


def oracle_seams(pipe, trials: int, given: int, through_vae: bool) -> tuple[list[bool], list[float]]:
    """The seam check of tools/eval_bundled.py on each trial's true continuation: as rendered, or decoded by the
    pipeline's VAE with the pipeline's seam fade (a perfect generator)."""
    passed, ratios = [], []
    for i in range(trials):
        truth = torch.as_tensor(render_clip(sample_clip_params(HELD_OUT_SEED, 500 + i)))
        clip = truth
        if through_vae:
            with torch.no_grad():  # the whole clip decodes together, as extend_video decodes across the seam
                decoded = pipe.vae.decode_to_frames(pipe.vae.encode_frames(truth))  # (1,F,H,W,3)
            new = carry_seam_residual(truth[given - 1], decoded[:, given - 1:], fade=SEAM_FADE)[0]
            clip = torch.cat([truth[:given], new])
        seam, typical = seam_and_typical(clip, given)
        passed.append(seam <= typical)
        ratios.append(seam / typical)
    return passed, ratios


if __name__ == "__main__":
    raise SystemExit(main())
