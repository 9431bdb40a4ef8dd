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
the target folder, fsync, rename), so an interrupted write never leaves a half file under the final name. Every
reader probes the file first (vidiff/video_probe.py: container metadata checked against `VideoLimits` before any
frame is decoded, the first frame's display rotation, which both readers apply). av / decord / PIL (and torch) are
imported inside the functions so that `import vidiff.io` stays cheap and decoding workers stay small. A decord
reader is created per call and never shared across threads. This module is the one entry point: the probe, the
writer (vidiff/video_writer.py) and the image reader (vidiff/image_io.py) are reached through it.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

from vidiff.errors import InputError, VideoDecodeError  # noqa: F401  (VideoDecodeError: public here)
from vidiff.limits import is_int, plain_number
from vidiff.video_decode import (  # noqa: F401  (frame_index, frame_step, select_indices, decode_complete: public)
    _av_error_types, _decord_available, _read_decord, _read_pyav, _short, decode_complete, frame_index, frame_step,
    iter_pyav, select_indices, too_large, video_stream,
)
from vidiff.video_orientation import decord_upright, first_frame_turn
from vidiff.video_probe import (  # noqa: F401  (the probe side, public here: vidiff.io stays the one entry point)
    DEFAULT_LIMITS, VideoInfo, VideoLimits, _probe_header, check_file, check_folder, probe_video,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)  # "vidiff.io", as video_probe and video_decode log

Backend = Literal["auto", "decord", "pyav"]
# Containers where decord's random access is exact. On AVI with packed B-frames (Megamind.avi) decord 0.6
# returns frame i-1 for index i after a seek, and it cannot open GIFs: "auto" uses PyAV for those.
DECORD_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


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
    orientation: tuple[int, bool] | None = None,
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
    `orientation`: the clip's (rotation, mirrored) where the caller probed it (probe_video's VideoInfo: a folder
    scan); a decord read otherwise learns them from the first frame, once per file and process (first_frame_turn).
    Both readers give the frames as the whole-clip read shows them (video_orientation.orientation).

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
    if orientation is not None and (not isinstance(orientation, tuple) or len(orientation) != 2
                                    or orientation[0] not in (0, 90, 180, 270) or not isinstance(orientation[1], bool)):
        raise InputError(f"orientation must be (rotation in 0, 90, 180, 270, mirrored), got {orientation!r}")
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

    def with_decord():  # decord turns some clips itself, and never mirrors: upright as PyAV's (decord_upright)
        frames = _read_decord(path, num_frames, start, step, num_threads)
        return decord_upright(frames, *(orientation or first_frame_turn(path)), info.container)

    use_decord = backend == "decord" or (
        backend == "auto" and num_frames is not None and info.video_streams == 1
        and path.suffix.lower() in DECORD_SUFFIXES and _decord_available())
    if not use_decord:
        frames = pyav()
    elif backend == "decord":
        frames = with_decord()
    else:
        try:
            frames = with_decord()
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


def count_frames(path: str | os.PathLike, at_most: int | None = None, *, quiet: bool = False) -> int:
    """The frames of `path` counted by decoding them (stopping at `at_most`), for a header whose count is only an
    estimate (VideoInfo.estimated: MPEG-PS guesses it from the bitrate). VideoDecodeError as iter_video raises it.
    `quiet`: without the warnings of the decode (a cut tail), for a check whose caller has said them already."""
    hush = _BelowErrors()  # a filter, not a level: a level the caller set on the logger stays theirs
    if quiet:
        log.addFilter(hush)
    try:
        return sum(1 for _ in itertools.islice(iter_video(path, convert=False), at_most))  # no RGB copy to count
    finally:
        log.removeFilter(hush)


class _BelowErrors(logging.Filter):
    """Drops the warnings (and below) of the logger it is added to; errors pass."""

    def filter(self, record) -> bool:
        return record.levelno >= logging.ERROR


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
