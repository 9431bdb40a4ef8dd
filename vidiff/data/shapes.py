"""Shapes: the built-in synthetic video domain (DESIGN section 6).

One flat-coloured object (circle, square or upward isosceles triangle) moves in a straight line over a
uniform dark-grey background. Rendering has no anti-aliasing, so every pixel is exactly the background or
exactly one palette colour; `shapes_analysis.analyze_clip` inverts it from pixels alone.

Coordinates: pixel (row i, column j) covers [j, j+1) x [i, i+1), its centre is (x=j+0.5, y=i+0.5). An
object's centre is the centre of its bounding box; it covers the pixels whose centre has
`cx - size/2 <= x < cx + size/2` (same for y), so a square is exactly `size` pixels wide at any sub-pixel
position, and "fully inside" means `size/2 <= cx <= W - size/2`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from vidiff.data.shapes_prompt import OPPOSITE_DIRECTION, parse_caption, parse_prompt  # noqa: F401 (re-exported)
from vidiff.errors import InputError

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (230, 210, 40),
    "white": (235, 235, 235),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
# Unit motion per direction in image coordinates (x to the right, y downwards).
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

SIZE_RANGE = (14, 22)  # object extent across, pixels (inclusive)
BACKGROUND_RANGE = (16, 64)  # grey level of the background, R = G = B (inclusive)
SPEED_RANGE = (1.0, 2.0)  # px/frame, before lowering for long clips
MARGIN = 1.0  # px of background kept between the object and the frame border
MIN_FRAME_SIZE = 32  # smaller frames leave the largest object no room to move

CAPTION_TEMPLATES = (
    "a {colour} {shape} moving {direction}",
    "a {colour} {shape} going {direction}",
    "{colour} {shape}, moving {direction}",
    "the {colour} {shape} slides {direction}",
    "a {shape}, {colour}, moving {direction}",
)


@dataclasses.dataclass(frozen=True)
class ShapeClipParams:
    """Everything needed to render one clip; also its ground truth."""

    shape: str  # one of SHAPES
    colour: str  # one of COLOURS
    direction: str  # one of DIRECTIONS
    speed: float  # px/frame along `direction`
    size: int  # object extent across, px
    background: int  # grey level of the background
    start: tuple[float, float]  # (x, y) centre at frame 0, px
    num_frames: int
    height: int
    width: int
    caption: str
    seed: int
    index: int

    @property
    def rgb(self) -> tuple[int, int, int]:
        return PALETTE[self.colour]

    def centres(self) -> list[tuple[float, float]]:
        """(x, y) centre of the object in every frame, px."""
        dx, dy = DIRECTION_VECTORS[self.direction]
        x0, y0 = self.start
        return [(x0 + dx * self.speed * t, y0 + dy * self.speed * t) for t in range(self.num_frames)]


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip `index`: depends on (seed, index) only, so clip i is the same whatever N is."""
    if seed < 0 or index < 0:
        raise InputError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([seed, index])


def max_speed(size: int, frame_size: int, num_frames: int) -> float:
    """Fastest speed (px/frame) at which an object of `size` stays fully inside for `num_frames` frames."""
    room = frame_size - 2 * MARGIN - size  # free travel for the object centre, px
    return room / max(num_frames - 1, 1)


def check_min_speed_scale(value: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1):
        raise InputError(f"min_speed_scale must be a number in (0, 1], got {value!r}")
    return float(value)


def sample_clip_params(seed: int, index: int, num_frames: int = 16, size: int = 64,
                       min_speed_scale: float = 1.0) -> ShapeClipParams:
    """Draws the parameters of clip `index` (pure: the same inputs always give the same clip).

    min_speed_scale < 1 multiplies the speed by a factor drawn uniformly in [min_speed_scale, 1], so that a
    dataset also holds slow clips (a model that extends a slow clip must have seen such speeds); at 1 nothing
    extra is drawn and every clip is the one the same (seed, index) always gave."""
    min_speed_scale = check_min_speed_scale(min_speed_scale)
    if num_frames < 1:
        raise InputError(f"frames must be >= 1, got {num_frames}")
    if size < MIN_FRAME_SIZE:
        raise InputError(f"size must be >= {MIN_FRAME_SIZE} px, got {size}")
    rng = clip_rng(seed, index)
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour = COLOURS[rng.integers(len(COLOURS))]
    direction = DIRECTIONS[rng.integers(len(DIRECTIONS))]
    obj = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    background = int(rng.integers(BACKGROUND_RANGE[0], BACKGROUND_RANGE[1] + 1))
    # Long clips scale the whole 1..2 range down so that the travel still fits: speeds stay varied.
    drawn = float(rng.uniform(*SPEED_RANGE))
    speed = drawn * min(1.0, max_speed(obj, size, num_frames) / SPEED_RANGE[1])
    if min_speed_scale < 1.0:
        speed *= float(rng.uniform(min_speed_scale, 1.0))
    travel = speed * (num_frames - 1)
    lo, hi = MARGIN + obj / 2, size - MARGIN - obj / 2  # allowed range of the centre on each axis
    dx, dy = DIRECTION_VECTORS[direction]
    # The start on the motion axis leaves room for the whole travel; the other axis is free.
    along = float(rng.uniform(lo, hi - travel))
    across = float(rng.uniform(lo, hi))
    if dx:
        start = (along if dx > 0 else hi - (along - lo), across)
    else:
        start = (across, along if dy > 0 else hi - (along - lo))
    template = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
    caption = template.format(colour=colour, shape=shape, direction=direction)
    return ShapeClipParams(shape, colour, direction, speed, obj, background, start, num_frames, size, size,
                           caption, seed, index)


def shape_mask(shape: str, size: float, centre: tuple[float, float], height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of one object, from pixel-centre tests only (no anti-aliasing)."""
    if shape not in SHAPES:
        raise InputError(f"shape must be one of {SHAPES}, got {shape!r}")
    cx, cy = centre
    half = size / 2
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5  # (H, 1) pixel centres
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5  # (1, W)
    in_box = (x >= cx - half) & (x < cx + half) & (y >= cy - half) & (y < cy + half)  # (H, W)
    if shape == "square":
        return in_box
    # The box always covers exactly `size` pixels per axis; centre circle and apex on that pixel span so
    # the shapes are symmetric at any sub-pixel position.
    x_mid = (np.ceil(cx - half - 0.5) + np.ceil(cx + half - 0.5) - 1) / 2 + 0.5
    y_top = np.ceil(cy - half - 0.5) + 0.5
    y_mid = (y_top + np.ceil(cy + half - 0.5) - 0.5) / 2
    if shape == "circle":
        return ((x - x_mid) ** 2 + (y - y_mid) ** 2 <= half**2) & in_box
    # Triangle: apex at the top, base at the bottom; row k (1-based from the apex) is about k pixels wide.
    depth = y - y_top + 1  # (H, 1)
    return (np.abs(x - x_mid) <= np.maximum(depth - 0.5, 1) / 2) & in_box


def render_clip(params: ShapeClipParams):
    """Renders the clip: uint8 torch tensor (F, H, W, 3) with exact flat colours."""
    import torch

    frames = np.full((params.num_frames, params.height, params.width, 3), params.background, np.uint8)
    colour = np.array(params.rgb, np.uint8)
    for t, centre in enumerate(params.centres()):
        frames[t][shape_mask(params.shape, params.size, centre, params.height, params.width)] = colour
    return torch.from_numpy(frames)  # (F, H, W, 3)


# ---- prompts ---------------------------------------------------------------------------------------------

def all_combinations() -> list[tuple[str, str, str]]:
    """Every (colour, shape, direction): 5 * 3 * 4 = 60 evaluation prompts."""
    return [(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS]


def prompt_for(colour: str, shape: str, direction: str) -> str:
    """The canonical evaluation prompt, e.g. "a red circle moving left"."""
    for value, allowed, name in ((colour, COLOURS, "colour"), (shape, SHAPES, "shape"), (direction, DIRECTIONS, "direction")):
        if value not in allowed:
            raise InputError(f"{name} must be one of {allowed}, got {value!r}")
    return CAPTION_TEMPLATES[0].format(colour=colour, shape=shape, direction=direction)


# ---- dataset on disk -------------------------------------------------------------------------------------


def ground_truth(params: ShapeClipParams, fps: float) -> dict:
    """The JSON sidecar of one clip."""
    return {
        "shape": params.shape,
        "colour": params.colour,
        "rgb": list(params.rgb),
        "direction": params.direction,
        "speed": params.speed,  # px/frame
        "size": params.size,  # px across
        "background": params.background,  # grey level, R = G = B
        "centres": [[x, y] for x, y in params.centres()],  # (x, y) bounding-box centre per frame, px
        "num_frames": params.num_frames,
        "height": params.height,
        "width": params.width,
        "fps": fps,
        "caption": params.caption,
        "seed": params.seed,
        "index": params.index,
    }


def iter_clip_params(num: int, frames: int = 16, size: int = 64, seed: int = 0,
                     min_speed_scale: float = 1.0) -> Iterator[ShapeClipParams]:
    for index in range(num):
        yield sample_clip_params(seed, index, frames, size, min_speed_scale)
