"""Checks of the arrays and numbers the pipeline's methods take (frames, images, an edit's options, a count of new
frames): InputError naming the parameter, before anything is sampled. torch-free at import, like request.py, so
the command line runs the same checks before any weights load."""
from __future__ import annotations

from vidiff.errors import InputError
from vidiff.limits import MAX_EDIT_REPEATS, MAX_FRAMES, MAX_SIDE, is_int, plain_number, short_repr

NUMERIC_KINDS = "biufc"  # numpy dtype kinds torch.from_numpy takes; it raised TypeError on object and str arrays


def _uint8_tensor(value, ndim: int, name: str, expected: str):
    """A uint8 torch tensor or numpy array with `ndim` dims and 3 channels last -> torch tensor; else InputError."""
    import numpy as np
    import torch

    # said as given: a numpy float32 array was named "torch.float32" once converted
    given = (f"{'numpy ' if isinstance(value, np.ndarray) else ''}{value.dtype} {tuple(value.shape)}"
             if hasattr(value, "shape") and hasattr(value, "dtype") else type(value).__name__)
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS:
        value = tensor_copy(value)
    if not torch.is_tensor(value) or value.dtype != torch.uint8 or value.ndim != ndim or value.shape[-1] != 3:
        hint = _float_hint(value) if "float" in given.split(" (")[0] else ""
        if hasattr(value, "getbands"):  # a PIL image: its pixels as the array taken
            hint = " (a PIL image: give np.asarray(image.convert('RGB')))"
        elif getattr(value, "ndim", 0) == ndim and value.shape[-3] == 3 != value.shape[-1]:
            hint += (" (channels first: move them last, x.permute(" + ("1, 2, 0" if ndim == 3 else "0, 2, 3, 1")
                     + ") or np.moveaxis(x, -3, -1))")
        raise InputError(f"{name}: expected {expected}, got {given}{hint}")
    check_has_data(value, name)
    return value.cpu()  # given on a GPU: the pipeline keeps frames on the CPU and moves what a network reads


def tensor_copy(array):
    """A numeric numpy array as a torch tensor of its own memory in native byte order: torch.from_numpy warned of a
    read-only array and refused a big-endian one (ValueError "byte order different from the native byte order")."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(array, dtype=array.dtype.newbyteorder("="), copy=True))


def _float_hint(value) -> str:
    """How to make uint8 of float frames, by their range: the [0, 1] recipe, the only one said until then, wraps
    the negative half of frames in [-1, 1] around in uint8 and overflows frames in [0, 255]."""
    import torch

    if torch.is_tensor(value) and value.device.type != "meta" and value.numel() > 0:
        if float(value.min()) < 0:
            return " (floats in [-1, 1]: ((x + 1) * 127.5).round() as uint8)"
        if float(value.max()) > 1:
            return " (floats in [0, 255]: x.round() as uint8)"
    return " (floats in [0, 1]: (x * 255).round() as uint8)"


def check_has_data(tensor, name: str) -> None:
    """A tensor on the meta device has a shape but no values: refused naming `name`, before torch fails to copy
    it (NotImplementedError) once the VAE encodes it."""
    if tensor.device.type == "meta":
        raise InputError(f"{name}: a tensor on the meta device has no data (give its values, on the CPU or a GPU)")


def check_frames(frames, name: str):
    """uint8 (F,H,W,3) torch tensor or numpy array -> torch tensor; InputError naming `name` otherwise."""
    frames = _uint8_tensor(frames, 4, name, "uint8 frames (F,H,W,3)")
    if frames.shape[0] < 1:
        raise InputError(f"{name}: no frames")
    return frames


def check_clip_sides(frames, multiple: int, name: str) -> None:
    """The frames of a clip a pipeline continues or redraws at their own size (extend, edit): each side at most
    MAX_SIDE and a multiple of `multiple`, named as the frames (request() named "height", a setting extend_video and
    edit_video refuse because the frames give it)."""
    height, width = frames.shape[1:3]
    if height > MAX_SIDE or width > MAX_SIDE:
        raise InputError(f"{name}: {width}x{height} pixels; each side must be at most {MAX_SIDE}")
    if height % multiple or width % multiple:
        fit = lambda side: max(multiple, side // multiple * multiple)  # noqa: E731
        raise InputError(f"{name}: {width}x{height} pixels; each side must be a multiple of {multiple} (the VAE's "
                         f"factor times the U-Nets' downsampling): crop or resize them, e.g. to "
                         f"{fit(width)}x{fit(height)}")


def check_image(image, name: str):
    """uint8 (H,W,3) torch tensor or numpy array -> torch tensor."""
    return _uint8_tensor(image, 3, name, "a uint8 image (H,W,3)")


# edit_video's keyframe passes at strength < 1: 2 gave the new colour in 78% of 50 Shapes edits at strength 0.6,
# against 50% for 1 (docs/shapes_measured.md, "Editing: measured")
DEFAULT_REPEATS = 2


def frame_of_clip(index: int, total: int, name: str) -> int:
    """`index` as a frame of a clip of `total` frames: 0..total-1 as given, -1..-total counted from its end (-1: the
    last frame); InputError naming `name` otherwise. The library's keyframes and the CLI's --keyframe share it."""
    if not -total <= index < total:
        raise InputError(f"{name} is not a frame of the clip of {total} frames (0..{total - 1}, or -1..-{total} "
                         "from its end)")
    return index % total


def check_repeats(repeats) -> int:
    """SDEdit repeats: an int in [1, MAX_EDIT_REPEATS] (how many times the keyframes are noised and redrawn)."""
    repeats = plain_number(repeats)
    if not is_int(repeats) or not 1 <= repeats <= MAX_EDIT_REPEATS:
        raise InputError(f"repeats: must be an integer in [1, {MAX_EDIT_REPEATS}], got {short_repr(repeats)}")
    return repeats


def check_strength(strength) -> float:
    """SDEdit strength: a number in [0, 1] (0 = the input decoded, 1 = plain generation)."""
    strength = plain_number(strength)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise InputError(f"strength: must be a number in [0, 1], got {short_repr(strength)}")
    return float(strength)


MAX_FEATHER = 32  # pixels of a region edit's blend band


DEFAULT_FEATHER = 3  # px over which a redrawn region blends into the kept clip


def check_feather(feather) -> int:
    """Region edits: the blend band in pixels, an integer in [0, MAX_FEATHER]."""
    feather = plain_number(feather)
    if isinstance(feather, bool) or not isinstance(feather, int) or not 0 <= feather <= MAX_FEATHER:
        raise InputError(f"feather: must be an integer number of pixels in [0, {MAX_FEATHER}], got "
                         f"{short_repr(feather)}")
    return feather


DEFAULT_STRENGTH = 0.6  # an edit's SDEdit strength over the whole clip
DEFAULT_REGION_STRENGTH = 1.0  # inside a mask: regenerate


def check_edit_options(strength, feather, repeats, masked: bool) -> tuple[float, int, int]:
    """An edit's (strength, feather, keyframe passes) with their defaults, for the library and the CLI alike. A
    feather without a mask and more than one pass at strength 1 are refused: both were taken and changed nothing."""
    if repeats is not None:
        repeats = check_repeats(repeats)
    if feather is not None and not masked:
        raise InputError("feather: blends a redrawn region into the kept clip; without a mask the whole clip is "
                         "redrawn (give a mask, or leave feather out)")
    feather = check_feather(DEFAULT_FEATHER if feather is None else feather)
    if strength is None:
        strength = DEFAULT_REGION_STRENGTH if masked else DEFAULT_STRENGTH
    strength = check_strength(strength)
    if repeats is not None and repeats > 1 and strength == 1:  # repeats=1 says the one pass there is
        raise InputError("repeats: at strength 1 (the default with a mask) the keyframes are drawn from pure noise, "
                         "so a second pass starts where the first did; give strength < 1 to repeat")
    passes = 1 if strength == 1 else (DEFAULT_REPEATS if repeats is None else repeats)
    return strength, feather, passes


def check_new_frames(num_frames) -> int:
    """The number of new frames of an extension: an integer in [1, MAX_FRAMES]."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 1 <= num_frames <= MAX_FRAMES:
        raise InputError(f"num_frames: number of new frames must be an integer in [1, {MAX_FRAMES}], "
                         f"got {short_repr(num_frames)}")
    return num_frames
