"""`vidiff data shapes` (write a Shapes dataset) and `vidiff data cache` (encode a video folder to latents once)."""
from __future__ import annotations

import argparse

from vidiff.commands import output_argument, path_argument, whole_number


def register(sub) -> None:
    parser = sub.add_parser("data", help="prepare data: the built-in Shapes domain, latent caches")
    data_sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    shapes = data_sub.add_parser("shapes", help="write N Shapes clips (mp4 + caption + ground truth)")
    shapes.add_argument("--out", required=True, type=output_argument, help="output folder")
    shapes.add_argument("--num", type=whole_number, required=True, help="number of clips")
    shapes.add_argument("--frames", type=whole_number, default=16, help="frames per clip (default 16)")
    shapes.add_argument("--seed", type=whole_number, default=0,
                        help="dataset seed; clip i depends only on (seed, i) (default 0)")
    shapes.add_argument("--size", type=whole_number, default=64, help="frame width and height, px (default 64)")
    shapes.add_argument("--fps", type=float, default=8, help="frames per second of the mp4 files (default 8)")
    shapes.add_argument("--min-speed-scale", type=float, default=1.0, metavar="F",
                        help="scale each clip's speed by a factor drawn in [F, 1], so slow clips are in the data "
                             "too (default 1: the speeds of the seed as always)")
    shapes.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    shapes.set_defaults(handler=_run_shapes)

    cache = data_sub.add_parser("cache", help="encode a video folder once into VAE latents + text embeddings")
    cache.add_argument("--videos", type=path_argument, required=True,
                       help="folder of videos with captions (VideoFolderDataset)")
    cache.add_argument("--vae", type=path_argument, required=True,
                       help="VAE part folder (config.yaml + model.safetensors)")
    cache.add_argument("--text", type=path_argument, default="default",
                       help="text encoder whose caption embeddings are stored: a folder, or 'default' (default: "
                            "default, the embedded MiniLM)")
    cache.add_argument("--frames", type=whole_number, required=True, help="frames per clip")
    cache.add_argument("--size", type=whole_number, required=True, help="frame size, px (clips are resized/cropped to it)")
    rate = cache.add_mutually_exclusive_group()
    rate.add_argument("--stride", type=whole_number, default=1, help="source frames between a window's frames (default 1)")
    rate.add_argument("--fps", type=float, help="resample every video to this frame rate (default: each read at "
                                                "its own; warned when they differ)")
    windows = cache.add_mutually_exclusive_group()
    windows.add_argument("--hop", type=whole_number, help="source frames between window starts (default: windows back to "
                                                 "back, then one ending at each video's last frame, covering every "
                                                 "video end to end)")
    windows.add_argument("--windows", type=whole_number, help="windows per video, spread evenly over it")
    cache.add_argument("--out", required=True, type=output_argument,
                       help="cache folder (an interrupted run resumes here)")
    cache.add_argument("--shard-size", type=whole_number, default=256, help="clips per shard (default 256)")
    cache.add_argument("--batch-size", type=whole_number, default=8, help="clips per VAE batch (default 8)")
    cache.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                       help="storage dtype of the latents (default float16)")
    cache.add_argument("--encode-dtype", choices=("float32", "bfloat16"), default="float32",
                       help="the VAE encoder's arithmetic: bfloat16 (autocast) is about twice as fast on a CPU with "
                            "AMX or a GPU, its latents 0.6%% of their spread from float32's on the Shapes VAE "
                            "(default float32)")
    cache.add_argument("--sample", action="store_true", help="store a posterior sample instead of the mean")
    cache.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    cache.set_defaults(handler=_run_cache)

    norm = data_sub.add_parser("vae-norm", help="set a VAE part's latent shift/scale from a video folder")
    norm.add_argument("--vae", type=path_argument, required=True,
                      help="VAE part folder; its config.yaml is rewritten in place")
    norm.add_argument("--videos", type=path_argument, required=True, help="folder of training videos")
    norm.add_argument("--size", type=whole_number, required=True, help="frame size, px")
    norm.add_argument("--frames", type=whole_number, default=4, help="frames per clip (default 4)")
    norm.add_argument("--num", type=whole_number, default=256, help="clips to measure (default 256)")
    norm.set_defaults(handler=_run_vae_norm)


# generate_shapes_dataset's arguments whose errors the command reports under the flag the user typed
SHAPES_FLAGS = {"num": "--num", "frames": "--frames", "size": "--size", "seed": "--seed", "fps": "--fps",
                "min_speed_scale": "--min-speed-scale"}


def _run_shapes(args: argparse.Namespace) -> int:
    from vidiff.data.shapes_folder import generate_shapes_dataset
    from vidiff.errors import InputError

    try:
        out = generate_shapes_dataset(args.out, args.num, frames=args.frames, size=args.size, fps=args.fps,
                                      seed=args.seed, progress=not args.no_progress,
                                      min_speed_scale=args.min_speed_scale)
    except InputError as e:  # "size must be in [32, 1024], got 30": say --size, which the user typed
        name, sep, reason = str(e).partition(" ")
        if name in SHAPES_FLAGS:
            raise InputError(SHAPES_FLAGS[name] + sep + reason) from None
        raise
    from vidiff.output_safety import one_line  # a name's control characters escaped
    print(f"wrote {args.num} Shapes clips to {one_line(str(out))}")
    return 0


def _run_cache(args: argparse.Namespace) -> int:
    from vidiff.data.latent_cache import build_latent_cache_from_folders

    out = build_latent_cache_from_folders(
        videos=args.videos, vae=args.vae, text=args.text, frames=args.frames, size=args.size, out_dir=args.out,
        shard_size=args.shard_size, batch_size=args.batch_size, dtype=args.dtype, sample=args.sample,
        progress=not args.no_progress, stride=args.stride, fps=args.fps, hop=args.hop, windows=args.windows,
        encode_dtype=args.encode_dtype,
    )
    print(f"latent cache ready in {out}")
    return 0


def _run_vae_norm(args: argparse.Namespace) -> int:
    check_vae_norm_args(args)  # before torch is imported or the VAE loads
    from vidiff.data.video_folder import VideoFolderDataset
    from vidiff.parts import load_part_weights, save_part
    from vidiff.training.latent_norm import normalize_vae_config
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(args.vae)
    dataset = VideoFolderDataset(args.videos, num_frames=args.frames, size=(args.size, args.size))
    config = normalize_vae_config(vae, dataset, args.num)
    save_part(args.vae, config, load_part_weights(args.vae))
    print(f"{args.vae}: shift_factor={config.shift_factor:.5f} scaling_factor={config.scaling_factor:.5f}")
    return 0


def check_vae_norm_args(args: argparse.Namespace) -> None:
    """Ranges and folders of `vidiff data vae-norm`, checked before anything loads."""
    from vidiff.errors import InputError
    from vidiff.io import check_folder
    from vidiff.limits import MAX_FRAMES, MAX_SIDE

    for flag, value, lo, hi in (("--size", args.size, 8, MAX_SIDE), ("--frames", args.frames, 1, MAX_FRAMES),
                                ("--num", args.num, 1, 1_000_000)):
        if not lo <= value <= hi:
            raise InputError(f"{flag} must be in [{lo}, {hi}], got {value}")
    for flag, folder in (("--vae", args.vae), ("--videos", args.videos)):
        check_folder(folder, flag)
    from pathlib import Path

    from vidiff.output_safety import check_output
    from vidiff.parts import CONFIG_NAME, WEIGHTS_NAME

    for name in (WEIGHTS_NAME, CONFIG_NAME):  # rewritten last: a read-only part was met after every clip was measured
        check_output(Path(args.vae).expanduser() / name, what="--vae")
