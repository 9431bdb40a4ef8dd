"""Preview GIF grids during training, sampled from the EMA weights: previews/step_XXXXXXXX.gif + .json.

One column per prompt, each with a fixed seed, so the previews of successive steps are comparable.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from einops import rearrange

from vidiff.diffusion.cond import Cond
from vidiff.output_safety import write_text


@torch.no_grad()
def write_keyframe_preview(stage, denoiser, out_dir: str | Path, step: int, fps: float = 2.0) -> Path:
    """Samples `train.preview_prompts` (seed = index) with the keyframe model, decodes them with the stage's
    VAE and writes one GIF grid (prompts side by side) plus a JSON with prompts, seeds and step."""
    from vidiff.diffusion import sample, sampling_sigmas
    from vidiff.io import write_video

    cfg = stage.cfg
    prompts = list(cfg.train.preview_prompts)
    vae, text = stage.vae(), stage.text_encoder()
    device = next(denoiser.parameters()).device
    size = cfg.data.size // vae.config.downsample_factor
    shape = (vae.config.latent_channels, cfg.conditioning.num_keyframes, size, size)  # (C, K, h, w)
    seeds = list(range(len(prompts)))
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]).to(device)
    context, context_mask = text.encode(prompts)
    nc = stage.noise_cfg
    sigmas = sampling_sigmas(cfg.train.preview_steps, "karras", nc.sigma_min, nc.sigma_max).to(device)
    b = len(prompts)
    cond = Cond(context=context.to(device), context_mask=context_mask.to(device),
                frame_stride=torch.full((b,), float(cfg.conditioning.keyframe_stride), device=device))
    latents = sample(denoiser, noise * sigmas[0], sigmas, method="dpmpp_2m", cond=cond)
    frames = vae.decode_to_frames(latents)  # (B, K, H, W, 3) uint8
    grid = rearrange(frames, "b f h w c -> f h (b w) c")  # prompts side by side
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_video(out_dir / f"step_{step:08d}.gif", grid, fps)
    meta = {"step": step, "prompts": prompts, "seeds": seeds, "sampler": "dpmpp_2m",
            "steps": cfg.train.preview_steps, "weights": "ema"}
    write_text(out_dir / f"step_{step:08d}.json", json.dumps(meta, indent=1))  # random O_EXCL temporary, rename
    return path
