"""Figures of docs/real_footage.md that `vidiff eval interpolation` does not print itself:

    .venv/bin/python tools/eval_real_interp.py --model vidiff/bundled/real-interp --videos HELDOUT_DIR --out DIR

1. on exactly the frames the interpolation table scores (held-out clips, centre square at --size, --windows
   windows of stride + 1 frames per clip, the in-between frames):
   - "vae": the VAE's round trip (posterior mean) of the true frames: the ceiling of a latent interpolator;
   - "vae+carry": the same with the keyframe residual carry (vidiff/pipeline/residual.py): the ceiling of the
     pipeline as shipped;
   - "model raw": the model's fill decoded as it is (the pipeline with carry_residual off);
2. a contact sheet (JPEG) of the middle window of each clip at stride 4: rows truth, linear blend, optical flow,
   model (as shipped), VAE round trip of the truth; columns the window's frames (keyframes first and last).
Writes DIR/ceiling.json and DIR/contact_sheet.jpg.
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
from vidiff.eval.fvd import clip_names, read_clips, video_files  # noqa: E402
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

    import dataclasses

    from vidiff.pipeline.residual import carry_keyframe_residual

    pipe = VideoPipeline.from_pretrained(args.model)
    shipped = pipe.config
    raw_config = dataclasses.replace(shipped, interpolation=dataclasses.replace(shipped.interpolation,
                                                                                carry_residual=False))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = video_files(args.videos, "videos")
    clips = {name: center_square(frames, args.size)
             for name, (_, frames) in zip(clip_names(files, args.videos), read_clips(files))}
    ceiling = {}
    kinds = ("vae", "vae+carry", "model raw")
    for stride in args.strides:
        rows = {kind: {} for kind in kinds}
        everything = {kind: ([], []) for kind in kinds}
        for c, (name, clip) in enumerate(clips.items()):
            scores = {kind: ([], []) for kind in kinds}
            for w, (_, window) in enumerate(spread_windows(clip, stride, args.windows)):
                rec = round_trip(pipe.vae, window)  # (stride+1,H,W,3), the keyframes as decoded too
                pipe.config = raw_config
                raw = pipe.fill_between(window[::stride], stride, seed=c * args.windows + w)
                pipe.config = shipped
                filled = {"vae": rec, "vae+carry": carry_keyframe_residual(rec, window[::stride], stride),
                          "model raw": raw}
                for kind, frames in filled.items():
                    scores[kind][0].append(psnr(frames[1:-1], window[1:-1], per_frame=True))
                    scores[kind][1].append(ssim(frames[1:-1], window[1:-1], per_frame=True))
            for kind, (p, s) in scores.items():
                p, s = torch.cat(p), torch.cat(s)
                rows[kind][name] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "frames": int(p.numel())}
                everything[kind][0].append(p), everything[kind][1].append(s)
        for kind, (p, s) in everything.items():
            rows[kind]["mean"] = {"psnr": float(torch.cat(p).mean()), "ssim": float(torch.cat(s).mean())}
            print(f"stride {stride} {kind}: " + ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}"
                                                         for k, v in rows[kind].items()))
        ceiling[f"stride_{stride}"] = rows
    (out / "ceiling.json").write_text(json.dumps(ceiling, indent=1) + "\n")

    sheet_rows = []
    for i, (name, clip) in enumerate(clips.items()):
        windows = spread_windows(clip, 4, args.windows)
        _, window = windows[len(windows) // 2]
        keys = window[::4]
        sheet_rows += [window, linear_blend(keys, 4), flow_fill(keys, 4),
                       pipe.fill_between(keys, 4, seed=i), round_trip(pipe.vae, window)]
    grid = contact_sheet(torch.cat(sheet_rows).numpy(), columns=5)
    Image.fromarray(grid).save(out / "contact_sheet.jpg", quality=88)
    print(f"wrote {out / 'ceiling.json'} and {out / 'contact_sheet.jpg'} (rows per clip: truth, blend, flow, "
          "model, VAE round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
