"""fp32 against bf16 for the real-footage pipeline's fill (`vidiff interpolate`, docs/benchmarks.md): seconds and
PSNR of the filled frames against the truth, and of the bf16 frames against the fp32 ones, one thread, the two
precisions timed in turn in one process. Training clips only (no held-out clip is read):

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_interp_dtype.py
"""
import argparse
import time

import torch

from vidiff.eval.interpolation import _split, spread_windows
from vidiff.eval.metrics import psnr
from vidiff.io import read_video
from vidiff.pipeline import VideoPipeline

CASES = (("third_party_samples/newtonscradle.gif", None, 4, 6), ("third_party_samples/vtest.avi", 120, 2, 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vidiff/bundled/real-interp")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dtypes = (torch.float32, torch.bfloat16)
    pipes = {d: VideoPipeline.from_pretrained(args.model, dtype=d) for d in dtypes}
    for path, frames, stride, count in CASES:
        clip = read_video(path, num_frames=frames)[0]
        scores, agree, seconds = {d: [] for d in dtypes}, [], dict.fromkeys(dtypes, 0.0)
        for start, window in spread_windows(clip, stride, count):
            truth, keys = _split(window, stride)
            between = torch.arange(truth.shape[0]) % stride != 0
            out = {}
            for d in dtypes:
                t0 = time.perf_counter()
                out[d] = pipes[d].fill_between(keys.clone(), stride, seed=start)
                seconds[d] += time.perf_counter() - t0
                scores[d].append(float(psnr(out[d][between], truth[between])))
            agree.append(float(psnr(out[torch.bfloat16][between], out[torch.float32][between])))
        print(f"{path} {clip.shape[2]}x{clip.shape[1]}, gap {stride}, {len(agree)} windows")
        for d in dtypes:
            print(f"  {str(d).removeprefix('torch.'):9s} PSNR vs truth {sum(scores[d]) / len(scores[d]):.3f} dB, "
                  f"{seconds[d]:.1f} s")
        print(f"  bf16 vs fp32 frames: PSNR min {min(agree):.1f}, mean {sum(agree) / len(agree):.1f} dB", flush=True)


if __name__ == "__main__":
    main()
