"""VAE reconstruction quality: PSNR / SSIM of decode(encode(clip)) against the clip, per frame.

The round trip uses the posterior mean (no sampling) and is scored on uint8 output, the pixels a user
would get back, so the numbers include the final rounding. A clip goes through in bounded pieces: the per-frame
encoder `frame_chunk` frames at a time, the decoder one of its own passes (`decode_windows`) at a time, each
pass's frames scored and dropped, so memory stays that of one decoder pass whatever the clip's length (one pass
over 36 frames of 320x240 took 118 MB more per frame); the scores equal those of one pass over the whole clip.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from einops import rearrange
from tqdm.auto import tqdm

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
    return torch.cat([restored for _, restored in roundtrip_pieces(vae, frames, device)])


@torch.no_grad()
def roundtrip_pieces(vae, frames: torch.Tensor, device: str | torch.device = "cpu"
                     ) -> Iterator[tuple[int, torch.Tensor]]:
    """`roundtrip` a piece at a time: (start, uint8 frames from `start`), one per decoder pass. A `vae` without
    `decode_windows` / `config.frame_chunk` runs as one pass."""
    num_frames = frames.shape[0]
    chunk = getattr(getattr(vae, "config", None), "frame_chunk", 0) or num_frames
    # latents of the whole clip (~300 KB a frame at 320x240, as much as its uint8 frames), the pixels a chunk
    latents = torch.cat([vae.encode(frames_to_video(part).to(device)) for part in frames.split(chunk)], dim=2)
    windows = vae.decode_windows(num_frames) if hasattr(vae, "decode_windows") else [(0, num_frames, 0)]
    stops = [start for _, _, start in windows[1:]] + [num_frames]
    for (lo, hi, start), stop in zip(windows, stops):
        # hi - lo frames fit one pass of the decoder's, so decode splits them no further: as in one whole decode
        decoded = vae.decode(latents[:, :, lo:hi])[:, :, start - lo : stop - lo]
        yield start, video_to_frames(decoded.cpu())


def evaluate_reconstruction(
    vae,
    clips: Iterable[torch.Tensor],
    names: Iterable[str] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    total_frames: int | None = None,
) -> dict:
    """Mean PSNR / SSIM over all frames of all clips, and per clip.

    `vae` is anything with encode(video) -> latents and decode(latents) -> video (float (B,3,F,H,W) in [-1, 1]).
    `progress`: a bar on stderr counting the frames scored, of `total_frames` when known.
    """
    names = list(names) if names is not None else None
    all_psnr, all_ssim, per_clip = [], [], []
    bar = tqdm(total=total_frames, desc="eval reconstruction", unit="frame", disable=not progress)
    for i, clip in enumerate(clips):
        name = names[i] if names else f"clip {i}"
        clip = torch.as_tensor(clip)
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] == 0:
            raise InputError(f"{name}: expected uint8 frames (F,H,W,3) with F >= 1, got {clip.dtype} "
                             f"{tuple(clip.shape)}")
        p, s = [], []
        for start, restored in roundtrip_pieces(vae, clip, device):
            truth = clip[start : start + restored.shape[0]]
            if restored.shape[1:] != clip.shape[1:] or restored.shape[0] != truth.shape[0]:
                raise InputError(f"{name}: the VAE returned {tuple(restored.shape)} frames for "
                                 f"{tuple(truth.shape)} of {tuple(clip.shape)}")
            p.append(psnr(restored, truth, per_frame=True))
            s.append(ssim(restored, truth, per_frame=True))
            bar.update(restored.shape[0])
        p, s = torch.cat(p), torch.cat(s)
        if p.numel() != clip.shape[0]:
            raise InputError(f"{name}: the VAE returned {p.numel()} frames for {tuple(clip.shape)}")
        all_psnr.append(p)
        all_ssim.append(s)
        per_clip.append({"name": name, "frames": int(clip.shape[0]), "psnr": float(p.mean()), "ssim": float(s.mean())})
    bar.close()
    if not per_clip:
        raise InputError("no clips to evaluate")
    p, s = torch.cat(all_psnr), torch.cat(all_ssim)
    return {"num_clips": len(per_clip), "num_frames": int(p.numel()), "psnr": float(p.mean()), "ssim": float(s.mean()), "clips": per_clip}
