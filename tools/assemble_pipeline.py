"""Assembles a pipeline folder from trained part exports, taking every setting that training fixed
(parameterization, sigma_data, keyframe count and stride, largest gap, noise schedule) from the training recipes,
so the pipeline samples the parts exactly as they were trained.

    .venv/bin/python tools/assemble_pipeline.py --vae RUN/vae/export \
        --keyframes-run RUN/keyframes --interpolation-run RUN/interpolation --out vidiff/bundled/shapes

A run folder holds config.yaml (the resolved training config) and export/ (the EMA weights as a part folder).
Sampling defaults (steps, guidance) are options here; they are not fixed by training.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.parts import CONFIG_NAME, WEIGHTS_NAME  # noqa: E402
from vidiff.pipeline.config import (  # noqa: E402
    InterpolationStageConfig, PipelineConfig, StageConfig, write_pipeline_yaml,
)
from vidiff.training.config import load_train_config  # noqa: E402


def stage_settings(train_cfg) -> dict:
    d = train_cfg.diffusion
    return dict(parameterization=d.parameterization, sigma_data=d.sigma_data, schedule=dict(d.noise))


def copy_part(src: Path, dst: Path) -> None:
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (src / name).is_file():
            raise SystemExit(f"{src}: missing {name} (not an exported part folder)")
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(src / name, dst / name)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vae", type=Path, required=True, help="VAE part folder (e.g. RUN/vae/export)")
    p.add_argument("--keyframes-run", type=Path, required=True, help="keyframe training run folder")
    p.add_argument("--interpolation-run", type=Path, required=True, help="interpolation training run folder")
    p.add_argument("--out", type=Path, required=True, help="pipeline folder to (re)write")
    p.add_argument("--keyframe-steps", type=int, default=20)
    p.add_argument("--interpolation-steps", type=int, default=10)
    p.add_argument("--guidance", type=float, default=4.0, help="text guidance scale of the keyframe stage")
    p.add_argument("--image-guidance", type=float, default=1.5, help="known-frame guidance of the keyframe stage")
    p.add_argument("--sigma-max", type=float, default=80.0)
    p.add_argument("--fps", type=float, default=8.0)
    args = p.parse_args()

    kf = load_train_config(args.keyframes_run / "config.yaml")
    it = load_train_config(args.interpolation_run / "config.yaml")
    if kf.stage != "keyframes" or it.stage != "interpolation":
        raise SystemExit(f"stages are {kf.stage!r} and {it.stage!r}; expected keyframes and interpolation runs")
    c = kf.conditioning
    cfg = PipelineConfig(
        text_encoder=kf.text_encoder,
        num_frames=(c.num_keyframes - 1) * c.keyframe_stride + 1,
        num_keyframes=c.num_keyframes,
        keyframe_stride=c.keyframe_stride,
        fps=args.fps,
        height=kf.data.size,
        width=kf.data.size,
        keyframes=StageConfig(**stage_settings(kf), sigma_max=args.sigma_max, steps=args.keyframe_steps,
                              guidance_scale=args.guidance, image_guidance_scale=args.image_guidance,
                              cond_sigma=min(0.02, c.cond_noise_max_sigma)),
        interpolation=InterpolationStageConfig(**stage_settings(it), sigma_max=args.sigma_max,
                                               steps=args.interpolation_steps, guidance_scale=1.0,
                                               image_guidance_scale=1.0,
                                               cond_sigma=min(0.02, it.conditioning.cond_noise_max_sigma),
                                               max_gap=it.conditioning.max_gap),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    copy_part(args.vae, args.out / "vae")
    copy_part(args.keyframes_run / "export", args.out / "keyframes")
    copy_part(args.interpolation_run / "export", args.out / "interpolation")
    write_pipeline_yaml(cfg, args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"pipeline written to {args.out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
