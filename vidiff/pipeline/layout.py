"""Keyframe-layout arithmetic: which frame counts fit, how gaps are filled, how a clip is extended.

A clip of `num_frames` frames holds K keyframes at indices 0, S, 2S, ..., (K-1)S, so num_frames = (K-1)*S + 1.
The interpolation part fills a gap of G frames (both ends known) in one pass when G <= max_gap; a larger gap is
first split into n equal sub-gaps (n <= max_gap, a window of n+1 frames spaced G/n apart), then each sub-gap is
filled the same way. User keyframes off that grid get a grid laid around them (`anchored_positions`): keyframes
then sit at uneven indices, and each stretch between two of them is filled at its own gap. Pure Python, no torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vidiff.errors import InputError


def frames_for(num_keyframes: int, keyframe_stride: int) -> int:
    return (num_keyframes - 1) * keyframe_stride + 1


@dataclass(frozen=True)
class Layout:
    num_frames: int  # frames the keyframe grid spans, (K - 1) * S + 1
    num_keyframes: int  # K
    keyframe_stride: int  # S: keyframe k sits at frame k * S
    trim_to: int | None = None  # a clip length asked for that no grid fits: the grid's clip is cut to it

    @property
    def output_frames(self) -> int:
        """Frames of the clip the user gets."""
        return self.num_frames if self.trim_to is None else self.trim_to


def lift_short_layout(layout: Layout, fewest_keyframes: int | None) -> Layout:
    """A clip shorter than the fewest keyframes the keyframe part was trained on: made on that many keyframes at
    the same stride and cut to the length asked (`--frames 5` at stride 5 was refused as "needs 2 keyframes").
    Unchanged when the part has no record or the layout already has enough keyframes."""
    if fewest_keyframes is None or layout.num_keyframes >= fewest_keyframes:
        return layout
    s = layout.keyframe_stride
    return Layout(frames_for(fewest_keyframes, s), fewest_keyframes, s, trim_to=layout.output_frames)


def anchored_span(layout: Layout) -> int:
    """Frames the keyframes around off-grid user keyframes are laid over (anchored_positions): the clip's, or a
    short clip's lifted grid (lift_short_layout), cut to the clip afterwards as the on-grid path cuts it (`--frames
    2 --keyframe 1=a.png` was laid over 2 frames, 2 keyframes, and refused as untrained)."""
    if layout.trim_to is None:
        return layout.num_frames
    cut = (layout.trim_to - 2) // layout.keyframe_stride + 2  # the keyframes resolve_layout gives a cut length
    return layout.num_frames if layout.num_keyframes > cut else layout.trim_to


def interpolation_levels(gap: int, max_gap: int) -> list[tuple[int, int]] | None:
    """[(gap, segments), ...] coarse to fine, filling `gap` with passes of at most `max_gap`; None if impossible.

    Each level splits every current gap into `segments` equal parts; the next level's gap is gap // segments.
    gap 1 needs nothing ([]); 10 with max_gap 5 -> [(10, 5), (2, 2)]; a prime larger than max_gap -> None.
    """
    if gap < 1:
        return None
    if gap == 1:
        return []
    if gap <= max_gap:
        return [(gap, gap)]
    # Most segments first: the coarse pass then sees the densest window the part was trained on.
    for segments in range(min(max_gap, gap // 2), 1, -1):
        if gap % segments == 0:
            rest = interpolation_levels(gap // segments, max_gap)
            if rest is not None:
                return [(gap, segments)] + rest
    return None


def fillable_strides(max_gap: int, up_to: int) -> list[int]:
    return [s for s in range(1, up_to + 1) if interpolation_levels(s, max_gap) is not None]


# How errors name the three layout settings and the way past the training records: the Python API's keyword
# arguments, or the command line's flags (a refusal on the command line named force_layout=True beside the flag).
API_NAMES = MappingProxyType({"frames": "num_frames", "keyframes": "num_keyframes", "stride": "keyframe_stride",
                              "force": "force_layout=True"})
CLI_NAMES = MappingProxyType({"frames": "--frames", "keyframes": "--keyframes", "stride": "--stride",
                              "force": "--force-layout"})
# fill_between's: its arguments are the keyframes themselves and `stride` (keyframe_stride was a name it does not take)
FILL_NAMES = MappingProxyType({"frames": "frames", "keyframes": "keyframes", "stride": "stride",
                               "force": "force_layout=True"})


def check_layout_limit(layout: Layout, names: Mapping[str, str] = API_NAMES) -> None:
    """InputError when the grid `layout` samples outgrows the frame limit; a length the user gave (cut from the next
    longer grid) is named as given, with the longest that fits, not as the grid they never asked for."""
    from vidiff.limits import MAX_FRAMES

    if layout.num_frames <= MAX_FRAMES:
        return
    if layout.trim_to:
        longest = (MAX_FRAMES - 1) // layout.keyframe_stride * layout.keyframe_stride + 1
        raise InputError(f"{names['frames']} {layout.trim_to} at keyframe stride {layout.keyframe_stride} is sampled "
                         f"as {layout.num_frames} frames and cut; the limit is {MAX_FRAMES}: give {names['frames']} "
                         f"{longest} or fewer")
    raise InputError(f"{names['keyframes']} {layout.num_keyframes} at stride {layout.keyframe_stride} make a clip of "
                     f"{layout.num_frames} frames; the limit is {MAX_FRAMES}")


def _within_strides(candidates: list[int], strides: tuple[int, ...] | None) -> list[int]:
    """The `candidates` inside the (min, max) keyframe strides a part was trained on; [] without a record."""
    return [s for s in candidates if strides and strides[0] <= s <= strides[-1]]


def resolve_layout(
    num_frames: int | None,
    num_keyframes: int | None,
    keyframe_stride: int | None,
    *,
    default: Layout,
    max_gap: int,
    exact: bool = False,
    names: Mapping[str, str] = API_NAMES,
    strides: tuple[int, ...] | None = None,
    strides_of: str = "the keyframe part",
) -> Layout:
    """Completes (frames, keyframes, stride) from what the user gave; raises InputError saying what would fit.

    Given frames only (or frames and stride), the stride stays the default (or the given one) and the keyframe
    count follows; a length no count fits gets the next longer grid, cut to the length asked (`trim_to`), unless
    `exact` (an edited clip keeps its own frames). Given frames and keyframes, the stride follows; given
    keyframes and/or stride, frames follow. `names`: how errors name the settings (API_NAMES or CLI_NAMES).
    `strides`: the (min, max) keyframe stride the part `strides_of` was trained on, if recorded: the frame counts and
    strides a refusal suggests keep to it (`--frames 20 --keyframes 4` suggested 19 and 22, strides 6 and 7, then
    refused; `--stride 11` suggested strides 1 to 21 to a part trained on 3..5).
    """
    for name, value, low in (("frames", num_frames, 2), ("keyframes", num_keyframes, 2), ("stride", keyframe_stride, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise InputError(f"{names[name]} must be an integer >= {low}, got {value!r}")
    if keyframe_stride is not None and interpolation_levels(keyframe_stride, max_gap) is None:
        fillable = fillable_strides(max_gap, max(2 * keyframe_stride, 12, *(strides or ())))
        trained = _within_strides(fillable, strides)
        raise InputError(
            f"{names['stride']} {keyframe_stride} cannot be filled by this interpolation model (largest gap per pass "
            f"{max_gap}); strides that work: {', '.join(map(str, trained or fillable))}"
            + (f" (the fillable strides {strides_of} was trained on)" if trained else "")
        )
    if num_frames is None:
        k = num_keyframes if num_keyframes is not None else default.num_keyframes
        s = keyframe_stride if keyframe_stride is not None else default.keyframe_stride
        return Layout(frames_for(k, s), k, s)
    if num_keyframes is None:  # frames, and the stride given or the default: the keyframe count follows
        s = keyframe_stride if keyframe_stride is not None else default.keyframe_stride
        if (num_frames - 1) % s:
            if exact:
                given = f"stride {s}" if keyframe_stride is not None else f"keyframe stride {s}"
                raise InputError(_misfit(names, num_frames, given, [frames_for(k, s) for k in _near(num_frames, s)]))
            k = (num_frames - 2) // s + 2  # the fewest keyframes whose grid reaches past the last frame
            return Layout(frames_for(k, s), k, s, trim_to=num_frames)
        return Layout(num_frames, (num_frames - 1) // s + 1, s)
    if keyframe_stride is None:
        k = num_keyframes
        if (num_frames - 1) % (k - 1) or interpolation_levels((num_frames - 1) // (k - 1), max_gap) is None:
            fillable = fillable_strides(max_gap, max(2, 2 * (num_frames - 1) // (k - 1), *(strides or ())))
            fits = [frames_for(k, s) for s in _within_strides(fillable, strides) or fillable]
            raise InputError(_misfit(names, num_frames, f"{k} keyframes", _closest(fits, num_frames)))
        return Layout(num_frames, k, (num_frames - 1) // (k - 1))
    s = keyframe_stride
    if frames_for(num_keyframes, s) != num_frames:
        raise InputError(
            f"{names['frames']} {num_frames} does not fit {num_keyframes} keyframes at stride {s} "
            f"(frames = (keyframes - 1) * stride + 1 = {frames_for(num_keyframes, s)})"
        )
    return Layout(num_frames, num_keyframes, s)


def _near(num_frames: int, stride: int) -> list[int]:
    """Keyframe counts whose clip length is closest to num_frames from below and above."""
    below = max(2, (num_frames - 1) // stride + 1)
    return sorted({below, below + 1})


def _closest(values: list[int], target: int, n: int = 3) -> list[int]:
    return sorted(sorted(set(values), key=lambda v: (abs(v - target), v))[:n])


def _misfit(names: Mapping[str, str], num_frames: int, given: str, fits: list[int]) -> str:
    return (
        f"{names['frames']} {num_frames} does not fit the keyframe layout with {given} "
        f"(frames = (keyframes - 1) * stride + 1); frame counts that fit: {', '.join(map(str, fits))}"
    )


def anchored_positions(anchors: list[int], num_frames: int, stride: int, max_gap: int) -> list[int]:
    """Keyframe positions around user keyframes at any frame indices (`anchors`), for a clip of num_frames.

    The clip's first and last frames are keyframes, and so is every anchor. When all of them are anchors and no
    stretch between neighbours is longer than the interpolation part fills in one pass (max_gap), that is all:
    no keyframe is generated. Otherwise the keyframe part generates the rest, and every stretch longer than
    `stride` gets the fewest evenly spaced keyframes (rounded to whole frames) that make its steps <= stride,
    so the keyframe part sees spacings near those it was trained on. Anchors 0, 7, 15 of 16 frames (max_gap 8)
    give 0, 7, 15; anchor 7 alone gives 0, 4, 7, 11, 15 at stride 5.
    """
    if not anchors:
        raise InputError("keyframes: no user keyframes to lay the grid around")
    ends = sorted({0, *anchors, num_frames - 1})
    steps = [b - a for a, b in zip(ends, ends[1:])]
    if set(ends) <= set(anchors) and max(steps) <= max_gap:
        return ends
    positions = set(ends)
    for a, b in zip(ends, ends[1:]):
        n = -(-(b - a) // stride)  # the fewest steps of at most `stride`
        positions.update(a + round(i * (b - a) / n) for i in range(1, n))
    return sorted(positions)


@dataclass(frozen=True)
class ExtensionWindow:
    start: int  # timeline frame of this window's keyframe 0
    num_known: int  # leading keyframes that are already known (input tail or earlier windows)


def extension_windows(
    num_input: int, num_new: int, num_keyframes: int, keyframe_stride: int, max_known: int = 2
) -> list[ExtensionWindow]:
    """Windows of K keyframes that continue a clip of `num_input` frames by at least `num_new` frames.

    Each window's first keyframes are the last frames made so far, at the keyframe stride, and its last known
    keyframe is the clip's current last frame; windows repeat (overlapping by those known keyframes) until enough
    new frames exist. The caller trims the surplus.
    """
    if num_input < 1:
        raise InputError("extend: the input clip has no frames")
    if num_new < 1:
        raise InputError(f"--frames must be >= 1 new frame, got {num_new}")
    k, s = num_keyframes, keyframe_stride
    windows = []
    last = num_input - 1  # timeline index of the current last frame
    while last < num_input - 1 + num_new:
        known = max(1, min(max_known, last // s + 1, k - 1))
        start = last - (known - 1) * s
        windows.append(ExtensionWindow(start, known))
        last = start + (k - 1) * s
    return windows
