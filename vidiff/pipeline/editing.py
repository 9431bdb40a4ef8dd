"""Video to video: SDEdit over the whole clip, or a region edit inside a mask (VideoPipeline.edit_video).

SDEdit (Meng et al. 2022): the input's latents are noised to the level `strength` selects on each stage's grid and
denoised from there: its keyframes by the keyframe stage, then every in-between frame by the interpolation stage,
re-noised from the input's own latents to the same level, between the edited keyframes.

Region edit (mask given): the latent pixels outside the mask stay known, per pixel (region.py): the keyframe stage
samples the keyframes with the input's latents known outside the region, and the interpolation stage fills each
gap with both (edited) ends known and the in-between frames known outside the region. strength < 1 starts the
region from the noised input (SDEdit inside the mask), 1 (the default with a mask) from pure noise. The decoded
clip is then laid over the input with a feathered seam, so that beyond the feather band every pixel is the input's.
"""
from __future__ import annotations

import torch

from vidiff.errors import InputError
from vidiff.pipeline.region import check_region_mask, composite, feather_weights, latent_keep_mask
from vidiff.pipeline.request import check_feather, check_frames, check_strength
from vidiff.pipeline.timeline import place_keyframes

DEFAULT_STRENGTH = 0.6  # SDEdit over the whole clip
DEFAULT_REGION_STRENGTH = 1.0  # inside a mask: regenerate


def edit(pipe, frames, prompt, *, strength, mask, feather: int, progress: bool, settings: dict):
    """The body of VideoPipeline.edit_video (checked before the VAE encodes anything)."""
    frames = check_frames(frames, "frames")
    n, height, width = frames.shape[:3]
    region = None if mask is None else check_region_mask(mask, n, height, width)
    feather = check_feather(feather)
    if strength is None:
        strength = DEFAULT_STRENGTH if region is None else DEFAULT_REGION_STRENGTH
    strength = check_strength(strength)
    req = pipe.request(prompt, num_frames=n, height=height, width=width, exact_frames=True, **settings)
    pipe._check_trained(req, known=None if region is None else "region")
    if region is not None and not pipe.keyframes.takes_known_frames:
        raise InputError("this pipeline's keyframe model takes no known frames (it cannot edit a region)")
    source = pipe.vae.encode_frames(frames.to(pipe._device)).cpu().float()  # (1,C,F,h,w)
    source = source.expand(len(req.seeds), -1, -1, -1, -1)
    if region is None:
        return sdedit(pipe, frames, prompt, req, source, strength, progress, settings)
    weights = feather_weights(region, feather)  # (F,H,W)
    if strength == 0:  # the input as the VAE decodes it, inside the mask
        return req.unbatch(composite(frames, pipe._decode(source, progress), weights)), req.fps
    keep = latent_keep_mask(region, pipe.vae.downsample_factor, feather)  # (F,h,w)
    k, s = req.layout.num_keyframes, req.layout.keyframe_stride
    batch, gaps = len(req.seeds), list(range(k - 1))
    init = source if strength < 1 else None
    with pipe._timeline(req, [gaps], progress, strength=strength) as timeline:
        kf = timeline.keyframes(pipe._latent_shape(req, k), "region-keyframes", source[:, :, ::s].clone(),
                                keep[::s][None].expand(batch, -1, -1, -1).clone(),
                                init=None if init is None else init[:, :, ::s])
        latents = timeline.fill(place_keyframes(kf, req.layout), gaps, "region-interp", init=init,
                                region=(source, keep))
    return req.unbatch(composite(frames, pipe._decode(latents, progress), weights)), req.fps


def sdedit(pipe, frames, prompt, req, source, strength: float, progress: bool, settings: dict):
    if strength == 0:
        return req.unbatch(pipe._decode(source, progress)), req.fps
    if strength == 1:  # the input is forgotten entirely: exactly text to video
        return pipe.text_to_video(prompt, progress=progress, num_frames=frames.shape[0], height=frames.shape[1],
                                  width=frames.shape[2], **settings)
    k, s = req.layout.num_keyframes, req.layout.keyframe_stride
    nothing = torch.zeros((len(req.seeds), *pipe._latent_shape(req, k))), torch.zeros(len(req.seeds), k)
    with pipe._timeline(req, [list(range(k - 1))], progress, strength=strength) as timeline:
        kf = timeline.keyframes(pipe._latent_shape(req, k), "edit-keyframes", *nothing, init=source[:, :, ::s])
        latents = timeline.fill(place_keyframes(kf, req.layout), list(range(k - 1)), "edit-interp", init=source)
    return req.unbatch(pipe._decode(latents, progress)), req.fps
