"""Throughput of `build_latent_cache` on Shapes clips: a tiny random-weight VAE and the default text encoder.

    .venv/bin/python tools/bench_cache.py --num 128 --threads 2

Writes N Shapes clips (64x64, 16 frames) to a temporary folder, then times the cache build end to end
(mp4 decode, VAE mean, text embeddings, shard writes) and, separately, each stage on one batch, and
reports clips/s. The weights are random: the point is throughput, not the latents.

    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_cache.py --encode-dtypes WORK/vae/export --num 16

instead times a trained VAE part's encoder on Shapes clips of the bundled recipe (41 frames, seed 1), float32 and
bf16 autocast (`vidiff data cache --encode-dtype`) in turn at 1 and 2 threads, and gives the bf16 latents' RMS and
largest difference from float32's beside the latents' spread and float16 storage's own rounding.
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
    parser.add_argument("--encode-dtypes", metavar="VAE_PART", help="compare the encoder's float32 and bf16")
    parser.add_argument("--rounds", type=int, default=2, help="--encode-dtypes: rounds of each")
    args = parser.parse_args()
    if args.encode_dtypes:
        return compare_encode_dtypes(args)
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


def compare_encode_dtypes(args) -> None:
    from vidiff.data.shapes_dataset import ShapesDataset
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(args.encode_dtypes).eval()
    data = ShapesDataset(1, args.num, 41, 64)
    video = torch.stack([data[i]["video"] for i in range(args.num)])  # (N, 3, 41, 64, 64) in [-1, 1]

    def encode(bf16: bool) -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return torch.cat([vae.encode(b).float() for b in video.split(args.batch_size)])

    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = {"float32": [], "bfloat16": []}
        for _ in range(args.rounds):
            for name in times:
                t0 = time.perf_counter()
                encode(name == "bfloat16")
                times[name].append((time.perf_counter() - t0) / args.num)
        print(f"{threads} thread(s): " + ", ".join(f"{k} {min(v):.3f} s a clip (rounds {', '.join(f'{t:.3f}' for t in v)})"
                                                for k, v in times.items()))
    full, half = encode(False), encode(True)
    print(f"latents std {full.std():.4f}; bf16 - float32: RMS {(half - full).square().mean().sqrt():.5f}, largest "
          f"{(half - full).abs().max():.4f}; float16 storage of the float32 latents: RMS "
          f"{(full.half().float() - full).square().mean().sqrt():.5f}")


if __name__ == "__main__":
    main()
