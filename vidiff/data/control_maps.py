"""Structure-control maps for Shapes, and the paths they follow (docs/control.md).

A control clip is one Shapes object (colour, shape, size, grey background) whose *centroid* follows a path of
per-frame points: straight lines in any direction (axis-aligned or not), curves (quadratic Bezier), or stop-and-go
(the speed switching between 0 and v). From it come
- the RGB clip (uint8 (F, H, W, 3), exact flat colours like shapes.render_clip),
- "silhouette" maps: the object's filled shape per frame (shape and position from the map, colour from the text),
- "blob" maps: a disc of fixed radius at the object's centroid (position from the map, shape and colour from the
  text).
Maps are float32 (F, H, W) in {0, 1}; their centroid is the object's centroid (within half a pixel).

Everything is drawn from a numpy Generator, so a clip depends only on the seed it is made from.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from vidiff.data.shapes import COLOURS, MARGIN, PALETTE, SHAPES, SIZE_RANGE, BACKGROUND_RANGE, shape_mask
from vidiff.errors import InputError

MAP_KINDS = ("silhouette", "blob")
PATH_KINDS = ("axis", "straight", "diagonal", "curved", "stop_and_go")
BLOB_RADIUS = 5.0  # px
AXIS_WORDS = {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}


@dataclasses.dataclass(frozen=True)
class ControlClip:
    shape: str
    colour: str
    size: int  # object extent across, px
    background: int  # grey level
    centres: tuple[tuple[float, float], ...]  # (x, y) centroid per frame, px
    height: int
    width: int
    path: str  # one of PATH_KINDS
    direction: str | None = None  # left / right / up / down for an "axis" path, else None

    @property
    def num_frames(self) -> int:
        return len(self.centres)

    def caption(self, with_direction: bool = True) -> str:
        """"a {colour} {shape}", with "moving {direction}" when the path is axis-aligned and asked for."""
        text = f"a {self.colour} {self.shape}"
        return f"{text} moving {self.direction}" if with_direction and self.direction else text


# ---- paths ----------------------------------------------------------------------------------------------------

def _bounds(obj: int, size: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) (x, y) range of the centroid that keeps the object (with a pixel to spare) inside the frame. A
    triangle's centroid sits about obj / 6 below its box centre."""
    half = MARGIN + obj / 2 + 1.0
    shift = np.array([0.0, obj / 6 if shape == "triangle" else 0.0])
    return half + shift, size - half + shift


def _straight(rng: np.random.Generator, n: int, lo: np.ndarray, hi: np.ndarray, angle: float, speed: float
              ) -> np.ndarray:
    """(n, 2) points along `angle` at `speed`, the travel shortened to fit and the start placed so it fits."""
    d = np.array([math.cos(angle), math.sin(angle)])
    travel = speed * (n - 1)
    reach = [(b - a) / abs(c) if abs(c) > 1e-9 else math.inf for a, b, c in zip(lo, hi, d)]
    travel = min(travel, 0.95 * min(reach))
    span = d * travel  # (2,)
    start = np.array([rng.uniform(a - min(0.0, s), b - max(0.0, s)) for a, b, s in zip(lo, hi, span)])
    steps = np.linspace(0.0, 1.0, n)[:, None] if n > 1 else np.zeros((1, 1))
    return start + steps * span


def _stop_and_go(rng: np.random.Generator, n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Straight, any direction, the speed switching between 0 and v in runs of 2..5 frames."""
    moving, speeds = bool(rng.integers(2)), []
    while len(speeds) < n - 1:
        run = int(rng.integers(2, 6))
        speeds += [1.0 if moving else 0.0] * run
        moving = not moving
    speeds = np.array(speeds[: n - 1])
    if speeds.sum() == 0:
        speeds[0] = 1.0
    angle = rng.uniform(0, 2 * math.pi)
    line = _straight(rng, 2, lo, hi, angle, float(rng.uniform(1.5, 2.5)) * speeds.sum())  # (2, 2) ends
    frac = np.concatenate([[0.0], np.cumsum(speeds) / speeds.sum()])[:, None]  # (n, 1)
    return line[0] + frac * (line[1] - line[0])


def _curved(rng: np.random.Generator, n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A quadratic Bezier curve P0 -> P2 bent by P1, all three points inside the allowed box."""
    for _ in range(100):
        p = rng.uniform(lo, hi, size=(3, 2))
        chord = np.linalg.norm(p[2] - p[0])
        mid = (p[0] + p[2]) / 2
        bend = np.linalg.norm(p[1] - mid)
        if 12.0 <= chord <= 1.9 * n and bend >= 0.35 * chord:
            break
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]


def random_path(kind: str, num_frames: int, size: int, obj: int, rng: np.random.Generator, shape: str = "square"
                ) -> tuple[np.ndarray, str | None]:
    """((F, 2) centroid (x, y) per frame, direction word for an axis path else None)."""
    lo, hi = _bounds(obj, size, shape)
    if kind == "axis":
        dx, dy = list(AXIS_WORDS)[int(rng.integers(4))]
        angle = math.atan2(dy, dx)
        return _straight(rng, num_frames, lo, hi, angle, float(rng.uniform(1.0, 2.0))), AXIS_WORDS[(dx, dy)]
    if kind == "straight":
        return _straight(rng, num_frames, lo, hi, rng.uniform(0, 2 * math.pi), float(rng.uniform(0.7, 2.0))), None
    if kind == "diagonal":
        angle = (int(rng.integers(4)) * 0.5 + 0.25) * math.pi + rng.uniform(-0.2, 0.2)
        return _straight(rng, num_frames, lo, hi, angle, float(rng.uniform(1.0, 2.0))), None
    if kind == "curved":
        return _curved(rng, num_frames, lo, hi), None
    if kind == "stop_and_go":
        return _stop_and_go(rng, num_frames, lo, hi), None
    raise InputError(f"path kind must be one of {PATH_KINDS}, got {kind!r}")


def sample_control_clip(rng: np.random.Generator, num_frames: int = 16, size: int = 64,
                        paths: tuple[str, ...] = PATH_KINDS, colour: str | None = None,
                        shape: str | None = None, path: str | None = None) -> ControlClip:
    """A random control clip; colour / shape / path kind drawn unless given."""
    colour = colour or COLOURS[int(rng.integers(len(COLOURS)))]
    shape = shape or SHAPES[int(rng.integers(len(SHAPES)))]
    path = path or paths[int(rng.integers(len(paths)))]
    obj = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    background = int(rng.integers(BACKGROUND_RANGE[0], BACKGROUND_RANGE[1] + 1))
    points, direction = random_path(path, num_frames, size, obj, rng, shape)
    centres = tuple((float(x), float(y)) for x, y in points)
    return ControlClip(shape, colour, obj, background, centres, size, size, path, direction)


# ---- rendering ------------------------------------------------------------------------------------------------

def mask_centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(x, y) centroid of a boolean (H, W) mask in pixel-centre coordinates; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def placed_mask(shape: str, obj: int, centroid: tuple[float, float], height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the object whose pixel centroid is nearest `centroid` (within half a pixel per axis:
    a centroid moves in whole-pixel steps): the box centre is shifted by the centroid's measured offset, then the
    best of a few sub-pixel shifts around it is kept."""
    target = np.array(centroid, np.float64)
    got = mask_centroid(shape_mask(shape, obj, tuple(target), height, width))
    box = target if got is None else 2 * target - np.array(got)
    best, best_err = None, math.inf
    for dx in (-0.5, -0.25, 0.0, 0.25, 0.5):
        for dy in (-0.5, -0.25, 0.0, 0.25, 0.5):
            mask = shape_mask(shape, obj, (box[0] + dx, box[1] + dy), height, width)
            c = mask_centroid(mask)
            err = math.inf if c is None else max(abs(c[0] - target[0]), abs(c[1] - target[1]))
            if err < best_err - 1e-9 or (best is None):
                best, best_err = mask, err
    return best


def disc_mask(centre: tuple[float, float], height: int, width: int, radius: float = BLOB_RADIUS) -> np.ndarray:
    """Boolean (H, W): pixels whose centre lies within `radius` of `centre`."""
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius**2


def render_control_clip(clip: ControlClip) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(uint8 (F, H, W, 3) frames, {"silhouette": float32 (F, H, W), "blob": float32 (F, H, W)})."""
    f, h, w = clip.num_frames, clip.height, clip.width
    frames = np.full((f, h, w, 3), clip.background, np.uint8)
    maps = {kind: np.zeros((f, h, w), np.float32) for kind in MAP_KINDS}
    for t, centre in enumerate(clip.centres):
        mask = placed_mask(clip.shape, clip.size, centre, h, w)
        frames[t][mask] = PALETTE[clip.colour]
        maps["silhouette"][t] = mask
        maps["blob"][t] = disc_mask(mask_centroid(mask) or centre, h, w)
    return frames, maps


def map_centres(maps: np.ndarray) -> list[tuple[float, float] | None]:
    """Centroid (x, y) of each frame's "on" pixels (> 0.5) of float (F, H, W) maps; None for an empty frame."""
    return [mask_centroid(np.asarray(m) > 0.5) for m in maps]


def maps_from_frames(frames) -> np.ndarray:
    """float32 (F, H, W) maps from uint8 (F, H, W), (F, H, W, 1 | 3) or RGBA (F, H, W, 4) frames: any colour channel
    > 127 is "on"; with alpha, a transparent pixel (alpha <= 127) is "off" whatever its colour."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4)):
        raise InputError(f"control: expected uint8 (F,H,W), (F,H,W,3) or (F,H,W,4) frames, got {arr.dtype} "
                         f"{arr.shape}")
    if arr.ndim == 3:
        return (arr > 127).astype(np.float32)
    on = (arr[..., :3] > 127).any(axis=-1)  # an opaque alpha is not a colour: it would turn every pixel on
    if arr.shape[-1] == 4:
        on &= arr[..., 3] > 127
    return on.astype(np.float32)
