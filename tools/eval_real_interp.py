"""Figures of docs/real_footage.md that `vidiff eval interpolation` does not print itself:

    .venv/bin/python tools/eval_real_interp.py --model vidiff/bundled/real-interp --videos HELDOUT_DIR --out DIR

1. the VAE's round trip (posterior mean) on exactly the frames the interpolation table scores (held-out clips,
   centre square at --size, --windows windows of stride + 1 frames per clip, the in-between frames): the ceiling
   of any latent interpolator with this VAE;
2. a contact sheet (JPEG) of the middle window of each clip at stride 4: rows truth, linear blend, optical flow,
   model, VAE round trip of the truth; columns the window's frames (keyframes first and last).
Writes DIR/vae_ceiling.json and DIR/contact_sheet.jpg.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.real_footage import center_square  # noqa: E402
from vidiff.eval.fvd import read_clips, video_files  # noqa: E402
from vidiff.eval.interpolation import linear_blend, spread_windows  # noqa: E402
from vidiff.eval.metrics import psnr, ssim  # noqa: E402


@torch.inference_mode()
def round_trip(vae, frames: torch.Tensor) -> torch.Tensor:
    return vae.decode_to_frames(vae.encode_frames(frames))[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--videos", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    from PIL import Image

    from vidiff.eval.optical_flow import flow_fill
    from vidiff.pipeline import VideoPipeline
    from vidiff.sidecar import contact_sheet

    pipe = VideoPipeline.from_pretrained(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = video_files(args.videos, "videos")
    clips = {path.name: center_square(frames, args.size) for path, frames in read_clips(files)}
    ceiling = {}
    for stride in args.strides:
        rows, all_p, all_s = {}, [], []
        for name, clip in clips.items():
            p, s = [], []
            for _, window in spread_windows(clip, stride, args.windows):
                truth = window[1:-1]
                rec = round_trip(pipe.vae, truth)
                p.append(psnr(rec, truth, per_frame=True))
                s.append(ssim(rec, truth, per_frame=True))
            p, s = torch.cat(p), torch.cat(s)
            rows[name] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "frames": int(p.numel())}
            all_p.append(p), all_s.append(s)
        rows["mean"] = {"psnr": float(torch.cat(all_p).mean()), "ssim": float(torch.cat(all_s).mean())}
        ceiling[f"stride_{stride}"] = rows
        print(f"VAE round trip, stride {stride} in-between frames: " +
              ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}" for k, v in rows.items()))
    (out / "vae_ceiling.json").write_text(json.dumps(ceiling, indent=1) + "\n")

    sheet_rows = []
    for i, (name, clip) in enumerate(clips.items()):
        windows = spread_windows(clip, 4, args.windows)
        _, window = windows[len(windows) // 2]
        keys = window[::4]
        sheet_rows += [window, linear_blend(keys, 4), flow_fill(keys, 4),
                       pipe.fill_between(keys, 4, seed=i), round_trip(pipe.vae, window)]
    grid = contact_sheet(torch.cat(sheet_rows).numpy(), columns=5)
    Image.fromarray(grid).save(out / "contact_sheet.jpg", quality=88)
    print(f"wrote {out / 'vae_ceiling.json'} and {out / 'contact_sheet.jpg'} (rows per clip: truth, blend, flow, "
          "model, VAE round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
