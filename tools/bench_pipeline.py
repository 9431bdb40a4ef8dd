"""Benchmark: sampling a 16-frame clip with a pipeline folder.

Times text_to_video at the pipeline's default settings (keyframes + interpolation), and the same clip made by
the keyframe model alone (every frame a keyframe: 16 keyframes at stride 1) at the same step count. With
--shapes N it also writes N clips per method for Shapes prompts and reports Shapes accuracy of both
(vidiff.eval.shapes.evaluate_shapes_folder); that number only means something for a trained pipeline.

    .venv/bin/python tools/bench_pipeline.py [--model FOLDER] [--repeats 3] [--threads 2] [--shapes 0]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.commands.generation import BUNDLED  # noqa: E402
from vidiff.diffusion.cond import Cond  # noqa: E402
from vidiff.pipeline import VideoPipeline  # noqa: E402

PROMPT = "a blue square moving up"


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up (allocator, kernels, text-encoder cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


@torch.no_grad()
def forward_times(pipe: VideoPipeline, frame_counts: list[int], repeats: int, device: str) -> dict[int, float]:
    """Seconds per keyframe-network forward of one row with F frames (what each sampler step pays per pass)."""
    net = pipe.keyframes.net
    f = pipe.vae.downsample_factor
    context, mask = pipe.text_encoder.encode([PROMPT])
    out = {}
    for frames in frame_counts:
        x = torch.randn(1, pipe.vae.config.latent_channels, frames, pipe.config.height // f, pipe.config.width // f,
                        device=device)
        cond = Cond(context=context.to(device), context_mask=mask.to(device), known=torch.zeros_like(x),
                    known_mask=torch.zeros(1, frames, device=device), frame_stride=torch.ones(1, device=device),
                    cond_sigma=torch.zeros(1, device=device))
        out[frames] = timed(lambda: net(x, torch.zeros(1, device=device), cond), repeats)[0]
    return out


def shapes_accuracy(pipe: VideoPipeline, num: int, methods: dict, folder: Path) -> dict:
    from vidiff.data.shapes import all_combinations, prompt_for
    from vidiff.eval.shapes import evaluate_shapes_folder
    from vidiff.io import write_video

    combos = all_combinations()
    out = {}
    for name, kwargs in methods.items():
        sub = folder / name
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(num):
            prompt = prompt_for(*combos[i % len(combos)])
            frames, fps = pipe.text_to_video(prompt, seed=i, progress=False, **kwargs)
            path = write_video(sub / f"clip_{i:03d}.mp4", frames, fps)
            path.with_name(path.name + ".json").write_text(json.dumps({"prompt": prompt, "seed": i}))
        out[name] = evaluate_shapes_folder(sub)["accuracy"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Time a 16-frame clip: keyframes + interpolation vs keyframes only.")
    parser.add_argument("--model", default=str(BUNDLED), help="pipeline folder (default: the bundled one)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batched", action="store_true",
                        help="batch_invariant=False: batch the rows of a network call (guidance passes, gap windows)")
    parser.add_argument("--shapes", type=int, default=0, help="clips per method for Shapes accuracy (0: skip)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = VideoPipeline.from_pretrained(args.model, device=args.device, batch_invariant=not args.batched)
    cfg = pipe.config
    steps = cfg.keyframes.steps
    methods = {
        "keyframes+interpolation": {},
        # outside what the keyframe part was trained on (4 keyframes at stride 5): forced, and not a fair one-stage
        # baseline (docs/benchmarks.md)
        "keyframe model only": dict(num_frames=cfg.num_frames, num_keyframes=cfg.num_frames, keyframe_stride=1,
                                    steps=steps, force_layout=True),
    }
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    results = {}
    for name, kwargs in methods.items():
        def run(kwargs=kwargs):
            frames, _ = pipe.text_to_video(PROMPT, seed=0, progress=False, **kwargs)
            sync()
            assert frames.shape[0] == cfg.num_frames
        results[name] = timed(run, args.repeats)
    base = results["keyframes+interpolation"][0]
    print(f"model: {Path(args.model).resolve()}  device: {args.device}  threads: {torch.get_num_threads()}  "
          f"rows: {'batched' if args.batched else 'one at a time (batch-invariant)'}")
    print(f"clip: {cfg.num_frames} frames {cfg.width}x{cfg.height}, {cfg.num_keyframes} keyframes at stride "
          f"{cfg.keyframe_stride}, steps keyframes/interpolation {steps}/{cfg.interpolation.steps}, "
          f"sampler {cfg.keyframes.sampler}")
    for name, (median, times) in results.items():
        print(f"{name:<26} median {median:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})  "
              f"ratio {median / base:.2f}")
    gap = cfg.keyframe_stride
    fwd = forward_times(pipe, [cfg.num_keyframes, gap + 1, cfg.num_frames], max(3, args.repeats), args.device)
    print("keyframe-network forward, one row: " + ", ".join(f"F={k}: {v * 1000:.0f} ms" for k, v in fwd.items()))
    if args.shapes:
        with tempfile.TemporaryDirectory() as tmp:
            for name, acc in shapes_accuracy(pipe, args.shapes, methods, Path(tmp)).items():
                shown = ", ".join(f"{k} {'-' if v is None else f'{100 * v:.0f}%'}" for k, v in acc.items())
                print(f"shapes accuracy, {name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
