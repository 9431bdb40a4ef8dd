"""`vidiff eval interpolation` and `vidiff eval reconstruction`: a model's fills (beside the linear blend and
optical flow) and a VAE's round trip, scored on held-out clips (PSNR / SSIM per clip and overall).
"""
from __future__ import annotations

from pathlib import Path

from vidiff.commands.device_args import check_device_args, device_record
from vidiff.commands.eval_checks import (
    check_frame_sizes, check_positive, check_seed_and_sampler, device_and_dtype, selected_files,
)
from vidiff.commands.eval_output import check_json_out, emit


def run_interpolation(args) -> int:
    from vidiff.eval.fvd import clip_names, read_clips
    from vidiff.eval.interpolation import evaluate_interpolation, pipeline_fill
    from vidiff.errors import InputError
    from vidiff.io import check_folder

    if args.model is None:  # the baselines draw nothing: these were taken, recorded as settings, and unused
        given = [f"--{name}" for name in ("seed", "steps", "sampler", "prompt") if getattr(args, name) is not None]
        if given:
            raise InputError(f"{' / '.join(given)}: set how the model's fills are sampled; without --model only the "
                             "baselines run")
    check_device_args(args)
    args.seed = 0 if args.seed is None else args.seed
    args.prompt = "" if args.prompt is None else args.prompt
    for name in ("frames", "stride", "steps", "num", "size", "windows"):
        check_positive(name, getattr(args, name))
    if args.stride < 2:
        raise InputError(f"--stride must be at least 2, got {args.stride}")
    if args.size is not None and args.size < 11:
        raise InputError(f"--size must be at least 11 (the SSIM window), got {args.size}")
    check_seed_and_sampler(args)
    check_json_out(args, args.videos, args.model)
    files = selected_files(args.videos, args.num)
    # a small or short clip late in the folder is named before the model fills the others
    if args.frames is not None and args.frames < args.stride + 1:
        raise InputError(f"--frames {args.frames}: too few for --stride {args.stride} (needs {args.stride + 1})")
    check_frame_sizes(files, args.videos, 1, check_size=args.size is None,
                       frames_needed=args.frames or args.stride + 1,
                       needed_by=f"--frames {args.frames}" if args.frames else f"stride {args.stride}",
                       reads=args.frames)
    if args.model is not None and not (check_folder(args.model, "--model") / "pipeline.yaml").is_file():
        raise InputError(f"--model: no pipeline.yaml in {args.model}")
    passes = None
    if args.model is not None:  # the stride against the part's training record, before any weight loads
        from vidiff.commands.interpolate_plan import up_conversion_passes
        from vidiff.pipeline.config import read_pipeline_folder
        from vidiff.pipeline.trained import read_trained_records

        config = read_pipeline_folder(args.model)
        # a stride past the trained gaps is filled as `vidiff interpolate` fills it: in passes within them
        passes = up_conversion_passes(args.stride, config.interpolation.max_gap,
                                      read_trained_records(Path(args.model), config)["interpolation"],
                                      name="--stride", can_force=False)  # eval has no --force-layout
    others = {}
    if args.flow:
        from vidiff.eval.optical_flow import flow_available, flow_fill

        if not flow_available():
            raise InputError("--flow: needs OpenCV (pip install opencv-python-headless, or 'vidiff[eval]')")
        others["flow"] = flow_fill
    fill = None
    device, dtype = device_and_dtype(args)
    if args.model is not None:
        from vidiff.pipeline import VideoPipeline

        from vidiff.commands.interpolate import DECODE_MEMORY_GIB, MAX_TILE, OVERLAP
        from vidiff.commands.interpolate_plan import PASS_SEED_STEP
        from vidiff.eval.interpolation import chunked_fill, passes_fill
        from vidiff.pipeline.upconvert import plan_passes

        pipe = VideoPipeline.from_pretrained(args.model, device=device, dtype=dtype)

        def plan(stride: int, height: int, width: int) -> tuple[int, int]:  # as `vidiff interpolate` plans a pass
            return plan_passes(stride, height, width, multiple=pipe.frame_multiple,
                               budget=int(DECODE_MEMORY_GIB * 2**30), decode_windows=pipe.vae.decode_windows,
                               decode_bytes=pipe.vae.decode_bytes, max_tile=MAX_TILE)

        # whole clips in one pass took memory in proportion to their length: chunked as `vidiff interpolate` fills
        fill = chunked_fill(pipeline_fill(pipe, prompt=args.prompt, steps=args.steps, sampler=args.sampler), plan,
                            multiple=pipe.frame_multiple, overlap=OVERLAP, progress=not args.no_progress)
        if len(passes) > 1:
            fill = passes_fill(fill, passes, PASS_SEED_STEP)
    clips, names, groups = _interpolation_clips(read_clips(files, args.frames, args.size),
                                                clip_names(files, args.videos), args)
    result = evaluate_interpolation(clips, fill, args.stride, seed=args.seed, names=names, others=others,
                                    groups=groups, progress=not args.no_progress)
    settings = {"model": None if args.model is None else str(args.model), "videos": str(args.videos),
                "stride": args.stride, "frames": args.frames, "size": args.size, "windows": args.windows,
                "flow": args.flow, "seed": args.seed, "steps": args.steps, "sampler": args.sampler,
                "passes": passes,
                "prompt": args.prompt,
                **(device_record(device, dtype) if args.model is not None else {})}
    return emit(args, "interpolation", settings, *interpolation_table(result), result)


def _interpolation_clips(read, files: list[str], args):
    """(clips, names, groups): each clip (read centre-cropped and resized with --size) cut into --windows windows."""
    from vidiff.eval.interpolation import spread_windows

    clips, names, groups = [], [], []
    for name, (_, frames) in zip(files, read):
        if args.windows is None:
            clips.append(frames), names.append(name), groups.append(name)
            continue
        for start, window in spread_windows(frames, args.stride, args.windows, name):
            clips.append(window), names.append(f"{name}@{start}"), groups.append(name)
    return clips, names, groups if args.windows is not None else None


METHODS = (("model", "model"), ("linear blend", "baseline"), ("optical flow", "flow"))


def interpolation_table(result: dict) -> tuple[list[str], list[list]]:
    columns = ["method", "PSNR (dB)", "SSIM", "frames"] + [f"PSNR t={t}" for t in range(1, result["stride"])]
    rows = [[label, result[key]["psnr"], result[key]["ssim"], result["num_frames"], *result[key]["psnr_by_offset"]]
            for label, key in METHODS if key in result]
    blank = [None] * (result["stride"] - 1)
    for group, methods in result.get("groups", {}).items():
        rows += [[f"{group}: {label}", methods[key]["psnr"], methods[key]["ssim"], methods[key]["frames"], *blank]
                 for label, key in METHODS if key in methods]
    return columns, rows


def run_reconstruction(args) -> int:
    from vidiff.eval.fvd import clip_names, read_clips
    from vidiff.eval.reconstruction import evaluate_reconstruction
    from vidiff.errors import InputError
    from vidiff.io import check_folder
    from vidiff.vae import AutoencoderKL

    check_device_args(args)
    for name in ("frames", "num", "size"):
        check_positive(name, getattr(args, name))
    if args.size is not None and args.size < 11:
        raise InputError(f"--size must be at least 11 (the SSIM window), got {args.size}")
    check_json_out(args, args.videos, args.vae)
    files = selected_files(args.videos, args.num)
    from vidiff.models.vae import VAEConfig
    from vidiff.parts import load_part_config, refuse_diffusers_folder

    vae_folder = check_folder(args.vae, "--vae")
    refuse_diffusers_folder(vae_folder)  # before "no config.yaml", which it explains
    if not (vae_folder / "config.yaml").is_file():
        raise InputError(f"--vae: no config.yaml in {args.vae}")

    factor = load_part_config(args.vae, VAEConfig).downsample_factor  # its config only: the weights load below
    if args.size is not None and args.size % factor:
        raise InputError(f"--size {args.size}: must be a multiple of the VAE's downsampling factor {factor} "
                         f"(e.g. {max(args.size // factor * factor, -(-11 // factor) * factor)})")
    counts = check_frame_sizes(files, args.videos, factor, check_size=args.size is None,
                                frames_needed=args.frames or 1, needed_by=f"--frames {args.frames}",
                                reads=args.frames)
    device, dtype = device_and_dtype(args)
    vae = AutoencoderKL.load(args.vae, device=device, dtype=dtype)
    clips = (frames for _, frames in read_clips(files, args.frames, args.size))
    result = evaluate_reconstruction(vae, clips, names=clip_names(files, args.videos), device=device,
                                     progress=not args.no_progress,
                                     total_frames=sum(min(c, args.frames or c) for c in counts))
    settings = {"vae": str(args.vae), "videos": str(args.videos), "frames": args.frames, "size": args.size,
                **device_record(device, dtype)}
    rows = [[c["name"], c["psnr"], c["ssim"], c["frames"]] for c in result["clips"]]
    rows.append(["mean (all frames)", result["psnr"], result["ssim"], result["num_frames"]])
    return emit(args, "reconstruction", settings, ["clip", "PSNR (dB)", "SSIM", "frames"], rows, result)
