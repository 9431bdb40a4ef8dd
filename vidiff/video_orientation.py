"""Which way up a video is shown: a display matrix's turn and mirror, read as FFmpeg reads it, and applied to
PyAV's frames and to decord's (which turn some containers themselves and mirror none).

Phones store portrait video sideways and tag it to be turned; a front camera's clip may be tagged mirrored too.
Every reader gives a clip's frames as a player shows them (tests/test_io_formats.py checks all 16 turns and
mirrors against the whole-clip read).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from vidiff.errors import VideoDecodeError


def orientation(frame) -> tuple[int, bool]:
    """How a PyAV frame is shown upright, from its display matrix: (k, mirrored), the picture being
    `np.rot90(rgb, k)` (k counter-clockwise quarter turns), then mirrored left-right when `mirrored`. Phones store
    portrait video sideways and tag it to be turned; a front camera's clip may be tagged mirrored too. FFmpeg's angle
    of a mirrored matrix is that of the reflection (a left-right mirror reads as 180 degrees), so the turn is taken
    from the matrix's determinant and that angle, as FFmpeg's own command line does. The nearest quarter turn is
    taken (probe_video refuses an angle off one: off_quarter_turn). PyAV before 14 has no `rotation`: frames as
    stored."""
    degrees = getattr(frame, "rotation", 0)
    matrix = next((bytes(d) for d in _side_data(frame) if d.type.name == "DISPLAYMATRIX"), b"")
    m = np.frombuffer(matrix[:36], "<i4").astype(np.int64) if len(matrix) >= 36 else None
    mirrored = m is not None and m[0] * m[4] - m[1] * m[3] < 0  # a negative determinant: a reflection
    turn = 180 - degrees if mirrored else degrees
    return round(turn / 90) % 4, bool(mirrored)


def _side_data(frame) -> list:
    """A PyAV frame's side data. PyAV 18 names each entry by an enum of the types it knows and refuses a frame holding
    any other ("ValueError: 31 is not a valid Type"): FFmpeg 8 puts an image's EXIF block (type 31) on every frame a
    JPEG, PNG, WebP or TIFF decoder gives, so a photo, or an MJPEG clip from a camera, failed every read. Types it does
    not know are then named UNKNOWN_<n>, once per process."""
    try:
        return list(getattr(frame, "side_data", ()))
    except ValueError:
        _name_unknown_side_data_types()
        # tried again even where the naming was there already: another thread may have put it there after this
        # frame's try failed. A ValueError now is another one
        return list(frame.side_data)


def _name_unknown_side_data_types() -> None:
    from av.sidedata.sidedata import Type

    if "_missing_" in vars(Type):
        return

    def unknown(cls, value):
        if not isinstance(value, int):
            return None
        member = object.__new__(cls)
        member._name_, member._value_ = f"UNKNOWN_{value}", value
        return member

    Type._missing_ = classmethod(unknown)  # two threads setting it at once set the same


def off_quarter_turn(frame) -> bool:
    """Whether a frame's display matrix turns it more than a degree off a quarter turn (FFmpeg then rotates the
    picture freely; the readers here turn by quarters only)."""
    degrees = getattr(frame, "rotation", 0)
    return abs(degrees - 90 * round(degrees / 90)) > 1


def upright_rgb(frame) -> np.ndarray:
    """A PyAV frame as uint8 (H,W,3) RGB, shown upright (orientation)."""
    rgb = frame.to_ndarray(format="rgb24")
    k, mirrored = orientation(frame)
    if k:
        rgb = np.rot90(rgb, k)
    if mirrored:
        rgb = rgb[:, ::-1]
    return np.ascontiguousarray(rgb) if k or mirrored else rgb


def first_frame_facts(path: Path) -> tuple[int, bool, str | None]:
    """What the first frame of `path` shows beyond its pixels: the degrees (0, 90, 180, 270) it is turned and
    whether it is mirrored to show it upright (orientation), and a note when it has transparency, which the readers
    drop (vidiff.transparency); (0, False, None) when it does not decode (the read that follows reports that). A
    display matrix turned off a quarter turn is refused (VideoDecodeError): neither reader turns it."""
    from vidiff.transparency import alpha_layer_note, transparency_note
    from vidiff.video_decode import _av_error_types, _av_frames

    info: dict = {}
    try:
        frame = next(_av_frames(path, 1, info), None)
        if frame is None:
            return 0, False, None
        if info["alpha_layer"]:  # FFmpeg's VP8 / VP9 decoders give the colour layer only
            note = alpha_layer_note(info["alpha_layer"])
        elif any(c.is_alpha for c in frame.format.components):  # argb, rgba, yuva420p, a GIF's bgra: look
            note = transparency_note(frame.to_ndarray(format="rgba"), "its first frame's pixels")
        else:
            note = None
    except _av_error_types():
        return 0, False, None
    if off_quarter_turn(frame):
        raise VideoDecodeError(path, f"its display matrix shows it turned {frame.rotation:g} degrees, which is not a "
                               "quarter turn; only 90, 180 and 270 are applied, so turn the video upright first "
                               "(e.g. re-encode it with ffmpeg, which applies the rotation)")
    k, mirrored = orientation(frame)
    return 90 * k, mirrored, note


@functools.lru_cache(maxsize=4096)
def _first_frame_turn(path: str, stamp: tuple) -> tuple[int, bool]:
    rotation, mirrored, _ = first_frame_facts(Path(path))
    return rotation, mirrored


def first_frame_turn(path: Path) -> tuple[int, bool]:
    """(rotation, mirrored) of first_frame_facts, decoded once per file (by its identity, size and time of change)
    and process: decoding the first frame cost a window of 4 frames half again (a 320x240 clip)."""
    st = os.stat(path)
    # ctime too: a file rewritten in place at its old size keeps its inode, and its mtime can be set back (utime)
    return _first_frame_turn(str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


# decord 0.6 turns a clip by the "rotate" tag its own FFmpeg (4.1) sets from an MP4 / MOV display matrix: FFmpeg's
# angle of the matrix, without its mirror; it reads no Matroska / WebM display matrix
DECORD_TURNS = "mov,mp4,m4a,3gp,3g2,mj2"


def decord_upright(frames: np.ndarray, rotation: int, mirrored: bool, container: str) -> np.ndarray:
    """decord's frames (F,H,W,3) of a clip shown turned `rotation` degrees, then `mirrored` (first_frame_facts), as
    upright_rgb shows PyAV's. decord turned an MP4 / MOV (`container`, VideoInfo.container) by FFmpeg's angle, which
    for a mirrored matrix is the reflection's (orientation): the rest of the turn, then the mirror, is done here."""
    done = (180 - rotation if mirrored else rotation) if container == DECORD_TURNS else 0
    k = (rotation - done) // 90 % 4
    if k:
        frames = np.rot90(frames, k, axes=(1, 2))
    if mirrored:
        frames = frames[:, :, ::-1]
    return np.ascontiguousarray(frames) if k or mirrored else frames
