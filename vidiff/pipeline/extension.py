"""Video extension (VideoPipeline.extend_video): the clip's last frames, at the keyframe stride, are the first known
keyframes of a window of K; longer continuations repeat such windows (layout.extension_windows), each overlapping
the last by its known keyframes. The VAE error of the last input frame is faded out over the first new frames
(seam.py), so the seam shows no step in sharpness.

With strength < 1 the new keyframes do not start from noise: each starts (SDEdit, Meng et al. 2022) from the clip's
last frame moved on at the clip's own measured velocity to that keyframe's time (vidiff/motion.py). The keyframe part
alone does not read the speed from two known keyframes that differ by less than a latent pixel; the start carries
it, and every window starts from the same straight path, so the speed does not drift from window to window.
"""
from __future__ import annotations

import dataclasses

import torch

from vidiff.limits import plain_number
from vidiff.motion import carry_forward, clip_velocity
from vidiff.pipeline.layout import extension_windows
from vidiff.pipeline.input_checks import check_clip_sides, check_frames, check_new_frames, check_strength
from vidiff.pipeline.prompt_reading import template_still
from vidiff.pipeline.seam import carry_seam_residual, check_seam_fade
from vidiff.pipeline.timeline import extension_gaps


def extension_strength(config, strength, num_input: int) -> float:
    """The strength an extension runs at: the caller's (checked) or pipeline.yaml's, and 1 (from noise) for a clip
    of one frame, which shows no motion. The CLI's sidecar records this value."""
    strength = config.extension_strength if strength is None else check_strength(strength)
    return strength if num_input >= 2 else 1.0


def extend(pipe, frames, prompt, *, num_frames, seam_fade, progress: bool, settings: dict, strength=None):
    """The body of VideoPipeline.extend_video: input + new frames (B,F+N,H,W,3) unbatched, and the fps."""
    pipe._need_keyframe_part("extending a video")
    frames = check_frames(frames, "frames")
    check_clip_sides(frames, pipe.size_multiple, "frames")
    seam_fade, num_frames = check_seam_fade(plain_number(seam_fade)), check_new_frames(plain_number(num_frames))
    strength = extension_strength(pipe.config, strength, len(frames))
    req = pipe.request(prompt, height=frames.shape[1], width=frames.shape[2], **settings)
    # "keep going left": the clip's colour and shape fill the template, as an animated image's do
    req = dataclasses.replace(req, still=template_still(pipe.config, frames[-1].numpy()))
    k, s = req.layout.num_keyframes, req.layout.keyframe_stride
    windows = extension_windows(frames.shape[0], num_frames, k, s)
    pipe._check_trained(req, known="first_k", num_known=max(w.num_known for w in windows))
    n, total = frames.shape[0], frames.shape[0] + num_frames
    # The last input frame is decoded too: its reconstruction error is what the seam fade carries over. A
    # temporal decoder also sees the input frames its first new frames depend on, so it decodes across the
    # seam as across any other frame. Each input frame is encoded once.
    context = min(n, 1 + pipe.vae.decoder.temporal_radius)
    end = windows[-1].start + (k - 1) * s + 1
    latents = torch.zeros((len(req.seeds), *pipe._latent_shape(req, end)))  # (B,C,T,h,w)
    known = [windows[0].start + i * s for i in range(windows[0].num_known)]  # seed the first window
    extra = [t for t in range(n - context, n) if t not in known]  # what the decoder needs before the new frames
    for idx in (known, extra):
        if idx:
            latents[:, :, idx] = pipe.vae.encode_frames(frames[idx].to(pipe._device)).cpu().float()
    prior = None
    if strength < 1:  # SDEdit from the last frame moved on at the clip's own velocity
        new_keys = sorted({w.start + i * s for w in windows for i in range(w.num_known, k)})
        moved = carry_forward(frames[-1], clip_velocity(frames), [t - (n - 1) for t in new_keys])
        prior = torch.zeros_like(latents)
        prior[:, :, new_keys] = pipe.vae.encode_frames(moved.to(pipe._device)).cpu().float()
    with pipe._timeline(req, [extension_gaps(w, k) for w in windows], progress, strength=strength,
                        fill_strength=1.0) as timeline:
        latents = timeline.extend(latents, windows, pipe._latent_shape(req, k), prior)
    decoded = pipe._decode(latents[:, :, n - context:total], progress)[:, context - 1:]  # (B,1+new,H,W,3)
    new = carry_seam_residual(frames[-1], decoded, seam_fade)  # (B,new,H,W,3)
    out = torch.cat([frames[None].expand(new.shape[0], -1, -1, -1, -1), new], dim=1)  # (B,total,H,W,3)
    return req.unbatch(out), req.fps


def long_clip(pipe, prompt, first, extend_by: int, progress: bool, settings: dict, keyframes: dict):
    """text_to_video past the longest trained pass: the first pass `first` (split_long_layout: that longest one,
    or a shorter one that holds keyframes off the grid), with the user's `keyframes` (all in it), then `extend_by`
    frames of extension windows on each clip, the same frames `vidiff generate --frames` writes."""
    head = {**settings, "num_frames": first.num_frames, "num_keyframes": first.num_keyframes,
            "keyframe_stride": first.keyframe_stride}
    frames, fps = pipe._text_to_video(prompt, keyframes=keyframes, progress=progress, **head)
    req = pipe.request(prompt, **head)
    tail = {k: v for k, v in settings.items() if k not in ("num_frames", "num_keyframes", "height", "width", "seed",
                                                             "negative_prompt")}
    clips = []
    for i, clip in enumerate(frames if req.batched else frames[None]):
        negative = req.negative_prompts[i] if req.negative_prompts else None
        longer, _ = pipe.extend_video(clip, req.prompts[i], num_frames=extend_by, seed=req.seeds[i],
                                      negative_prompt=negative, progress=progress, **tail)
        clips.append(longer)
    return (torch.stack(clips) if req.batched else clips[0]), fps
