"""Benchmark: VAE decode of a long clip, frame-sliced vs all frames in one pass (time and peak memory), beside
the estimate `AutoencoderKL.decode_bytes` gives for the widest pass (what `vidiff interpolate` plans with).

Each setting runs in a fresh subprocess so peak memory is its own: on CPU the peak resident set (VmHWM from
/proc/self/status, reset through /proc/self/clear_refs after the model is built and warmed up), on CUDA
torch.cuda.max_memory_allocated. Weights are random (seeded); the cost of a decode does not depend on them.
Each worker also saves a strided subsample of its output so the parent can check that slicing does not change
the result.

    .venv/bin/python tools/bench_vae_decode.py --widths 128,256,512,512 --chunks 0,8
    .venv/bin/python tools/bench_vae_decode.py --widths 48,96,128 --layers 1 --groups 16 --temporal --frames 24 \
        --size 256 --chunks 8 --threads 1        # the real-footage VAE with its temporal decoder
    add --layouts channels_last,default to compare the weights' layouts (channels_last: what loading gives)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(args) -> None:
    import torch

    from vidiff.models.vae import for_inference
    from vidiff.vae import AutoencoderKL, VAEConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    widths = tuple(int(w) for w in args.widths.split(","))
    config = VAEConfig(block_out_channels=widths, layers_per_block=args.layers, norm_groups=args.groups,
                       mid_attention=not args.temporal, temporal_decoder=args.temporal)
    device = torch.device(args.device)
    vae = AutoencoderKL(config)
    # channels_last: the weights' layout AutoencoderKL.load gives (models/vae.py for_inference); default: NCHW
    vae = for_inference(vae, device) if args.layout == "channels_last" else vae.to(device).eval()
    h = args.size // config.downsample_factor
    latents = torch.randn(1, config.latent_channels, args.frames, h, h, generator=torch.Generator().manual_seed(1))
    latents = latents.to(device)
    with torch.no_grad():
        vae.decode(latents[:, :, :1])  # warm-up: first-call allocations and kernel selection
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            reset = _reset_peak_rss()
            base = _status_kib("VmRSS") * 1024
        start, cpu_start = time.perf_counter(), time.process_time()
        video = vae.decode(latents, frame_chunk=args.chunk)  # (1, 3, F, H, W)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start  # all threads; less sensitive than wall time to a busy host
    if device.type == "cuda":
        peak, reset = torch.cuda.max_memory_allocated(), True
    else:
        peak = _status_kib("VmHWM") * 1024
    from safetensors.torch import save_file

    save_file({"sub": video[:, :, :, ::16, ::16].float().cpu().contiguous()}, args.sample_out)
    params = sum(p.numel() for p in vae.parameters())
    widest = max(hi - lo for lo, hi, _ in vae.decode_windows(args.frames, args.chunk))
    estimate = vae.decode_bytes(widest, args.size, args.size)
    print(json.dumps({"chunk": args.chunk, "estimate_bytes": estimate, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "base_bytes": base, "peak_bytes": peak, "peak_reset": reset, "params": params,
                      "shape": list(video.shape)}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=256, help="output height = width in pixels")
    p.add_argument("--widths", default="128,256,512,512", help="block_out_channels (SD: 128,256,512,512)")
    p.add_argument("--layers", type=int, default=2, help="layers_per_block (SD: 2)")
    p.add_argument("--groups", type=int, default=32, help="GroupNorm groups")
    p.add_argument("--chunks", default="0,8", help="frame_chunk values to compare; 0 = all frames in one pass")
    p.add_argument("--temporal", action="store_true", help="with the temporal decoder (and no mid attention)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--layouts", default="channels_last",
                   help="weight layouts to compare: channels_last (what loading gives), default (NCHW)")
    p.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--layout", default="channels_last", help=argparse.SUPPRESS)
    p.add_argument("--sample-out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    import torch
    from safetensors.torch import load_file

    results, samples = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for chunk, layout in ((int(c), lay) for c in args.chunks.split(",") for lay in args.layouts.split(",")):
            out = str(Path(tmp) / f"chunk{chunk}-{layout}.safetensors")
            cmd = [sys.executable, __file__, "--worker", "--chunk", str(chunk), "--layout", layout, "--sample-out", out,
                   "--frames", str(args.frames), "--size", str(args.size), "--widths", args.widths,
                   "--layers", str(args.layers), "--groups", str(args.groups), "--device", args.device,
                   "--threads", str(args.threads)] + (["--temporal"] if args.temporal else [])
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            run = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if run.returncode:
                sys.stderr.write(run.stderr)
                return run.returncode
            results.append({**json.loads(run.stdout.strip().splitlines()[-1]), "layout": layout})
            samples[chunk, layout] = load_file(out)["sub"]
    first = next(iter(samples.values()))
    diff = max((s - first).abs().max().item() for s in samples.values())

    mib = 1 / (1 << 20)
    print(f"decode {args.frames} frames at {args.size}x{args.size}; block_out_channels ({args.widths}), "
          f"layers_per_block {args.layers}, {results[0]['params'] / 1e6:.1f}M params; device {args.device}, "
          f"{args.threads} threads; torch {torch.__version__}; {platform.processor() or platform.machine()}")
    print(f"max abs difference between settings (strided subsample): {diff:.2e}")
    print("| frame_chunk | weights | wall time (s) | CPU time (s) | wall s / frame | memory before decode (MiB) "
          "| peak (MiB) | peak - before (MiB) | decode_bytes estimate (MiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        label = "all (unsliced)" if r["chunk"] == 0 else str(r["chunk"])
        note = "" if r["peak_reset"] else " (peak not reset: includes start-up)"
        grown = (r["peak_bytes"] - r["base_bytes"]) * mib
        print(f"| {label} | {r['layout']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} "
              f"| {r['seconds'] / args.frames:.2f} | {r['base_bytes'] * mib:.0f} | {r['peak_bytes'] * mib:.0f}{note} "
              f"| {grown:.0f} | {r['estimate_bytes'] * mib:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
