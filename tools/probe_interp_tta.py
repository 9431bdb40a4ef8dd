"""Test-time augmentation for the real-footage interpolation part (issue 18): does averaging the fill over a
left-right flip and a time reversal lift it over its single pass? Run on TRAINING clips only, so that nothing is
chosen on the held-out ones (docs/real_footage.md, "What is left of issue 18"):

    T=third_party_samples; OMP_NUM_THREADS=1 .venv/bin/python tools/probe_interp_tta.py \
        --videos $T/vtest.avi $T/Megamind.avi $T/newtonscradle.gif --stride 4 --windows 4

Prints per window and the mean PSNR of the in-between frames: the part alone (model), averaged with its fill of the
flipped frames (hflip), of the time-reversed frames (trev), of all four (all4), the optical-flow baseline and the
linear blend.
"""
import argparse
from pathlib import Path
from types import SimpleNamespace

import torch

from vidiff.commands.eval_heldout import _interpolation_clips
from vidiff.eval.fvd import read_clips
from vidiff.eval.interpolation import _split, linear_blend
from vidiff.eval.metrics import psnr
from vidiff.eval.optical_flow import flow_fill
from vidiff.pipeline import VideoPipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vidiff/bundled/real-interp")
    ap.add_argument("--videos", nargs="+", required=True, help="training clips only")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    pipe = VideoPipeline.from_pretrained(a.model)
    files = [Path(v) for v in a.videos]
    args = SimpleNamespace(size=a.size, windows=a.windows, stride=a.stride)
    clips, names, _ = _interpolation_clips(read_clips(files, None, a.size), [f.name for f in files], args)

    def m(k, seed):
        return pipe.fill_between(k, a.stride, seed=seed).float()

    def q(x):
        return x.round().clamp(0, 255).to(torch.uint8)

    res = {k: [] for k in ("model", "hflip", "trev", "all4", "flow", "blend")}
    for i, clip in enumerate(clips):
        truth, keys = _split(clip, a.stride)
        between = torch.arange(truth.shape[0]) % a.stride != 0
        base = m(keys, i)
        h = m(keys.flip(2).contiguous(), i).flip(2)
        t = m(keys.flip(0).contiguous(), i).flip(0)
        ht = m(keys.flip(0).flip(2).contiguous(), i).flip(0).flip(2)
        outs = {"model": q(base), "hflip": q((base + h) / 2), "trev": q((base + t) / 2),
                "all4": q((base + h + t + ht) / 4), "flow": flow_fill(keys.clone(), a.stride, i),
                "blend": linear_blend(keys.clone(), a.stride)}
        for k, v in outs.items():
            res[k].append(psnr(v[between], truth[between], per_frame=True))
        print(names[i], {k: round(float(res[k][-1].mean()), 2) for k in res}, flush=True)
    print("MEAN", a.stride, {k: round(float(torch.cat(v).mean()), 3) for k, v in res.items()})


if __name__ == "__main__":
    main()
