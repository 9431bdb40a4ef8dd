"""Video and image files at the edges of vidiff: probe, read, write.

Frames are uint8 `(F,H,W,3)` RGB torch tensors. A window of a clip is read with decord when it imports (faster
random access), a whole clip with PyAV (read_video says when); both give the same pixels for 8-bit sources (on
10-bit 4:2:0 they upsample chroma differently: up to 47 levels apart at sharp colour edges, measured on x264 /
x265 yuv420p10le). Writing picks the format from the suffix (.mp4 and .webm are converted with BT.601 into limited
range and tagged so, with sRGB's primaries, so that players do not guess another matrix):

- `.mp4`: H.264 (libx264), yuv420p, constant quality (`quality` is the CRF, default 18).
- `.webm`: VP9 (libvpx-vp9), yuv420p, constant quality (`quality` is the CRF, default 30).
- `.gif`: palette per frame (median cut), 1/100 s timestamps; `quality` is ignored.

Every encoder runs on one thread (the codec context's thread count: x264's frame threads changed decoded pixels
by up to 19 levels between runs) and the containers are written bit-exact, so the same frames give the same
bytes. fps must lie in `video_writer.fps_limits(suffix)` (0.1..240; GIF 0.1..50) so that the file plays at it.

.mp4 and .webm (yuv420p) are written at even sizes: an odd width or height is padded by one column / row on the
right / bottom, repeating the edge pixels, so a 63x65 clip reads back as 64x66 (why .webm too:
video_writer.EVEN_SIDED_SUFFIXES). A .gif keeps the frames' size.

Files are written through vidiff/output_safety.py (a random hidden temporary name opened O_EXCL | O_NOFOLLOW in
the target folder, fsync, rename), so an interrupted write never leaves a half file under the final name. `probe_video` reads container metadata
and refuses files over `VideoLimits` before any frame is decoded; then it decodes the first frame for its display
rotation (phone clips are stored sideways), which both readers apply. av / decord / PIL are imported
(and torch) inside the functions so that `import vidiff.io` stays cheap and contained
decoding workers stay small. A decord reader is created per call and
never shared across threads.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import stat
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

import numpy as np

from vidiff.errors import InputError, VideoDecodeError
from vidiff.frame_timing import stated_fps
from vidiff.limits import MAX_CLIP_BYTES, is_int, plain_number
from vidiff.video_decode import (  # noqa: F401  (frame_index, frame_step, select_indices, decode_complete: public)
    _av_error_types, _decord_available, _read_decord, _read_pyav, _short, decode_complete, first_frame_facts,
    frame_index, frame_step, gif_rate, iter_pyav, moving_streams, select_indices, too_large, video_stream,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
# Containers where decord's random access is exact. On AVI with packed B-frames (Megamind.avi) decord 0.6
# returns frame i-1 for index i after a seek, and it cannot open GIFs: "auto" uses PyAV for those.
DECORD_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}  # AVCOL_TRC_SMPTE2084 (HDR10), AVCOL_TRC_ARIB_STD_B67 (phones' HDR video)
NO_TIMESTAMPS = 0x80  # AVFMT_NOTIMESTAMPS: a raw stream (.h264, .mjpeg), whose frame rate FFmpeg only guesses


@dataclass(frozen=True)
class VideoLimits:
    """What a video file may claim before it is decoded (defaults suit training data; raise them for more)."""

    max_pixels: int = 4096 * 2304  # width * height of one frame (covers 4K UHD and DCI 4K)
    max_frames: int = 100_000  # frames in the stream (about 55 min at 30 fps)
    max_duration: float = 3600.0  # seconds
    max_bytes: int = MAX_CLIP_BYTES  # decoded frames one read_video keeps (F x W x H x 3); iter_video keeps one


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """Container metadata of a video stream. `num_frames` is the container's count, or duration * fps, or its
    packets counted where the header has neither (a live WebM, an APNG). width and height are the upright
    frame's: a clip stored sideways with a display rotation (`rotation` degrees counter-clockwise, as phones
    write portrait video) is read turned upright."""

    width: int
    height: int
    num_frames: int
    fps: float
    duration: float  # seconds
    codec: str
    rotation: int = 0
    hdr: str = ""  # "PQ" or "HLG" when the stream is tagged with an HDR transfer: read as stored, not tone-mapped
    estimated: bool = False  # num_frames is duration x fps (no stored count): MPEG-PS guesses it from the bitrate
    audio: bool = False  # the file also holds an audio stream (vidiff writes video only)
    video_streams: int = 1  # video streams other than cover pictures; vidiff reads the first (video_stream)
    still: bool = False  # a still image (PNG, JPEG, ...) opened by FFmpeg's image demuxers: one frame at 25 fps
    # pixels' width / height where they are not square (anamorphic DVD / HDV video is shown wider than stored), of
    # the upright frame; None for square pixels or none stated
    sample_aspect: Fraction | None = None
    # a YUV stream that states no colour matrix: read as BT.601 (FFmpeg's default), where players guess BT.709 for HD
    # sizes; an up-conversion then states none either, so that players show it as they show the clip
    unstated_matrix: bool = False


def check_file(path: str | os.PathLike) -> Path:
    """Returns `path` as a Path if it is a readable, non-empty regular file; never opens FIFOs or devices. A
    leading "~" is the user's home folder here and in every function of this module that takes a path, as
    VideoPipeline.from_pretrained reads it ("~/clip.mp4" looked for a folder named "~")."""
    path = Path(path).expanduser()
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


def check_folder(path: str | os.PathLike, what: str) -> Path:
    """Returns `path` as a Path if it is a folder (through symlinks); InputError naming `what` (the option or
    argument: "--videos", "RUN_DIR") and what is there instead: nothing ("no such folder"), a file, or a FIFO /
    device; one rule for every folder a command takes."""
    from vidiff.output_safety import shown

    path = Path(path).expanduser()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # NotADirectoryError: a file on the way (clip.mp4/x)
        raise InputError(f"{what} {shown(path)}: no such folder") from None
    except OSError as e:
        raise InputError(f"{what} {shown(path)}: cannot read it ({e.strerror})") from None
    if stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {shown(path)}: is a file, not a folder")
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {shown(path)}: is not a folder (FIFO, device or socket)")
    return path


# ---- probe --------------------------------------------------------------------------------------------


def probe_video(path: str | os.PathLike, limits: VideoLimits | None = None) -> VideoInfo:
    """Reads a video's metadata, checks it against `limits`, then decodes its first frame for the display
    rotation, so that width and height are the upright frame's (as both readers return the frames). An HDR
    transfer and transparency (vidiff.transparency) are warned of.

    Raises VideoDecodeError naming the file when it is missing, not a video, has no video stream or
    claims more pixels, frames or seconds than the limits allow.
    """
    path = Path(path).expanduser()
    info = _probe_header(path, limits)
    if info.hdr:
        log.warning("%s is HDR (%s transfer): its colours are read as stored, without tone mapping, so they look "
                    "flatter and paler than a player shows them", path, info.hdr)
    rotation, see_through = first_frame_facts(path)  # one frame decoded, within the limits checked
    if see_through:
        log.warning("%s %s", path, see_through)
    turned = rotation % 180 != 0
    sar = info.sample_aspect
    return replace(info, width=info.height if turned else info.width,
                               height=info.width if turned else info.height, rotation=rotation,
                   sample_aspect=1 / sar if turned and sar else sar)


def _probe_header(path: str | os.PathLike, limits: VideoLimits | None) -> VideoInfo:
    """probe_video without the first frame: the container's metadata as stored (rotation 0, frames as stored).
    The readers use it, since they turn each frame themselves and the limits do not depend on the turn."""
    import av

    limits = limits or DEFAULT_LIMITS
    path = check_file(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"cannot open container: {_short(e)}") from None
    try:
        stream = video_stream(container)
        if stream is None:
            cover = " (only a cover picture)" if container.streams.video else ""
            raise VideoDecodeError(path, f"no video stream{cover}")
        ctx = stream.codec_context
        if ctx is None:
            raise VideoDecodeError(path, "unknown video codec")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            if ctx.name == "webp":  # FFmpeg's WebP decoder takes still images only
                raise VideoDecodeError(path, "an animated WebP, which this FFmpeg cannot decode; convert it to a "
                                             "GIF or MP4 first")
            raise VideoDecodeError(path, f"no frame size in header ({width}x{height})")
        fps = stated_fps(stream)
        if ctx.name == "gif":  # FFmpeg's rate reads alternating 12 / 13 cs delays (8 fps) as 8.33
            fps = gif_rate(container, stream, limits.max_frames) or fps
        if not math.isfinite(fps) or fps <= 0:
            raise VideoDecodeError(path, "no frame rate in header")
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6  # microseconds
        else:
            duration = 0.0
        num_frames = int(stream.frames) if stream.frames > 0 else int(round(duration * fps))
        estimated = stream.frames <= 0
        raw = bool(container.format.flags & NO_TIMESTAMPS)
        if num_frames <= 0 and not raw:
            # a live WebM (a browser's MediaRecorder) or an APNG stores neither: its packets are counted, unread
            num_frames = sum(1 for _, packet in zip(range(limits.max_frames + 1), container.demux(stream))
                             if packet.size)
            duration, estimated = num_frames / fps, False
        codec = ctx.name or "unknown"
        hdr = HDR_TRANSFERS.get(int(getattr(ctx, "color_trc", 0) or 0), "")
        audio = bool(container.streams.audio)
        video_streams = len(moving_streams(container))
        still = container.format.name == "image2" or container.format.name.endswith("_pipe")
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio  # None (or 0/1) when the file states none
        sample_aspect = Fraction(sar) if sar and sar > 0 and sar != 1 else None
        unstated_matrix = str(ctx.pix_fmt or "").startswith("yuv") and int(ctx.colorspace) == 2  # AVCOL_SPC_UNSPECIFIED
    except VideoDecodeError:
        raise
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"bad stream header: {_short(e)}") from None
    finally:
        container.close()
    if width * height > limits.max_pixels:
        raise VideoDecodeError(path, f"frame {width}x{height} exceeds max_pixels={limits.max_pixels}")
    if num_frames > limits.max_frames and not estimated:  # an estimate is no claim: a rate stated as a timebase's
        # (1000 fps in a variable-rate MKV) makes one of thousands for 16 frames; decoding stops at the limit anyway
        raise VideoDecodeError(path, f"{num_frames} frames exceeds max_frames={limits.max_frames}")
    if duration > limits.max_duration:
        raise VideoDecodeError(path, f"duration {duration:.1f} s exceeds max_duration={limits.max_duration}")
    if num_frames <= 0 and raw:  # refused, since the rate FFmpeg guesses (25) would set the clip's timing
        import shlex

        out = f"{path.stem}.mp4" if path.suffix.lower() != ".mp4" else f"{path.stem}-30fps.mp4"  # not over itself
        raise VideoDecodeError(path, f"header gives no frame count or duration: a raw {codec} stream, without a "
                                     "container to state its frame rate; put it into one with its rate, e.g. "
                                     f"`ffmpeg -r 30 -i {shlex.quote(path.name)} -c copy {shlex.quote(out)}` for 30 fps")
    if num_frames <= 0:
        raise VideoDecodeError(path, "header gives no frame count or duration")
    return VideoInfo(width, height, num_frames, fps, duration, codec, hdr=hdr, estimated=estimated, audio=audio,
                     video_streams=video_streams, still=still, sample_aspect=sample_aspect,
                     unstated_matrix=unstated_matrix)


# ---- read ---------------------------------------------------------------------------------------------


def _check_selection(num_frames, stride, start, fps) -> tuple:
    """(num_frames, stride, start, fps) as Python numbers (np.int64 from numpy arithmetic reads like an int)."""
    num_frames, stride, start, fps = (plain_number(v) for v in (num_frames, stride, start, fps))
    if num_frames is not None and (not is_int(num_frames) or num_frames < 1):
        raise InputError(f"num_frames must be a positive integer or None, got {num_frames!r}")
    if not is_int(stride) or stride < 1:
        raise InputError(f"stride must be a positive integer, got {stride!r}")
    if not is_int(start) or start < 0:
        raise InputError(f"start must be a non-negative integer, got {start!r}")
    if fps is not None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise InputError(f"fps must be a positive number or None, got {fps!r}")
        if stride != 1:
            raise InputError("give either stride or fps, not both")
    return num_frames, stride, start, fps


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
    source_fps: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Decodes frames `start, start+step, ...` as uint8 `(F,H,W,3)` and returns them with their fps.

    The step is `stride`, or `source_fps / fps` when a target `fps` is given (indices resampled by time,
    so frames repeat when fps exceeds the source rate). `num_frames=None` reads every selected frame to the
    end; asking for more frames than the file has raises VideoDecodeError. `num_threads=0` lets the
    codec choose. The file is probed against `limits` first, and no more than `limits.max_frames` frames are
    decoded whatever its header claims; frames whose decoded size (frames x width x height x 3 bytes) would pass
    `limits.max_bytes` are refused before decoding (from the header's count) or while decoding (a count that is an
    estimate or an undercount). `source_fps`: the clip's rate where the caller measured it from its frames'
    timestamps (a header's can be far off them: an AVI whose index skips frame slots); default the header's.

    `backend="auto"` reads a window (`num_frames` given) of a DECORD_SUFFIXES file with one video stream with
    decord, whose seeking pays there (PyAV when decord fails on a file), and everything else with PyAV, which
    reads to the end as fast, honours MP4 edit lists (frames a trim hid stay hidden), refuses a stream whose frame
    size changes part-way (decord rescales such frames without a word) and warns of a variable frame rate.
    """
    import torch

    num_frames, stride, start, fps = _check_selection(num_frames, stride, start, fps)
    path = Path(path).expanduser()
    if backend not in ("auto", "decord", "pyav"):
        raise InputError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    limits = limits or DEFAULT_LIMITS
    info = _probe_header(path, limits)
    if source_fps is not None:
        source_fps = plain_number(source_fps)
        if isinstance(source_fps, bool) or not isinstance(source_fps, (int, float)) or not 0 < source_fps < math.inf:
            raise InputError(f"source_fps must be a positive number or None, got {source_fps!r}")
        info = replace(info, fps=float(source_fps))
    step = frame_step(info.fps, stride, fps)
    out_fps = info.fps / step
    frame_bytes = 3 * info.width * info.height
    if num_frames is not None:
        kept = num_frames
    elif info.estimated:  # no stated count (duration x fps can be far off): counted while decoding instead
        kept = 0
    else:  # the frames select_indices gives, counted without listing them (a high target fps repeats frames)
        kept = max(0, math.ceil((info.num_frames - start - 1e-6) / step))
    if kept * frame_bytes > limits.max_bytes:
        raise too_large(path, kept, info.width, info.height, limits.max_bytes)
    if backend == "decord" and not _decord_available():
        raise InputError("backend='decord' was requested but decord is not installed")
    if backend == "decord" and info.video_streams > 1:  # decord takes FFmpeg's "best" stream, not the first
        raise InputError(f"backend='decord': {path} has {info.video_streams} video streams and decord may read "
                         "another than the first; use backend='pyav'")

    def pyav():
        return _read_pyav(path, num_frames, start, step, num_threads, info.width, info.height, limits.max_frames,
                          limits.max_bytes)

    use_decord = backend == "decord" or (
        backend == "auto" and num_frames is not None and info.video_streams == 1
        and path.suffix.lower() in DECORD_SUFFIXES and _decord_available())
    if not use_decord:
        frames = pyav()
    elif backend == "decord":
        frames = _read_decord(path, num_frames, start, step, num_threads)
    else:
        try:
            frames = _read_decord(path, num_frames, start, step, num_threads)
        except VideoDecodeError as e:  # decord 0.6 fails on some frame sizes (e.g. 48x34): PyAV decides
            log.debug("decord could not read %s (%s); using PyAV", path, e.reason)
            frames = pyav()
    return torch.from_numpy(frames), out_fps


def iter_video(path: str | os.PathLike, *, num_threads: int = 0, limits: VideoLimits | None = None,
               convert: bool = True) -> Iterator:
    """Every frame of `path` as uint8 numpy `(H,W,3)`, decoded one at a time (PyAV), so a clip of any length
    reads in the memory of one frame. The file is probed against `limits` now; a frame of another size than the
    header's, more frames than `limits.max_frames` or a damaged stream raise VideoDecodeError while iterating.
    `convert=False` yields PyAV's frames as decoded, with the same checks (for counting them)."""
    limits = limits or DEFAULT_LIMITS
    path = Path(path).expanduser()
    info = _probe_header(path, limits)  # the frames' stored size: iter_pyav checks it before turning them
    return iter_pyav(path, info.width, info.height, limits.max_frames, num_threads, convert=convert)


def count_frames(path: str | os.PathLike, at_most: int | None = None) -> int:
    """The frames of `path` counted by decoding them (stopping at `at_most`), for a header whose count is only an
    estimate (VideoInfo.estimated: MPEG-PS guesses it from the bitrate). VideoDecodeError as iter_video raises it."""
    return sum(1 for _ in itertools.islice(iter_video(path, convert=False), at_most))  # no RGB copy to count


# Containers a folder of clips is read from; each was read and up-converted in the format sweeps (docs/reliability.md).
# .mts / .m2ts: AVCHD camcorders' MPEG-TS with 192-byte packets (CAM00001.MTS)
READABLE_SUFFIXES = (".mp4", ".webm", ".gif", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                     ".flv", ".3gp")


def list_video_files(folder: Path, suffixes: tuple[str, ...] = READABLE_SUFFIXES) -> list[Path]:
    """Paths under `folder` with a video suffix (lower-case `suffixes`, matched case-insensitively), sorted by path,
    for every command that reads a folder of clips (training scans them, eval reads them: eval saw the top level
    only). Subfolders are walked, not through symlinks; hidden names (temporary writes) are ignored, files and
    folders. Of any file type (a FIFO or a folder named x.mp4 is returned, so that the caller says it is not a
    clip); the caller checks `folder` is a folder."""
    out, stack = [], [Path(folder).expanduser()]
    while stack:
        for entry in sorted(os.scandir(stack.pop()), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.name.lower().endswith(suffixes):
                out.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return sorted(out)


# Writing lives in vidiff/video_writer.py; re-exported here so `vidiff.io` stays the one entry point.
from vidiff.video_writer import (  # noqa: E402,F401
    VIDEO_SUFFIXES, as_frames, pad_to_even, write_video, write_video_frames,
)


def __getattr__(name: str):
    """read_image / check_image / image_to_rgb / image_size live in vidiff/image_io.py; `vidiff.io.read_image`
    stays public."""
    if name in ("read_image", "check_image", "image_to_rgb", "image_size"):
        from vidiff import image_io

        return getattr(image_io, name)
    raise AttributeError(f"module 'vidiff.io' has no attribute {name!r}")
