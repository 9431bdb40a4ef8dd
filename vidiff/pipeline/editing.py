"""Video to video: SDEdit over the whole clip, or a region edit inside a mask (VideoPipeline.edit_video).

SDEdit (Meng et al. 2022): the input's latents are noised to the level `strength` selects on each stage's grid and
denoised from there: its keyframes by the keyframe stage, then every in-between frame by the interpolation stage,
re-noised from the input's own latents to the same level, between the edited keyframes. `repeats` R > 1 runs the
keyframe pass R times, each from the last pass's keyframes noised to the same level (SDEdit's repeats): what the
noised input still shows (a flat object's colour survives the level 0.6 selects) gives way to the prompt pass by
pass, while the noise level, so how far anything can move, stays the strength's.

Region edit (mask given): the latent pixels outside the mask stay known, per pixel (region.py): the keyframe stage
samples the keyframes with the input's latents known outside the region, and the interpolation stage fills each
gap with both (edited) ends known and the in-between frames known outside the region. strength < 1 starts the
region from the noised input (SDEdit inside the mask), 1 (the default with a mask) from pure noise. The decoded
clip is then laid over the input with a feathered seam, so that beyond the feather band every pixel is the input's.

`mask="foreground"` is a region edit whose mask is read off the clip: each frame's foreground (the pixels apart
from its background, maps_from_video.py), grown by FOREGROUND_GROW pixels. It redraws the objects and keeps the
background exactly: with the structure maps below, each object stays where it was, in every frame.

Structure (`control`): SDEdit alone keeps what the noised input still shows, and where the new prompt disagrees with
it (another colour), the sampler may move the object to agree. With control parts, an edit can follow maps read off
the input clip itself (maps_from_video.py): "blob" maps keep where each object is in every frame and leave its shape
and colour to the prompt, "silhouette" maps keep the shape too. `control="auto"` (the default) uses blob maps when
the pipeline has control parts trained on them, unless the user gives a mask of their own (a region edit may add an
object the clip's maps do not show); None turns it off; a map kind derives that kind; an array is used as given (as
in text_to_video). With maps, SDEdit (and a region edit at strength < 1) draws the in-between frames fresh between
the edited keyframes, following the maps: re-noised from the input they would keep its old look (measured: 23% of
in-between frames took the new colour against 67% of the keyframes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidiff.data.maps_from_video import maps_from_clip
from vidiff.errors import InputError
from vidiff.limits import plain_number
from vidiff.pipeline.control import request_control
from vidiff.pipeline.region import check_region_mask, composite, feather_weights, latent_keep_mask
from vidiff.pipeline.input_checks import check_clip_sides, check_edit_options, check_frames
from vidiff.pipeline.timeline import place_keyframes
from vidiff.pipeline.trained_layouts import check_edit_length, edit_misfit

FOREGROUND_GROW = 2  # pixels around each frame's foreground that mask="foreground" redraws too


def foreground_mask(frames: torch.Tensor, grow: int = FOREGROUND_GROW) -> torch.Tensor:
    """bool (F,H,W): each frame's foreground (maps_from_video.foreground), grown by `grow` pixels."""
    fg = torch.from_numpy(maps_from_clip(frames.numpy(), "silhouette"))[:, None]  # (F,1,H,W)
    return F.max_pool2d(fg, 2 * grow + 1, stride=1, padding=grow)[:, 0] > 0.5


def clip_foreground(frames: torch.Tensor) -> torch.Tensor:
    """mask="foreground": foreground_mask of `frames`, refused when it selects nothing (the edit would redraw
    nothing). The CLI calls it too, so a flat clip is refused before the weights load."""
    mask = foreground_mask(frames)
    if not mask.any():
        raise InputError("mask 'foreground': no frame of the clip shows anything apart from its background")
    return mask


def structure_maps(pipe, frames: torch.Tensor, control, user_mask: bool):
    """The control maps an edit follows: None, the maps given, or maps of a kind read off `frames` (see above)."""
    if isinstance(control, str):
        kinds = pipe.config.control_maps
        if control == "auto":
            if user_mask or "blob" not in kinds:
                return None
            control = "blob"
        if control not in kinds:
            raise InputError(f"control: {control!r} maps from the clip need control parts trained on them; this "
                             f"pipeline's take {list(kinds) or 'none'} ('auto', None or maps also work)")
        return maps_from_clip(frames.numpy(), control)
    return control


def edit(pipe, frames, prompt, *, strength, mask, feather: int | None, progress: bool, settings: dict, control="auto",
         control_scale=None, repeats: int | None = None):
    """The body of VideoPipeline.edit_video (checked before the VAE encodes anything)."""
    frames = check_frames(frames, "frames")
    check_clip_sides(frames, pipe.size_multiple, "frames")
    n, height, width = frames.shape[:3]
    user_mask = mask is not None and not isinstance(mask, str)
    if isinstance(mask, str):
        if mask != "foreground":
            raise InputError(f"mask: an array (H,W) or (F,H,W), or 'foreground'; got {mask[:40]!r}")
        mask = clip_foreground(frames)
    region = None if mask is None else check_region_mask(mask, n, height, width)
    strength, feather, repeats = check_edit_options(strength, feather, repeats, masked=region is not None)
    keyframes, interpolation = pipe.trained.get("keyframes"), pipe.trained.get("interpolation")
    max_gap = pipe.config.interpolation.max_gap
    # shorter than every trained grid (2 frames when forced): no keyframe_stride helps
    check_edit_length(n, "frames: the clip", max_gap, None if settings.get("force_layout") else keyframes,
                      interpolation)
    try:
        req = pipe.request(prompt, num_frames=n, height=height, width=width, exact_frames=True, **settings)
    except InputError as e:  # the user gave a clip, not num_frames: say that its length is what does not fit
        misfit = f"num_frames {n} does not fit"
        if not str(e).startswith(misfit):
            raise
        reason = str(e)[len(misfit):]
        if settings.get("num_keyframes") is None:  # the lengths and strides the parts were trained on, as the CLI
            stride = plain_number(settings.get("keyframe_stride")) or pipe.config.keyframe_stride
            reason = edit_misfit(n, stride, max_gap, keyframes, interpolation)[len("that does not fit"):]
        raise InputError(f"frames: the clip has {n} frames, and an edit keeps a clip's length: that does not fit"
                         f"{reason}") from None
    pipe._check_trained(req, known=None if region is None else "region")
    if region is not None and not pipe.keyframes.takes_known_frames:
        raise InputError("this pipeline's keyframe model takes no known frames (it cannot edit a region)")
    maps = structure_maps(pipe, frames, control, user_mask)
    control = request_control({"keyframes": pipe.keyframes, "interpolation": pipe.interpolation}, maps,
                              control_scale, req, pipe.config.control_scale)
    if region is None and strength == 1:  # the input forgotten (but for its structure maps): text to video
        return pipe._text_to_video(prompt, progress=progress, num_frames=n, height=height, width=width,
                                  control=maps, control_scale=control_scale, **settings)
    source = pipe.vae.encode_frames(frames.to(pipe._device)).cpu().float()  # (1,C,F,h,w)
    source = source.expand(len(req.seeds), -1, -1, -1, -1)
    if region is None:
        return sdedit(pipe, req, source, strength, progress, control, repeats)
    weights = feather_weights(region, feather)  # (F,H,W)
    if strength == 0:  # the input as the VAE decodes it, inside the mask
        return req.unbatch(composite(frames, pipe._decode(source, progress), weights)), req.fps
    keep = latent_keep_mask(region, pipe.vae.downsample_factor, feather)  # (F,h,w)
    k, s = req.layout.num_keyframes, req.layout.keyframe_stride
    batch, gaps = len(req.seeds), list(range(k - 1))
    init = source if strength < 1 else None
    fresh = control is not None  # as in sdedit: with maps, the in-between frames are drawn fresh
    with pipe._timeline(req, [gaps], progress, strength=strength, control=control,
                        fill_strength=1.0 if fresh else None, keyframe_passes=repeats) as timeline:  # 1 at strength 1
        kf = edited_keyframes(timeline, pipe._latent_shape(req, k), "region-keyframes", source[:, :, ::s].clone(),
                              keep[::s][None].expand(batch, -1, -1, -1).clone(),
                              None if init is None else init[:, :, ::s], repeats)
        latents = timeline.fill(place_keyframes(kf, req.layout), gaps, "region-interp",
                                init=None if fresh else init, region=(source, keep))
    return req.unbatch(composite(frames, pipe._decode(latents, progress), weights)), req.fps


def edited_keyframes(timeline, shape, key: str, known, known_mask, init, passes: int) -> torch.Tensor:
    """The keyframe stage's SDEdit from `init` (None, with passes 1: from pure noise), run `passes` times, each pass
    starting from the last one's keyframes (SDEdit's repeated noising and denoising, Meng et al. 2022): every pass
    takes the keyframes further from what the input showed and towards the prompt, at the same noise level."""
    kf = timeline.keyframes(shape, key, known, known_mask, init=init)
    for r in range(1, passes):
        kf = timeline.keyframes(shape, f"{key}-{r}", known, known_mask, init=kf)
    return kf


def sdedit(pipe, req, source, strength: float, progress: bool, control=None, repeats: int = 1):
    """SDEdit over the whole clip at 0 <= strength < 1 from the encoded clip `source` (B,C,F,h,w)."""
    if strength == 0:
        return req.unbatch(pipe._decode(source, progress)), req.fps
    k, s = req.layout.num_keyframes, req.layout.keyframe_stride
    nothing = torch.zeros((len(req.seeds), *pipe._latent_shape(req, k))), torch.zeros(len(req.seeds), k)
    # With maps placing every frame, the in-between frames are drawn fresh between the edited keyframes rather
    # than re-noised from the input, which would keep its old look (module docstring).
    fresh = control is not None
    with pipe._timeline(req, [list(range(k - 1))], progress, strength=strength, control=control,
                        fill_strength=1.0 if fresh else None, keyframe_passes=repeats) as timeline:
        kf = edited_keyframes(timeline, pipe._latent_shape(req, k), "edit-keyframes", *nothing, source[:, :, ::s],
                              repeats)
        latents = timeline.fill(place_keyframes(kf, req.layout), list(range(k - 1)), "edit-interp",
                                init=None if fresh else source)
    return req.unbatch(pipe._decode(latents, progress)), req.fps
