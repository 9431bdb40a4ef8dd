"""What a video file claims before its frames are decoded: the probe every reader and command runs first.

`probe_video` reads the container's metadata (frame size, count, rate, duration, codec, HDR transfer, audio, other
video streams, pixel aspect, colour matrix) and refuses a file over `VideoLimits` before any frame is decoded; then
it decodes the first frame for its display rotation (phone clips are stored sideways), which both readers apply,
and for transparency. `check_file` / `check_folder` are the one rule for a path a command takes. av is imported
inside the functions so that importing this module stays cheap. Re-exported by vidiff/io.py, the one entry point.
"""
from __future__ import annotations

import logging
import math
import os
import stat
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from vidiff.errors import InputError, VideoDecodeError
from vidiff.frame_timing import stated_fps
from vidiff.limits import MAX_CLIP_BYTES
from vidiff.video_decode import _av_error_types, _short, gif_rate, moving_streams, video_stream
from vidiff.video_orientation import first_frame_facts

log = logging.getLogger("vidiff.io")  # one logger for reading video, whichever module says it

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
    write portrait video; then mirrored left-right where `mirrored`) is read turned upright."""

    width: int
    height: int
    num_frames: int
    fps: float
    duration: float  # seconds
    codec: str
    rotation: int = 0
    mirrored: bool = False  # the display matrix also mirrors the picture left-right (after the turn): PyAV reads it
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
    container: str = ""  # FFmpeg's name of the container format: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", ...


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
    from vidiff.bundled_paths import where_installed
    from vidiff.output_safety import shown

    path = Path(path).expanduser()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # NotADirectoryError: a file on the way (clip.mp4/x)
        raise InputError(f"{what} {shown(path)}: no such folder{where_installed(path)}") from None
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
    rotation, mirrored, see_through = first_frame_facts(path)  # one frame decoded, within the limits checked
    if see_through:
        log.warning("%s %s", path, see_through)
    turned = rotation % 180 != 0
    sar = info.sample_aspect
    return replace(info, width=info.height if turned else info.width,
                               height=info.width if turned else info.height, rotation=rotation,
                   mirrored=mirrored, sample_aspect=1 / sar if turned and sar else sar)


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
        container_format = container.format.name
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
                     unstated_matrix=unstated_matrix, container=container_format)
