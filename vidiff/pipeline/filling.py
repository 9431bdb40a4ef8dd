"""Interpolation only (VideoPipeline.fill_between): the frames between given keyframes, at any frame size.

Frames whose size is no multiple of the pipeline's `frame_multiple` are filled with their last row / column
repeated out to one, and cut back. A part anchored on optical flow (`anchor: known_flow`) gets the keyframes
warped along the flow as its anchor, and the keyframes' latents from that same timeline; with `carry_residual`
the keyframes' VAE errors are carried into the frames between (residual.py), along the flow where there is one.
"""
from __future__ import annotations

from vidiff.errors import InputError
from vidiff.limits import MAX_SIDE, check_flag
from vidiff.pipeline.input_checks import check_frames
from vidiff.pipeline.layout import FILL_NAMES
from vidiff.pipeline.timeline import place_keyframes
from vidiff.pipeline.trained_layouts import check_layout, up_conversion_passes
from vidiff.pipeline.upconvert import pad_edges, round_up


def fill(pipe, keyframes, stride: int, seed: int = 0, *, prompt: str, steps, sampler, progress: bool,
         force_layout: bool):
    """The body of VideoPipeline.fill_between: uint8 ((K-1)*stride+1,H,W,3), the keyframes kept as given."""
    force_layout = check_flag(force_layout, "force_layout")  # "no" was taken as True: an untrained layout ran with a warning
    progress = check_flag(progress, "progress")
    for name, value in (("seed", seed), ("prompt", prompt)):
        if isinstance(value, (list, tuple)):  # a batched request: every row was sampled and all but the first lost
            raise InputError(f"{name}: fill_between fills one clip, give one {name} (got a list of {len(value)})")
    keyframes = check_frames(keyframes, "keyframes")
    if keyframes.shape[0] < 2:
        raise InputError(f"keyframes: need at least 2 frames, got {keyframes.shape[0]}")
    h, w = keyframes.shape[1:3]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):  # named as given: it was "width: ..., got 4104", the padding's
        raise InputError(f"keyframes: frames of {w}x{h} pixels; each side must be 1 to {MAX_SIDE} "
                         "(`vidiff interpolate` tiles larger frames)")
    ph, pw = round_up(h, pipe.frame_multiple), round_up(w, pipe.frame_multiple)
    if (ph, pw) != (h, w):
        return fill(pipe, pad_edges(keyframes, ph, pw), stride, seed, prompt=prompt, steps=steps, sampler=sampler,
                    progress=progress, force_layout=force_layout)[:, :h, :w]
    if stride is None:  # request() reads None as pipeline.yaml's keyframe stride, which fill_between has no use for
        raise InputError("stride must be an integer >= 1, got None")
    req = pipe.request(prompt, seed=seed, num_keyframes=keyframes.shape[0], keyframe_stride=stride, steps=steps,
                       sampler=sampler, height=keyframes.shape[1], width=keyframes.shape[2],
                       pixel_multiple=pipe.frame_multiple, names=FILL_NAMES)
    try:
        check_layout(req.layout, pipe.config.interpolation.max_gap, None, pipe.trained.get("interpolation"),
                     force=force_layout)
    except InputError as e:
        raise InputError(f"{e}{_in_passes(pipe, stride)}") from None
    anchor = flows = None
    if pipe.config.interpolation.anchor == "known_flow":
        from vidiff.optical_flow import flow_anchor

        anchor, flows = flow_anchor(pipe.vae, keyframes, req.layout.keyframe_stride)
        # the flow timeline holds the keyframes as given and the encoder is per frame: their latents are there
        kf = anchor[:, :, :: req.layout.keyframe_stride].cpu().float()  # (1,C,K,h,w)
    else:
        kf = pipe.vae.encode_frames(keyframes.to(pipe._device)).cpu().float()
    gaps = list(range(kf.shape[2] - 1))
    with pipe._timeline(req, [gaps], progress, keyframe_stage=False) as timeline:
        timeline.flow_anchor = None if anchor is None else anchor.cpu()
        latents = timeline.fill(place_keyframes(kf, req.layout), gaps, "fill")
    frames = pipe._decode(latents, progress)[0]  # (F,H,W,3)
    if pipe.config.interpolation.carry_residual:
        from vidiff.pipeline.residual import carry_keyframe_residual

        return carry_keyframe_residual(frames, keyframes, req.layout.keyframe_stride, flows)
    frames[:: req.layout.keyframe_stride] = keyframes
    return frames


def _in_passes(pipe, stride: int) -> str:
    """How a stride past the trained gaps is filled in passes of trained gaps, as `vidiff interpolate --factor`
    runs it ("" when it does not split so): the refusal offered only force_layout, an untrained layout."""
    try:
        passes = up_conversion_passes(stride, pipe.config.interpolation.max_gap, pipe.trained.get("interpolation"))
    except InputError:
        return ""
    if len(passes) < 2:
        return ""
    call = "keyframes"
    for gap in passes:
        call = f"fill_between({call}, {gap})"
    return (f"; or fill it in passes of trained gaps ({' x '.join(map(str, passes))}), as `vidiff interpolate "
            f"--factor {stride}` does: {call}")
