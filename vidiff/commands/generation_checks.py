"""The checks of `vidiff generate | animate | extend | edit` that run before torch is imported or any weights load:
every argument, the input files' headers and the pipeline folder's yaml (a bad one is a one-line error, exit 2).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from vidiff import bundled_paths
from vidiff.commands.control_args import check_control_args, structure_kind
from vidiff.commands.device_args import check_device_args

BUNDLED = bundled_paths.BUNDLED / "shapes"
OUTPUT_SUFFIXES = (".mp4", ".webm", ".gif")
# Request.build's keywords whose errors the command line reports under the flag the user typed
SAMPLING_FLAGS = {"guidance_rescale": "--guidance-rescale", "churn": "--churn", "pc_steps": "--pc-steps",
                  "pc_snr": "--pc-snr", "negative_prompt": "--negative-prompt"}


class CheckedRun(NamedTuple):
    """What `validate` found: the pipeline's config, the clip's layout, the frames to add by extension windows
    (a --frames longer than one pass), the --keyframe images by frame index (resolved: -1 is the last) and the
    input clip's frame rate (extend, edit: its frames' own where they are far sparser than its header says)."""

    config: object
    layout: object
    extend_by: int
    keyframes: dict
    video_fps: float | None


def validate(args) -> CheckedRun:
    """Checks every argument and the pipeline folder's yaml, before any weights load."""
    from dataclasses import replace

    from vidiff.errors import InputError
    from vidiff.pipeline.config import SAMPLERS, read_pipeline_folder
    from vidiff.pipeline.layout import CLI_NAMES, Layout, check_layout_limit, resolve_layout

    from vidiff.limits import (
        MAX_FRAMES, MAX_GUIDANCE, MAX_KEYFRAMES, MAX_SAMPLES, MAX_STEPS, MAX_STRIDE, check_int, check_seed, short_repr,
    )
    from vidiff.commands.inputs import (
        at_own_rate, check_file, check_image, check_mask_file, clip_timing, count_clip_frames, probe_clip,
        warn_if_anamorphic, warn_if_audio,
    )
    from vidiff.output_safety import check_output, output_path, shown
    from vidiff.sidecar import output_files
    from vidiff.video_writer import check_fps

    output = output_path(args.output)
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"-o {shown(args.output)}: the output suffix must be one of {', '.join(OUTPUT_SUFFIXES)}")
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"prompt: not valid UTF-8 text (undecodable byte at character {e.start})") from None
    if args.steps is not None:
        check_int(args.steps, "--steps", 1, MAX_STEPS)
    if args.sampler is not None and args.sampler not in SAMPLERS:
        raise InputError(f"--sampler {short_repr(args.sampler)} is unknown; choose one of {', '.join(SAMPLERS)}")
    for flag, value in (("--guidance", args.guidance), ("--image-guidance", args.image_guidance)):
        if value is not None and not 0 <= value <= MAX_GUIDANCE:  # NaN fails too; 1e20 decoded all black
            raise InputError(f"{flag} must be a finite number in [0, {MAX_GUIDANCE:g}], got {value}")
    check_int(args.num, "--num", 1, MAX_SAMPLES)
    check_seed(args.seed, "--seed")  # sample i's seed + i wraps around at 2**63
    if args.fps is not None:
        check_fps(args.fps, suffix, "--fps")
    if args.frames is not None:
        check_int(args.frames, "--frames", 1 if args.task == "extend" else 2, MAX_FRAMES)  # extend: new frames
    if args.keyframes is not None:
        check_int(args.keyframes, "--keyframes", 2, MAX_KEYFRAMES)
    if args.stride is not None:
        check_int(args.stride, "--stride", 1, MAX_STRIDE)
    check_device_args(args)
    user_keyframes = parse_keyframe_args(getattr(args, "keyframe", []))
    inputs = [Path(p) for p in (getattr(args, "image", None), getattr(args, "video", None),
                                getattr(args, "control", None), *user_keyframes.values()) if p is not None]
    for file in output_files(output, args.num, args.contact_sheet):  # before any input is read or model loads
        check_output(file, inputs, what="-o")
    video_fps, video_frames, video_info = None, None, None
    if args.task == "animate":
        check_image(Path(args.image))
    for path in user_keyframes.values():
        check_image(path)
    if args.task == "extend":
        check_file(Path(args.video), "video")
        if args.frames is None:
            raise InputError(f"--frames: give the number of new frames to add (1 to {MAX_FRAMES})")
        check_int(args.seam_fade, "--seam-fade", 0, MAX_FRAMES)
        if args.strength is not None:
            from vidiff.pipeline.input_checks import check_strength

            try:
                check_strength(args.strength)
            except InputError as e:
                raise InputError(f"--{e}") from None
        video_info = probe_clip(args.video)  # header only; a bad file fails before any model loads
        video_fps = video_info.fps
        warn_if_audio(video_info, args.video)
        warn_if_anamorphic(video_info, args.video, suffix)
    if args.task == "edit":
        from vidiff.pipeline.input_checks import check_edit_options

        try:  # the library's own checks of strength, repeats and feather, before the clip is read
            check_edit_options(args.strength, args.feather, args.repeats, masked=args.mask is not None)
        except InputError as e:
            raise InputError(f"--{e}") from None
        check_file(Path(args.video), "video")
        if args.frames is not None:
            raise InputError("--frames: edit keeps the clip's own length")
        info = video_info = probe_clip(args.video)  # header only; a bad file fails before any model loads
        warn_if_audio(info, args.video)
        warn_if_anamorphic(info, args.video, suffix)
        video_fps = info.fps
    if video_info is not None:  # the rate the output plays at: a header's can be far off its frames' (tree.avi)
        measured = clip_timing(args.video, video_info)
        if measured is not None:
            video_info = at_own_rate(args.video, video_info, *measured, "the output plays at the clip's speed")
            video_fps = video_info.fps
    config = read_pipeline_folder(Path(args.model) if args.model else BUNDLED)
    if args.task == "edit":
        structure_kind(args, config)
    if video_info is not None and video_info.still:  # read as one frame at FFmpeg's 25 fps for images
        raise InputError(f"video {shown(args.video)}: is a still image, not a video; `vidiff animate IMAGE PROMPT` "
                         "makes a clip from one")
    if video_info is not None and (video_info.height, video_info.width) != (config.height, config.width):
        # from the header: a clip of the wrong size is refused before it is decoded (a 768x576 one took 2 GB)
        raise InputError(f"video {shown(args.video)}: frames are {video_info.width}x{video_info.height}, this "
                         f"pipeline makes {config.width}x{config.height}; resize the clip first")
    if video_info is not None and video_info.num_frames > MAX_FRAMES and not video_info.estimated:
        raise InputError(f"video {shown(args.video)}: {video_info.num_frames} frames; the limit is {MAX_FRAMES} (cut "
                         "the clip first)")
    if args.task == "extend" and video_info.estimated:  # duration x fps only: counted (bounded) instead
        count_clip_frames(args.video)
    if args.task == "edit":
        # the length an edit keeps, decoded: a header's count can be an estimate (MPEG-PS), count frames an MP4
        # edit list hides, or undercount; a frame of another size fails here too, before any weights load
        video_frames = count_clip_frames(args.video)
    if config.parts.keyframes is None:
        raise InputError(f"--model {shown(args.model)}: an interpolation-only pipeline (no keyframe part) cannot "
                         f"{args.task}; it fills frames between given ones (vidiff interpolate)")
    if args.fps is None:  # the file plays at the input clip's or the pipeline's rate: it must fit the format
        where = f"video {shown(args.video)}" if video_fps is not None else f"{shown(args.model or BUNDLED)} pipeline.yaml"
        check_fps(video_fps if video_fps is not None else config.fps, suffix, f"fps of {where} (give --fps)")
    from vidiff.pipeline.trained import read_trained_records

    # once: it hashes the VAE's encoder tensors when a record names its latent space
    trained = read_trained_records(Path(args.model) if args.model else BUNDLED, config)
    default = Layout(config.num_frames, config.num_keyframes, config.keyframe_stride)
    frames = {"extend": None, "edit": video_frames}.get(args.task, args.frames)
    if args.task == "edit":  # shorter than every trained grid (2 frames if forced): no --stride helps
        from vidiff.pipeline.trained_layouts import check_edit_length

        try:
            check_edit_length(video_frames, f"video {shown(args.video)}", config.interpolation.max_gap,
                              None if args.force_layout else trained["keyframes"], trained["interpolation"])
        except InputError as e:
            raise InputError(f"{e}{'; for a still image: vidiff animate' if video_frames == 1 else ''}") from None
        if args.mask is not None and args.mask != "foreground":
            check_mask_file(Path(args.mask), replace(video_info, num_frames=video_frames))
    try:
        layout = resolve_layout(frames, args.keyframes, args.stride, default=default,
                                max_gap=config.interpolation.max_gap, exact=args.task == "edit", names=CLI_NAMES,
                                strides=getattr(trained["keyframes"], "frame_strides", None))
    except InputError as e:
        if args.task in ("generate", "animate") and args.keyframes is not None and frames is not None:
            from vidiff.pipeline.trained_layouts import keyframes_misfit

            raise keyframes_misfit(e, frames, args.keyframes, args.stride or default.keyframe_stride,
                                   trained["keyframes"], args.force_layout, CLI_NAMES) from None
        if args.task != "edit":
            raise
        from vidiff.pipeline.trained_layouts import edit_misfit

        # the user gave no --frames: say that the clip's own length is what does not fit
        reason = str(e).replace(f"--frames {video_frames} does not fit", "that does not fit", 1)
        if args.keyframes is None:  # the lengths and strides the parts were trained on, not every grid
            reason = edit_misfit(video_frames, args.stride or default.keyframe_stride, config.interpolation.max_gap,
                                 trained["keyframes"], trained["interpolation"], CLI_NAMES)
        raise InputError(f"video {shown(args.video)} has {video_frames} frames, and edit keeps a clip's length: "
                         f"{reason}") from None
    check_layout_limit(layout, CLI_NAMES)
    from vidiff.pipeline.layout import lift_short_layout
    from vidiff.pipeline.long_layout import longest_pass_frames, split_long_layout
    from vidiff.pipeline.trained_layouts import fewest_trained_keyframes

    extend_by = 0
    keyframe_paths = parse_keyframe_args(getattr(args, "keyframe", []), layout.output_frames)  # -1: the last
    if args.task in ("generate", "animate") and args.frames is not None and args.keyframes is None \
            and not args.force_layout:  # as text_to_video: the keyframes in the first pass, no control maps
        layout, extend_by = split_long_layout(trained["keyframes"], layout, keyframe_paths,
                                              getattr(args, "control", None) is not None,
                                              max_gap=config.interpolation.max_gap,
                                              interpolation=trained["interpolation"])
        layout = lift_short_layout(layout, fewest_trained_keyframes(trained["keyframes"]))
    user_keyframes = dict(keyframe_paths)
    if args.task == "animate":
        if 0 in user_keyframes:
            raise InputError("--keyframe 0=...: frame 0 of animate is its image")
        if user_keyframes:
            user_keyframes[0] = Path(args.image)
    _check_trained_layout(trained, config, layout, args, sorted(user_keyframes))
    if args.task != "edit":  # an edit's --control-scale weighs its --structure maps (structure_kind checked it)
        longest = None if args.force_layout else longest_pass_frames(trained["keyframes"], layout.keyframe_stride)
        check_control_args(args, config, layout, args.model or BUNDLED, longest)
    from vidiff.pipeline.request import Request

    # the library's own checks of every sampling setting (negative prompt, rescale, churn, corrector), torch-free
    try:
        Request.build([args.prompt], [args.seed], False, layout, config, None, steps=args.steps, sampler=args.sampler,
                      guidance_scale=args.guidance, image_guidance_scale=args.image_guidance, fps=args.fps,
                      negative_prompt=args.negative_prompt, guidance_rescale=args.guidance_rescale, churn=args.churn,
                      pc_steps=args.pc_steps, pc_snr=args.pc_snr)
    except InputError as e:  # named by the library's keywords ("pc_steps / pc_snr: ..."): say the flags given
        names, sep, reason = str(e).partition(": ")
        keywords = names.split(" / ")
        if sep and all(k in SAMPLING_FLAGS for k in keywords):
            raise InputError(" / ".join(SAMPLING_FLAGS[k] for k in keywords) + sep + reason) from None
        raise
    knows_frames = args.task in ("animate", "extend") or bool(user_keyframes) or (args.task == "edit" and args.mask)
    text = config.keyframes.guidance_scale if args.guidance is None else args.guidance
    if text == 0 and config.keyframes.guidance_interval is None:  # the library says the same when it samples
        from vidiff.pipeline.request import check_zero_text_guidance

        check_zero_text_guidance(args.negative_prompt is not None, "--negative-prompt", "--guidance")
    image = config.keyframes.image_guidance_scale if args.image_guidance is None else args.image_guidance
    if text == 1 and (not knows_frames or image == 1):  # no guidance: what changes only it is taken, unused, and
        if args.negative_prompt is not None:  # the sidecar said applied
            raise InputError(f"--negative-prompt: replaces the empty prompt of text guidance, which is off here "
                             f"(--guidance {text:g}); give a --guidance other than 1, or no negative prompt")
        if args.guidance_rescale:
            raise InputError(f"--guidance-rescale: rescales text guidance, which is off here (--guidance {text:g}); "
                             "give a --guidance other than 1, or no --guidance-rescale")
    if args.image_guidance is not None and ((args.task == "generate" and not user_keyframes)
                                            or (args.task == "edit" and args.mask is None)):
        # it weighs the known frames against none; the clip came out the same, and the sidecar said it was applied
        raise InputError(f"--image-guidance: guides the keyframes toward known frames, and this {args.task} has "
                         "none (they come from --keyframe, animate's image, extend's clip or an edit's --mask)")
    return CheckedRun(config, layout, extend_by, keyframe_paths, video_fps)


def parse_keyframe_args(values: list[str], num_frames: int | None = None) -> dict[int, Path]:
    """--keyframe INDEX=IMAGE values -> {index: image path}; InputError naming the value that does not parse.
    A negative INDEX counts from the end of the clip (-1: its last frame): with `num_frames` every index is checked
    against the clip and resolved, without it (before the layout is known) kept as given."""
    from vidiff.errors import InputError
    from vidiff.limits import MAX_FRAMES, short_repr
    from vidiff.pipeline.input_checks import frame_of_clip

    out = {}
    for value in values:
        index, sep, path = value.partition("=")
        index = index.strip()
        if not sep or not index.removeprefix("-").isdigit() or not path:
            raise InputError(f"--keyframe {short_repr(value)}: expected INDEX=IMAGE, e.g. 7=frame.png (-1=last.png "
                             "for the last frame)")
        index = int(index)
        if abs(index) >= MAX_FRAMES:
            raise InputError(f"--keyframe {short_repr(value)}: frame index must be < {MAX_FRAMES}")
        if num_frames is not None:
            index = frame_of_clip(index, num_frames, f"--keyframe {short_repr(value)}: index {index}")
        if index in out:
            raise InputError(f"--keyframe: frame {index} is given twice")
        out[index] = Path(path)
    return out


def _check_trained_layout(trained: dict, config, layout, args, user_keyframes: list[int] = ()) -> None:
    """The layout against what the parts were trained on (`trained`: read_trained_records), before any weights load."""
    from vidiff.pipeline.layout import CLI_NAMES, anchored_span
    from vidiff.errors import InputError
    from vidiff.pipeline.trained_layouts import (
        check_anchored_layout, check_layout, keyframes_misfit, user_keyframe_pattern,
    )

    if any(index % layout.keyframe_stride for index in user_keyframes):  # the grid is laid around them
        check_anchored_layout(list(user_keyframes), anchored_span(layout), layout.keyframe_stride,
                              config.interpolation.max_gap, trained["keyframes"], trained["interpolation"],
                              args.force_layout, CLI_NAMES)
        return
    known = {"generate": None, "edit": None, "animate": "first", "extend": "first_k"}[args.task]
    if user_keyframes:
        known = user_keyframe_pattern(user_keyframes)
    if args.task == "edit" and args.mask is not None:
        known = "region"
    num_known = min(2, layout.num_keyframes - 1) if args.task == "extend" else 0  # extension_windows' max_known
    try:
        check_layout(layout, config.interpolation.max_gap, trained["keyframes"], trained["interpolation"],
                     known=known, num_known=num_known, force=args.force_layout, names=CLI_NAMES)
    except InputError as e:  # a grid laid from --frames with --keyframes (64 = 4 x stride 21): --frames alone fits
        if args.task not in ("generate", "animate") or None in (args.frames, args.keyframes) or args.stride \
                or user_keyframes:
            raise
        raise keyframes_misfit(e, args.frames, args.keyframes, config.keyframe_stride, trained["keyframes"],
                               args.force_layout, CLI_NAMES, offers_lengths=False) from None
