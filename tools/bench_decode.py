"""Decode throughput (frames/s) at 256x256 on 2 threads: raw decord, raw PyAV and vidiff.io.read_video.

    python tools/bench_decode.py [--frames 100] [--repeats 5]

Test clips: the first frames of each real sample (third_party_samples/) resized once to 256x256 and written
as H.264 mp4 into a temporary folder. Each reader decodes all frames of each clip; best of `repeats`.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


def make_clips(folder: Path, num_frames: int) -> list[Path]:
    from vidiff import io

    out = []
    for name in ("vtest.avi", "Megamind.avi", "cockatoo.mp4"):
        src = REPO / "third_party_samples" / name
        if not src.is_file():
            continue
        frames, fps = io.read_video(src, num_frames=num_frames)
        x = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(256, 256), mode="bilinear", antialias=True)
        path = folder / f"{src.stem}_256.mp4"
        io.write_video(path, x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous(), fps)
        out.append(path)
    if not out:
        sys.exit("no sample clips: run `make samples`")
    return out


def raw_decord(path: Path) -> int:
    import decord

    reader = decord.VideoReader(str(path), num_threads=2)
    return reader.get_batch(list(range(len(reader)))).asnumpy().shape[0]


def raw_pyav(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type, s.codec_context.thread_count = "AUTO", 2
        return len([f.to_ndarray(format="rgb24") for f in c.decode(s)])


def vidiff_read(path: Path) -> int:
    from vidiff import io

    return io.read_video(path, num_threads=2)[0].shape[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), args.frames)
        results = {}
        for name, fn in (("decord (raw)", raw_decord), ("PyAV (raw)", raw_pyav), ("vidiff read_video", vidiff_read)):
            fn(clips[0])  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                n = sum(fn(p) for p in clips)
                best = min(best, time.perf_counter() - t0)
            results[name] = n / best
    fastest = max(results["decord (raw)"], results["PyAV (raw)"])
    sys.stdout.write(f"{platform.processor() or platform.machine()}, {len(clips)} clips x {args.frames} frames, 256x256\n")
    for name, fps in results.items():
        sys.stdout.write(f"{name:20s} {fps:8.0f} frames/s  ({fps / fastest:.0%} of the faster raw decoder)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
