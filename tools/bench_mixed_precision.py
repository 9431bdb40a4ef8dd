"""bf16 against fp32 training of the bundled keyframe recipe's U-Net on this CPU (docs/benchmarks.md).

    # step time: forward + backward + AdamW of the recipe's model (configs/shapes-keyframes.yaml), batch 8,
    # 4 keyframes of 4x16x16 latents, fp32, bf16 (autocast) and bf16 with torch's own CPU kernels ("bf16-stock")
    # alternating in one process
    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_mixed_precision.py time --rounds 6

    # the whole step as `vidiff train` takes it (captions, text encoder, conditioning), on the recipe's cache
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mixed_precision.py loop --cache WORK/latents

    # the VAE recipes' step (configs/shapes-vae.yaml at two threads, as tools/train_bundled.sh trains it; the
    # temporal decoder at one, beside the latent cache)
    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_mixed_precision.py vae --recipe vae
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mixed_precision.py vae --recipe temporal-decoder

    # loss curves: `vidiff train` (the real loop) of the same model, mixed_precision no / bf16, on latents of
    # Shapes clips encoded once with the bundled VAE; then the comparison of the last 100 steps
    .venv/bin/python tools/bench_mixed_precision.py cache --out runs/bench-mp/latents
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mixed_precision.py curve --precision no --out runs/bench-mp/fp32 &
    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_mixed_precision.py curve --precision bf16 --out runs/bench-mp/bf16
    .venv/bin/python tools/bench_mixed_precision.py compare runs/bench-mp/fp32 runs/bench-mp/bf16
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RECIPE = REPO / "configs" / "shapes-keyframes.yaml"
BUNDLE = REPO / "vidiff" / "bundled" / "shapes"


def recipe_model() -> dict:
    return yaml.safe_load(RECIPE.read_text())["model"]


def use_kernels(dtype: str) -> None:
    """"bf16-stock": torch's own kernel choice, without vidiff's half-precision paths on the CPU (group_norm.py's
    contiguous layout for small planes, attention.py's fp32 SDPA in training); any other: vidiff's."""
    stock = dtype == "bf16-stock"
    sys.modules["vidiff.models.group_norm"].SMALL_PLANE = 0 if stock else 256  # vidiff.models' `attention` is a function
    sys.modules["vidiff.models.attention"].TRAIN_SDPA_IN_FP32 = not stock


PRECISIONS = ("fp32", "bf16", "bf16-stock")


def interleaved(rounds: int, run) -> dict:
    """run(r, precision) -> step times, for rounds 0..rounds, the precisions each first in turn; round 0 warms all up.
    The median step of each precision and the speed-ups against fp32."""
    times = {name: [] for name in PRECISIONS}
    for r in range(rounds + 1):
        for dtype in PRECISIONS[r % 3:] + PRECISIONS[:r % 3]:
            t = run(r, dtype)
            if r > 0:
                times[dtype] += t
    median = {name: statistics.median(v) for name, v in times.items()}
    return {**{f"{name}_s": round(v, 4) for name, v in median.items()},
            "bf16_speedup": round(median["fp32"] / median["bf16"], 3),
            "bf16_stock_speedup": round(median["fp32"] / median["bf16-stock"], 3), "steps_each": len(times["fp32"])}


def time_steps(args) -> None:
    from vidiff.diffusion.cond import Cond
    from vidiff.models import UNet3D, UNet3DConfig

    torch.manual_seed(0)
    net = UNet3D(UNet3DConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in recipe_model().items()}))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    b, k = args.batch, args.keyframes
    x = torch.randn(b, 4, k, 16, 16)  # (B, C, K, h, w)
    c_noise = torch.randn(b)
    cond = Cond(context=torch.randn(b, 12, 384), context_mask=torch.ones(b, 12, dtype=torch.bool),
                known=torch.zeros_like(x), known_mask=torch.zeros(b, k), frame_stride=torch.full((b,), 5.0),
                cond_sigma=torch.zeros(b))

    def step(dtype) -> float:
        use_kernels(dtype)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != "fp32"):
            out = net(x, c_noise, cond)  # (B, C, K, h, w)
        loss = (out.float() - x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"params": params, "batch": b, "keyframes": k, "threads": torch.get_num_threads(),
                      **interleaved(args.rounds, lambda r, dtype: [step(dtype) for _ in range(args.steps)])}))


def time_loop(args) -> None:
    """The recipe's whole training step as `vidiff train` takes it (stage.loss: captions, the text encoder, the
    conditioning draws; backward, clipping, fused AdamW), each batch of the latent cache taken in fp32, bf16 and
    bf16-stock in turn: the same batch, so the three do the same work."""
    import math

    from vidiff.random import SampleDraws
    from vidiff.training.config import load_train_config
    from vidiff.training.optimizer import adamw_implementation, align_gradients
    from vidiff.training.sample_stream import make_loader
    from vidiff.training.stages import build_stage

    cfg = load_train_config(str(RECIPE), [f"data.root={args.cache}", f"vae={args.vae}", "train.preview_every=0",
                                          "output_dir=runs/bench-mp/unused"], folders_here=True)
    torch.manual_seed(0)
    stage = build_stage(cfg)
    model = stage.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, **adamw_implementation(trainable, sharded=False, loss_scaling=False))
    batches = iter(make_loader(stage.dataset, cfg, args.from_step, 0, 1))

    def step(batch, step_index, dtype) -> float:
        use_kernels(dtype)
        draws = SampleDraws(cfg.train.seed, batch["epoch"], step_index, batch["sample_id"])
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != "fp32"):
            per_sample = stage.loss(model, batch, draws, step_index)
        per_sample.float().mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf)
        align_gradients(trainable)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    batch_of_round = [next(batches) for _ in range(args.rounds + 1)]  # one a round, the same for the three
    print(json.dumps({"threads": torch.get_num_threads(), "from_step": args.from_step,
                      **interleaved(args.rounds, lambda r, dtype: [step(batch_of_round[r], args.from_step + r, dtype)])}))


VAE_RECIPES = {"vae": REPO / "configs" / "shapes-vae.yaml", "temporal-decoder": REPO / "configs" / "shapes-vae-temporal.yaml"}


def time_vae(args) -> None:
    """The VAE recipes' training step (VAELoss: encode, decode, the recipe's losses; backward, AdamW) on random
    frames of the recipe's size (64 x 64), at its batch: the per-frame VAE 4 clips x 2 frames, the temporal decoder 2 clips x 8
    frames with its encoder frozen as the recipe freezes it."""
    from vidiff.training.config import load_train_config
    from vidiff.training.vae_stage import VAEStage

    path = VAE_RECIPES[args.recipe]
    cfg = load_train_config(str(path), ["init_weights=null", "output_dir=runs/bench-mp/unused"], folders_here=True)
    torch.manual_seed(0)
    stage = VAEStage(cfg, dataset=[])  # freezes what the recipe's train.freeze names
    model = stage.model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    b, f, size = cfg.train.batch_size, cfg.data.num_frames, cfg.data.size
    c, s = stage.model_cfg.latent_channels, size // stage.model_cfg.downsample_factor
    video = torch.rand(b, 3, f, size, size) * 2 - 1  # (B, 3, F, H, W) in [-1, 1]
    noise = torch.randn(b, c, f, s, s)
    latent_noise = 0.1 * torch.randn(b, c, f, s, s) if cfg.loss.latent_noise_max else None

    def step(dtype) -> float:
        use_kernels(dtype)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != "fp32"):
            loss = model(video, noise, latent_noise).float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    print(json.dumps({"recipe": path.name, "batch": b, "frames": f, "threads": torch.get_num_threads(),
                      **interleaved(args.rounds, lambda r, dtype: [step(dtype) for _ in range(args.steps)])}))


def build_cache(args) -> None:
    from vidiff.data.latent_cache import build_latent_cache
    from vidiff.data.shapes_dataset import ShapesDataset
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(BUNDLE / "vae").eval()
    build_latent_cache(ShapesDataset(7, args.num, 16, 64), vae, TextEncoder.load("default"), args.out,
                       dtype="float32")


def curve(args) -> None:
    from vidiff.config import from_dict
    from vidiff.training.config import TrainConfig, validate
    from vidiff.training.loop import train

    recipe = yaml.safe_load(RECIPE.read_text())
    cfg = validate(from_dict(TrainConfig, {
        "stage": "keyframes", "output_dir": args.out, "model": recipe["model"], "diffusion": recipe["diffusion"],
        "data": {"kind": "latent_cache", "root": args.cache, "num_frames": 16, "size": 64},
        "conditioning": {k: v for k, v in recipe["conditioning"].items()
                         if k not in ("min_keyframes", "max_keyframes", "min_keyframe_stride", "max_keyframe_stride",
                                      "default_layout_prob", "captions")},
        "optimizer": recipe["optimizer"],
        "train": {"max_steps": args.steps, "batch_size": args.batch, "ema_decay": 0.998, "log_every": 10,
                  "checkpoint_every": 10 ** 6, "seed": 0, "mixed_precision": args.precision}}))
    train(cfg, force=True)


def compare(args) -> None:
    from vidiff.training.logging import read_metrics

    rows = [read_metrics(Path(run) / "metrics.jsonl") for run in (args.fp32, args.bf16)]
    out = {}
    for name, r in zip(("fp32", "bf16"), rows):
        last = [x["loss"] for x in r if x["step"] > r[-1]["step"] - 100]
        first = [x["loss"] for x in r if x["step"] <= 100]
        out[name] = {"steps": r[-1]["step"], "first_100": round(sum(first) / len(first), 4),
                     "last_100": round(sum(last) / len(last), 4),
                     "samples_per_s_end": round(r[-1]["samples_per_s"], 2)}
    out["last_100_rel_diff"] = round(out["bf16"]["last_100"] / out["fp32"]["last_100"] - 1, 4)
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--rounds", type=int, default=6)
    t.add_argument("--steps", type=int, default=2, help="steps per precision per round")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--keyframes", type=int, default=4)
    lp = sub.add_parser("loop")
    lp.add_argument("--cache", required=True, help="the recipe's latent cache (tools/train_bundled.sh: WORK/latents)")
    lp.add_argument("--vae", default=str(BUNDLE / "vae"))
    lp.add_argument("--rounds", type=int, default=30)
    lp.add_argument("--from-step", type=int, default=5000, help="the recipe's step: paths and pairs from 4000")
    v = sub.add_parser("vae")
    v.add_argument("--recipe", choices=sorted(VAE_RECIPES), default="vae")
    v.add_argument("--rounds", type=int, default=6)
    v.add_argument("--steps", type=int, default=2, help="steps per precision per round")
    c = sub.add_parser("cache")
    c.add_argument("--out", default="runs/bench-mp/latents")
    c.add_argument("--num", type=int, default=256)
    r = sub.add_parser("curve")
    r.add_argument("--precision", choices=["no", "bf16"], required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--cache", default="runs/bench-mp/latents")
    r.add_argument("--steps", type=int, default=1000)
    r.add_argument("--batch", type=int, default=4)
    m = sub.add_parser("compare")
    m.add_argument("fp32")
    m.add_argument("bf16")
    args = p.parse_args()
    {"time": time_steps, "loop": time_loop, "vae": time_vae, "cache": build_cache, "curve": curve, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
