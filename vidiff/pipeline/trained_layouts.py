"""The checks that a request stays inside what the parts were trained on (vidiff/pipeline/trained.py holds the
records): the pipeline refuses a layout outside them with a one-line error naming the setting, before any weights
load, unless the caller forces the layout (then it warns); and the layouts it offers instead are ones the records
allow. A part folder without a record (older exports, hand-made pipelines) is not checked. Pure Python, no torch.
"""
from __future__ import annotations

from typing import Mapping

from vidiff.caller_warning import warn_at_caller
from vidiff.errors import InputError
from vidiff.pipeline.layout import API_NAMES, CLI_NAMES, Layout, anchored_positions, frames_for, interpolation_levels
from vidiff.pipeline.trained import TrainedOn


def _within(value: int, span: tuple[int, ...] | None) -> bool:
    return span is None or span[0] <= value <= span[1]


def _span(span) -> str:
    return str(span[0]) if span[0] == span[1] else f"{span[0]}..{span[1]}"


def layout_problems(layout: Layout, max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None,
                    known: str | None = None, num_known: int = 0) -> list[str]:
    """Why `layout` leaves what the parts were trained on ([] when it does not).

    known: the known-keyframe pattern the request needs ("first" for animate, "first_k" for extend with
    `num_known` leading keyframes, "random_subset" for user keyframes elsewhere, "region" for region edits: both
    parts then need it), None for plain text to video."""
    out = []
    if keyframes is not None:
        if not _within(layout.num_keyframes, keyframes.num_frames):
            longest = ""
            if keyframes.num_frames and keyframes.frame_strides and layout.num_keyframes > keyframes.num_frames[1]:
                most, stride = keyframes.num_frames[1], keyframes.frame_strides[1]
                longest = (f"; the longest clip in one pass is {(most - 1) * stride + 1} frames ({most} keyframes at "
                           f"stride {stride}); a longer clip asked by its length alone (num_frames, --frames) "
                           "is continued by extension windows")
            elif keyframes.num_frames and layout.num_keyframes < keyframes.num_frames[0] \
                    and _within(layout.keyframe_stride, keyframes.frame_strides):  # at an untrained stride the
                # shortest clip was offered and then refused for its stride
                fewest, stride = keyframes.num_frames[0], layout.keyframe_stride
                longest = (f"; the shortest clip at stride {stride} is {(fewest - 1) * stride + 1} frames ({fewest} "
                           "keyframes)")
            out.append(f"{layout.num_keyframes} keyframes (the keyframe part was trained on "
                       f"{_span(keyframes.num_frames)}{longest})")
        if not _within(layout.keyframe_stride, keyframes.frame_strides):
            out.append(f"keyframe stride {layout.keyframe_stride} (the keyframe part was trained on stride "
                       f"{_span(keyframes.frame_strides)})")
        if known is not None and known not in keyframes.known_patterns:
            out.append(f"known keyframes as '{known}' (the keyframe part was trained on "
                       f"{list(keyframes.known_patterns) or 'no known frames'})")
        elif known == "first_k" and num_known > max(1, keyframes.max_first_k):
            out.append(f"{num_known} known leading keyframes (the keyframe part was trained on at most "
                       f"{keyframes.max_first_k})")
    if interpolation is not None:
        if known == "region" and "region" not in interpolation.known_patterns:
            out.append("in-between frames known outside a region (the interpolation part was trained on none)")
        for gap, segments in interpolation_levels(layout.keyframe_stride, max_gap) or []:
            if not _within(segments + 1, interpolation.num_frames) or not _within(gap // segments,
                                                                               interpolation.frame_strides):
                out.append(f"a fill of {segments + 1} frames spaced {gap // segments} apart (the interpolation part "
                           f"was trained on windows of {_span(interpolation.num_frames)} frames spaced "
                           f"{_span(interpolation.frame_strides)} apart)")
    return out


def anchored_problems(positions: list[int], anchors: list[int], keyframes: TrainedOn | None,
                      interpolation: TrainedOn | None) -> list[str]:
    """Why keyframes at `positions` around user keyframes at `anchors` (layout.anchored_positions) leave what the
    parts were trained on ([] when they do not): the keyframe pass, when one runs, by its keyframe count and mean
    spacing; every fill by its window."""
    out = []
    if keyframes is not None and set(positions) - set(anchors):
        k = len(positions)
        mean = (positions[-1] - positions[0]) / (k - 1)
        if not _within(k, keyframes.num_frames):
            out.append(f"{k} keyframes at {positions} (the keyframe part was trained on {_span(keyframes.num_frames)})")
        span = keyframes.frame_strides
        if span is not None and not span[0] - 0.5 <= mean <= span[1] + 0.5:
            out.append(f"keyframes {mean:.2f} frames apart on average at {positions} (the keyframe part was trained "
                       f"on stride {_span(span)})")
        known = user_keyframe_pattern(anchors)
        if known not in keyframes.known_patterns:
            out.append(f"known keyframes as '{known}' (the keyframe part was trained on "
                       f"{list(keyframes.known_patterns) or 'no known frames'})")
    if interpolation is not None:
        for gap in sorted({b - a for a, b in zip(positions, positions[1:])} - {1}):
            if not _within(gap + 1, interpolation.num_frames) or not _within(1, interpolation.frame_strides):
                out.append(f"a fill of {gap + 1} frames (the interpolation part was trained on windows of "
                           f"{_span(interpolation.num_frames)} frames spaced "
                           f"{_span(interpolation.frame_strides)} apart)")
    return out


def lay_keyframes_around(anchors: list[int], num_frames: int, stride: int, max_gap: int) -> list[int]:
    """layout.anchored_positions at the keyframe stride, but no wider than one interpolation pass fills (max_gap):
    the layout text_to_video runs around off-grid user keyframes, and what its records and refusals describe."""
    return anchored_positions(anchors, num_frames, min(stride, max_gap), max_gap)


def check_anchored_layout(anchors: list[int], num_frames: int, stride: int, max_gap: int,
                          keyframes: TrainedOn | None, interpolation: TrainedOn | None, force: bool = False,
                          names: Mapping[str, str] = API_NAMES) -> list[int]:
    """The keyframe positions laid around user keyframes at `anchors` (lay_keyframes_around); raises InputError
    (or, with force, warns) when they leave the parts' training (anchored_problems). `names`: layout.API_NAMES or
    CLI_NAMES, for the way past the refusal."""
    def problems_at(frames: int, wanted: list[int]) -> list[str]:
        return anchored_problems(lay_keyframes_around(wanted, frames, stride, max_gap), wanted, keyframes,
                                 interpolation)

    positions = lay_keyframes_around(anchors, num_frames, stride, max_gap)
    problems = anchored_problems(positions, anchors, keyframes, interpolation)
    if problems:
        _refuse_or_warn(f"keyframes at {anchors} of {num_frames} frames need " + "; ".join(problems)
                        + (_what_fits(anchors, num_frames, stride, problems_at) if not force else ""), force, names)
    return positions


def _what_fits(anchors: list[int], num_frames: int, stride: int, problems_at, shorter: bool = True) -> str:
    """What the refusal of off-grid keyframes can offer instead (it offered only force_layout): the nearest grid
    positions, when they are free and fit, and (`shorter`) the longest shorter clip that takes the keyframes where
    they are."""
    offers = []
    grid = [min(round(a / stride) * stride, (num_frames - 1) // stride * stride) for a in anchors]
    if len(set(grid)) == len(grid) and not problems_at(num_frames, sorted(set(grid))):
        # only the keyframes that move are named: the full list named frame 0 of animate, its image, which
        # `--keyframe 0=` refuses (animate --frames 46 --keyframe 7=b.png was offered "[0, 5]")
        moved = [(a, g) for a, g in zip(anchors, grid) if a != g]
        offers.append(f"keyframe{'s' if len(moved) > 1 else ''} {', '.join(str(a) for a, _ in moved)} moved to "
                      f"{', '.join(str(g) for _, g in moved)} on the stride's grid")
    if shorter:
        cut = next((n for n in range(num_frames - 1, max(anchors), -1) if not problems_at(n, anchors)), None)
        if cut is not None:
            offers.append(f"a clip of {cut} frames with the keyframes where they are")
    return f"; fits: {' or '.join(offers)}" if offers else ""


def user_keyframe_pattern(indices) -> str | None:
    """The known-keyframe pattern user keyframes at frame `indices` need: "first" for frame 0 alone,
    "random_subset" for any others, None for none."""
    indices = sorted(indices)
    return None if not indices else "first" if indices == [0] else "random_subset"


def _refuse_or_warn(message: str, force: bool, names: Mapping[str, str]) -> None:
    """InputError for a request outside the parts' training, saying how to force it (`names["force"]`), or with
    force only a warning."""
    if not force:
        raise InputError(f"{message} ({names['force']} runs it anyway)")
    warn_at_caller(message + ": running it because the layout was forced")


def fewest_trained_keyframes(keyframes: TrainedOn | None) -> int | None:
    """The fewest keyframes the keyframe part was trained on (None without a record of it)."""
    return keyframes.num_frames[0] if keyframes is not None and keyframes.num_frames else None


def keyframes_misfit(error: InputError, frames: int, keyframes: int, stride: int, record: TrainedOn | None,
                     force: bool, names=API_NAMES, offers_lengths: bool = True) -> InputError:
    """The refusal of a length given with a keyframe count that no grid fits (`error`, resolve_layout's), told
    what the length alone makes: any length is made without the count (a trained grid, cut, or one pass and then
    extension windows). A count outside the part's record is refused as such, not offered frame counts that are
    each refused in turn (64 frames with 12 keyframes offered 34, 45, 56). `offers_lengths=False`: `error` is
    check_layout's, of a grid that fits the length but not the parts' records (64 frames as 4 keyframes at
    stride 21), which offers nothing, so the length alone is offered whatever it is."""
    if record is None or not record.num_frames:
        return error
    fewest, most = record.num_frames
    longest = frames_for(most, stride)
    made = frames <= longest or "first_k" in record.known_patterns  # extension windows start from known keyframes
    alone = (f"without {names['keyframes']}, {frames} frames are made "
             + (f"as a pass of {longest} and extension windows" if frames > longest else "on a trained grid"))
    if not fewest <= keyframes <= most and not force:
        return InputError(f"{names['keyframes']} {keyframes}: the keyframe part was trained on {fewest}..{most} "
                          f"keyframes ({names['force']} runs more or fewer)"
                          + (f"; {alone}" if made else ""))
    return InputError(f"{error}; or {alone}") if made and (frames > longest or not offers_lengths) else error


def shortest_trained_layout(max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None
                            ) -> Layout | None:
    """The shortest keyframe grid within the parts' training records: the fewest trained keyframes at the smallest
    trained stride that passes layout_problems (None without a record of the keyframe part's counts and strides)."""
    return _end_trained_layout(max_gap, keyframes, interpolation, longest=False)


def longest_trained_layout(max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None
                           ) -> Layout | None:
    """The longest keyframe grid within the parts' training records: the most trained keyframes at the largest
    trained stride that passes layout_problems (None without a record of the keyframe part's counts and strides)."""
    return _end_trained_layout(max_gap, keyframes, interpolation, longest=True)


def _end_trained_layout(max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None,
                        longest: bool) -> Layout | None:
    if keyframes is None or not keyframes.num_frames or not keyframes.frame_strides:
        return None
    k = keyframes.num_frames[1 if longest else 0]
    low, high = keyframes.frame_strides
    for s in (range(high, low - 1, -1) if longest else range(low, high + 1)):
        if _within_records(k, s, max_gap, keyframes, interpolation):
            return Layout(frames_for(k, s), k, s)
    return None


def _within_records(k: int, s: int, max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None
                    ) -> bool:
    """Whether k keyframes at stride s can be filled and lie inside the parts' training records."""
    return interpolation_levels(s, max_gap) is not None and not layout_problems(
        Layout(frames_for(k, s), k, s), max_gap, keyframes, interpolation)


def check_edit_length(frames: int, what: str, max_gap: int, keyframes: TrainedOn | None,
                      interpolation: TrainedOn | None) -> None:
    """An edit keeps its clip's length: a clip shorter (longer) than every grid the parts were trained on is refused
    as too short (long), with the shortest (longest) length the pipeline takes (a 2-frame clip was offered 6
    frames, 2 keyframes, which the layout check then refused). Without a record (or `keyframes` None: a forced
    layout) the shortest grid is 2 frames. One check for every short clip: a 1-frame one was told 2 frames, and at
    2 frames then 7."""
    shortest = shortest_trained_layout(max_gap, keyframes, interpolation)
    counted = f"{frames} frame{'' if frames == 1 else 's'}"
    if shortest is not None and frames < shortest.num_frames:
        raise InputError(f"{what} has {counted}: too short for this pipeline, which edits clips of "
                         f"{shortest.num_frames} frames or more ({shortest.num_keyframes} keyframes at stride "
                         f"{shortest.keyframe_stride}, the shortest layout its parts were trained on)")
    longest = longest_trained_layout(max_gap, keyframes, interpolation)
    if longest is not None and frames > longest.num_frames:  # the layout check offered extension windows, which
        # continue a clip asked by its length (generate), not one an edit keeps
        raise InputError(f"{what} has {counted}: too long for this pipeline, which edits clips of up to "
                         f"{longest.num_frames} frames ({longest.num_keyframes} keyframes at stride "
                         f"{longest.keyframe_stride}, the longest layout its parts were trained on); edit it in parts "
                         "of at most that length")
    if frames < 2:  # 2 keyframes at stride 1; the layout check would name num_frames, which an edit does not take
        raise InputError(f"{what} has {counted}: too short; an edit redraws clips of 2 frames or more")


def edit_misfit(frames: int, stride: int, max_gap: int, keyframes: TrainedOn | None,
                interpolation: TrainedOn | None, names=API_NAMES) -> str:
    """Why a clip of `frames` frames is no keyframe grid at `stride`, with the stride values that make it one and
    the clip lengths at `stride` that the parts were trained on (a 4-frame clip was offered 6 frames, which the
    layout check then refused as 2 keyframes). `names`: layout.API_NAMES or CLI_NAMES."""
    from vidiff.limits import MAX_KEYFRAMES

    def fits(k: int, s: int) -> bool:
        return _within_records(k, s, max_gap, keyframes, interpolation)

    strides = [s for s in range(2, frames) if (frames - 1) % s == 0 and fits((frames - 1) // s + 1, s)]
    lengths = [frames_for(k, stride) for k in range(2, MAX_KEYFRAMES + 1) if fits(k, stride)]
    near = sorted([m for m in lengths if m < frames][-1:] + [m for m in lengths if m > frames][:1])
    out = f"that does not fit the keyframe layout with keyframe stride {stride} (frames = (keyframes - 1) * stride + 1)"
    if strides:
        given = (lambda s: f"{names['stride']} {s}") if names["stride"].startswith("-") else (
            lambda s: f"{names['stride']}={s}")
        out += f"; {' or '.join(map(given, strides))} fits it"
    if near:
        out += f"; clip lengths that fit at stride {stride}: {', '.join(map(str, near))}"
    else:
        out += f"; no clip length at stride {stride} is within the layouts the pipeline was trained on"
    return out


def warn_untrained_size(keyframes: TrainedOn | None, height: int, width: int, factor: int) -> None:
    """A keyframe pass at another frame size than its part's recorded latent_size is warned of, not refused: the
    convolutions run at any size, but the layout of a scene was learned at one (it ran silently)."""
    if keyframes is None or not keyframes.latent_size or (height // factor, width // factor) == keyframes.latent_size:
        return
    h, w = keyframes.latent_size
    warn_at_caller(f"height x width {height}x{width}: the keyframe part was trained on {h * factor}x{w * factor} "
                   f"frames (latents {h}x{w}), so the clip may not look as at that size")


def check_layout(layout: Layout, max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None, *,
                 known: str | None = None, num_known: int = 0, force: bool = False,
                 names: Mapping[str, str] = API_NAMES) -> None:
    """Raises InputError (or, with force, warns) when the request leaves the parts' training layouts. `names`:
    layout.API_NAMES or CLI_NAMES, for the way past the refusal."""
    problems = layout_problems(layout, max_gap, keyframes, interpolation, known, num_known)
    if not problems:
        return
    cut = f" (cut to {layout.trim_to})" if layout.trim_to else ""
    _refuse_or_warn(f"layout {layout.num_frames} frames{cut} = {layout.num_keyframes} keyframes x stride "
                                        f"{layout.keyframe_stride} needs " + "; ".join(problems), force, names)


def up_conversion_passes(factor: int, max_gap: int, trained, force: bool = False, name: str = "--factor",
                         can_force: bool = True) -> list[int]:
    """The factors of the passes that up-convert by `factor`: [factor] when one pass of that gap is within the
    interpolation part's trained layouts; otherwise the fewest passes, then the most even split (16 -> 4 x 4,
    24 -> 4 x 6), whose gaps each are, every pass up-converting the previous pass's frames as running the command
    on its own output would. With `force`, or when no split fits, one pass, checked as before (InputError naming
    `name`, the option that asked for the factor). `can_force`: whether the command has --force-layout, which
    the refusal then suggests."""

    def gap(f: int) -> Layout:
        return Layout(f + 1, 2, f)  # one gap: what every chunk repeats

    def fits(f: int) -> bool:
        return interpolation_levels(f, max_gap) is not None and not layout_problems(gap(f), max_gap, None, trained)

    if not (force or fits(factor)):
        for count in (2, 3):
            splits = [s for s in _ordered_factorizations(factor, count) if all(fits(f) for f in s)]
            if splits:
                return list(min(splits, key=lambda s: (max(s), s)))
    if interpolation_levels(factor, max_gap) is None:
        raise InputError(f"{name} {factor}: the pipeline fills gaps of up to {max_gap} frames in one pass, and "
                         f"{factor} does not split into such passes")
    problems = [] if force or can_force else layout_problems(gap(factor), max_gap, None, trained)
    if problems:  # check_layout's refusal would suggest a --force-layout the command does not have
        raise InputError(f"{name} {factor}: one pass needs {'; '.join(problems)}, and {factor} does not split "
                         "into passes that it was trained on")
    # refuses (or with force warns) what fits() did not
    check_layout(gap(factor), max_gap, None, trained, force=force, names=CLI_NAMES)
    return [factor]


def _ordered_factorizations(n: int, count: int) -> list[tuple[int, ...]]:
    """Every (f1, ..., f_count) with each f >= 2 and their product n."""
    if count == 1:
        return [(n,)] if n >= 2 else []
    return [(f, *rest) for f in range(2, n // 2 + 1) if n % f == 0
            for rest in _ordered_factorizations(n // f, count - 1)]
