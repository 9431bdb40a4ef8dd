"""VAE reconstruction quality: PSNR / SSIM of decode(encode(clip)) against the clip, per frame.

The round trip uses the posterior mean (no sampling) and is scored on uint8 output, the pixels a user
would get back, so the numbers include the final rounding.
"""
from __future__ import annotations

from typing import Iterable

import torch
from einops import rearrange

from vidiff.errors import InputError
from vidiff.eval.metrics import psnr, ssim


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F,H,W,3) -> float (1,3,F,H,W) in [-1, 1]."""
    return rearrange(frames.float() / 127.5 - 1, "f h w c -> 1 c f h w")


def video_to_frames(video: torch.Tensor) -> torch.Tensor:
    """float (1,3,F,H,W) in [-1, 1] -> uint8 (F,H,W,3)."""
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(pixels, "1 c f h w -> f h w c")


@torch.no_grad()
def roundtrip(vae, frames: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 frames through vae.encode (mean) and vae.decode, back to uint8 frames."""
    video = frames_to_video(frames).to(device)
    decoded = vae.decode(vae.encode(video))
    return video_to_frames(decoded.cpu())


def evaluate_reconstruction(
    vae,
    clips: Iterable[torch.Tensor],
    names: Iterable[str] | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """Mean PSNR / SSIM over all frames of all clips, and per clip.

    `vae` is anything with encode(video) -> latents and decode(latents) -> video (float (B,3,F,H,W) in [-1, 1]).
    """
    names = list(names) if names is not None else None
    all_psnr, all_ssim, per_clip = [], [], []
    for i, clip in enumerate(clips):
        name = names[i] if names else f"clip {i}"
        clip = torch.as_tensor(clip)
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] == 0:
            raise InputError(f"{name}: expected uint8 frames (F,H,W,3) with F >= 1, got {clip.dtype} "
                             f"{tuple(clip.shape)}")
        restored = roundtrip(vae, clip, device)
        if restored.shape != clip.shape:
            raise InputError(f"{name}: the VAE returned {tuple(restored.shape)} frames for {tuple(clip.shape)}")
        p, s = psnr(restored, clip, per_frame=True), ssim(restored, clip, per_frame=True)
        all_psnr.append(p)
        all_ssim.append(s)
        per_clip.append({"name": name, "frames": int(clip.shape[0]), "psnr": float(p.mean()), "ssim": float(s.mean())})
    if not per_clip:
        raise InputError("no clips to evaluate")
    p, s = torch.cat(all_psnr), torch.cat(all_ssim)
    return {"num_clips": len(per_clip), "num_frames": int(p.numel()), "psnr": float(p.mean()), "ssim": float(s.mean()), "clips": per_clip}
