"""`vidiff eval shapes|fvd|interpolation|reconstruction`: print a table, optionally write JSON (`--json OUT`).

Every JSON file has the same outer form, which `vidiff report` renders as a table:
{"eval": NAME, "settings": {...}, "columns": [...], "rows": [[...], ...], "result": {...full result...}}.
Non-finite numbers (PSNR of identical frames) are written as the strings "inf" / "-inf" / "nan".
"""
from __future__ import annotations

from pathlib import Path

from vidiff.commands import folder_argument, output_argument, path_argument
from vidiff.commands.device_args import add_device_arguments, check_device_args, device_record
from vidiff.commands.eval_output import check_json_out, emit
from vidiff.pipeline.config import SAMPLERS

# what --dtype auto / bf16 changes, measured once on realshort.mp4 (320x240) at stride 4 (docs/evaluation.md); fp32
# stays the default so that scores compare with the documented ones
DTYPE_NOTE = ("; auto / bf16 is about 2x faster on such a CPU: on realshort.mp4 the bundled real-interp fill at stride "
              "4 scored 26.84 dB against fp32's 26.82, its VAE round trip 28.53 against 28.49")


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate clips, a VAE or an interpolation model (tables + JSON)")
    kinds = parser.add_subparsers(dest="eval_kind", metavar="KIND")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    p = kinds.add_parser("shapes", help="Shapes accuracy of a folder of generated clips (colour, shape, motion)")
    p.add_argument("folder", type=path_argument,
                   help="folder of clips with prompts (sidecar JSON, captions or metadata.jsonl)")
    _json_option(p)
    p.set_defaults(handler=run_shapes)

    p = kinds.add_parser("fvd", help="Frechet Video Distance with a TorchScript feature network you supply")
    p.add_argument("--real", type=path_argument, required=True, help="folder of reference clips")
    p.add_argument("--fake", type=path_argument, required=True, help="folder of generated clips")
    p.add_argument("--network", type=path_argument, required=True,
                   help="TorchScript feature network (.pt), e.g. an exported I3D")
    p.add_argument("--frames", type=int, default=16, help="frames per clip fed to the network (default 16)")
    p.add_argument("--size", type=int, default=224, help="frames are resized to SIZE x SIZE (default 224)")
    p.add_argument("--num", type=int, default=None, help="clips per set (default: all)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")
    p.add_argument("--layout", choices=("bcthw", "btchw", "bthwc"), default="bcthw",
                   help="input axis order the network expects (default bcthw)")
    p.add_argument("--range", dest="value_range", choices=("signed", "unit", "byte"), default="signed",
                   help="input range the network expects: signed [-1,1], unit [0,1] or byte [0,255] (default signed)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    _json_option(p)
    p.set_defaults(handler=run_fvd)

    p = kinds.add_parser("interpolation", help="PSNR/SSIM of frames filled between true keyframes, vs linear blend "
                                               "and optical flow")
    p.add_argument("--model", default=None, type=folder_argument,
                   help="pipeline folder (pipeline.yaml); without it only the baselines run")
    p.add_argument("--videos", type=path_argument, required=True, help="folder of held-out clips")
    p.add_argument("--stride", type=int, required=True, help="keep every STRIDE-th true frame as a keyframe")
    p.add_argument("--frames", type=int, default=None, help="frames read per clip (default: all)")
    p.add_argument("--size", type=int, default=None,
                   help="centre square crop of each clip, area-resized to SIZE x SIZE (default: frames as they are)")
    p.add_argument("--windows", type=int, default=None,
                   help="score N windows of STRIDE + 1 frames spread evenly over each clip (default: the whole "
                        "clip, keyframes at 0, STRIDE, ...); rows per clip are then added")
    p.add_argument("--flow", action="store_true",
                   help="also score the optical-flow interpolator (OpenCV DIS flow both ways; needs opencv)")
    p.add_argument("--num", type=int, default=None, help="clips to evaluate (default: all)")
    p.add_argument("--seed", type=int, default=None, help="with --model: clip i is filled with seed SEED + i (default 0)")
    p.add_argument("--steps", type=int, default=None, help="with --model: sampling steps (default: the pipeline's)")
    p.add_argument("--sampler", default=None,
                   help=f"with --model: {', '.join(SAMPLERS[:-1])} or {SAMPLERS[-1]} (default: the pipeline's)")
    p.add_argument("--prompt", default=None, help="with --model: text prompt for the fill (default empty)")
    add_device_arguments(p, auto=True, note=DTYPE_NOTE)
    _progress_option(p)
    _json_option(p)
    p.set_defaults(handler=run_interpolation)

    p = kinds.add_parser("reconstruction", help="VAE round-trip PSNR/SSIM over a folder of clips")
    p.add_argument("--vae", type=path_argument, required=True, help="VAE part folder (config.yaml + model.safetensors)")
    p.add_argument("--videos", type=path_argument, required=True, help="folder of clips")
    p.add_argument("--frames", type=int, default=None, help="frames read per clip (default: all)")
    p.add_argument("--size", type=int, default=None,
                   help="centre square crop of each clip, area-resized to SIZE x SIZE (default: frames as they are)")
    p.add_argument("--num", type=int, default=None, help="clips to evaluate (default: all)")
    add_device_arguments(p, auto=True, note=DTYPE_NOTE)
    _progress_option(p)
    _json_option(p)
    p.set_defaults(handler=run_reconstruction)


def _json_option(p) -> None:
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", type=output_argument,
                   help="also write the result as JSON to OUT")


def _progress_option(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")  # as `data cache` names it


def _device_and_dtype(args) -> tuple[str, object]:
    """--device / --threads / --dtype as `vidiff interpolate` resolves them (vidiff/commands/device_args.py)."""
    from vidiff.commands.device_args import resolve_device, torch_dtype

    device = resolve_device(args)
    return device, torch_dtype(args.dtype, device)


def _selected_files(folder: str, num: int | None, option: str = "videos"):
    from vidiff.errors import InputError
    from vidiff.eval.fvd import video_files

    if num is not None and num < 1:
        raise InputError(f"--num must be positive, got {num}")
    files = video_files(folder, option)
    return files[:num] if num is not None else files


def _positive(name: str, value) -> None:
    """--NAME must be positive and at most its limit (vidiff/limits.py), before anything loads."""
    from vidiff import limits
    from vidiff.errors import InputError

    high = {"frames": limits.MAX_FRAMES, "size": limits.MAX_SIDE, "stride": limits.MAX_STRIDE,
            "steps": limits.MAX_STEPS, "batch-size": 4096, "num": 10_000_000}.get(name)
    if value is not None and value < 1:
        raise InputError(f"--{name} must be positive, got {value}")
    if value is not None and high is not None and value > high:
        raise InputError(f"--{name} must be at most {high}, got {value}")


def _check_seed_and_sampler(args) -> None:
    """--seed and --sampler of `eval interpolation`, as `vidiff interpolate` checks them: before the clips are
    read or the pipeline loads (clip i's passes use seed + i + pass * 2**32, wrapping around at 2**63)."""
    from vidiff.errors import InputError
    from vidiff.limits import check_seed, short_repr

    check_seed(args.seed, "--seed")
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise InputError(f"--sampler {short_repr(args.sampler)} is unknown; choose one of {', '.join(SAMPLERS)}")


# ---- handlers ----


def run_shapes(args) -> int:
    from vidiff.eval.shapes import evaluate_shapes_folder, format_shapes_table

    check_json_out(args, args.folder)
    result = evaluate_shapes_folder(args.folder)
    if not result["num_clips"]:  # a table of zeros and exit 0 read as an evaluation that ran
        from vidiff.errors import InputError

        first = result["skipped"][0]
        raise InputError(f"FOLDER {args.folder}: none of its {len(result['skipped'])} video files has a usable "
                         f"prompt, so nothing was scored ({first['file']}: {first['reason']})")
    counts = result.get("counts", {})
    rows = [[a, counts.get(a, {}).get("correct"), counts.get(a, {}).get("total"), acc]
            for a, acc in result.get("accuracy", {}).items()]
    return emit(args, "shapes", {"folder": str(args.folder)}, ["attribute", "correct", "total", "accuracy"], rows,
                result, text=format_shapes_table(result))


def run_fvd(args) -> int:
    from vidiff.errors import InputError
    from vidiff.eval.fvd import FeatureProtocol, fvd, load_network

    check_eval_device(args.device)
    for name in ("frames", "size", "num", "batch_size"):
        _positive(name.replace("_", "-"), getattr(args, name))
    check_json_out(args, args.real, args.fake, args.network)
    if args.num is not None and args.num < 2:
        raise InputError(f"--num must be at least 2 (a covariance needs two clips), got {args.num}")
    folders = {option: _selected_files(getattr(args, option), args.num, option) for option in ("real", "fake")}
    network = load_network(args.network, args.device)  # a bad network file fails before any video is decoded
    for option, files in folders.items():  # before any features: a short or damaged clip late in --fake was met
        # after every --real clip and the fakes before it had run through the network
        _check_frame_sizes(files, getattr(args, option), 1, check_size=False, frames_needed=args.frames,
                           needed_by=f"--frames {args.frames}", reads=args.frames, option=option,
                           names=[str(f) for f in files])
    protocol = FeatureProtocol(clip_length=args.frames, resolution=args.size, num_samples=args.num,
                               layout=args.layout, value_range=args.value_range, batch_size=args.batch_size)
    result = fvd(args.real, args.fake, network, protocol, device=args.device)
    settings = {"real": str(args.real), "fake": str(args.fake), "network": str(args.network), **result["protocol"]}
    rows = [["FVD", result["fvd"], result["num_a"], result["num_b"], result["feature_dim"]]]
    return emit(args, "fvd", settings, ["metric", "value", "real clips", "fake clips", "feature dim"], rows, result)


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
        _positive(name, getattr(args, name))
    if args.stride < 2:
        raise InputError(f"--stride must be at least 2, got {args.stride}")
    if args.size is not None and args.size < 11:
        raise InputError(f"--size must be at least 11 (the SSIM window), got {args.size}")
    _check_seed_and_sampler(args)
    check_json_out(args, args.videos, args.model)
    files = _selected_files(args.videos, args.num)
    # a small or short clip late in the folder is named before the model fills the others
    if args.frames is not None and args.frames < args.stride + 1:
        raise InputError(f"--frames {args.frames}: too few for --stride {args.stride} (needs {args.stride + 1})")
    _check_frame_sizes(files, args.videos, 1, check_size=args.size is None,
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
    device, dtype = _device_and_dtype(args)
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
    clips, names, groups = _interpolation_clips(read_clips(files, args.frames), clip_names(files, args.videos), args)
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
    """(clips, names, groups): each clip centre-cropped and resized with --size, cut into --windows windows."""
    from vidiff.data.real_footage import center_square
    from vidiff.eval.interpolation import spread_windows

    clips, names, groups = [], [], []
    for name, (_, frames) in zip(files, read):
        if args.size is not None:
            frames = center_square(frames, args.size)
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
        _positive(name, getattr(args, name))
    if args.size is not None and args.size < 11:
        raise InputError(f"--size must be at least 11 (the SSIM window), got {args.size}")
    check_json_out(args, args.videos, args.vae)
    files = _selected_files(args.videos, args.num)
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
    counts = _check_frame_sizes(files, args.videos, factor, check_size=args.size is None,
                                frames_needed=args.frames or 1, needed_by=f"--frames {args.frames}",
                                reads=args.frames)
    device, dtype = _device_and_dtype(args)
    vae = AutoencoderKL.load(args.vae, device=device, dtype=dtype)
    from vidiff.data.real_footage import center_square

    clips = (frames if args.size is None else center_square(frames, args.size)
             for _, frames in read_clips(files, args.frames))
    result = evaluate_reconstruction(vae, clips, names=clip_names(files, args.videos), device=device,
                                     progress=not args.no_progress,
                                     total_frames=sum(min(c, args.frames or c) for c in counts))
    settings = {"vae": str(args.vae), "videos": str(args.videos), "frames": args.frames, "size": args.size,
                **device_record(device, dtype)}
    rows = [[c["name"], c["psnr"], c["ssim"], c["frames"]] for c in result["clips"]]
    rows.append(["mean (all frames)", result["psnr"], result["ssim"], result["num_frames"]])
    return emit(args, "reconstruction", settings, ["clip", "PSNR (dB)", "SSIM", "frames"], rows, result)


def _check_frame_sizes(files, folder, multiple: int, check_size: bool = True, frames_needed: int = 0,
                       needed_by: str = "", reads: int | None = None, option: str = "videos",
                       names: list[str] | None = None) -> list[int]:
    """Each clip's frames (from its header, upright) at least the SSIM window and, for a VAE round trip, a multiple
    of its factor (unless not `check_size`: --size resizes them), and at least `frames_needed` frames (what the
    option `needed_by` asks); checked before anything loads, naming the clip by its path in `folder` (a clip late in
    the folder failed after the earlier ones were scored, its size naming no clip). The frames the command reads
    (the first `reads`, or all) are decoded once, none kept: a damaged frame or a size change part-way through a
    clip late in the folder was met after the model had scored the clips before it. `names`: how the clips are
    named instead (two folders: their paths). Returns the decoded counts."""
    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.eval.fvd import clip_names
    from vidiff.eval.metrics import SSIM_WINDOW

    counts = []
    for path, name in zip(files, names or clip_names(files, folder)):
        try:
            info = io.probe_video(path)
            count = io.count_frames(path, reads)
        except VideoDecodeError as e:
            raise InputError(f"--{option}: {e}") from None
        if count < frames_needed:
            raise InputError(f"{name}: {count} frames is too short for {needed_by} (needs {frames_needed})")
        counts.append(count)
        if not check_size:
            continue
        if min(info.width, info.height) < SSIM_WINDOW or info.width % multiple or info.height % multiple:
            need = f"at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (the SSIM window)"
            if multiple > 1:
                need += f" and sides that are multiples of the VAE's factor {multiple}"
            raise InputError(f"{name}: frames of {info.width}x{info.height}; the scores need {need}: --size "
                             "N scores the centre square resized to N x N")
    return counts


def check_eval_device(device: str) -> None:
    """--device of the eval commands, before a network loads ("cuda" on a CPU machine was reported as a TorchScript
    file that could not be loaded)."""
    from vidiff.pipeline.placement import check_placement

    check_placement(device, None, device_label=f"--device {device}")
