"""Upper bounds on what a caller may ask for, checked before any weights load and named in every error.

They keep a typo (`--frames 5000001`, `--steps 1e20`, `height: 65536`) from turning into a multi-GB
allocation or an hour of sampling. Each is far above what the bundled models use; raise one here if a real
model needs more.
"""
from __future__ import annotations

import math

MAX_FRAMES = 1024  # frames of one generated clip, or new frames added by one `extend`
MAX_KEYFRAMES = 256  # keyframes K sampled at once
MAX_STRIDE = 256  # frames between neighbouring keyframes; also the interpolation part's max_gap
MAX_STEPS = 1000  # sampler steps per stage
MAX_SIDE = 4096  # frame height or width in pixels
MAX_THREADS = 1024  # CPU threads for torch
MAX_SAMPLES = 10_000  # clips per generation command (--num)
MAX_BATCH = 65_536  # train.batch_size (and --dry-run-batch): past it a DataLoader filling one batch hung
MAX_EDIT_REPEATS = 16  # SDEdit passes over the keyframes (edit_video repeats)
MAX_GUIDANCE = 100.0  # guidance scales; past about 1e16 the guided step overflows and every frame decodes black
MAX_WIDTH = 8192  # channels of a model level, attention head or context feature in a part's config
MAX_LAYERS_PER_LEVEL = 32  # residual blocks per U-Net / VAE level
MAX_LEVELS = 8  # resolution levels of a U-Net or VAE
MAX_VALUE_CHARS = 200  # characters of a user value quoted in an error message
# bytes of decoded frames one read keeps (uint8 RGB: frames x width x height x 3); a 14 KB GIF of 600 one-pixel frames
# on a 1920x1080 canvas decodes to 3.5 GiB. 2 GiB is twice the largest sample clip (vtest.avi, 795 frames of
# 768x576) and 40 times a 1024-frame clip of the bundled pipelines (128x128); interpolate streams, unbounded
MAX_CLIP_BYTES = 2 * 2**30
SEED_LIMIT = 2**63  # every seed is an integer in [0, 2**63): each command's --seed, the Python API, train.seed


def plain_number(value):
    """A numpy scalar (np.int64 from np.random, np.float32) or a 0-dim torch tensor (torch.tensor(3.0)) as the
    Python int / float it holds; anything else as it is. The checks take Python numbers only, and refused
    np.float32(2.0) as "not a finite number in [0, 100]" (and torch.tensor(3.0) until it was taken here too)."""
    import numbers

    if type(value).__module__ == "torch" and getattr(value, "ndim", None) == 0 and not value.is_complex():
        value = value.item()  # a bool tensor gives a bool, which the checks refuse as they refuse True
    if isinstance(value, (bool, int, float)) or type(value).__module__ != "numpy":
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) else value


def whole(value: float) -> int | None:
    """The int a float holds when it is a finite whole number (1e3, 1000.0: a count as YAML or a shell writes it),
    else None; for the config's type check and the command line's integer options alike."""
    return int(value) if math.isfinite(value) and value.is_integer() else None


def is_int(value) -> bool:
    """An int that is not a bool (True is an int to Python, not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value, name: str, low: int, high: int) -> int:
    """`value` when it is an int in [low, high]; InputError naming `name` and the limit otherwise."""
    from vidiff.errors import InputError

    value = plain_number(value)
    if not is_int(value):
        raise InputError(f"{name} must be an integer in [{low}, {high}], got {short_repr(value)}")
    if not low <= value <= high:
        raise InputError(f"{name} must be in [{low}, {high}], got {short_repr(value)}")
    return value


def check_seed(value, name: str) -> int:
    """`value` when it is an int in [0, SEED_LIMIT); InputError naming `name` otherwise. One rule for every seed a
    user gives (generate's was below 2**63 - --num, interpolate's below 2**62, the Python API's below 2**63)."""
    from vidiff.errors import InputError

    value = plain_number(value)
    if not is_int(value):
        raise InputError(f"{name} must be an integer in [0, 2**63), got {short_repr(value)}")
    if not 0 <= value < SEED_LIMIT:
        raise InputError(f"{name} must be in [0, 2**63), got {short_repr(value)}")
    return value


def offset_seed(seed: int, offset: int) -> int:
    """The seed of a run's further clip, chunk or pass (`generate --num`: seed + i), wrapping around at SEED_LIMIT,
    so every seed in range works whatever the number of clips or chunks."""
    return (seed + offset) % SEED_LIMIT


def check_flag(value, name: str) -> bool:
    """`value` as a Python bool when it is True or False, numpy's np.True_ / np.False_ or a 0-dim bool tensor
    included (np.False_ was refused as "expected True or False, got np.False_"); InputError otherwise ("no" and 0.0
    were taken by truth value). Callers keep the returned bool."""
    from vidiff.errors import InputError

    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and value.dtype.kind == "b":
        value = bool(value)
    value = plain_number(value)  # a 0-dim bool tensor gives a bool
    if not isinstance(value, bool):
        raise InputError(f"{name}: expected True or False, got {short_repr(value)}")
    return value


def check_scale(value, name: str) -> float:
    """`value` as a float when it is a number in [0, MAX_GUIDANCE] (a guidance scale); InputError naming `name`."""
    from vidiff.errors import InputError

    value = plain_number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_GUIDANCE:
        raise InputError(f"{name}: must be a finite number in [0, {MAX_GUIDANCE:g}], got {value!r}")  # NaN too
    return float(value)


def short_repr(value, limit: int = MAX_VALUE_CHARS) -> str:
    """repr(value) cut to about `limit` characters, without building the full repr of a huge value."""
    import reprlib

    class _Short(reprlib.Repr):
        def repr_int(self, x, level):  # repr() of a 5000-digit int raises; its size is what matters
            return builtins_repr(x) if x.bit_length() < 600 else f"<integer of {x.bit_length()} bits>"

    from builtins import repr as builtins_repr

    r = _Short()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = limit, limit, 60
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
