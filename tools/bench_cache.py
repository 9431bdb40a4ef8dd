"""Throughput of `build_latent_cache` on Shapes clips: a tiny random-weight VAE and the default text encoder.

    .venv/bin/python tools/bench_cache.py --num 128 --threads 2

Writes N Shapes clips (64x64, 16 frames) to a temporary folder, then times the cache build end to end
(mp4 decode, VAE mean, text embeddings, shard writes) and, separately, each stage on one batch, and
reports clips/s. The weights are random: the point is throughput, not the latents.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=128, help="clips to cache")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vidiff.data.latent_cache import LatentCacheDataset, build_latent_cache
    from vidiff.data.video_folder import VideoFolderDataset
    from vidiff.data.shapes_folder import generate_shapes_dataset
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL, VAEConfig

    config = VAEConfig(block_out_channels=(32, 64, 128), layers_per_block=1, norm_groups=8, latent_channels=4,
                       frame_chunk=16)
    torch.manual_seed(0)
    vae = AutoencoderKL(config).eval()
    text = TextEncoder.load("default")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        generate_shapes_dataset(tmp / "clips", args.num, frames=args.frames, progress=False)
        t_gen = time.perf_counter() - t0
        dataset = VideoFolderDataset(tmp / "clips", num_frames=args.frames, size=(64, 64))

        # One batch per stage, to see where the time goes.
        t0 = time.perf_counter()
        items = [dataset[i] for i in range(args.batch_size)]
        t_decode = time.perf_counter() - t0
        video = torch.stack([it["video"] for it in items])  # (B, 3, F, H, W)
        with torch.no_grad():
            t0 = time.perf_counter()
            latents = vae.encode(video)  # (B, C, F, h, w)
            t_vae = time.perf_counter() - t0
            t0 = time.perf_counter()
            text.encode([f"warm-up {i}" for i in range(args.batch_size)])
            t_text = time.perf_counter() - t0

        t0, c0 = time.perf_counter(), time.process_time()
        build_latent_cache(dataset, vae, text, tmp / "cache", batch_size=args.batch_size, dtype=args.dtype,
                           progress=False)
        t_cache, cpu_cache = time.perf_counter() - t0, time.process_time() - c0
        ds = LatentCacheDataset(tmp / "cache")
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        t_read = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in (tmp / "cache").iterdir()) / 2**20

    vae_params = sum(p.numel() for p in vae.parameters()) / 1e6
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"VAE: block_out_channels={config.block_out_channels}, {vae_params:.2f}M params, latents "
          f"{tuple(latents.shape[1:])} per clip; text: {text.identifier}")
    print(f"generate {args.num} clips ({args.frames}x64x64 mp4): {t_gen:.1f} s")
    print(f"one batch of {args.batch_size}: decode {t_decode:.2f} s, VAE {t_vae:.2f} s, "
          f"text (distinct prompts) {t_text:.2f} s")
    print(f"build_latent_cache: {args.num} clips in {t_cache:.1f} s = {args.num / t_cache:.2f} clips/s "
          f"({args.dtype}, cache {size_mb:.1f} MiB)")
    # CPU seconds do not grow when other processes share the cores, so they compare across runs.
    print(f"build_latent_cache CPU time: {cpu_cache:.1f} s = {cpu_cache / args.num:.2f} CPU-s per clip; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"LatentCacheDataset: {args.num} items in {t_read:.3f} s = {args.num / t_read:.0f} items/s")


if __name__ == "__main__":
    main()
