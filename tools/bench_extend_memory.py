"""Peak memory and time of one `extend_video` call on the bundled pipeline (64 new frames by default).

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_extend_memory.py [--frames 64] [--repo .]

Runs in a fresh process per measurement and prints the process's peak resident set (ru_maxrss) after loading
the pipeline and after extending, so that the difference is what generation itself held. --repo points at
another checkout (e.g. a worktree of an older commit) to measure it with the same script.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="new frames to add")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    import torch

    from vidiff import VideoPipeline
    from vidiff.data.shapes import render_clip, sample_clip_params

    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(args.repo / "vidiff" / "bundled" / "shapes")
    clip = render_clip(sample_clip_params(1000, 0))  # (16,64,64,3)
    loaded = peak_mib()
    start = time.perf_counter()
    frames, _ = pipe.extend_video(clip, "a red circle moving left", num_frames=args.frames, seed=0, progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"repo": str(args.repo), "new_frames": args.frames, "frames_out": int(frames.shape[0]),
                      "seconds": round(seconds, 2), "peak_after_load_mib": round(loaded, 1),
                      "peak_after_extend_mib": round(peak_mib(), 1),
                      "generation_mib": round(peak_mib() - loaded, 1)}))


if __name__ == "__main__":
    main()
