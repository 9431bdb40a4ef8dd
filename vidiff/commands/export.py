"""`vidiff export RUN_DIRS... -o FOLDER`: a pipeline folder from the vae, keyframes and interpolation runs (or an
interpolation-only one from the vae and interpolation runs)."""
from __future__ import annotations

from pathlib import Path

from vidiff.commands import output_argument, path_argument, whole_number

from vidiff.pipeline.config import SAMPLERS, PipelineConfig

# SamplingDefaults field -> the option that sets it (its errors name the option)
FLAGS = {"keyframe_steps": "--keyframe-steps", "interpolation_steps": "--interpolation-steps",
         "guidance_scale": "--guidance", "image_guidance_scale": "--image-guidance", "sigma_max": "--sigma-max",
         "fps": "--fps", "keyframe_sampler": "--keyframe-sampler", "interpolation_sampler": "--interpolation-sampler",
         "extension_strength": "--extension-strength", "guidance_interval": "--guidance-interval"}


def register(sub) -> None:
    p = sub.add_parser("export", help="assemble a pipeline folder from training run folders",
                       description="Assemble a pipeline folder (pipeline.yaml + vae/ keyframes/ interpolation/) from "
                                   "the run folders of the three stages, with every setting training fixed. Without "
                                   "a keyframes run: an interpolation-only pipeline (vidiff interpolate). The options "
                                   "set the sampling defaults written to pipeline.yaml.")
    p.add_argument("run_dirs", type=path_argument, nargs="+", metavar="RUN_DIR",
                   help="vae, keyframes and interpolation run folders (keyframes optional); the vae may also be a VAE "
                        "part folder as it is, e.g. vidiff/bundled/shapes/vae")
    p.add_argument("-o", "--output", required=True, type=output_argument, help="pipeline folder to write")
    p.add_argument("--force", action="store_true",
                   help="replace the folder if it exists and is an earlier pipeline folder (or empty); a folder "
                        "holding anything else is kept")
    # the sampling settings pipeline.yaml gets, which generation uses when a request names none
    p.add_argument("--keyframe-steps", type=whole_number, default=20, help="sampler steps of the keyframe stage (default 20)")
    p.add_argument("--interpolation-steps", type=whole_number, default=10, help="sampler steps of the fills (default 10)")
    p.add_argument("--guidance", type=float, default=4.0, help="text guidance of the keyframe stage (default 4)")
    p.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="apply the keyframe stage's text guidance only at noise levels sigma in [LO, HI] (e.g. 1 1000: "
                        "the coarse layout and motion are guided, the outline is not; default: at every level)")
    p.add_argument("--image-guidance", type=float, default=1.5,
                   help="known-frame guidance of the keyframe stage (default 1.5)")
    p.add_argument("--sigma-max", type=float, default=80.0, help="largest sampling noise level (default 80)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of generated clips (default 8)")
    p.add_argument("--keyframe-sampler", choices=SAMPLERS, default="dpmpp_2m",
                   help="sampler of the keyframe stage (default dpmpp_2m)")
    p.add_argument("--interpolation-sampler", choices=SAMPLERS, default="dpmpp_2m",
                   help="sampler of the fills (default dpmpp_2m)")
    p.add_argument("--extension-strength", type=float, default=PipelineConfig.extension_strength,
                   help="default --strength of `vidiff extend`, 0..1: below 1, each new keyframe starts (SDEdit) "
                        "from the clip's last frame moved on at its measured velocity, noised to this share of the "
                        "schedule; 1 draws them from noise (default 1)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from vidiff.pipeline.export import SamplingDefaults, export_pipeline

    defaults = SamplingDefaults(keyframe_steps=args.keyframe_steps, interpolation_steps=args.interpolation_steps,
                                guidance_scale=args.guidance, image_guidance_scale=args.image_guidance,
                                sigma_max=args.sigma_max, fps=args.fps, keyframe_sampler=args.keyframe_sampler,
                                interpolation_sampler=args.interpolation_sampler,
                                extension_strength=args.extension_strength,
                                guidance_interval=tuple(args.guidance_interval) if args.guidance_interval else None)
    out = export_pipeline([Path(r) for r in args.run_dirs], Path(args.output), defaults, overwrite=args.force,
                          names=FLAGS)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    from vidiff.output_safety import one_line  # a name's control characters escaped
    print(f"wrote pipeline {one_line(str(out))} ({size / 2**20:.1f} MiB)")
    return 0
