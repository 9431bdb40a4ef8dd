"""Training-step efficiency against the peers, in one interleaved run: vidiff's UNet3D, diffusers'
UNet3DConditionModel (the configs of tools/bench_unet.py) and lucidrains' video-diffusion-pytorch `Unet3D` at a
matched parameter count, with achieved GFLOP/s against this CPU's measured matmul ceilings.

    .venv/bin/python tools/bench_unet_peers.py [--threads 2] [--rounds 3]

- one step = forward + backward of `output.square().mean()`, fp32, latents (1, 4, 16, 32, 32); text (1, 16, 384)
  for vidiff and diffusers, a pooled (1, 384) condition for the peer (its interface);
- FLOPs per step from torch.utils.flop_counter with SDPA forced onto its math kernel (the counter sees the CPU
  flash kernel as 0 FLOPs; vidiff's own attention runs with backend "math" for the count);
- timing: one warm-up step each, then `--rounds` rounds in which the models step one after another, so that each
  round sees nearly the same machine load; the median per model is reported;
- ceilings: the best of torch.mm on 2048 x 2048 matrices in fp32 and in bf16 (the same threads).

The peer needs `pip install --no-deps video-diffusion-pytorch einops-exts rotary-embedding-torch` (its declared
dependencies pull a CUDA torch); its torchvision import (GIF helpers only) is stubbed here.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def peer_model():
    if "torchvision" not in sys.modules:  # imported by the package for GIF helpers only
        tv = types.ModuleType("torchvision")
        tv.transforms, tv.utils = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.utils")
        tv.transforms.ToTensor = lambda: None
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.utils": tv.utils})
    from video_diffusion_pytorch import Unet3D

    model = Unet3D(dim=104, dim_mults=(1, 2, 4), cond_dim=384, channels=4)
    return model, lambda x, t, ctx: model(x, t, cond=ctx.mean(dim=1))


def build_all():
    from bench_unet import build

    models = {}
    for name in ("diffusers", "vidiff"):
        model, fn = build(name, False)
        models[name] = (model, fn, torch.full((1,), 0.3) if name == "vidiff" else torch.full((1,), 500))
    # the layout of vidiff's own recipes (configs/*.yaml): no attention at the top level, spatial + temporal
    # attention at the two lower ones; widths chosen for the peer's parameter count
    from vidiff.diffusion.cond import Cond
    from vidiff.models import UNet3D, UNet3DConfig

    cfg = UNet3DConfig(in_channels=4, out_channels=4, block_out_channels=(64, 144, 192), layers_per_block=2,
                       attention_levels=(False, True, True), mid_attention=True, num_head_channels=48,
                       context_dim=384, norm_groups=16)
    own = UNet3D(cfg)
    models["vidiff, recipe layout"] = (own, lambda x, t, ctx: own(x, t, Cond(context=ctx)), torch.full((1,), 0.3))
    model, fn = peer_model()
    models["video-diffusion-pytorch"] = (model, fn, torch.full((1,), 500))
    return models


def step_flops(name, model, fn, t, x, ctx) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    if name.startswith("vidiff"):  # its attention backends as math, for the count only
        from vidiff.models import UNet3D

        math_cfg = dataclasses.replace(model.config, attention_backend="math", temporal_attention_backend="math")
        counted = UNet3D(math_cfg)
        counted.load_state_dict(model.state_dict())
        from vidiff.diffusion.cond import Cond

        model, fn = counted, lambda x, t, ctx: counted(x, t, Cond(context=ctx))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn(x, t, ctx).square().mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_ceiling(dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, ctx = torch.randn(1, 4, 16, 32, 32), torch.randn(1, 16, 384)
    models = build_all()
    ceilings = {"fp32": matmul_ceiling(torch.float32), "bf16": matmul_ceiling(torch.bfloat16)}
    flops = {name: step_flops(name, m, fn, t, x, ctx) for name, (m, fn, t) in models.items()}
    times = {name: [] for name in models}
    for r in range(args.rounds + 1):
        for name, (model, fn, t) in models.items():
            model.train()
            elapsed = _timed(lambda: fn(x, t, ctx).square().mean().backward())
            model.zero_grad(set_to_none=True)
            if r:  # round 0 warms up
                times[name].append(elapsed)
    print(f"threads {args.threads}; matmul ceilings: fp32 {ceilings['fp32']:.0f} GFLOP/s, bf16 {ceilings['bf16']:.0f}")
    print("| model | parameters | GFLOP per step | median step | GFLOP/s | of the fp32 ceiling |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (model, _, _) in models.items():
        params = sum(q.numel() for q in model.parameters()) / 1e6
        med = statistics.median(times[name])
        rate = flops[name] / med / 1e9
        print(f"| {name} | {params:.1f}M | {flops[name] / 1e9:.0f} | {med:.2f} s ({', '.join(f'{s:.2f}' for s in times[name])}) "
              f"| {rate:.0f} | {100 * rate / ceilings['fp32']:.0f}% |")


if __name__ == "__main__":
    main()
