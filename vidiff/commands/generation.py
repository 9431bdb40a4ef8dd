"""`vidiff generate | animate | extend | edit`: clips from text, from a still image, continuing or redrawing a video.

Every argument is checked before torch is imported or any weights load (a bad one is a one-line error, exit 2).
Each output gets a JSON sidecar next to it (out.mp4.json) and, with --contact-sheet, a PNG grid of its frames.
"""
from __future__ import annotations

import argparse
import warnings
from fractions import Fraction
from pathlib import Path

from vidiff.commands import folder_argument, output_argument, path_argument, whole_number
from vidiff.commands.control_args import (
    add_control_arguments, add_structure_arguments, control_settings, read_control, structure_kind,
    structure_settings,
)
from vidiff.commands.device_args import (
    add_device_arguments, check_compile, device_record, resolve_device, torch_dtype,
)
from vidiff.commands.generation_checks import BUNDLED, validate
from vidiff.pipeline.config import SAMPLERS


FRAMES_HELP = ("clip length in frames, 2 to 1024 (its grid, the next longer one, must fit in 1024 too: 1021 at stride 5); "
               "a length off the keyframe grid ((keyframes - 1) * stride + 1), or "
               "shorter than the fewest trained keyframes span, is sampled on the next longer grid and cut; one longer "
               "than a pass is continued by extension windows (default: the model's)")


def register(sub) -> None:
    gen = sub.add_parser("generate", help="generate a clip from a text prompt",
                         description="Generate a clip from a text prompt: keyframes, then interpolation, then decode.")
    gen.add_argument("prompt", help="what the clip shows, e.g. 'a blue square moving up'")
    _common(gen, frames_help=FRAMES_HELP)
    _keyframe_argument(gen)
    add_control_arguments(gen)
    gen.set_defaults(handler=run_generation, task="generate")

    ani = sub.add_parser("animate", help="animate a still image (it becomes the first frame)",
                         description="Animate a still image: it is the first, known keyframe of the clip.")
    ani.add_argument("image", type=path_argument,
                     help="PNG / JPEG; center-cropped and resized to the model's frame size if needed")
    ani.add_argument("prompt", help="what happens in the clip")
    _common(ani, frames_help=FRAMES_HELP)
    _keyframe_argument(ani, "; frame 0 is the image, e.g. --keyframe 15=last.png for the last frame")
    add_control_arguments(ani)
    ani.set_defaults(handler=run_generation, task="animate")

    ext = sub.add_parser("extend", help="continue a video clip",
                         description="Continue a clip: its last frames become the first known keyframes; the output "
                                     "is the input clip followed by the new frames.")
    ext.add_argument("video", type=path_argument, help="clip to continue (its frame size must be the model's)")
    ext.add_argument("prompt", help="what happens next")
    _common(ext, frames_help="number of new frames to add (required)")
    ext.add_argument("--seam-fade", type=whole_number, default=4,
                     help="new frames over which the VAE error of the clip's last frame fades out, so the seam "
                          "does not jump (0: off; default 4)")
    ext.add_argument("--strength", type=float, default=None,
                     help="0..1: each new keyframe starts (SDEdit) from the clip's last frame moved on at the clip's "
                          "own measured velocity, noised to this share of the schedule, so the clip keeps its "
                          "speed; 1 draws them from noise (default: the pipeline's extension_strength)")
    ext.set_defaults(handler=run_generation, task="extend")

    edit = sub.add_parser("edit", help="redraw a video clip, or a region of it, under a new prompt",
                          description="Video to video (SDEdit): the clip's latents are noised to the level --strength "
                                      "selects and denoised under the new prompt, keyframes then in-between frames. "
                                      "0 returns the clip as the VAE decodes it; 1 forgets it (plain generation). "
                                      "With --mask only the white region is redrawn; the rest of the clip is kept. "
                                      "With control parts, the edit follows blob maps read off the clip, so its "
                                      "objects stay in place (--structure); --mask foreground redraws only the "
                                      "objects.")
    edit.add_argument("video", type=path_argument,
                      help="clip to edit (its frame size and length must fit the model's layout)")
    edit.add_argument("prompt", help="what the clip should show")
    _common(edit, frames_help="refused: an edit keeps the clip's own length")
    edit.add_argument("--strength", type=float, default=None,
                      help="how much is redrawn, 0..1: the share of the noise schedule (as SD img2img; default 0.6, "
                           "or 1 with --mask: the region from pure noise)")
    edit.add_argument("--repeats", type=whole_number, default=None,
                      help="with --strength < 1: noise and redraw the keyframes this many times, each time from the "
                           "last (SDEdit's repeats): the prompt's changes come through more fully (default 2; 1 is "
                           "plain SDEdit)")
    edit.add_argument("--mask", type=path_argument, default=None,
                      help="region to redraw: an image (PNG, ...) used for every frame, or a video of per-frame "
                           "masks with the clip's frame count; white = redraw, black = keep; or 'foreground': each "
                           "frame's objects (what is not its flat background), grown by 2 px. Needs parts trained "
                           "with region masks")
    edit.add_argument("--feather", type=whole_number, default=None,
                      help="with --mask: pixels over which the redrawn region blends into the kept clip (default "
                           "3); beyond them every pixel is the input's")
    add_structure_arguments(edit)
    edit.set_defaults(handler=run_generation, task="edit")


def _keyframe_argument(p: argparse.ArgumentParser, extra: str = "") -> None:
    p.add_argument("--keyframe", action="append", default=[], metavar="INDEX=IMAGE",
                   help="a frame the clip must show, at a frame index (0 = first, -1 = last); repeat for more. Off the keyframe "
                        "grid, the grid is laid around them; center-cropped and resized like animate's image" + extra)


def _common(p: argparse.ArgumentParser, frames_help: str) -> None:
    p.add_argument("-o", "--output", required=True, type=output_argument, help="output file: .mp4, .webm or .gif; an existing one is replaced")
    p.add_argument("--model", default=None, type=folder_argument,
                   help=f"pipeline folder (default: the bundled Shapes pipeline, vidiff/bundled/{BUNDLED.name})")
    p.add_argument("--seed", type=whole_number, default=0,
                   help="seed of the first sample, 0 to 2**63 - 1; sample i uses seed + i, wrapping to 0 at 2**63 "
                        "(default 0)")
    p.add_argument("--num", type=whole_number, default=1, help="number of samples (out_000.mp4, out_001.mp4, ...; default 1)")
    p.add_argument("--steps", type=whole_number, default=None, help="sampler steps of both stages (default: pipeline.yaml)")
    p.add_argument("--sampler", default=None,
                   help=f"sampler of both stages: {', '.join(SAMPLERS[:-1])} or {SAMPLERS[-1]} (default: pipeline.yaml)")
    p.add_argument("--guidance", type=float, default=None,
                   help="text guidance scale of the keyframe stage (default: pipeline.yaml)")
    p.add_argument("--image-guidance", type=float, default=None,
                   help="known-frame guidance scale of the keyframe stage (default: pipeline.yaml)")
    p.add_argument("--negative-prompt", default=None,
                   help="what the keyframe stage's text guidance steers away from (instead of the empty prompt)")
    p.add_argument("--guidance-rescale", type=float, default=None,
                   help="guidance rescale phi in [0, 1] (Lin et al. 2024; for zero-terminal-SNR models; default: "
                        "pipeline.yaml)")
    p.add_argument("--churn", type=float, default=None,
                   help="EDM stochastic sampling: S_churn of the heun sampler (0 = deterministic heun; default: "
                        "pipeline.yaml)")
    p.add_argument("--pc-steps", type=whole_number, default=None,
                   help="Langevin corrector steps per level (sampler pc; default: pipeline.yaml)")
    p.add_argument("--pc-snr", type=float, default=None,
                   help="the corrector's signal-to-noise ratio (sampler pc; default: pipeline.yaml)")
    p.add_argument("--frames", type=whole_number, default=None, help=frames_help)
    p.add_argument("--keyframes", type=whole_number, default=None,
                   help="number of keyframes K (default: pipeline.yaml, or what --frames needs)")
    p.add_argument("--stride", type=whole_number, default=None,
                   help="frames between neighbouring keyframes (default: pipeline.yaml)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate written to the file (default: pipeline.yaml; extend and edit: the clip's)")
    p.add_argument("--contact-sheet", action="store_true", help="also write a PNG grid of the frames (out.sheet.png)")
    add_device_arguments(p)
    p.add_argument("--batch-invariant", choices=("auto", "on", "off"), default="auto",
                   help="run batch rows one at a time so a sample never depends on its batch (default auto: on for "
                        "the CPU, off on CUDA, where batched rows are faster; results then agree up to rounding)")
    p.add_argument("--compile", action="store_true", help="torch.compile the U-Nets (slow first call, faster after)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force-layout", action="store_true",
                   help="run a frame layout the model's parts were not trained on (with a warning) instead of refusing")


# ---- the run ----------------------------------------------------------------------------------------------------
def run_generation(args) -> int:
    import time

    start = time.perf_counter()
    config, layout, extend_by, keyframe_paths, video_fps = validate(args)  # extend_by: a --frames longer than one pass

    from vidiff import io
    from vidiff.limits import offset_seed
    from vidiff.commands.inputs import read_inputs, read_keyframe_images, read_mask
    from vidiff.pipeline import VideoPipeline
    from vidiff.sidecar import (
        build_sidecar,
        numbered_outputs,
        remove_descriptions,
        weights_checksum,
        write_contact_sheet,
        write_sidecar,
    )

    model = Path(args.model) if args.model else BUNDLED
    if args.task in ("generate", "edit", "animate"):  # before the weights load; the library says the same (said once)
        from vidiff.pipeline.prompt_reading import prompt_notes

        for note in prompt_notes(config, args.prompt, args.task, by_maps=getattr(args, "control", None) is not None):
            warnings.warn(note, stacklevel=1)
    device = resolve_device(args)
    if args.compile:
        check_compile(device)
    inputs, source = read_inputs(args, model, video_fps)  # before the weights: a bad file fails fast
    inputs_keyframes = read_keyframe_images(keyframe_paths, model, inputs)
    mask = None
    if args.task == "edit" and args.mask is not None:
        if args.mask == "foreground":  # the pipeline reads it off the clip; checked here before the weights load
            from vidiff.pipeline.editing import clip_foreground

            clip_foreground(source)
            mask = "foreground"
        else:
            mask = read_mask(args.mask, source)
    control = read_control(args, config, layout)  # uint8 (F,H,W,3) maps or None
    structure = structure_kind(args, config) if args.task == "edit" else None  # the map kind an edit follows
    dtype = torch_dtype(args.dtype, device)
    invariant = device == "cpu" if args.batch_invariant == "auto" else args.batch_invariant == "on"
    pipe = VideoPipeline.from_pretrained(model, device=device, dtype=dtype, batch_invariant=invariant)
    if args.compile:
        pipe.compile()
    checksums = weights_checksum(model, {n: model / getattr(pipe.config.parts, n) for n in ("vae", "keyframes", "interpolation")})
    outputs = numbered_outputs(args.output, args.num)
    outputs[0].parent.mkdir(parents=True, exist_ok=True)
    common = dict(steps=args.steps, sampler=args.sampler, guidance_scale=args.guidance,
                  image_guidance_scale=args.image_guidance, keyframe_stride=layout.keyframe_stride,
                  num_keyframes=None if layout.trim_to else layout.num_keyframes,  # a cut grid: from the length
                  fps=args.fps if args.fps else inputs.get("fps"),
                  force_layout=args.force_layout, negative_prompt=args.negative_prompt,
                  guidance_rescale=args.guidance_rescale, churn=args.churn, pc_steps=args.pc_steps, pc_snr=args.pc_snr)
    load_s = time.perf_counter() - start
    for i, output in enumerate(outputs):
        seed = offset_seed(args.seed, i)
        t0 = time.perf_counter()
        if args.task == "extend":
            frames, fps = pipe.extend_video(source, args.prompt, num_frames=args.frames, seed=seed,
                                            seam_fade=args.seam_fade, strength=args.strength,
                                            progress=not args.quiet, **common)
        elif args.task == "edit":
            frames, fps = pipe.edit_video(source, args.prompt, strength=args.strength, mask=mask,
                                          feather=args.feather, control=structure, repeats=args.repeats,
                                          control_scale=args.control_scale, seed=seed, progress=not args.quiet,
                                          **common)
        elif args.task == "animate":
            frames, fps = pipe.image_to_video(source, args.prompt, num_frames=layout.output_frames, seed=seed,
                                              keyframes=inputs_keyframes, control=control,
                                              control_scale=args.control_scale, progress=not args.quiet, **common)
        else:
            frames, fps = pipe.text_to_video(args.prompt, num_frames=layout.output_frames, seed=seed, control=control,
                                             keyframes=inputs_keyframes,
                                             control_scale=args.control_scale,
                                             progress=not args.quiet, **common)
        if extend_by:  # windows of the pipeline's keyframe count at the same stride, each from the clip so far
            frames, fps = pipe.extend_video(frames, args.prompt, num_frames=extend_by, seed=seed,
                                            progress=not args.quiet, **{**common, "num_keyframes": None, "fps": fps})
        elapsed = time.perf_counter() - t0
        # the old sidecar and sheet go just before the old clip: a stop from there to write_sidecar leaves the
        # new clip alone rather than with the description of the one it replaced
        io.write_video(output, frames, fps, before_replace=lambda: remove_descriptions(output),
                       sample_aspect=Fraction(inputs["sample_aspect"]) if "sample_aspect" in inputs else None)
        req = pipe.request(args.prompt, seed=seed, num_frames=None if args.task == "extend" else layout.output_frames,
                           **{**common, "fps": fps})
        settings = {**req.settings(pipe.config), "text_encoder": pipe.text_encoder.identifier,
                    **device_record(device, dtype), "batch_invariant": invariant,
                    "compiled": args.compile, "force_layout": args.force_layout,
                    "frames_written": int(frames.shape[0]), **control_settings(args, pipe.config)}
        if inputs_keyframes and args.task in ("generate", "animate"):
            # the layout that ran: keyframes off the grid get one laid around them, which the grid above does not say
            # (with extend_by, that of the first pass: a shorter one than the longest when they are off the grid)
            known = {**inputs_keyframes, **({0: source} if args.task == "animate" else {})}
            settings["keyframe_positions"] = pipe.keyframe_positions(req, known)
        if extend_by:
            settings["extended_by"] = extend_by  # num_frames above is the first pass; the rest by extend_video
        if args.task == "extend":
            settings["new_frames"] = args.frames  # num_frames above is the length of one extension window
            settings["seam_fade"] = args.seam_fade
            from vidiff.pipeline.extension import extension_strength

            settings["strength"] = extension_strength(pipe.config, args.strength, len(source))
        if args.task == "edit":
            from vidiff.pipeline.input_checks import check_edit_options

            # what ran: the defaults filled in, one keyframe pass at strength 1
            strength, feather, passes = check_edit_options(args.strength, args.feather, args.repeats,
                                                           masked=args.mask is not None)
            settings.update(strength=strength, repeats=passes)
            if args.mask is not None:
                settings.update(mask="foreground" if args.mask == "foreground" else str(Path(args.mask).resolve()),
                                feather=feather)
            settings.update(structure_settings(args, pipe.config, structure))
        record = build_sidecar(command=args.task, prompt=args.prompt, seed=seed, settings=settings,
                               model_folder=model, checksums=checksums, elapsed_s=elapsed, output=output,
                               inputs={k: v for k, v in inputs.items() if k != "fps"})
        record["load_s"] = round(load_s, 3)
        write_sidecar(output, record)
        if args.contact_sheet:
            write_contact_sheet(output, frames.numpy())
        from vidiff.output_safety import one_line  # a name's control characters escaped
        print(f"wrote {one_line(str(output))} ({frames.shape[0]} frames, {fps:g} fps, seed {seed}, made in {elapsed:.1f} s)")
    return 0
