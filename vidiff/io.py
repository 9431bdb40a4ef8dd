"""Video and image files at the edges of vidiff: probe, read, write.

Frames are uint8 `(F,H,W,3)` RGB torch tensors. Reading uses decord when it imports (faster random access)
and PyAV otherwise; both give the same pixels. Writing picks the format from the suffix:

- `.mp4`: H.264 (libx264), yuv420p, constant quality (`quality` is the CRF, default 18).
- `.webm`: VP9 (libvpx-vp9), yuv420p, constant quality (`quality` is the CRF, default 30).
- `.gif`: palette per frame (median cut), 1/100 s timestamps; `quality` is ignored.

Every encoder runs on one thread (the codec context's thread count: x264's frame threads changed decoded pixels
by up to 19 levels between runs) and the containers are written bit-exact, so the same frames give the same
bytes. fps must lie in `video_writer.fps_limits(suffix)` (0.1..240; GIF 0.1..50) so that the file plays at it.

yuv420p needs even sizes: an odd width or height is padded by one column / row on the right / bottom,
repeating the edge pixels, so a 63x65 clip reads back as 64x66 (all formats, for consistency).

Files are written through vidiff/output_safety.py (a random hidden temporary name opened O_EXCL | O_NOFOLLOW in
the target folder, fsync, rename), so an interrupted write never leaves a half file under the final name. `probe_video` reads container metadata
only and refuses files over `VideoLimits` before any frame is decoded. av / decord / PIL are imported
(and torch) inside the functions so that `import vidiff.io` stays cheap and contained
decoding workers stay small. A decord reader is created per call and
never shared across threads.
"""
from __future__ import annotations

import logging
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

import numpy as np

from vidiff.errors import InputError, VideoDecodeError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
# Containers where decord's random access is exact. On AVI with packed B-frames (Megamind.avi) decord 0.6
# returns frame i-1 for index i after a seek, and it cannot open GIFs: "auto" uses PyAV for those.
DECORD_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class VideoLimits:
    """What a video file may claim before it is decoded (defaults suit training data; raise them for more)."""

    max_pixels: int = 4096 * 2304  # width * height of one frame (covers 4K UHD and DCI 4K)
    max_frames: int = 100_000  # frames in the stream (about 55 min at 30 fps)
    max_duration: float = 3600.0  # seconds


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """Container metadata of a video stream. `num_frames` is the container's count, or duration * fps."""

    width: int
    height: int
    num_frames: int
    fps: float
    duration: float  # seconds
    codec: str


def check_file(path: str | os.PathLike) -> Path:
    """Returns `path` as a Path if it is a readable, non-empty regular file; never opens FIFOs or devices."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks: a dangling link is "not found"
    except FileNotFoundError:
        raise VideoDecodeError(path, "file not found") from None
    except OSError as e:
        raise VideoDecodeError(path, f"cannot stat: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoDecodeError(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else "special file"
        raise VideoDecodeError(path, f"not a regular file ({kind})")
    if st.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(path, "permission denied")
    return path


def _av_error_types() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError, RuntimeError, IndexError, KeyError, EOFError,
            AttributeError, TypeError, ZeroDivisionError, OverflowError)


# ---- probe --------------------------------------------------------------------------------------------


def probe_video(path: str | os.PathLike, limits: VideoLimits | None = None) -> VideoInfo:
    """Reads a video's metadata (no frame decoding) and checks it against `limits`.

    Raises VideoDecodeError naming the file when it is missing, not a video, has no video stream or
    claims more pixels, frames or seconds than the limits allow.
    """
    import av

    limits = limits or DEFAULT_LIMITS
    path = check_file(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"cannot open container: {_short(e)}") from None
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:
            raise VideoDecodeError(path, "unknown video codec")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise VideoDecodeError(path, f"no frame size in header ({width}x{height})")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if not math.isfinite(fps) or fps <= 0:
            raise VideoDecodeError(path, "no frame rate in header")
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6  # microseconds
        else:
            duration = 0.0
        num_frames = int(stream.frames) if stream.frames > 0 else int(round(duration * fps))
        codec = ctx.name or "unknown"
    except VideoDecodeError:
        raise
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"bad stream header: {_short(e)}") from None
    finally:
        container.close()
    if width * height > limits.max_pixels:
        raise VideoDecodeError(path, f"frame {width}x{height} exceeds max_pixels={limits.max_pixels}")
    if num_frames > limits.max_frames:
        raise VideoDecodeError(path, f"{num_frames} frames exceeds max_frames={limits.max_frames}")
    if duration > limits.max_duration:
        raise VideoDecodeError(path, f"duration {duration:.1f} s exceeds max_duration={limits.max_duration}")
    if num_frames <= 0:
        raise VideoDecodeError(path, "header gives no frame count or duration")
    return VideoInfo(width, height, num_frames, fps, duration, codec)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# ---- read ---------------------------------------------------------------------------------------------


def _check_selection(num_frames, stride, start, fps) -> None:
    if num_frames is not None and (not isinstance(num_frames, int) or num_frames < 1):
        raise InputError(f"num_frames must be a positive integer or None, got {num_frames!r}")
    if not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be a positive integer, got {stride!r}")
    if not isinstance(start, int) or start < 0:
        raise InputError(f"start must be a non-negative integer, got {start!r}")
    if fps is not None:
        if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise InputError(f"fps must be a positive number or None, got {fps!r}")
        if stride != 1:
            raise InputError("give either stride or fps, not both")


def frame_step(src_fps: float, stride: int = 1, fps: float | None = None) -> float:
    """Source frames per output frame: `stride`, or `src_fps / fps` when a target fps is given."""
    return float(stride) if fps is None else src_fps / fps


def frame_index(k: int, start: int, step: float) -> int:
    """Source index of output frame k: the frame shown at time k / out_fps (floor; tiny slack for rounding)."""
    return start + int(math.floor(k * step + 1e-6))


def select_indices(total: int, num_frames: int | None, start: int, step: float) -> list[int]:
    """Source indices for `num_frames` outputs (all that fit when None) from `start` at `step`."""
    if num_frames is not None:
        return [frame_index(k, start, step) for k in range(num_frames)]
    out, k = [], 0
    while (i := frame_index(k, start, step)) < total:
        out.append(i)
        k += 1
    return out


def read_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    stride: int = 1,
    start: int = 0,
    fps: float | None = None,
    *,
    backend: Backend = "auto",
    num_threads: int = 0,
    limits: VideoLimits | None = None,
) -> tuple[torch.Tensor, float]:
    """Decodes frames `start, start+step, ...` as uint8 `(F,H,W,3)` and returns them with their fps.

    The step is `stride`, or `source_fps / fps` when a target `fps` is given (indices resampled by time,
    so frames repeat when fps exceeds the source rate). `num_frames=None` reads every selected frame to the
    end; asking for more frames than the file has raises VideoDecodeError. `num_threads=0` lets the
    codec choose. The file is probed against `limits` first. `backend="auto"` picks decord for
    DECORD_SUFFIXES (PyAV when decord fails on a file) and PyAV for everything else.
    """
    import torch

    _check_selection(num_frames, stride, start, fps)
    if backend not in ("auto", "decord", "pyav"):
        raise InputError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    info = probe_video(path, limits)
    step = frame_step(info.fps, stride, fps)
    out_fps = info.fps / step
    path = Path(path)
    if backend == "decord" and not _decord_available():
        raise InputError("backend='decord' was requested but decord is not installed")
    if backend == "pyav" or (backend == "auto" and not (_decord_available() and path.suffix.lower() in DECORD_SUFFIXES)):
        frames = _read_pyav(path, num_frames, start, step, num_threads)
    elif backend == "decord":
        frames = _read_decord(path, num_frames, start, step, num_threads)
    else:
        try:
            frames = _read_decord(path, num_frames, start, step, num_threads)
        except VideoDecodeError as e:  # decord 0.6 fails on some frame sizes (e.g. 48x34): PyAV decides
            log.debug("decord could not read %s (%s); using PyAV", path, e.reason)
            frames = _read_pyav(path, num_frames, start, step, num_threads)
    return torch.from_numpy(frames), out_fps


def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _not_enough(path, num_frames, start, step, total) -> VideoDecodeError:
    return VideoDecodeError(
        path, f"asked for {num_frames} frames from {start} every {step:g}, but the video has {total} frames"
    )


def _read_decord(path: Path, num_frames, start: int, step: float, num_threads: int) -> np.ndarray:
    import decord

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
        total = len(reader)
        indices = select_indices(total, num_frames, start, step)
        if not indices or indices[-1] >= total:
            raise _not_enough(path, num_frames, start, step, total)
        frames = reader.get_batch(indices).asnumpy()  # (F,H,W,3)
    except VideoDecodeError:
        raise
    except (decord.DECORDError, RuntimeError, ValueError, IndexError) as e:
        raise VideoDecodeError(path, f"decode failed (decord): {_short(e)}") from None
    return frames


def _wanted(num_frames, start: int, step: float) -> Iterator[int]:
    k = 0
    while num_frames is None or k < num_frames:
        yield frame_index(k, start, step)
        k += 1


def decode_complete(container, stream):
    """Decodes a stream; a packet that fails after the first frames (a truncated or damaged tail) ends it,
    and the frames the decoder still holds are flushed instead of lost."""
    import av

    ctx = stream.codec_context
    got_frame = False
    for packet in container.demux(stream):
        if packet.size == 0:
            break  # end of stream
        try:
            frames = ctx.decode(packet)
        except av.error.FFmpegError:
            if not got_frame:
                raise
            log.debug("damaged tail in %s at byte %s: stream ends there", container.name, packet.pos)
            break
        got_frame = got_frame or bool(frames)
        yield from frames
    try:
        yield from ctx.decode(None)  # frames the decoder still holds (B-frame delay, frame threads)
    except av.error.FFmpegError:
        if not got_frame:
            raise
        log.debug("damaged tail in %s: decoder flush failed", container.name)


def _read_pyav(path: Path, num_frames, start: int, step: float, num_threads: int) -> np.ndarray:
    import av

    frames: list[np.ndarray] = []
    wanted = _wanted(num_frames, start, step)
    target = next(wanted)
    decoded = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if num_threads:
                stream.codec_context.thread_count = num_threads
            for i, frame in enumerate(decode_complete(container, stream)):
                decoded = i + 1
                if i < target:
                    continue
                rgb = frame.to_ndarray(format="rgb24")  # (H,W,3)
                while target == i:  # a target fps above the source rate repeats frames
                    frames.append(rgb)
                    target = next(wanted, -1)
                if target < 0:
                    break
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"decode failed (pyav): {_short(e)}") from None
    if not frames or (num_frames is not None and len(frames) < num_frames):
        raise _not_enough(path, num_frames, start, step, decoded)
    return np.stack(frames)


# ---- images -------------------------------------------------------------------------------------------


# PIL modes whose samples are 16 bits: scaled to 8 bits (v * 255 / 65535, rounded), never clipped.
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N")
# PIL modes that convert to RGB as they are (alpha, if any, is dropped).
_MODES_8BIT = ("1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _open_image(path: Path, limits: VideoLimits):
    """An opened PIL image (header read only) within `limits`; InputError for anything else."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # lazy: reads the header only
    except Image.DecompressionBombError:
        raise InputError(f"image {path}: too many pixels (PIL decompression-bomb limit)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"image {path}: not a readable image ({_short(e)})") from None
    if img.width * img.height > limits.max_pixels:
        img.close()
        raise InputError(f"image {path}: {img.width}x{img.height} exceeds max_pixels={limits.max_pixels}")
    if img.mode not in _MODES_8BIT + _MODES_16BIT and not (img.mode == "I" and img.format == "PNG"):
        mode = img.mode
        img.close()
        raise InputError(f"image {path}: pixel mode {mode!r} is not supported; save it as 8-bit or 16-bit RGB / grey")
    return img


def check_image(path: str | os.PathLike, limits: VideoLimits | None = None) -> None:
    """Checks a still image's header and structure without decoding it (size, pixel mode, bombs, PNG CRCs)."""
    from PIL import UnidentifiedImageError

    path = _checked_image_file(path)
    img = _open_image(path, limits or DEFAULT_LIMITS)
    try:
        img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
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
        values = np.asarray(img).astype(np.int64)
        if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
            raise InputError(f"image: {img.mode} samples outside 0..65535; save it as 8-bit or 16-bit")
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode in ("RGBA", "RGBa", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))[..., :3]
    return np.asarray(img.convert("RGB"))


def read_image(path: str | os.PathLike, limits: VideoLimits | None = None) -> torch.Tensor:
    """Reads a PNG / JPEG (or any still format PIL knows) as uint8 `(H,W,3)` RGB.

    16-bit images are scaled to 8 bits (65535 -> 255), alpha is dropped, palette and CMYK / YCbCr images are
    converted; floating-point and 32-bit integer images are refused (their range is unknown).
    """
    import torch
    from PIL import Image, UnidentifiedImageError

    path = _checked_image_file(path)
    img = _open_image(path, limits or DEFAULT_LIMITS)
    try:
        with img:
            rgb = image_to_rgb(img)  # (H,W,3)
    except InputError as e:
        raise InputError(f"image {path}: {e}".replace(": image:", ":")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"image {path}: not a readable image ({_short(e)})") from None
    return torch.from_numpy(np.ascontiguousarray(rgb).copy())


# Containers the readers open (PyAV decodes them all): what folder listings for evaluation treat as videos.
READABLE_SUFFIXES = (".mp4", ".webm", ".gif", ".avi", ".mkv", ".mov")


def list_video_files(folder: Path) -> list[Path]:
    """Sorted video files (by READABLE_SUFFIXES) directly in `folder`; the caller checks it is a folder."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in READABLE_SUFFIXES and p.is_file())


# Writing lives in vidiff/video_writer.py; re-exported here so `vidiff.io` stays the one entry point.
from vidiff.video_writer import VIDEO_SUFFIXES, as_frames, pad_to_even, write_video  # noqa: E402,F401
