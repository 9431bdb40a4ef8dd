"""Training-step benchmark: vidiff's UNet3D against diffusers' UNet3DConditionModel at the same widths.

Times forward + backward (fp32, 2 threads) on latents (1, 4, 16, 32, 32) with a (1, 16, 384) context and reads
the peak resident memory of each model in its own fresh subprocess (VmHWM from /proc/self/status, minus the value
after imports, model construction and input creation). Prints both parameter counts and the vidiff / diffusers
ratios of median step time and peak memory. The machine is shared, so the two models run in alternating rounds
(diffusers, vidiff, diffusers, vidiff, ...) and the median over all timed steps of all rounds is reported, with
the process CPU time per step beside the wall time. diffusers' UNet3DConditionModel does not support gradient
checkpointing, so the --checkpointing row is vidiff with checkpointing against diffusers without.

    .venv/bin/python tools/bench_unet.py                 # headline row, no gradient checkpointing
    .venv/bin/python tools/bench_unet.py --checkpointing # adds a row with checkpointing on both sides
    .venv/bin/python tools/bench_unet.py --interleaved   # time only, both models alternating in one process
    .venv/bin/python tools/bench_unet.py --frames 4 --size 16 --steps 2   # a quick smoke run
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found in /proc/self/status")


def build(which: str, checkpointing: bool):
    if which == "diffusers":
        from diffusers import UNet3DConditionModel

        model = UNet3DConditionModel(
            in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
            block_out_channels=(64, 128, 256), layers_per_block=2, norm_num_groups=32,
            cross_attention_dim=384, attention_head_dim=8,
        )
        if checkpointing:
            model.enable_gradient_checkpointing()
        return model, lambda x, t, ctx: model(x, t, encoder_hidden_states=ctx).sample
    sys.path.insert(0, str(REPO))
    from vidiff.models import UNet3D, UNet3DConfig

    cfg = UNet3DConfig(in_channels=4, out_channels=4, block_out_channels=(64, 128, 256), layers_per_block=2,
                       attention_levels=(True, True, False), mid_attention=True, context_dim=384,
                       norm_groups=32, gradient_checkpointing=checkpointing)
    from vidiff.diffusion.cond import Cond

    model = UNet3D(cfg)
    return model, lambda x, t, ctx: model(x, t, Cond(context=ctx))


def child(args) -> None:
    """Runs in a fresh process: one model, warm-up, timed steps; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, step_fn = build(args.child, args.checkpointing)
    model.train()
    x = torch.randn(1, 4, args.frames, args.size, args.size)
    t = torch.full((1,), 0.3) if args.child == "vidiff" else torch.full((1,), 500)
    ctx = torch.randn(1, args.context_len, 384)
    baseline = vm_hwm_kib()
    times, cpu = [], []
    for i in range(args.warmup + args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step_fn(x, t, ctx).square().mean().backward()
        model.zero_grad(set_to_none=True)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    peak = vm_hwm_kib() - baseline
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": args.child, "params": params, "times": times, "cpu": cpu, "peak_mib": peak / 1024}))


def interleaved(args) -> None:
    """Both models in one process, steps alternating (d, v, d, v, ...): the time ratio of each neighbouring pair
    sees nearly the same machine load, which matters on a shared machine. No memory figure here (one process)."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 4, args.frames, args.size, args.size)
    ctx = torch.randn(1, args.context_len, 384)
    models = {}
    for which in ("diffusers", "vidiff"):
        model, step_fn = build(which, False)
        t = torch.full((1,), 0.3) if which == "vidiff" else torch.full((1,), 500)
        models[which] = (model.train(), step_fn, t)
    times = {"diffusers": [], "vidiff": []}
    for i in range(args.warmup + args.steps):
        for which, (model, step_fn, t) in models.items():
            start = time.perf_counter()
            step_fn(x, t, ctx).square().mean().backward()
            model.zero_grad(set_to_none=True)
            if i >= args.warmup:
                times[which].append(time.perf_counter() - start)
    ratios = [v / d for d, v in zip(times["diffusers"], times["vidiff"])]
    print(f"\ninterleaved in one process ({args.warmup} warm-up + {args.steps} step pairs)")
    for which, ts in times.items():
        print(f"  {which:11s} steps: {', '.join(f'{s:.2f}' for s in ts)}  median {statistics.median(ts):.3f} s")
    print(f"  per-pair time ratios vidiff/diffusers: {', '.join(f'{r:.3f}' for r in ratios)}  "
          f"median {statistics.median(ratios):.3f}")


def run_child(which: str, args, checkpointing: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--frames", str(args.frames), "--size", str(args.size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
           "--context-len", str(args.context_len)]
    if checkpointing:
        cmd.append("--checkpointing")
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"benchmark child {which} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def merge(results: list[dict]) -> dict:
    """One summary over rounds: all timed steps pooled; the largest peak."""
    times = [s for r in results for s in r["times"]]
    cpu = [s for r in results for s in r["cpu"]]
    return {"model": results[0]["model"], "params": results[0]["params"], "times": times,
            "median_s": statistics.median(times), "cpu_s": statistics.median(cpu),
            "peak_mib": max(r["peak_mib"] for r in results)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=32, help="latent height = width")
    p.add_argument("--context-len", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2, help="alternating fresh-process rounds per model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpointing", action="store_true", help="also run a row with gradient checkpointing")
    p.add_argument("--interleaved", action="store_true",
                   help="only time both models in one process with alternating steps (robust to load drift)")
    p.add_argument("--child", choices=["vidiff", "diffusers"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.interleaved:
        interleaved(args)
        return
    print(f"latents (1, 4, {args.frames}, {args.size}, {args.size}), context (1, {args.context_len}, 384), "
          f"fp32, {args.threads} threads, {args.rounds} rounds x ({args.warmup} warm-up + {args.steps} steps)")
    runs = {"diffusers": [], "vidiff": [], "vidiff+ckpt": []}
    for _ in range(args.rounds):
        runs["diffusers"].append(run_child("diffusers", args, False))
        runs["vidiff"].append(run_child("vidiff", args, False))
        if args.checkpointing:
            runs["vidiff+ckpt"].append(run_child("vidiff", args, True))
    d = merge(runs["diffusers"])
    rows = [("vidiff", "gradient checkpointing off on both sides")]
    if args.checkpointing:
        rows.append(("vidiff+ckpt", "vidiff with gradient checkpointing, diffusers without (it has none)"))
    for key, title in rows:
        v = merge(runs[key])
        print(f"\n{title}")
        for name, r in (("diffusers", d), (key, v)):
            times = ", ".join(f"{s:.2f}" for s in r["times"])
            print(f"  {name:11s} params {r['params'] / 1e6:6.2f}M  step {r['median_s']:.3f} s wall, "
                  f"{r['cpu_s']:.3f} s CPU (steps: {times})  peak +{r['peak_mib']:.0f} MiB")
        print(f"  ratio {key}/diffusers: params {v['params'] / d['params']:.3f}  time {v['median_s'] / d['median_s']:.3f}"
              f" (CPU time {v['cpu_s'] / d['cpu_s']:.3f})  peak memory {v['peak_mib'] / d['peak_mib']:.3f}")


if __name__ == "__main__":
    main()
