"""Pixel analyzer for Shapes clips: which object, what colour and shape, moving which way, how steadily.

Works from pixels alone, so it judges generated clips the same way as the ground truth: per frame it
estimates the background (per-channel median), marks foreground by colour distance, splits it into
4-connected components (dropping specks), and describes each object by its colour (nearest palette
entry), its shape (nearest prototype of three geometric features) and its centroid. Over the clip, the
centroid trajectory of the largest object is fitted with a line: its slope gives direction and speed, its
residual the steadiness.

Thresholds are relative to the frame (foreground at a fraction of the strongest contrast, specks as a
fraction of the frame area) so H.264 edges, blur, slightly wrong colours and faint noise do not matter.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from vidiff.data.shapes import DIRECTION_VECTORS, PALETTE, parse_prompt
from vidiff.errors import InputError

FG_FRACTION = 0.45  # a pixel is foreground above this fraction of the frame's strongest contrast
FG_MIN_DISTANCE = 30.0  # ... and never below this RGB distance from the background (noise floor)
SPECK_FRACTION = 0.004  # components smaller than this fraction of the frame are ignored (16 px at 64x64)
MIN_TRAVEL = 2.0  # px over the clip; slower objects have no direction
STEADY_RESIDUAL = 1.0  # px RMS distance from the fitted line still counted as steady

# Shape prototypes over (bounding-box fill ratio, mean width of the top quarter of rows, of the bottom quarter),
# widths relative to the widest row. Circle: pi/4 and the mean chord over the outer quarter of the diameter.
_CIRCLE_CAP = 2 * (np.pi / 4 - (0.5 * np.sqrt(0.75) + np.pi / 6) / 2)  # about 0.614
SHAPE_PROTOTYPES: dict[str, tuple[float, float, float]] = {
    "square": (1.0, 1.0, 1.0),
    "circle": (np.pi / 4, _CIRCLE_CAP, _CIRCLE_CAP),
    "triangle": (0.5, 0.125, 0.875),
}
_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[c] for c in _PALETTE_NAMES], np.float64)  # (5, 3)


@dataclasses.dataclass
class FrameObject:
    """One connected foreground component of one frame."""

    area: int  # pixels
    centre: tuple[float, float]  # (x, y) centroid, px (pixel centres at j + 0.5)
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive pixel indices
    rgb: tuple[float, float, float]  # median colour of the object's interior
    colour: str  # nearest palette colour
    colour_distance: float  # RGB distance to that palette colour
    shape: str  # nearest shape prototype
    shape_distance: float  # feature distance to that prototype
    features: tuple[float, float, float]  # (fill ratio, top width, bottom width)


@dataclasses.dataclass
class ShapeAnalysis:
    """What a Shapes clip shows, measured from its pixels."""

    num_frames: int
    objects_per_frame: list[int]  # components above the speck size, per frame
    one_object: bool  # exactly one object in every frame
    colour: str | None  # majority colour of the main (largest) object; None with no object anywhere
    colour_distance: float | None  # mean RGB distance of the main object to that palette colour
    shape: str | None  # majority shape of the main object
    shape_votes: dict[str, int]  # frames voting for each shape
    direction: str | None  # left/right/up/down from the fitted trajectory; None if it barely moves
    velocity: tuple[float, float] | None  # (vx, vy) px/frame from the linear fit
    speed: float | None  # |velocity|, px/frame
    fit_residual: float | None  # RMS distance of the centres from the fitted line, px
    speed_variation: float | None  # std / mean of per-frame displacement lengths
    steady: bool  # moves (direction found) and stays within STEADY_RESIDUAL of a straight line
    centres: list[tuple[float, float] | None]  # main-object centroid per frame
    backgrounds: list[tuple[float, float, float]]  # background estimate per frame
    frames: list[list[FrameObject]] = dataclasses.field(repr=False, default_factory=list)

    def matches(self, prompt: str) -> dict[str, bool]:
        """Whether the clip shows what `prompt` asks; attributes the prompt does not name count as matched."""
        colour, shape, direction = parse_prompt(prompt)
        result = {
            "colour": colour is None or colour == self.colour,
            "shape": shape is None or shape == self.shape,
            "direction": direction is None or direction == self.direction,
            "one_object": self.one_object,
        }
        result["all_correct"] = all(result.values())
        result["steady"] = self.steady
        return result


# ---- per frame -------------------------------------------------------------------------------------------


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a boolean (H, W) mask: (labels (H, W) int, 0 = background; count).

    Min-label propagation with pointer jumping, vectorised; converges in a few passes for compact blobs.
    """
    h, w = mask.shape
    big = h * w
    labels = np.where(mask, np.arange(big).reshape(h, w), big)  # (H, W), provisional label = a pixel index
    while True:
        new = labels.copy()
        new[1:] = np.minimum(new[1:], np.where(mask[1:] & mask[:-1], labels[:-1], big))
        new[:-1] = np.minimum(new[:-1], np.where(mask[:-1] & mask[1:], labels[1:], big))
        new[:, 1:] = np.minimum(new[:, 1:], np.where(mask[:, 1:] & mask[:, :-1], labels[:, :-1], big))
        new[:, :-1] = np.minimum(new[:, :-1], np.where(mask[:, :-1] & mask[:, 1:], labels[:, 1:], big))
        flat = np.append(new.ravel(), big)  # a label is a pixel index: follow it to that pixel's label
        for _ in range(4):
            new = flat[new]
        if np.array_equal(new, labels):
            break
        labels = new
    roots, dense = np.unique(labels[mask], return_inverse=True)
    out = np.zeros((h, w), np.int64)
    out[mask] = dense + 1
    return out, len(roots)


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[0] = inner[-1] = False
    inner[:, 0] = inner[:, -1] = False
    return inner


def shape_features(mask: np.ndarray) -> tuple[float, float, float]:
    """(fill ratio of the bounding box, mean width of the top quarter, of the bottom quarter) of one object."""
    ys, xs = np.nonzero(mask)
    box = mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]  # (h, w)
    widths = box.sum(axis=1).astype(np.float64)  # (h,) pixels per row
    quarter = max(1, int(round(len(widths) / 4)))
    widest = widths.max()
    return float(box.mean()), float(widths[:quarter].mean() / widest), float(widths[-quarter:].mean() / widest)


def classify_shape(features: tuple[float, float, float]) -> tuple[str, float]:
    dist = {name: float(np.linalg.norm(np.subtract(features, proto))) for name, proto in SHAPE_PROTOTYPES.items()}
    name = min(dist, key=dist.get)
    return name, dist[name]


def nearest_colour(rgb) -> tuple[str, float]:
    dist = np.linalg.norm(_PALETTE_RGB - np.asarray(rgb, np.float64), axis=1)  # (5,)
    i = int(dist.argmin())
    return _PALETTE_NAMES[i], float(dist[i])


def analyze_frame(frame: np.ndarray) -> tuple[list[FrameObject], tuple[float, float, float]]:
    """Objects (largest first) and background estimate of one uint8 (H, W, 3) frame."""
    pixels = frame.astype(np.float64)  # (H, W, 3)
    h, w = frame.shape[:2]
    background = np.median(pixels.reshape(-1, 3), axis=0)  # (3,): the object covers well under half the frame
    distance = np.linalg.norm(pixels - background, axis=-1)  # (H, W)
    strongest = np.percentile(distance, 99.5)
    fg = distance > max(FG_MIN_DISTANCE, FG_FRACTION * strongest)
    labels, count = label_components(fg)
    min_area = max(4, int(round(SPECK_FRACTION * h * w)))
    objects = []
    for k in range(1, count + 1):
        mask = labels == k
        area = int(mask.sum())
        if area < min_area:
            continue
        ys, xs = np.nonzero(mask)
        core = _erode(mask)  # edge pixels blend with the background under compression or blur
        core = core if core.sum() >= area // 4 else mask
        rgb = np.median(pixels[core], axis=0)
        colour, colour_distance = nearest_colour(rgb)
        features = shape_features(mask)
        shape, shape_distance = classify_shape(features)
        objects.append(FrameObject(
            area=area, centre=(float(xs.mean() + 0.5), float(ys.mean() + 0.5)),
            bbox=(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())),
            rgb=tuple(float(v) for v in rgb), colour=colour, colour_distance=colour_distance,
            shape=shape, shape_distance=shape_distance, features=features,
        ))
    objects.sort(key=lambda o: -o.area)
    return objects, tuple(float(v) for v in background)


# ---- over the clip ---------------------------------------------------------------------------------------


def _direction_of(vx: float, vy: float) -> str:
    return max(DIRECTION_VECTORS, key=lambda d: DIRECTION_VECTORS[d][0] * vx + DIRECTION_VECTORS[d][1] * vy)


def analyze_clip(frames) -> ShapeAnalysis:
    """Analyzes a clip given as uint8 (F, H, W, 3) frames (numpy array or torch tensor)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    per_frame, backgrounds = [], []
    for frame in frames:
        objects, background = analyze_frame(frame)
        per_frame.append(objects)
        backgrounds.append(background)
    counts = [len(objs) for objs in per_frame]
    main = [objs[0] if objs else None for objs in per_frame]  # the largest object stands for the clip
    present = [o for o in main if o is not None]
    centres = [o.centre if o is not None else None for o in main]

    colour = shape = None
    colour_distance = None
    shape_votes: dict[str, int] = {}
    if present:
        colour = Counter(o.colour for o in present).most_common(1)[0][0]
        colour_distance = float(np.mean([o.colour_distance for o in present if o.colour == colour]))
        shape_votes = dict(Counter(o.shape for o in present))
        shape = max(shape_votes, key=shape_votes.get)

    direction = velocity = speed = residual = variation = None
    t = np.array([i for i, c in enumerate(centres) if c is not None], np.float64)  # (n,)
    if len(t) >= 2:
        xy = np.array([c for c in centres if c is not None], np.float64)  # (n, 2)
        design = np.stack([t, np.ones_like(t)], axis=1)  # (n, 2)
        coef, *_ = np.linalg.lstsq(design, xy, rcond=None)  # (2, 2): rows slope, intercept
        vx, vy = float(coef[0, 0]), float(coef[0, 1])
        velocity, speed = (vx, vy), float(np.hypot(vx, vy))
        residual = float(np.sqrt(np.mean(np.sum((design @ coef - xy) ** 2, axis=1))))
        steps = np.linalg.norm(np.diff(xy, axis=0), axis=1) / np.diff(t)  # (n-1,) px/frame
        variation = float(steps.std() / max(steps.mean(), 1e-9))
        if speed * (t[-1] - t[0]) >= MIN_TRAVEL:
            direction = _direction_of(vx, vy)
    return ShapeAnalysis(
        num_frames=len(frames), objects_per_frame=counts, one_object=bool(counts) and all(c == 1 for c in counts),
        colour=colour, colour_distance=colour_distance, shape=shape, shape_votes=shape_votes,
        direction=direction, velocity=velocity, speed=speed, fit_residual=residual, speed_variation=variation,
        steady=direction is not None and residual is not None and residual <= STEADY_RESIDUAL,
        centres=centres, backgrounds=backgrounds, frames=per_frame,
    )
