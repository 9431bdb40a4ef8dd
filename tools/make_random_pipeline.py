"""Writes a random-weight pipeline folder with the real part formats (pipeline.yaml, vae/, keyframes/,
interpolation/), for tests and for the bundled placeholder until trained weights replace it.

    .venv/bin/python tools/make_random_pipeline.py OUT_DIR [--tiny] [--seed 0]

Geometry of the Shapes pipeline: 64x64 frames, VAE downsampling factor 4, 4 latent channels (latents 4x16x16),
16 frames = 4 keyframes at stride 5, 8 fps. Every weight gets a small seeded perturbation so that no layer is
exactly zero (zero-initialised output layers would hide batch and seeding effects in tests).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.models import UNet3D, UNet3DConfig  # noqa: E402
from vidiff.parts import save_part  # noqa: E402
from vidiff.pipeline.config import InterpolationStageConfig, PipelineConfig, StageConfig, write_pipeline_yaml  # noqa: E402
from vidiff.vae import AutoencoderKL, VAEConfig  # noqa: E402

TEXT_DIM = 384  # width of the embedded default text encoder (MiniLM-L6)


def part_configs(tiny: bool, context_dim: int = TEXT_DIM) -> tuple[VAEConfig, UNet3DConfig, UNet3DConfig]:
    if tiny:
        vae = VAEConfig(block_out_channels=(16, 16, 16), layers_per_block=1, norm_groups=8, latent_channels=4)
        unet = dict(block_out_channels=(16, 32), layers_per_block=1, attention_levels=(False, True),
                    num_head_channels=16, norm_groups=8)
    else:
        vae = VAEConfig(block_out_channels=(32, 64, 64), layers_per_block=1, norm_groups=16, latent_channels=4)
        unet = dict(block_out_channels=(64, 128, 128), layers_per_block=2, attention_levels=(False, True, True),
                    num_head_channels=32, norm_groups=16)
    common = dict(in_channels=4, out_channels=4, context_dim=context_dim, conditioning=True, use_frame_stride=True,
                  use_cond_sigma=True, **unet)
    return vae, UNet3DConfig(**common), UNet3DConfig(**common)


def pipeline_config(steps: int = 25) -> PipelineConfig:
    stage = dict(parameterization="v", sigma_data=1.0, sigma_min=0.002, sigma_max=80.0, spacing="karras", steps=steps)
    return PipelineConfig(
        text_encoder="default", num_frames=16, num_keyframes=4, keyframe_stride=5, fps=8.0, height=64, width=64,
        keyframes=StageConfig(**stage, guidance_scale=5.0, image_guidance_scale=1.5),
        interpolation=InterpolationStageConfig(**stage, guidance_scale=1.0, image_guidance_scale=1.0, max_gap=5),
    )


@torch.no_grad()
def random_parts(tiny: bool, seed: int = 0, context_dim: int = TEXT_DIM):
    """(vae, keyframe net, interpolation net) with seeded random weights."""
    vae_cfg, kf_cfg, it_cfg = part_configs(tiny, context_dim)
    torch.manual_seed(seed)
    modules = (AutoencoderKL(vae_cfg), UNet3D(kf_cfg), UNet3D(it_cfg))
    gen = torch.Generator().manual_seed(seed + 1)
    for module in modules[1:]:
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return tuple(m.eval() for m in modules)


def write_random_pipeline(out_dir: str | Path, tiny: bool, seed: int = 0, steps: int | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = pipeline_config(steps or (8 if tiny else 25))
    vae, kf, it = random_parts(tiny, seed)
    vae.save(out_dir / config.parts.vae)
    save_part(out_dir / config.parts.keyframes, kf.config, kf.state_dict())
    save_part(out_dir / config.parts.interpolation, it.config, it.state_dict())
    write_pipeline_yaml(config, out_dir)
    return out_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="pipeline folder to write")
    parser.add_argument("--tiny", action="store_true", help="smallest parts (a few MB), for tests and the bundled placeholder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps per stage in pipeline.yaml")
    args = parser.parse_args()
    folder = write_random_pipeline(args.out_dir, args.tiny, args.seed, args.steps)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"wrote {folder} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
