"""Still images at the edges of vidiff (the image of `animate`): checked before decoding, read as uint8
(H,W,3) RGB. 16-bit modes are scaled to 8 bits, never clipped; decompression bombs and oversized images are
refused with a one-line error. Public through `vidiff.io.read_image` / `vidiff.io.check_image`."""
from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidiff.errors import InputError, VideoDecodeError
from vidiff.io import VideoLimits, check_file
from vidiff.video_decode import _short

if TYPE_CHECKING:
    import torch

log = logging.getLogger("vidiff.io")
# what PIL raises on a malformed EXIF block
_EXIF_ERRORS = (SyntaxError, ValueError, TypeError, KeyError, OSError, struct.error)
# what PIL's format plugins raise on a damaged file besides OSError (UnidentifiedImageError is one): a TIFF page
# without its dimensions is a TypeError ("Missing dimensions"), met while counting an animated image's frames
_PIL_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, KeyError, struct.error,
               ZeroDivisionError)


# PIL modes whose samples are 16 bits: scaled to 8 bits (v * 255 / 65535, rounded), never clipped.
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N")
# PIL modes that convert to RGB as they are (alpha, if any, is dropped).
# formats whose "I" mode holds at most 16-bit samples (PIL opens a 16-bit PNG / PGM as "I"; a TIFF's "I" is 32-bit)
_FORMATS_16BIT_AS_I = ("PNG", "PPM")
_MODES_8BIT = ("1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV")
# A still may be far larger than a video frame: phones take 12-200 megapixel photos (4032x3024, 8064x6048). 2**27
# pixels (134 MP, 384 MiB as RGB) keeps a 108 MP photo and stays under PIL's own decompression-bomb error (179 MP).
IMAGE_LIMITS = VideoLimits(max_pixels=2**27)


def _open_image(path: Path, limits: VideoLimits):
    """An opened PIL image (header read only) within `limits`; InputError for anything else."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # the pixel bound is checked below, in one line. An ICO's picture is decoded by the open itself, and one
            # larger than its directory says is warned of before its size is refused there. PIL's other warnings
            # stay: a corrupt EXIF block may have lost the photo's orientation
            warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "Image was not the expected size", UserWarning)
            img = Image.open(path)  # lazy: reads the header only (an ICO / ICNS: its picture too)
    except Image.DecompressionBombError:
        raise InputError(f"image {path}: too many pixels (PIL decompression-bomb limit)") from None
    except _PIL_ERRORS as e:
        raise InputError(f"image {path}: not a readable image ({_short(e)})") from None
    if img.width * img.height > limits.max_pixels:
        img.close()
        raise InputError(f"image {path}: {img.width}x{img.height} exceeds max_pixels={limits.max_pixels}; "
                         "downscale it first")
    if img.mode not in _MODES_8BIT + _MODES_16BIT and not (img.mode == "I" and img.format in _FORMATS_16BIT_AS_I):
        mode = img.mode
        img.close()
        raise InputError(f"image {path}: pixel mode {mode!r} is not supported; save it as 8-bit or 16-bit RGB / grey")
    if img.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with a multi-picture block, which PIL names so
        short = _jpeg_data_short(path, img.width, img.height)
        if short:
            img.close()
            raise InputError(f"image {path}: {short}; the file is cut short or damaged")
    return img


# Markers of a JPEG frame header (SOFn; not DHT C4, JPG C8, DAC CC) whose scans are Huffman-coded: every 8x8 block of
# the picture costs at least 1 bit there (its DC code). Arithmetic coding (SOF9-15) can spend less on flat pictures.
_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7)


def _jpeg_data_short(path: Path, width: int, height: int) -> str | None:
    """Why a JPEG's compressed data cannot hold its picture, or None. libjpeg decodes a scan that ends early (at the
    EOI marker of a cut file, or under a frame header whose size was made huge) as grey and only warns, which PIL
    keeps quiet: a 974-byte file claiming 11000x11000 decoded to 363 MB of grey. Its data (the bytes from the first
    scan on) is measured here, from the header, before anything is decoded."""
    marker, scan_at = None, None
    with open(path, "rb") as f:
        f.seek(2)  # SOI
        while (head := f.read(4)) and len(head) == 4 and head[0] == 0xFF:
            if head[1] == 0xFF:  # fill byte before a marker
                f.seek(-3, os.SEEK_CUR)
                continue
            if head[1] == 0xDA:  # start of scan: the compressed data follows
                scan_at = f.tell()
                break
            if 0xC0 <= head[1] <= 0xCF and head[1] not in (0xC4, 0xC8, 0xCC):
                marker = head[1]
            f.seek(int.from_bytes(head[2:], "big") - 2, os.SEEK_CUR)
        size = os.fstat(f.fileno()).st_size
    if marker not in _HUFFMAN_SOF or scan_at is None:
        return None  # PIL's decoder says what else is wrong
    need = -(-width // 8) * -(-height // 8) // 8  # bytes for 1 bit per block
    have = size - scan_at
    if have >= need:
        return None
    return f"its compressed data ({have} bytes) is too short for a {width}x{height} picture (at least {need} bytes)"


def check_image(path: str | os.PathLike, limits: VideoLimits | None = None) -> None:
    """Checks a still image's header and structure without decoding it (size, pixel mode, bombs, PNG CRCs)."""
    path = _checked_image_file(path)
    img = _open_image(path, limits or IMAGE_LIMITS)
    try:
        img.verify()
    except _PIL_ERRORS as e:
        raise InputError(f"image {path}: not a readable image ({_short(e)})") from None
    finally:
        img.close()


def _checked_image_file(path) -> Path:
    try:
        return check_file(path)
    except VideoDecodeError as e:
        raise InputError(f"image {e.path}: {e.reason}") from None


def image_to_rgb(img) -> np.ndarray:
    """uint8 (H,W,3) RGB of a PIL image: 16-bit samples scaled to 8 bits (not clipped), alpha dropped."""
    if img.mode in _MODES_16BIT or img.mode == "I":  # "I": a 16-bit PNG as older PIL versions open it
        values = np.asarray(img)
        if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
            raise InputError(f"image: {img.mode} samples outside 0..65535; save it as 8-bit or 16-bit")
        # a table, not arithmetic: int64 arithmetic over an 11000x11000 picture took 2.7 GB for a 235 KB PNG
        grey = _SCALE_16_TO_8[values]
        return np.repeat(grey[..., None], 3, axis=-1)
    if _has_alpha(img):
        return np.asarray(img.convert("RGBA"))[..., :3]
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


# v * 255 / 65535, rounded
_SCALE_16_TO_8 = ((np.arange(65536, dtype=np.int64) * 255 + 32767) // 65535).astype(np.uint8)


def _has_alpha(img) -> bool:
    """Whether a PIL image carries transparency (an alpha band, or a palette with a transparent entry)."""
    return img.mode in ("RGBA", "RGBa", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _upright(img):
    """The image as it is meant to be seen: cameras store photos as shot and tag the turn in EXIF Orientation.
    A malformed EXIF block leaves the pixels as stored."""
    from PIL import ImageOps

    try:
        if img.getexif().get(0x0112, 1) == 1:
            return img  # exif_transpose copies an image it does not turn: 484 MB more for 11000x11000 RGB
        return ImageOps.exif_transpose(img)
    except _EXIF_ERRORS:
        log.warning("image %s: unreadable EXIF orientation; using the pixels as stored", img.filename)
        return img


def image_size(path: str | os.PathLike, limits: VideoLimits | None = None) -> tuple[int, int]:
    """(width, height) of the image as read_image returns it (EXIF Orientation 5-8 swap them), header only."""
    img = _open_image(_checked_image_file(path), limits or IMAGE_LIMITS)
    with img:
        try:
            turned = img.getexif().get(0x0112) in (5, 6, 7, 8)
        except _EXIF_ERRORS:
            turned = False  # read_image keeps such an image as stored too
        return (img.height, img.width) if turned else (img.width, img.height)


def read_image(path: str | os.PathLike, limits: VideoLimits | None = None) -> torch.Tensor:
    """Reads a PNG / JPEG (or any still format PIL knows) as uint8 `(H,W,3)` RGB.

    16-bit images are scaled to 8 bits (65535 -> 255), alpha is dropped (warned of where a pixel is not opaque:
    it shows the colour stored under it), palette and CMYK / YCbCr images are
    converted, an EXIF Orientation tag is applied (phone photos come upright); floating-point and 32-bit
    integer images are refused (their range is unknown).
    """
    from vidiff.caller_warning import warn_at_caller
    from vidiff.transparency import transparency_note

    pixels = _read(path, limits, _rgb_or_rgba)  # image_to_rgb's colours, and any alpha to say what is dropped
    if pixels.shape[-1] == 3:  # opaque: no alpha made up for the check (a picture of 2**27 pixels took 2.4 GB)
        return pixels
    note = transparency_note(pixels.numpy())
    if note:
        warn_at_caller(f"image {path} {note}")
    return pixels[..., :3].contiguous()


def _rgb_or_rgba(img) -> np.ndarray:
    """uint8 (H,W,4) of an image with alpha (image_to_rgba), else (H,W,3) (image_to_rgb)."""
    return image_to_rgba(img) if _has_alpha(img) else image_to_rgb(img)


def read_image_rgba(path: str | os.PathLike, limits: VideoLimits | None = None) -> torch.Tensor:
    """read_image with the alpha channel kept: uint8 `(H,W,4)`, alpha 255 where the image has none (masks, where a
    transparent pixel means "off")."""
    return _read(path, limits, image_to_rgba)


def image_to_rgba(img) -> np.ndarray:
    """uint8 (H,W,4) of a PIL image: image_to_rgb's colours and the image's own alpha (255 without one)."""
    if _has_alpha(img):
        return np.asarray(img.convert("RGBA"))
    rgb = image_to_rgb(img)
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=-1)


def _read(path, limits: VideoLimits | None, convert) -> torch.Tensor:
    import torch
    from PIL import Image

    path = _checked_image_file(path)
    img = _open_image(path, limits or IMAGE_LIMITS)
    try:
        with img:
            frames = getattr(img, "n_frames", 1)
            # an animated GIF / PNG / WebP: said, since the rest of it is dropped; a phone's MPO photo holds its
            # picture first and a preview or depth picture after it, which are no frames of a clip
            if frames > 1 and img.format != "MPO":
                import warnings

                warnings.warn(f"image {path}: an animated image of {frames} frames; its first frame is used",
                              stacklevel=3)
            img.load()  # pixels that do not decode are said as such, not as the unreadable EXIF they hide
            pixels = convert(_upright(img))  # (H,W,C)
    except InputError as e:
        raise InputError(f"image {path}: {e}".replace(": image:", ":")) from None
    except (*_PIL_ERRORS, Image.DecompressionBombError) as e:
        raise InputError(f"image {path}: not a readable image ({_short(e)})") from None
    owned = pixels.flags.c_contiguous and pixels.flags.writeable and pixels.flags.owndata
    return torch.from_numpy(pixels if owned else np.ascontiguousarray(pixels).copy())
