"""What a part was trained on (`trained_on.yaml` beside its config.yaml), and the check that a request stays there.

A diffusion part only knows the window lengths, frame strides and known-frame patterns it saw in training; asked
for another layout it still produces something, just not what it learned. Training writes this record when it
exports a part (vidiff/training/stages.py); the pipeline refuses a request outside it with a one-line error
naming the setting, before any weights load, unless the caller forces the layout (then it warns).

A part folder without the record (older exports, hand-made pipelines) is not checked. Pure Python, no torch.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from vidiff.config import from_dict, to_dict
from vidiff.errors import InputError
from vidiff.parts import TRAINED_NAME
from vidiff.pipeline.layout import API_NAMES, Layout, anchored_positions, frames_for, interpolation_levels

# known-content patterns a diffusion part can be trained on: per frame (none, first, first_k, random_subset), and
# "region": frames known outside a region of latent pixels (region edits, vidiff/training/regions.py)
PATTERNS = ("none", "first", "first_k", "random_subset", "region")


@dataclass(frozen=True)
class TrainedOn:
    stage: str  # vae | keyframes | interpolation
    text_encoder: str | None = None  # text encoder reference the captions were encoded with
    latent_space: str | None = None  # sha256 of the VAE encoder side whose latents the part learned (latent_space_id)
    latent_size: tuple[int, ...] | None = None  # (h, w) of the training latents
    num_frames: tuple[int, ...] | None = None  # (min, max) frames of the model's window
    frame_strides: tuple[int, ...] | None = None  # (min, max) frame_stride inputs seen
    known_patterns: tuple[str, ...] = ()  # known-frame patterns drawn with probability > 0 (PATTERNS)
    max_first_k: int = 0  # largest k of the first_k pattern

    def __post_init__(self):
        for name in ("num_frames", "frame_strides", "latent_size"):
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or min(value) < 1):
                raise InputError(f"{TRAINED_NAME}: {name} must be two integers >= 1, got {list(value)}")
        unknown = set(self.known_patterns) - set(PATTERNS)
        if unknown:
            raise InputError(f"{TRAINED_NAME}: known_patterns: unknown {sorted(unknown)}; valid: {list(PATTERNS)}")


def write_trained_on(folder: str | Path, record: TrainedOn) -> None:
    import yaml

    from vidiff.output_safety import write_text

    write_text(Path(folder) / TRAINED_NAME, yaml.safe_dump(to_dict(record), sort_keys=False))


def read_trained_on(folder: str | Path) -> TrainedOn | None:
    import os

    path = Path(folder) / TRAINED_NAME
    if not os.path.lexists(path):
        return None  # a part from before the records: no layout checks
    from vidiff.safe_yaml import load_file

    data = load_file(path)  # a FIFO, folder or dangling link is refused there (it was taken for no record at all)
    if not isinstance(data, dict) or "stage" not in data:
        raise InputError(f"{path}: not a training record (it names no stage); delete it to run the part unchecked")
    return from_dict(TrainedOn, data, where=str(path))


def read_trained_records(folder: Path, config) -> dict[str, TrainedOn | None]:
    """Each diffusion part's training record (None where a part has none), and each named control part's, checked
    against the pipeline's text encoder and VAE: a part trained with another encoder or in another latent space is
    an error. The VAE's latent space is hashed once, and only when a record names one."""
    from vidiff.pipeline.config import part_paths

    paths = part_paths(folder, config)
    names = ("keyframes", "interpolation", *config.control_parts())
    records = {name: read_trained_on(paths[name]) if name in paths else None for name in names}
    latent_space = None
    for name, record in records.items():
        if record is None:
            continue
        label = paths[name].name if name in config.control_parts() else name  # a control part by its folder
        if record.text_encoder is not None and record.text_encoder != config.text_encoder:
            raise InputError(f"{label}/trained_on.yaml: trained with text encoder {record.text_encoder!r}, "
                             f"pipeline.yaml uses {config.text_encoder!r}")
        if record.latent_space is not None:
            latent_space = latent_space or latent_space_id(paths["vae"])
            if record.latent_space != latent_space:
                raise InputError(f"{label}/trained_on.yaml: trained in the latent space of another VAE encoder "
                                 f"than {paths['vae']} (latent_space {record.latent_space[:12]}... != "
                                 f"{latent_space[:12]}...)")
    return records


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
            elif keyframes.num_frames and layout.num_keyframes < keyframes.num_frames[0]:
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


def check_anchored_layout(anchors: list[int], num_frames: int, stride: int, max_gap: int,
                          keyframes: TrainedOn | None, interpolation: TrainedOn | None, force: bool = False
                          ) -> list[int]:
    """The keyframe positions laid around user keyframes at `anchors` (layout.anchored_positions); raises
    InputError (or, with force, warns) when they leave the parts' training (anchored_problems)."""
    positions = anchored_positions(anchors, num_frames, min(stride, max_gap), max_gap)
    problems = anchored_problems(positions, anchors, keyframes, interpolation)
    if problems:
        _refuse_or_warn(f"keyframes at {anchors} of {num_frames} frames need " + "; ".join(problems), force,
                        stacklevel=4)
    return positions


def user_keyframe_pattern(indices) -> str | None:
    """The known-keyframe pattern user keyframes at frame `indices` need: "first" for frame 0 alone,
    "random_subset" for any others, None for none."""
    indices = sorted(indices)
    return None if not indices else "first" if indices == [0] else "random_subset"


def _refuse_or_warn(message: str, force: bool, stacklevel: int) -> None:
    """InputError for a request outside the parts' training, or with force (--force-layout) only a warning."""
    if not force:
        raise InputError(message + " (force_layout=True, or --force-layout, runs it anyway)")
    warnings.warn(message + ": running it because the layout was forced", stacklevel=stacklevel)


def fewest_trained_keyframes(keyframes: TrainedOn | None) -> int | None:
    """The fewest keyframes the keyframe part was trained on (None without a record of it)."""
    return keyframes.num_frames[0] if keyframes is not None and keyframes.num_frames else None


def split_long_layout(trained: TrainedOn | None, layout: Layout, keyframes: Iterable[int] = (),
                      control: bool = False) -> tuple[Layout, int]:
    """(first pass, frames to add by extension) for a clip longer than the keyframe part makes in one pass:
    the longest trained pass at the asked stride, then extension windows (as `vidiff extend`) up to the length
    asked, instead of a refusal. `trained`: the keyframe part's record (None without one). (layout, 0) when one
    pass fits or the stride is outside the trained ones (the layout check then says why).
    `keyframes`: the frame indices (from 0) the clip must show; they must lie in the first pass, and `control`
    maps cannot be given: extension windows take neither (it was refused as a layout of 14 keyframes)."""
    import warnings

    from vidiff.pipeline.layout import frames_for

    if trained is None or not trained.num_frames:
        return layout, 0
    most, stride = trained.num_frames[1], layout.keyframe_stride
    strides = trained.frame_strides
    if layout.num_keyframes <= most or (strides and not strides[0] <= stride <= strides[1]):
        return layout, 0
    first = Layout(frames_for(most, stride), most, stride)
    total = layout.output_frames
    beyond = [index for index in keyframes if index >= first.num_frames]
    if control or beyond:
        what = "control maps" if control else f"known frames (a keyframe at frame {min(beyond)})"
        raise InputError(f"{total} frames: longer than one pass of this pipeline ({first.num_frames} frames, {most} "
                         f"keyframes at stride {stride}); the frames after it are made by extension windows, which "
                         f"take no {what}: give at most {first.num_frames} frames"
                         + ("" if control else f", or keyframes before frame {first.num_frames}"))
    warnings.warn(f"{total} frames: longer than one pass of this pipeline ({first.num_frames} frames, {most} "
                  f"keyframes at stride {stride}); the other {total - first.num_frames} frames are made by extension "
                  "windows, as vidiff extend makes them", stacklevel=2)
    return first, total - first.num_frames


def shortest_trained_layout(max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None
                            ) -> Layout | None:
    """The shortest keyframe grid within the parts' training records: the fewest trained keyframes at the smallest
    trained stride that passes layout_problems (None without a record of the keyframe part's counts and strides)."""
    if keyframes is None or not keyframes.num_frames or not keyframes.frame_strides:
        return None
    k = keyframes.num_frames[0]
    for s in range(keyframes.frame_strides[0], keyframes.frame_strides[1] + 1):
        layout = Layout(frames_for(k, s), k, s)
        if interpolation_levels(s, max_gap) is not None and not layout_problems(layout, max_gap, keyframes,
                                                                                interpolation):
            return layout
    return None


def check_edit_length(frames: int, what: str, max_gap: int, keyframes: TrainedOn | None,
                      interpolation: TrainedOn | None) -> None:
    """An edit keeps its clip's length: a clip shorter than every grid the parts were trained on is refused as too
    short, with the shortest length the pipeline takes (a 2-frame clip was offered 6 frames, 2 keyframes, which the
    layout check then refused)."""
    shortest = shortest_trained_layout(max_gap, keyframes, interpolation)
    if shortest is not None and frames < shortest.num_frames:
        raise InputError(f"{what} has {frames} frames: too short for this pipeline, which edits clips of "
                         f"{shortest.num_frames} frames or more ({shortest.num_keyframes} keyframes at stride "
                         f"{shortest.keyframe_stride}, the shortest layout its parts were trained on)")


def edit_misfit(frames: int, stride: int, max_gap: int, keyframes: TrainedOn | None,
                interpolation: TrainedOn | None, names=API_NAMES) -> str:
    """Why a clip of `frames` frames is no keyframe grid at `stride`, with the stride values that make it one and
    the clip lengths at `stride` that the parts were trained on (a 4-frame clip was offered 6 frames, which the
    layout check then refused as 2 keyframes). `names`: layout.API_NAMES or CLI_NAMES."""
    from vidiff.limits import MAX_KEYFRAMES

    def fits(k: int, s: int) -> bool:
        layout = Layout(frames_for(k, s), k, s)
        return interpolation_levels(s, max_gap) is not None and not layout_problems(layout, max_gap, keyframes,
                                                                                    interpolation)

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
    import warnings

    h, w = keyframes.latent_size
    warnings.warn(f"height x width {height}x{width}: the keyframe part was trained on {h * factor}x{w * factor} "
                  f"frames (latents {h}x{w}), so the clip may not look as at that size", stacklevel=4)


def check_layout(layout: Layout, max_gap: int, keyframes: TrainedOn | None, interpolation: TrainedOn | None, *,
                 known: str | None = None, num_known: int = 0, force: bool = False) -> None:
    """Raises InputError (or, with force, warns) when the request leaves the parts' training layouts."""
    problems = layout_problems(layout, max_gap, keyframes, interpolation, known, num_known)
    if not problems:
        return
    cut = f" (cut to {layout.trim_to})" if layout.trim_to else ""
    _refuse_or_warn(f"layout {layout.num_frames} frames{cut} = {layout.num_keyframes} keyframes x stride "
                    f"{layout.keyframe_stride} needs " + "; ".join(problems), force, stacklevel=3)


def _hash_latent_space(scaling: float, shift: float, names, data_of) -> str:
    """The latent-space id: sha256 of (scaling, shift), then of each encoder-side tensor's name and raw bytes
    (`data_of(name)`) in name order; one definition for a saved folder and a VAE in memory."""
    import hashlib

    digest = hashlib.sha256(repr((float(scaling), float(shift))).encode())
    for name in sorted(k for k in names if k.startswith(("encoder.", "quant_conv."))):
        digest.update(name.encode())
        digest.update(data_of(name))
    return digest.hexdigest()


def latent_space_id_of(vae) -> str:
    """latent_space_id of a VAE in memory, as its saved folder would hash (float32 weights, as saving writes them):
    safetensors stores each tensor's raw little-endian bytes, which are the tensor's own here."""
    import sys

    import torch

    state = vae.state_dict()

    def data_of(name: str) -> bytes:
        data = state[name].detach().to("cpu", torch.float32).contiguous().numpy()
        return (data if sys.byteorder == "little" else data.byteswap()).tobytes()

    return _hash_latent_space(vae.config.scaling_factor, vae.config.shift_factor, state, data_of)


def latent_space_id(vae_folder: str | Path) -> str:
    """sha256 of what fixes a VAE's latent space: its encoder-side tensors (encoder.*, quant_conv.*) and latent
    shift / scale. A decoder fine-tune (e.g. a temporal decoder) keeps the id, so parts trained in the old latent
    space stay valid. Read straight from the safetensors file, without torch."""
    import json
    import struct

    from vidiff.parts import CONFIG_NAME, WEIGHTS_NAME, check_safetensors_header
    from vidiff.safe_yaml import load_file

    folder = Path(vae_folder)
    if not (folder / WEIGHTS_NAME).is_file():  # a missing folder or file: one line too
        raise InputError(f"VAE part folder {folder}: {WEIGHTS_NAME} not found")
    check_safetensors_header(folder / WEIGHTS_NAME)  # an empty, garbage or cut file: one line, not a traceback
    cfg = load_file(folder / CONFIG_NAME) or {}
    with open(folder / WEIGHTS_NAME, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100 << 20:
            raise InputError(f"{folder / WEIGHTS_NAME}: safetensors header of {size} bytes is not plausible")
        header = json.loads(f.read(size))

        def data_of(name: str) -> bytes:
            start, end = header[name]["data_offsets"]
            f.seek(8 + size + start)
            return f.read(end - start)

        return _hash_latent_space(cfg.get("scaling_factor", 1.0), cfg.get("shift_factor", 0.0),
                                  [k for k in header if k != "__metadata__"], data_of)
