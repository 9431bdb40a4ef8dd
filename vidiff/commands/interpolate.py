"""`vidiff interpolate VIDEO --factor N | --fps TARGET -o OUT`: frame-rate up-conversion at the clip's own size.

The output has factor * (F - 1) + 1 frames, the input frames exactly at every factor-th position, written at
fps * factor (with --slow-motion at fps, so that the clip plays factor times longer). The gaps are filled by the
pipeline's interpolation part (`VideoPipeline.fill_between`), in chunks of input frames and overlapping spatial
tiles (vidiff/pipeline/upconvert.py); frames are decoded, filled and encoded chunk by chunk, and the chunk and tile
follow from --decode-memory and the VAE's decode passes, so memory stays bounded whatever the clip's length and size.
Every argument, the input's header and the pipeline folder are checked before torch is imported or weights load,
and every frame is decoded once (not kept) before torch is imported.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from vidiff import bundled_paths
from vidiff.commands import folder_argument, output_argument, path_argument, whole_number
from vidiff.commands.interpolate_plan import (
    BF16_SPEEDUP,
    PASS_SEED_STEP,
    cpu_time_note,
    over_budget_note,
    up_conversion_passes,
)
from vidiff.commands.device_args import (
    add_device_arguments,
    check_device_args,
    device_record,
    resolve_device,
    torch_dtype,
)
from vidiff.pipeline.config import SAMPLERS

BUNDLED = bundled_paths.BUNDLED / "real-interp"
OUTPUT_SUFFIXES = (".mp4", ".webm", ".gif")
FPS_TOLERANCE = 0.02  # --fps must be within 2% of an integer multiple of the clip's rate
MAX_TILE = 384  # largest automatic tile side: the U-Net's attention grows with the square of the tile's area
OVERLAP = 32  # default --overlap, cut to half the tile for a smaller --tile
DECODE_MEMORY_GIB = 1.5  # default --decode-memory (`eval interpolation` plans its chunks with it too)


def register(sub) -> None:
    p = sub.add_parser("interpolate", help="raise a clip's frame rate by filling frames between its frames",
                       description="Frame-rate up-conversion: FACTOR - 1 new frames between every two frames of "
                                   "VIDEO, at its own resolution; the input frames are kept exactly.")
    p.add_argument("video", type=path_argument,
                   help="clip to up-convert (any size; padded to the model's multiple and cropped back)")
    p.add_argument("-o", "--output", required=True, type=output_argument,
                   help="output file: .mp4, .webm or .gif (+ OUTPUT.json sidecar); an existing one is replaced")
    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument("--factor", type=whole_number, help="output frames per input frame interval (2 = double the rate); a "
                                                 "factor past the pipeline's trained gaps runs as passes within "
                                                 "them (16 = 4 x 4)")
    rate.add_argument("--fps", type=float, help="target frame rate; must be an integer multiple of the clip's")
    p.add_argument("--slow-motion", action="store_true",
                   help="write the frames at the clip's own fps, so that it plays FACTOR times longer (slow "
                        "motion; with --factor), instead of at fps x FACTOR")
    p.add_argument("--model", default=None, type=folder_argument,
                   help=f"interpolation pipeline folder (default: the bundled {BUNDLED.name} pipeline)")
    p.add_argument("--seed", type=whole_number, default=0, help="seed of the first chunk, 0 to 2**63 - 1; chunk i uses seed + i "
                                                           "(default 0)")
    p.add_argument("--steps", type=whole_number, default=None, help="sampler steps (default: pipeline.yaml)")
    p.add_argument("--sampler", default=None,
                   help=f"sampler: {', '.join(SAMPLERS[:-1])} or {SAMPLERS[-1]} (default: pipeline.yaml)")
    p.add_argument("--tile", type=whole_number, default=None,
                   help=f"largest tile side in pixels (default: the largest up to {MAX_TILE} that fits "
                        "--decode-memory)")
    p.add_argument("--overlap", type=whole_number, default=None,
                   help=f"pixels neighbouring tiles share, at most half of --tile (default {OVERLAP}, or half of "
                        "--tile when that is less)")
    p.add_argument("--chunk", type=whole_number, default=None,
                   help="input frames per pass (default: what fits --decode-memory with the least decoding)")
    p.add_argument("--decode-memory", type=float, default=DECODE_MEMORY_GIB, metavar="GIB",
                   help="working memory one VAE decode pass may take with the chunk's blend of its tiles (24 "
                        "bytes per pixel of each output frame), in GiB; sets --chunk and --tile when they are not "
                        f"given (default {DECODE_MEMORY_GIB:g})")
    add_device_arguments(p, dtype="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force-layout", action="store_true",
                   help="run a factor the interpolation part was not trained on (with a warning) instead of refusing")
    p.set_defaults(handler=run)


def validate(args):
    """Checks every argument, the input's header and frames and the pipeline folder; returns (model folder, probe
    info, factor, the factors of its passes, output fps). Nothing heavy is imported and no weights load."""
    from vidiff import io
    from vidiff.commands.inputs import probe_clip, warn_if_anamorphic, warn_if_audio
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.limits import MAX_FRAMES, MAX_SIDE, MAX_STEPS, MAX_STRIDE, check_int, check_seed, short_repr
    from vidiff.output_safety import check_output, output_path, shown
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.pipeline.trained import read_trained_records
    from vidiff.sidecar import sidecar_path
    from vidiff.video_writer import check_fps, fps_limits, written_size

    output = output_path(args.output)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"-o {shown(args.output)}: the output suffix must be one of {', '.join(OUTPUT_SUFFIXES)}")
    if args.factor is not None:
        check_int(args.factor, "--factor", 2, MAX_STRIDE)
    elif not math.isfinite(args.fps) or args.fps <= 0:
        raise InputError(f"--fps must be a positive number, got {args.fps}")
    if args.steps is not None:
        check_int(args.steps, "--steps", 1, MAX_STEPS)
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise InputError(f"--sampler {short_repr(args.sampler)} is unknown; choose one of {', '.join(SAMPLERS)}")
    if args.tile is not None:
        check_int(args.tile, "--tile", 16, MAX_SIDE)
    if args.overlap is None:  # the default must not refuse a small --tile that the user gave alone
        args.overlap = min(OVERLAP, (args.tile or MAX_TILE) // 2)
    check_int(args.overlap, "--overlap", 0, (args.tile or MAX_TILE) // 2)
    if args.chunk is not None:
        check_int(args.chunk, "--chunk", 2, 256)
    if not math.isfinite(args.decode_memory) or not 0.05 <= args.decode_memory <= 1024:
        raise InputError(f"--decode-memory must be a number of GiB in [0.05, 1024], got {args.decode_memory}")
    check_seed(args.seed, "--seed")  # pass i's chunk j: seed + i * PASS_SEED_STEP + j, wrapping around at 2**63
    check_device_args(args)
    video = Path(args.video)
    for file in (output, sidecar_path(output)):
        check_output(file, [video], what="-o")
    info = probe_clip(video)  # header only
    info = _timed_frames(video, info)
    if info.num_frames < 2:  # a count from the duration can be short (MPEG-PS estimates it from the bitrate)
        try:
            decoded = io.count_frames(video, at_most=2)
        except VideoDecodeError as e:
            raise InputError(f"video {e}") from None
        if decoded < 2:
            raise InputError(f"video {shown(video)}: {decoded} frame(s); interpolation needs at least 2")
    factor = args.factor
    if factor is None:
        factor = round(args.fps / info.fps)
        if factor < 2 or abs(factor * info.fps - args.fps) > FPS_TOLERANCE * args.fps:
            raise InputError(f"--fps {args.fps:g}: not an integer multiple (2x or more) of the clip's "
                             f"{info.fps:g} fps; give --factor, or --fps {2 * info.fps:g}, {3 * info.fps:g}, ...")
        check_int(factor, "--fps / the clip's fps", 2, MAX_STRIDE)
    if args.slow_motion:
        if args.fps is not None:
            raise InputError(f"--slow-motion writes at the clip's {info.fps:g} fps; give --factor instead of "
                             f"--fps {args.fps:g}")
        out_fps = check_fps(info.fps, suffix, f"video {shown(video)} plays at {info.fps:g} fps; the output rate")
    else:
        try:
            out_fps = check_fps(info.fps * factor, suffix, f"video {shown(video)} plays at {info.fps:g} fps; the "
                                                           f"output rate {info.fps:g} x {factor}")
        except InputError as e:
            if info.fps * factor <= fps_limits(suffix)[1] or args.fps is not None:
                raise
            raise InputError(f"{e}; --slow-motion writes the frames at the clip's {info.fps:g} fps (slow motion)") \
                from None
    if args.fps is not None and abs(out_fps - args.fps) > 1e-4 * args.fps:  # e.g. --fps 60 on a 29.97 fps clip
        warnings.warn(f"--fps {args.fps:g}: the output plays at {out_fps:g} fps, {factor} x the clip's {info.fps:g} "
                      "(every input frame is kept at its own time)", stacklevel=1)
    warn_if_audio(info, video)
    warn_if_anamorphic(info, video, suffix)
    stored = written_size(info.width, info.height, suffix)
    if stored != (info.width, info.height):
        warnings.warn(f"video {shown(video)} is {info.width}x{info.height}: the {suffix} output is stored as "
                      f"{stored[0]}x{stored[1]} (even sides for yuv420p; the last row / column is repeated; a "
                      ".gif keeps the size)", stacklevel=1)
    total = factor * (info.num_frames - 1) + 1
    if total > MAX_FRAMES * 64:
        raise InputError(f"video {shown(video)}: {info.num_frames} frames x {factor} make {total} frames; "
                         f"the limit is {MAX_FRAMES * 64}")
    model = Path(args.model) if args.model else BUNDLED
    if args.model is None and not model.is_dir():
        raise InputError(f"--model: no interpolation pipeline is bundled yet ({BUNDLED.name}: docs/real_footage.md); "
                         "give --model FOLDER")
    config = read_pipeline_folder(model)
    trained = read_trained_records(model, config)
    passes = up_conversion_passes(factor, config.interpolation.max_gap, trained["interpolation"], args.force_layout)
    try:  # every frame decoded once (none kept), last: a damaged frame or a size change late in the clip was met
        # mid-run, after minutes of sampling, and every chunk filled by then was lost (a frame decodes in milliseconds)
        decoded = io.count_frames(video, quiet=True)  # _timed_frames said a cut tail already, in its own words
    except VideoDecodeError as e:
        raise InputError(f"video {e}") from None
    if decoded < 2:
        raise InputError(f"video {shown(video)}: {decoded} frame(s) decoded; interpolation needs at least 2")
    return model, info, factor, passes, out_fps


def _timed_frames(video: Path, info):
    """The probe's info with the frames there are and, where they are far sparser than the header says, their own
    mean rate, which the output's rate multiplies (inputs.at_own_rate). From the packets' timestamps, nothing
    decoded."""
    from dataclasses import replace

    from vidiff.commands.inputs import at_own_rate, clip_timing
    from vidiff.frame_timing import missing_tail
    from vidiff.output_safety import shown

    measured = clip_timing(video, info)
    if measured is None:
        return info
    timed = at_own_rate(video, info, *measured, "the output lasts as long as the clip")
    if timed is not info:
        return timed
    short = missing_tail(*measured)
    if short:  # said now, before the work, not only once the decoding reaches the cut
        warnings.warn(f"video {shown(video)} looks cut short or damaged: {short}; up-converting the frames it has",
                      stacklevel=2)
        return replace(info, num_frames=measured[0].frames)
    return info


def run(args) -> int:
    import time
    from collections import deque

    start = time.perf_counter()
    model, info, factor, passes, out_fps = validate(args)
    import torch

    from vidiff import io
    from vidiff.errors import InputError, VideoDecodeError
    from vidiff.limits import offset_seed
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.upconvert import (
        decode_peak,
        output_length,
        plan_passes,
        round_up,
        tiling_ran,
        upconvert_frames,
    )
    from vidiff.sidecar import build_sidecar, remove_descriptions, weights_checksum, write_sidecar
    from vidiff.video_writer import write_video_frames, written_size

    device = resolve_device(args)
    dtype = torch_dtype(args.dtype, device)
    if device == "cpu":
        note = cpu_time_note(info.width, info.height, output_length(info.num_frames, factor),
                             BF16_SPEEDUP if dtype == torch.bfloat16 else 1.0)
        if note:
            warnings.warn(note, stacklevel=1)
    frames = io.iter_video(args.video)  # read as needed: a clip of any length stays in the memory of one chunk
    pipe = VideoPipeline.from_pretrained(model, device=device, dtype=dtype)
    parts = {"vae": model / pipe.config.parts.vae, "interpolation": model / pipe.config.parts.interpolation}
    checksums = weights_checksum(model, parts)

    def fill(keys, stride, seed):
        return pipe.fill_between(keys, stride, seed=seed, steps=args.steps, sampler=args.sampler,
                                 force_layout=args.force_layout)

    multiple = pipe.frame_multiple
    plans = []  # (factor, chunk, tile) of each pass
    for f in passes:
        chunk, tile = plan_passes(f, info.height, info.width, multiple=multiple,
                                  budget=int(args.decode_memory * 2**30), decode_windows=pipe.vae.decode_windows,
                                  decode_bytes=pipe.vae.decode_bytes, max_tile=args.tile or MAX_TILE,
                                  chunks=[args.chunk] if args.chunk else range(2, 9))
        plans.append((f, chunk, args.tile or tile))  # a given tile is kept as given
        if args.tile or args.chunk:  # the budget chose neither: say when what was given outgrows it
            peak = decode_peak(output_length(chunk, f), args.tile or tile, round_up(info.height, multiple),
                               round_up(info.width, multiple), pipe.vae.decode_windows, pipe.vae.decode_bytes)
            if peak > args.decode_memory * 2**30:
                given = " ".join(f"--{n} {v}" for n, v in (("tile", args.tile), ("chunk", args.chunk)) if v)
                warnings.warn(f"{given}: a VAE decode pass of {info.width}x{info.height} frames takes about "
                              f"{peak / 2**30:.1f} GiB, over --decode-memory {args.decode_memory:g} GiB; left out, "
                              "the tile and chunk are chosen to fit it", stacklevel=1)
        else:  # the plan's shortest chunk can still outgrow the budget: its blend does not shrink with the tile
            note = over_budget_note(info.width, info.height, f, chunk, tile, multiple, args.decode_memory, pipe.vae)
            if note:
                warnings.warn(note, stacklevel=1)
    load_s = time.perf_counter() - start
    t0 = time.perf_counter()
    inputs = deque()  # input frames read but not yet written: at most one chunk
    count = {"in": 0, "out": 0, "exact": True}

    def read():
        for frame in frames:
            frame = torch.from_numpy(frame)
            inputs.append(frame)
            count["in"] += 1
            yield frame

    def written():
        stream, total = read(), info.num_frames
        for i, (f, chunk, tile) in enumerate(plans):  # each pass reads the previous one's frames as they come
            stream = upconvert_frames(fill, stream, f, seed=offset_seed(args.seed, i * PASS_SEED_STEP),
                                      multiple=multiple, tile=tile, overlap=args.overlap, chunk=chunk,
                                      progress=not args.quiet, total=total,
                                      desc=f"pass {i + 1}/{len(plans)}" if len(plans) > 1 else "interpolate")
            total = f * (total - 1) + 1
        for frame in stream:
            if count["out"] % factor == 0:  # an input frame's position: it must come back exactly
                count["exact"] &= bool(torch.equal(frame, inputs.popleft()))
            count["out"] += 1
            yield frame

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # validate checked it can be made, as generate's
    try:
        # the old sidecar goes just before the old clip, so that it never describes the new one
        write_video_frames(args.output, written(), out_fps, before_replace=lambda: remove_descriptions(args.output),
                           sample_aspect=info.sample_aspect, state_matrix=not info.unstated_matrix)
    except VideoDecodeError as e:
        raise InputError(f"video {e}") from None
    elapsed = time.perf_counter() - t0
    # as they ran: a --tile 17 as 16, an --overlap past half the tile as half, a tile or chunk past the frame's size
    # or the pass's frame count as that size / count (a 64x48 clip of 2 frames: tile 64, chunk 2)
    ran, pass_frames = [], count["in"]
    for f, chunk, tile in plans:
        tile, overlap = tiling_ran(tile, args.overlap, multiple, info.height, info.width)
        ran.append({"factor": f, "chunk": min(chunk, pass_frames), "tile": tile, "overlap": overlap})
        pass_frames = output_length(pass_frames, f)
    size = written_size(info.width, info.height, Path(args.output).suffix)  # the file's: .mp4 / .webm pad odd sides
    settings = {"factor": factor, "fps_in": info.fps, "fps_out": out_fps, "frames_in": count["in"],
                "frames_written": count["out"], "size": list(size), "input_size": [info.width, info.height],
                "sample_aspect": None if info.sample_aspect is None else str(info.sample_aspect),
                "steps": args.steps or pipe.config.interpolation.steps,
                "sampler": args.sampler or pipe.config.interpolation.sampler,
                "tile": ran[0]["tile"], "overlap": ran[0]["overlap"], "chunk": ran[0]["chunk"],
                "decode_memory_gib": args.decode_memory,
                "passes": [{k: r[k] for k in ("factor", "chunk", "tile")} for r in ran],
                **device_record(device, dtype), "force_layout": args.force_layout, "slow_motion": args.slow_motion}
    record = build_sidecar(command="interpolate", prompt="", seed=args.seed, settings=settings, model_folder=model,
                           checksums=checksums, elapsed_s=elapsed, output=args.output,
                           inputs={"video": str(Path(args.video).resolve()), "input_frames": count["in"]})
    record["load_s"] = round(load_s, 3)
    record["s_per_output_frame"] = round(elapsed / count["out"], 4)
    record["input_frames_exact"] = count["exact"]  # compared before the file's encoding
    write_sidecar(args.output, record)
    from vidiff.output_safety import one_line  # a name's control characters escaped
    print(f"wrote {one_line(str(args.output))} ({count['out']} frames from {count['in']}, {out_fps:g} fps, "
          f"made in {elapsed:.1f} s, {elapsed / count['out']:.2f} s per output frame)")
    return 0
