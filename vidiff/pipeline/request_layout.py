"""The layout of a request (VideoPipeline.request), against what the parts were trained on: the keyframe strides
the keyframe part took (fill_between: the gaps the interpolation part took), a length with a keyframe count that
no trained grid fits refused with the lengths that fit, a short clip lifted to the fewest trained keyframes.
"""
from __future__ import annotations

from typing import Mapping

from vidiff.errors import InputError
from vidiff.limits import is_int
from vidiff.pipeline.layout import Layout, lift_short_layout, resolve_layout
from vidiff.pipeline.trained_layouts import check_layout, fewest_trained_keyframes, keyframes_misfit


def request_layout(cfg, trained: Mapping, num_frames, num_keyframes, keyframe_stride, *, force_layout: bool,
                   exact_frames: bool, pixel_multiple: int | None, names: Mapping[str, str]) -> Layout:
    """The Layout for these settings (plain numbers or None) of a pipeline with config `cfg` and parts' training
    records `trained`; InputError naming the settings as `names` gives them."""
    if pixel_multiple is None:
        strides, strides_of = getattr(trained.get("keyframes"), "frame_strides", None), "the keyframe part"
    else:  # fill_between: the interpolation part alone fills one pass of each stride it was trained on
        windows = getattr(trained.get("interpolation"), "num_frames", None)
        strides = None if windows is None else (min(windows) - 1, max(windows) - 1)
        strides_of = "the interpolation part"
    try:
        layout = resolve_layout(num_frames, num_keyframes, keyframe_stride,
                                default=Layout(cfg.num_frames, cfg.num_keyframes, cfg.keyframe_stride),
                                max_gap=cfg.interpolation.max_gap, exact=exact_frames, strides=strides,
                                strides_of=strides_of, names=names)
    except InputError as e:  # a length with a count: say what the length alone makes
        # the lows resolve_layout refuses below, the length's too: num_frames=1 with 2 keyframes was offered
        # "without num_keyframes, 1 frames are made", itself refused
        given = ((num_frames, 2), (num_keyframes, 1), (1 if keyframe_stride is None else keyframe_stride, 1))
        if exact_frames or pixel_multiple is not None or not all(is_int(v) and v >= low for v, low in given):
            raise  # a value that is no count is what the error names
        raise keyframes_misfit(e, num_frames, num_keyframes, keyframe_stride or cfg.keyframe_stride,
                               trained.get("keyframes"), force_layout, names) from None
    if None not in (num_frames, num_keyframes) and keyframe_stride is None and pixel_multiple is None \
            and not (exact_frames or force_layout):  # a grid that fits the length, not the parts (64 = 4 x 21)
        try:
            check_layout(layout, cfg.interpolation.max_gap, trained.get("keyframes"),
                         trained.get("interpolation"), names=names)
        except InputError as e:
            raise keyframes_misfit(e, num_frames, num_keyframes, cfg.keyframe_stride, trained.get("keyframes"),
                                   force_layout, names, offers_lengths=False) from None
    if num_frames is not None and num_keyframes is None and not (exact_frames or force_layout):
        layout = lift_short_layout(layout, fewest_trained_keyframes(trained.get("keyframes")))
    return layout
