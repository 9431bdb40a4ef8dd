"""bf16 (or fp16) generation against fp32 on a Shapes pipeline: do the Shapes analyzer's verdicts agree?

    OMP_NUM_THREADS=1 .venv/bin/python tools/eval_dtype.py [--model vidiff/bundled/shapes] [--num 40] [--dtype bf16]

For N text-to-video clips (every colour x shape x direction combination in a scrambled order, seeds 30000 + i),
the same request in fp32 and in the lower precision (networks in that dtype, sampler state fp32). Prints the share
of clips whose all-correct verdicts agree, each precision's accuracy, the mean PSNR between the two and the
median seconds per clip of each, as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff import VideoPipeline  # noqa: E402
from vidiff.data.shapes import all_combinations, prompt_for  # noqa: E402
from vidiff.data.shapes_analysis import analyze_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"))
    parser.add_argument("--num", type=int, default=40)
    parser.add_argument("--dtype", choices=("bf16", "fp16"), default="bf16")
    args = parser.parse_args()
    torch.set_num_threads(1)
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    pipes = {"fp32": VideoPipeline.from_pretrained(args.model), args.dtype: VideoPipeline.from_pretrained(args.model, dtype=low)}
    combos = all_combinations()
    agree, correct, psnrs, seconds = 0, {k: 0 for k in pipes}, [], {k: [] for k in pipes}
    for i in range(args.num):
        prompt = prompt_for(*combos[(i * 7) % len(combos)])
        frames, verdicts = {}, {}
        for name, pipe in pipes.items():
            start = time.perf_counter()
            frames[name], _ = pipe.text_to_video(prompt, seed=30_000 + i, progress=False)
            seconds[name].append(time.perf_counter() - start)
            verdicts[name] = analyze_clip(frames[name].numpy()).matches(prompt)["all_correct"]
            correct[name] += verdicts[name]
        agree += verdicts["fp32"] == verdicts[args.dtype]
        mse = (frames["fp32"].float() - frames[args.dtype].float()).pow(2).mean().item()
        psnrs.append(99.0 if mse == 0 else 10 * torch.log10(torch.tensor(255.0**2 / mse)).item())
    print(json.dumps({"model": args.model, "num": args.num, "dtype": args.dtype,
                      "verdicts_agree_pct": round(100 * agree / args.num, 1),
                      "all_correct_pct": {k: round(100 * v / args.num, 1) for k, v in correct.items()},
                      "mean_psnr_db": round(sum(psnrs) / len(psnrs), 2), "min_psnr_db": round(min(psnrs), 2),
                      "median_seconds": {k: round(statistics.median(v), 2) for k, v in seconds.items()}}))


if __name__ == "__main__":
    main()
