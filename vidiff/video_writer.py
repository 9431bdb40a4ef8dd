"""Writing uint8 `(F,H,W,3)` frames to .mp4 (H.264), .webm (VP9) and .gif, atomically (temporary name, fsync,
rename). Formats, quality and the even-size padding rule (.mp4 / .webm) are described in vidiff/io.py, which
re-exports `write_video`.
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from vidiff.errors import InputError
from vidiff.limits import plain_number

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")  # formats write_video knows, chosen by suffix


def as_frames(frames) -> np.ndarray:
    """Checks and converts a torch tensor / numpy array to contiguous uint8 numpy `(F,H,W,3)`."""
    if type(frames).__module__.startswith("torch"):  # avoids importing torch for numpy input
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise InputError(f"frames must be a uint8 torch tensor or numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) == 0:
        raise InputError(f"frames must have shape (F,H,W,3) with F,H,W >= 1, got {tuple(frames.shape)}")
    return np.ascontiguousarray(frames)


# Formats whose odd sides are padded to even ones. x264 refuses odd yuv420p sizes. libvpx-vp9 takes them, but the
# odd-sized files were worse: a 97x31 .webm read back through decord and through PyAV differed by 3.3 levels on
# average (up to 38; its padded twin read identically), and swscale's RGB -> yuv420p at odd widths put chroma off
# its pixel (a 1 px green line on grey came back 102 levels off, 67 at even widths). GIF keeps any size.
EVEN_SIDED_SUFFIXES = (".mp4", ".webm")


def written_size(width: int, height: int, suffix: str) -> tuple[int, int]:
    """The frame size a `suffix` file written by vidiff holds for frames of `width` x `height`: odd sides padded by
    one in .mp4 / .webm (EVEN_SIDED_SUFFIXES), kept in .gif."""
    if suffix.lower() not in EVEN_SIDED_SUFFIXES:
        return width, height
    return width + width % 2, height + height % 2


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pads odd H / W by one row / column at the bottom / right, repeating the edge pixels (what .mp4 / .webm hold)."""
    _, h, w, _ = frames.shape
    height, width = h + h % 2, w + w % 2
    if (height, width) == (h, w):
        return frames
    return np.pad(frames, ((0, 0), (0, height - h), (0, width - w), (0, 0)), mode="edge")


# Frame rates a file can carry and a player honours. GIF delays are whole 1/100 s and browsers show delays under
# 2/100 s as 10/100 s, so a GIF tops out at 50 fps.
FPS_MIN = 0.1
FPS_MAX = 240.0
FPS_MAX_GIF = 50.0


def fps_limits(suffix: str) -> tuple[float, float]:
    """(lowest, highest) fps `write_video` accepts for a file suffix."""
    return FPS_MIN, FPS_MAX_GIF if suffix.lower() == ".gif" else FPS_MAX


def check_fps(fps, suffix: str, name: str = "fps") -> float:
    """fps as a float when it is a finite number within fps_limits(suffix); InputError naming the limit otherwise."""
    low, high = fps_limits(suffix)
    fps = plain_number(fps)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or not low <= fps <= high:
        shown = f"{fps!r}"[:40]
        rounded = float(f"{fps:.6g}") if isinstance(fps, float) and math.isfinite(fps) else fps
        if rounded != fps and not low <= rounded <= high:  # never rounded into the limits (240.00001)
            shown = f"{fps:.6g}"  # a rate made by multiplying (30.02 x 11) said 330.2201467645097
        raise InputError(f"{name} must be a number in [{low:g}, {high:g}] for {suffix or 'this'} files, got {shown}")
    return float(fps)


def write_video(path: str | os.PathLike, frames, fps: float, quality: int | None = None,
                before_replace=None, sample_aspect=None) -> Path:
    """Writes uint8 `(F,H,W,3)` frames to .mp4 / .webm / .gif (by suffix) atomically; returns the path.

    One encoder thread and bit-exact container flags, so the same frames nearly always give the same bytes; not
    always for mp4: x264 (PyAV 18.1's FFmpeg, libavcodec 62) gave other bytes for the same YUV frames, one
    thread, in 1 of 8 encodes of high-entropy frames that arrived at uneven times (GIF is exact). The file plays
    at `fps` (within fps_limits of its format); `sample_aspect` as write_video_frames takes it.
    """
    return write_video_frames(path, iter(as_frames(frames)), fps, quality, before_replace, sample_aspect)


def write_video_frames(path: str | os.PathLike, frames: Iterable, fps: float, quality: int | None = None,
                       before_replace=None, sample_aspect=None, state_matrix: bool = True) -> Path:
    """`write_video` for frames that arrive one at a time (uint8 `(H,W,3)` each, all one size), encoded as they
    come, so a clip of any length is written in the memory of one frame. An error from the iterable, or a frame
    of another size, leaves no file (and an existing file as it was). `before_replace` is atomic_write's.
    `sample_aspect`: the pixels' width / height (a Fraction; an anamorphic source's, so that the file shows the
    picture as wide as it did), stored in .mp4 only: .webm and .gif files here show square pixels.
    `state_matrix=False` leaves the colour matrix (BT.601) unstated in an .mp4 / .webm: for frames of a clip that
    states none (VideoInfo.unstated_matrix), which a player then shows with the matrix it guesses for both."""
    from vidiff.output_safety import atomic_write, check_output

    path = Path(path).expanduser()  # "~/x.gif" said "folder ~ does not exist"; io.check_file reads "~" so too
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"video path {path}: suffix must be one of {', '.join(VIDEO_SUFFIXES)}")
    fps, quality = check_fps(fps, suffix), plain_number(quality)
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 63):
        raise InputError(f"quality (CRF) must be an integer in 0..63, got {quality!r}")
    if not path.parent.is_dir():
        raise InputError(f"video path {path}: folder {path.parent} does not exist")
    check_output(path, what="video path", create_folder=False)
    frames = _checked_frames(frames, pad=suffix in EVEN_SIDED_SUFFIXES)
    first = next(frames)  # its size opens the stream; no frame at all fails before a temporary file exists
    frames = itertools.chain([first], frames)
    if suffix == ".gif":
        return atomic_write(path, lambda f: _write_gif(f, frames, first.shape[:2], fps), before_replace)
    return atomic_write(path, lambda f: _write_yuv(f, frames, first.shape[:2], fps, suffix, quality,
                                                   sample_aspect, state_matrix), before_replace)


def _checked_frames(frames: Iterable, pad: bool) -> Iterator[np.ndarray]:
    """Each frame checked (uint8 (H,W,3), the first frame's size) and, if `pad`, padded to even sides; at least one."""
    size = None
    for frame in frames:
        frame = as_frames(frame[None] if getattr(frame, "ndim", 0) == 3 else frame)
        if frame.shape[0] != 1:
            raise InputError(f"frames must come one at a time as (H,W,3), got {tuple(frame.shape)}")
        if size is None:
            size = frame.shape[1:3]
        elif frame.shape[1:3] != size:
            raise InputError(f"frame size changed from {size[1]}x{size[0]} to {frame.shape[2]}x{frame.shape[1]}")
        yield (pad_to_even(frame) if pad else frame)[0]
    if size is None:
        raise InputError("no frames to write")


# What .mp4 / .webm frames are converted with and tagged as (FFmpeg's AVColorSpace / AVColorRange /
# AVColorPrimaries / AVColorTransferCharacteristic numbers): BT.601 (SMPTE 170M) in limited range, swscale's
# default conversion; the RGB is sRGB, whose primaries are BT.709's.
YUV_MATRIX, YUV_RANGE, SRGB_PRIMARIES, SRGB_TRANSFER = 6, 1, 1, 1

_BITEXACT = {"fflags": "+bitexact"}  # no random segment id or version string: equal frames give equal bytes


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


class _FirstErrorOnly:
    """The temporary file as PyAV writes it, on a full disk: the first failing write or seek raises its OSError,
    later ones do nothing, and leaving the `with` raises that OSError whatever PyAV made of it. PyAV holds one error
    of its callbacks at a time: a second one (FFmpeg writes on, and the mp4 muxer seeks back for its trailer)
    printed "PyAV library exception being dropped:" and a traceback under the one line, and one met while the
    trailer was written came out as PyAVCallbackError ("Error in PyAV callback"), which is no OSError, as a
    traceback. No `close`: the file stays the caller's."""

    def __init__(self, file):
        self._file, self.error = file, None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if self.error is not None:
            raise self.error from None

    def _call(self, method, *args):
        if self.error is not None:
            return None
        try:
            return method(*args)
        except OSError as e:
            self.error = e
            raise

    def write(self, data):
        written = self._call(self._file.write, data)
        return len(data) if written is None else written

    def seek(self, offset, whence=0):
        return self._call(self._file.seek, offset, whence)

    def tell(self):
        return self._file.tell()


def _write_yuv(file, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float, suffix: str,
               quality: int | None, sample_aspect=None, state_matrix: bool = True) -> None:
    import av

    if suffix == ".mp4":
        # aq-mode=0: with adaptive quantization on, x264 gave different bytes for the same frames in about 1 of
        # 40 encodes even on one thread (80 of 80 equal without it).
        extra = {"preset": "medium", "x264-params": "aq-mode=0"}
        fmt, codec, crf = "mp4", "libx264", 18 if quality is None else quality
    else:
        fmt, codec, crf, extra = "webm", "libvpx-vp9", 30 if quality is None else quality, {"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
    with _FirstErrorOnly(file) as sink, av.open(sink, mode="w", format=fmt, container_options=_BITEXACT) as container:
        stream = container.add_stream(codec, rate=_rate(fps), options={"crf": str(crf), **extra})
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # the options' "threads" is not applied; threads make x264 vary
        # The frames are sRGB, converted below with swscale's BT.601 matrix into limited range: say so. Untagged, a
        # player guesses BT.709 for HD sizes (mpv, VLC, browsers) and showed a phone clip's greens 27 levels darker.
        if state_matrix:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_range = YUV_MATRIX, YUV_RANGE
            ctx.color_primaries, ctx.color_trc = SRGB_PRIMARIES, SRGB_TRANSFER
        if sample_aspect is not None and suffix == ".mp4":  # FFmpeg's WebM muxer here drops it
            stream.codec_context.sample_aspect_ratio = _rate(sample_aspect)
        for rgb in frames:
            # Converted here rather than inside encode(): in 30 repeated encodes, the implicit conversion path gave
            # two different outputs and the explicit one gave one (the rest of the variation was x264's AQ, above).
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=YUV_MATRIX, dst_color_range=YUV_RANGE)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush delayed frames


def _write_gif(file, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float) -> None:
    import av
    from PIL import Image

    with _FirstErrorOnly(file) as sink, av.open(sink, mode="w", format="gif", container_options=_BITEXACT) as container:
        # FFmpeg's transdiff marks a pixel transparent where its palette index equals the previous frame's, as if
        # every frame shared one palette; here each frame has its own, so such a pixel kept the last frame's colour
        # (an input frame 44 levels off in `interpolate` of a 1x64 GIF). Offsetting crops by the same test.
        stream = container.add_stream("gif", rate=_rate(fps), options={"gifflags": "0"})
        stream.height, stream.width = size
        stream.pix_fmt = "pal8"
        stream.codec_context.time_base = _rate(100) ** -1  # GIF delays are in 1/100 s
        last = -1
        for i, rgb in enumerate(frames):
            pal_img = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT)
            palette = np.zeros((256, 4), np.uint8)  # PyAV takes one row per entry as (A, R, G, B)
            rgb_pal = np.asarray(pal_img.getpalette(), np.uint8).reshape(-1, 3)[:256]
            palette[: len(rgb_pal), 1:] = rgb_pal
            palette[:, 0] = 255
            frame = av.VideoFrame.from_ndarray((np.asarray(pal_img, np.uint8), palette), format="pal8")
            frame.pts = last = max(last + 1, round(i * 100 / fps))  # strictly increasing centiseconds
            frame.time_base = stream.codec_context.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
