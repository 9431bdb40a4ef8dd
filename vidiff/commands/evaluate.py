"""`vidiff eval shapes|fvd|interpolation|reconstruction`: print a table, optionally write JSON (`--json OUT`).

Every JSON file has the same outer form, which `vidiff report` renders as a table:
{"eval": NAME, "settings": {...}, "columns": [...], "rows": [[...], ...], "result": {...full result...}}.
Non-finite numbers (PSNR of identical frames) are written as the strings "inf" / "-inf" / "nan". The handlers of
interpolation and reconstruction are eval_heldout.py; what every eval checks before anything loads, eval_checks.py.
"""
from __future__ import annotations

from vidiff.commands import folder_argument, output_argument, path_argument, whole_number
from vidiff.commands.device_args import add_device_arguments
from vidiff.commands.eval_checks import check_eval_device, check_frame_sizes, check_positive
from vidiff.commands.eval_heldout import run_interpolation, run_reconstruction
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
    p.add_argument("--frames", type=whole_number, default=16, help="frames per clip fed to the network (default 16)")
    p.add_argument("--size", type=whole_number, default=224, help="frames are resized to SIZE x SIZE (default 224)")
    p.add_argument("--num", type=whole_number, default=None, help="clips per set (default: all)")
    p.add_argument("--batch-size", type=whole_number, default=8, help="clips per forward pass (default 8)")
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
    p.add_argument("--stride", type=whole_number, required=True, help="keep every STRIDE-th true frame as a keyframe")
    p.add_argument("--frames", type=whole_number, default=None, help="frames read per clip (default: all)")
    p.add_argument("--size", type=whole_number, default=None,
                   help="centre square crop of each clip, area-resized to SIZE x SIZE (default: frames as they are)")
    p.add_argument("--windows", type=whole_number, default=None,
                   help="score N windows of STRIDE + 1 frames spread evenly over each clip (default: the whole "
                        "clip, keyframes at 0, STRIDE, ...); rows per clip are then added")
    p.add_argument("--flow", action="store_true",
                   help="also score the optical-flow interpolator (OpenCV DIS flow both ways; needs opencv)")
    p.add_argument("--num", type=whole_number, default=None, help="clips to evaluate (default: all)")
    p.add_argument("--seed", type=whole_number, default=None, help="with --model: clip i is filled with seed SEED + i (default 0)")
    p.add_argument("--steps", type=whole_number, default=None, help="with --model: sampling steps (default: the pipeline's)")
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
    p.add_argument("--frames", type=whole_number, default=None, help="frames read per clip (default: all)")
    p.add_argument("--size", type=whole_number, default=None,
                   help="centre square crop of each clip, area-resized to SIZE x SIZE (default: frames as they are)")
    p.add_argument("--num", type=whole_number, default=None, help="clips to evaluate (default: all)")
    add_device_arguments(p, auto=True, note=DTYPE_NOTE)
    _progress_option(p)
    _json_option(p)
    p.set_defaults(handler=run_reconstruction)


def _json_option(p) -> None:
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", type=output_argument,
                   help="also write the result as JSON to OUT")


def _progress_option(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")  # as `data cache` names it


# ---- handlers ----


def run_shapes(args) -> int:
    from vidiff.eval.shapes import evaluate_shapes_folder, format_shapes_table

    check_json_out(args, args.folder)
    result = evaluate_shapes_folder(args.folder)
    if not result["num_clips"]:  # a table of zeros and exit 0 read as an evaluation that ran
        from vidiff.errors import InputError

        first, absent = result["skipped"][0], result["metadata_without_clip"]
        # rows naming other files are the likely cause: names written another way ("clip_1.mp4" for clip_000001.mp4)
        rows = f"; metadata.jsonl names {len(absent)} file(s) not in it, e.g. {absent[0]}" if absent else ""
        raise InputError(f"FOLDER {args.folder}: none of its {len(result['skipped'])} video files has a usable "
                         f"prompt, so nothing was scored ({first['file']}: {first['reason']}){rows}")
    counts = result.get("counts", {})
    rows = [[a, counts.get(a, {}).get("correct"), counts.get(a, {}).get("total"), acc]
            for a, acc in result.get("accuracy", {}).items()]
    return emit(args, "shapes", {"folder": str(args.folder)}, ["attribute", "correct", "total", "accuracy"], rows,
                result, text=format_shapes_table(result))


def run_fvd(args) -> int:
    from vidiff.errors import InputError
    from vidiff.eval.fvd import FeatureProtocol, clip_set, fvd, load_network

    check_eval_device(args.device)
    for name in ("frames", "size", "num", "batch_size"):
        check_positive(name.replace("_", "-"), getattr(args, name))
    check_json_out(args, args.real, args.fake, args.network)
    if args.num is not None and args.num < 2:
        raise InputError(f"--num must be at least 2 (a covariance needs two clips), got {args.num}")
    folders = {option: clip_set(getattr(args, option), option, args.num) for option in ("real", "fake")}
    network = load_network(args.network, args.device)  # a bad network file fails before any video is decoded
    for option, files in folders.items():  # before any features: a short or damaged clip late in --fake was met
        # after every --real clip and the fakes before it had run through the network
        check_frame_sizes(files, getattr(args, option), 1, check_size=False, frames_needed=args.frames,
                           needed_by=f"--frames {args.frames}", reads=args.frames, option=option,
                           names=[str(f) for f in files])
    protocol = FeatureProtocol(clip_length=args.frames, resolution=args.size, num_samples=args.num,
                               layout=args.layout, value_range=args.value_range, batch_size=args.batch_size)
    result = fvd(args.real, args.fake, network, protocol, device=args.device)
    settings = {"real": str(args.real), "fake": str(args.fake), "network": str(args.network), **result["protocol"]}
    rows = [["FVD", result["fvd"], result["num_a"], result["num_b"], result["feature_dim"]]]
    return emit(args, "fvd", settings, ["metric", "value", "real clips", "fake clips", "feature dim"], rows, result)
