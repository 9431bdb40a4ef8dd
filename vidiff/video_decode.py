"""Decoding frames out of a video file: which frame indices a request selects, and the two decoder backends
(decord for random access, PyAV for everything) that return the same pixels. vidiff/io.py chooses between them
and checks the file first; nothing here is called on a file io.py has not probed."""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from vidiff.errors import VideoDecodeError
from vidiff.frame_timing import FrameTiming, header_of, missing_tail
from vidiff.video_orientation import upright_rgb

log = logging.getLogger("vidiff.io")


def _av_error_types() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError, RuntimeError, IndexError, KeyError, EOFError,
            AttributeError, TypeError, ZeroDivisionError, OverflowError)


def _short(e: BaseException) -> str:
    """The reason of a decoding error, in words: an OSError's (PyAV's FFmpegError's) without its errno and the file
    name it repeats ("[Errno 1094995529] Invalid data found when processing input: 's/text.mp4'")."""
    reason = getattr(e, "strerror", None)
    if isinstance(reason, str) and reason.strip():
        return reason.strip().splitlines()[0][:200]
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# ---- which frames ----------------------------------------------------------------------------------------

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


def gif_rate(container, stream, max_frames: int) -> float | None:
    """The frame rate of a GIF from its frames' timestamps: GIF delays are whole 1/100 s, so a writer rounds each
    frame's time (8 fps: delays of 12 and 13 cs), and the rate is the simplest fraction within that rounding of
    (frames - 1) / (last - first timestamp). None for a single frame or no timestamps. Demuxed, not decoded."""
    from fractions import Fraction

    stamps = [packet.pts for _, packet in zip(range(max_frames + 1), container.demux(stream))
              if packet.size and packet.pts is not None]
    container.seek(0)
    if len(stamps) < 2 or stamps[-1] <= stamps[0] or not stream.time_base:
        return None
    span = float((stamps[-1] - stamps[0]) * stream.time_base)  # seconds
    measured = (len(stamps) - 1) / span
    tolerance = measured * 0.01 / span  # one centisecond of rounding over the span
    for denominator in range(1, 1002):
        guess = Fraction(round(measured * denominator), denominator)
        if guess > 0 and abs(float(guess) - measured) <= tolerance:
            return float(guess)
    return measured


# ---- backends --------------------------------------------------------------------------------------------

def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _not_enough(path, num_frames, start, step, total) -> VideoDecodeError:
    if not total:  # a whole read ("asked for None frames") as well as a window
        return VideoDecodeError(path, "no frame could be decoded")
    if num_frames is None:  # a whole read from `start` on: past the end
        return VideoDecodeError(path, f"asked for the frames from {start} on, but the video has {total} "
                                      f"frame{'' if total == 1 else 's'}")
    return VideoDecodeError(
        path, f"asked for {num_frames} frames from {start} every {step:g}, but the video has {total} "
        f"frame{'' if total == 1 else 's'}"
    )


def too_large(path, frames: int, width: int, height: int, max_bytes: int, more: bool = False) -> VideoDecodeError:
    """The error of a read whose decoded frames would pass VideoLimits.max_bytes (limits.MAX_CLIP_BYTES); `more`:
    found while decoding, `frames` being as many as fit."""
    took = "over the bound" if more else _bytes_text(frames * width * height * 3)
    return VideoDecodeError(path, f"{'more than ' if more else ''}{frames} frames of {width}x{height} would take "
                                  f"{took} decoded; the frames one read keeps are bounded at {_bytes_text(max_bytes)}"
                                  ": cut or downscale the clip first")


def _bytes_text(count: int) -> str:
    """"3.48 GiB", "12.0 MiB": a bound set in VideoLimits(max_bytes=) read "0.000976562 GiB"."""
    return f"{count / 2**30:.3g} GiB" if count >= 2**30 else f"{count / 2**20:.3g} MiB"


def _read_decord(path: Path, num_frames, start: int, step: float, num_threads: int) -> np.ndarray:
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # its own FFmpeg's lines about a damaged frame on stderr ("Invalid
    # UE golomb code"), which PyAV's keeps quiet: the command's one line is the error
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
        reason = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", _short(e))  # its log prefixes: "[21:38:48] /github/..cc:292: "
        raise VideoDecodeError(path, f"decode failed (decord): {reason}") from None
    return frames


def _wanted(num_frames, start: int, step: float) -> Iterator[int]:
    k = 0
    while num_frames is None or k < num_frames:
        yield frame_index(k, start, step)
        k += 1


def decode_complete(container, stream, report: dict | None = None):
    """Decodes a stream; a packet that fails after the first frames (a truncated or damaged tail) ends it,
    and the frames the decoder still holds are flushed instead of lost. A damaged stream is logged as a
    warning with the frames kept: a user should know the clip was cut short (a partial download, a full disk).
    `report`, when given, gets "damaged": True then (so that the end of the stream is not warned of twice)."""
    import av

    ctx = stream.codec_context
    count, damaged_at = 0, None
    for packet in container.demux(stream):
        if packet.size == 0:
            break  # end of stream
        try:
            frames = ctx.decode(packet)
        except av.error.FFmpegError:
            if not count:
                raise
            damaged_at = f"byte {packet.pos}"
            break
        count += len(frames)
        yield from frames
    try:
        for frame in ctx.decode(None):  # frames the decoder still holds (B-frame delay, frame threads)
            count += 1
            yield frame
    except av.error.FFmpegError:
        if not count:
            raise
        damaged_at = damaged_at or "its end"
    if damaged_at:
        log.warning("%s is damaged at %s: using the %d frames before it", container.name, damaged_at, count)
        if report is not None:
            report["damaged"] = True


ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC


def moving_streams(container) -> list:
    """The video streams that are not cover pictures (attached_pic: an audio file's album art, one still image with
    the container's 90 kHz clock as its rate)."""
    return [s for s in container.streams.video if not int(getattr(s, "disposition", 0)) & ATTACHED_PIC]


def video_stream(container):
    """The stream vidiff reads: the first of moving_streams, or None."""
    return next(iter(moving_streams(container)), None)


def _av_frames(path: Path, num_threads: int, container_info: dict | None = None):
    """PyAV frames of the first video stream (video_stream) in order, a damaged tail ending them
    (decode_complete). `container_info`, when given, gets the container's format name as "format", what its header
    states as "header" (frame_timing.Header), the codec of a VP8 / VP9 alpha layer as "alpha_layer" ("" for none)
    and "damaged" when decode_complete warned of a damaged tail."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = video_stream(container)
        if container_info is not None:
            container_info["format"] = container.format.name
            container_info["header"] = header_of(container, stream)
            # WebM's tag for a VP8 / VP9 alpha layer, stored beside the colour layer
            tagged = stream.metadata.get("alpha_mode") == "1"
            container_info["alpha_layer"] = stream.codec_context.name if tagged else ""
        stream.thread_type = "AUTO"
        if num_threads:
            stream.codec_context.thread_count = num_threads
        yield from decode_complete(container, stream, container_info)


VFR_RATIO = 1.5  # frames this much further apart than the closest two: a variable frame rate (timestamps round)


def checked_frames(path: Path, width: int, height: int, max_frames: int, num_threads: int = 0):
    """PyAV frames of the first video stream (video_stream) in order, each checked before it is converted: a frame
    of another stored size than the header's width x height (a stream that changes size part-way, as joined
    recordings do) or more than `max_frames` frames (a header that undercounts) raise VideoDecodeError. When the
    stream is read to its end and its timestamps rose unevenly (a variable frame rate, as phones record in low
    light, or dropped frames) a warning says the frames were read as evenly spaced. Timestamps that go back are
    warned of once (the frames are read in stored order, which is then not the order they play in), and so are two
    frames with one timestamp (both are read), except in an AVI: it stores no presentation times, and with packed
    B-frames the times FFmpeg gives go back while the frames come in their order. Frames that end well before the
    header says they do (a cut-short file whose demuxer stops without an error) are warned of too."""
    count, last, base, gaps, ordered, container = 0, None, None, [math.inf, 0], True, {}
    lowest = highest = None
    for frame in _av_frames(path, num_threads, container):
        if (frame.width, frame.height) != (width, height):  # before converting: a frame may claim any size
            raise VideoDecodeError(path, f"frame {count} is {frame.width}x{frame.height}, the header says "
                                         f"{width}x{height}")
        count += 1
        if count > max_frames:
            raise VideoDecodeError(path, f"more than max_frames={max_frames} frames")
        if frame.pts is not None:
            base = frame.time_base or base  # frame threads leave it on the first frame only
            lowest = frame.pts if lowest is None else min(lowest, frame.pts)
            highest = frame.pts if highest is None else max(highest, frame.pts)
            if last is not None:
                if ordered and frame.pts <= last and container.get("format") != "avi":  # said once: then unordered
                    if frame.pts < last:
                        log.warning("%s has timestamps that go back (frame %d at %.0f ms after %.0f ms): its frames "
                                    "were read in stored order, not the order they play in", path, count - 1,
                                    1000 * frame.pts * (base or 0), 1000 * last * (base or 0))
                    else:
                        log.warning("%s has frames with the same timestamp (frames %d and %d at %.0f ms): both were "
                                    "read, one after the other, as if evenly spaced", path, count - 2, count - 1,
                                    1000 * last * (base or 0))
                ordered &= frame.pts > last
                gaps = [min(gaps[0], frame.pts - last), max(gaps[1], frame.pts - last)]
            last = frame.pts
        yield frame
    if ordered and base and gaps[1] > VFR_RATIO * gaps[0]:
        log.warning("%s has a variable frame rate (frames %.0f to %.0f ms apart): its frames were read as evenly "
                    "spaced", path, 1000 * gaps[0] * base, 1000 * gaps[1] * base)
    if base and lowest is not None and not container.get("damaged"):
        short = missing_tail(FrameTiming(count, float(lowest * base), float(highest * base)), container["header"])
        if short:
            log.warning("%s looks cut short or damaged: %s; the %d frames it has were read", path, short, count)


def iter_pyav(path: Path, width: int, height: int, max_frames: int, num_threads: int = 0,
              convert: bool = True) -> Iterator:
    """Every frame of the first video stream as uint8 (H,W,3), turned upright, decoded when it is asked for
    (checked_frames' checks and warning). No frame at all: VideoDecodeError. `convert=False` yields the PyAV frames
    as decoded (counting them needs no RGB copy, most of a small frame's cost)."""
    count = 0
    try:
        for frame in checked_frames(path, width, height, max_frames, num_threads):
            count += 1
            yield upright_rgb(frame) if convert else frame
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"decode failed (pyav) after {count} frames: {_short(e)}") from None
    if count == 0:
        raise VideoDecodeError(path, "no frame could be decoded")


def _read_pyav(path: Path, num_frames, start: int, step: float, num_threads: int, width: int, height: int,
               max_frames: int, max_bytes: int) -> np.ndarray:
    """The selected frames (select_indices) as uint8 (F,H,W,3); each decoded frame is checked (checked_frames),
    so a stream that changes size, runs past `max_frames` or makes more than `max_bytes` of kept frames (a header
    that undercounts, or states no count) fails here in one VideoDecodeError."""
    most = max_bytes // (3 * width * height)  # frames kept at most
    frames: list[np.ndarray] = []
    wanted = _wanted(num_frames, start, step)
    target = next(wanted)
    decoded = 0
    try:
        for i, frame in enumerate(checked_frames(path, width, height, max_frames, num_threads)):
            decoded = i + 1
            if i < target:
                continue
            rgb = upright_rgb(frame)  # (H,W,3)
            while target == i:  # a target fps above the source rate repeats frames
                if len(frames) == most:
                    raise too_large(path, most, width, height, max_bytes, more=True)
                frames.append(rgb)
                target = next(wanted, -1)
            if target < 0:
                break
    except _av_error_types() as e:
        raise VideoDecodeError(path, f"decode failed (pyav): {_short(e)}") from None
    if not frames or (num_frames is not None and len(frames) < num_frames):
        raise _not_enough(path, num_frames, start, step, decoded)
    return np.stack(frames)
