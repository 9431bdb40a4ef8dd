"""A clip longer than one pass of the keyframe part: the longest trained pass first (or, with user keyframes off
the stride's grid, the longest that holds them), then extension windows up to the length asked, as `vidiff extend`
makes them (vidiff/pipeline/extension.py long_clip), instead of a refusal. Pure Python, no torch.
"""
from __future__ import annotations

from typing import Iterable

from vidiff.caller_warning import warn_at_caller
from vidiff.errors import InputError
from vidiff.pipeline.layout import Layout, frames_for
from vidiff.pipeline.trained import TrainedOn
from vidiff.pipeline.trained_layouts import _what_fits, anchored_problems, lay_keyframes_around


def longest_pass_frames(trained: TrainedOn | None, stride: int) -> int | None:
    """The frames one pass of the keyframe part makes at most at `stride` (its most trained keyframes), or None
    without a record of its keyframe counts."""
    if trained is None or not trained.num_frames:
        return None
    return frames_for(trained.num_frames[1], stride)


def split_long_layout(trained: TrainedOn | None, layout: Layout, keyframes: Iterable[int] = (),
                      control: bool = False, *, max_gap: int, interpolation: TrainedOn | None = None
                      ) -> tuple[Layout, int]:
    """(first pass, frames to add by extension) for a clip longer than the keyframe part makes in one pass:
    the longest trained pass at the asked stride, then extension windows (as `vidiff extend`) up to the length
    asked, instead of a refusal. `trained`: the keyframe part's record (None without one). (layout, 0) when one
    pass fits or the stride is outside the trained ones (the layout check then says why).
    `keyframes`: the frame indices (from 0) the clip must show; they must lie in the first pass, and `control`
    maps cannot be given: extension windows take neither (it was refused as a layout of 14 keyframes). Keyframes
    off the stride's grid get keyframes laid around them (lay_keyframes_around: one more than the grid), which the
    longest pass has no room for: the first pass is then the longest that holds them within the parts' training
    (`max_gap`, `interpolation`: the interpolation part's), not the refusal of the longest that offered a shorter
    clip (64 frames with a keyframe at 7 were offered 38)."""
    if trained is None or not trained.num_frames:
        return layout, 0
    most, stride = trained.num_frames[1], layout.keyframe_stride
    strides = trained.frame_strides
    if layout.num_keyframes <= most or (strides and not strides[0] <= stride <= strides[1]):
        return layout, 0
    first = Layout(longest_pass_frames(trained, stride), most, stride)
    total = layout.output_frames
    beyond = [index for index in keyframes if index >= first.num_frames]
    if control or beyond:
        what = "control maps" if control else f"known frames (a keyframe at frame {min(beyond)})"
        raise InputError(f"{total} frames: longer than one pass of this pipeline ({first.num_frames} frames, {most} "
                         f"keyframes at stride {stride}); the frames after it are made by extension windows, which "
                         f"take no {what}: give at most {first.num_frames} frames"
                         + ("" if control else f", or keyframes before frame {first.num_frames}"))
    longest, anchors = first, sorted(keyframes)
    if any(index % stride for index in anchors):
        first = _first_pass_around(anchors, longest, max_gap, trained, interpolation, total)
    held = (f"; with keyframes off the stride's grid, the first pass is {first.num_frames} frames (keyframes laid "
            "around them)" if first != longest else "")
    warn_at_caller(f"{total} frames: longer than one pass of this pipeline ({longest.num_frames} frames, {most} "
                   f"keyframes at stride {stride}){held}; the other {total - first.num_frames} "
                   f"frame{'s are' if total - first.num_frames > 1 else ' is'} made by extension windows, as vidiff "
                   "extend makes them")
    return first, total - first.num_frames


def _first_pass_around(anchors: list[int], longest: Layout, max_gap: int, keyframes: TrainedOn,
                       interpolation: TrainedOn | None, total: int) -> Layout:
    """The longest grid pass at `longest`'s stride, no longer than it, whose keyframes laid around user keyframes at
    `anchors` (some off the grid) stay within the parts' training (anchored_problems); InputError when none holds
    them, offering the grid positions (a shorter clip is not offered: the length was asked)."""
    stride = longest.keyframe_stride

    def problems_at(frames: int, wanted: list[int]) -> list[str]:
        return anchored_problems(lay_keyframes_around(wanted, frames, stride, max_gap), wanted, keyframes,
                                 interpolation)

    for k in range(longest.num_keyframes, keyframes.num_frames[0] - 1, -1):
        frames = frames_for(k, stride)
        if anchors[-1] >= frames:  # shorter passes hold it no better
            break
        if not problems_at(frames, anchors):
            return Layout(frames, k, stride)
    off = [a for a in anchors if a % stride]
    raise InputError(f"{total} frames: longer than one pass of this pipeline ({longest.num_frames} frames, "
                     f"{longest.num_keyframes} keyframes at stride {stride}), so the keyframes must lie in a first "
                     f"pass, and none holds keyframes at {anchors}"
                     + (" off the stride's grid" if off == anchors else f" ({off} off the stride's grid)")
                     + f" within the parts' training: laid around them, {longest.num_frames} frames need "
                     + "; ".join(problems_at(longest.num_frames, anchors))
                     + _what_fits(anchors, longest.num_frames, stride, problems_at, shorter=False))
