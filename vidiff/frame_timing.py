"""What a video's frame timestamps say beside its header.

Two ways a header misleads a reader that trusts it:
- frames missing from the end: a truncated download or a damaged tail, which FFmpeg's demuxers often end at
  without raising (a cut MP4 written with its index first says 100 frames and 12.5 s; 47 decode);
- frames far sparser than the header's rate: an AVI whose index skips frame slots (tree.avi of opencv-doc states
  444 frames at 15 fps, stores 68, their timestamps spread over the same 29.5 s), so the frames read back to back
  play 6.5 times too fast at the header's rate.

Both are judged from the timestamps of the frames there are: the packets demuxed (`demuxed_timing`, no decoding)
or the frames decoded (vidiff/video_decode.py checks a stream read to its end).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHORT_RATIO = 0.9  # frames covering under this share of the header's duration (or count) are a cut-short file
SPARSE_RATIO = 0.75  # a mean rate under this share of the header's is sparse frames, not frames lost at the end


@dataclass(frozen=True)
class FrameTiming:
    """`frames` frames whose timestamps run from `first` to `last` seconds."""

    frames: int
    first: float
    last: float

    @property
    def mean_fps(self) -> float | None:
        span = self.last - self.first
        return (self.frames - 1) / span if self.frames > 1 and span > 0 else None

    @property
    def covered(self) -> float:
        """Seconds the frames cover: their span and one mean frame interval after the last."""
        rate = self.mean_fps
        return self.last - self.first + (1 / rate if rate else 0.0)


@dataclass(frozen=True)
class Header:
    """What a container states about its video stream: frames (0 when it states none), frames per second, and
    seconds (0 when unknown); `cut` says how the file's own format shows it ends early (a GIF with no trailer),
    None where it does not."""

    frames: int
    fps: float
    duration: float
    cut: str | None = None


def header_of(container, stream) -> Header:
    """The stream's stated count, rate and duration. The container's duration stands in for the stream's only
    when the file has no audio, whose track can outlast the video."""
    duration = 0.0
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None and not container.streams.audio:
        duration = container.duration / 1e6  # microseconds
    return Header(frames=max(int(stream.frames or 0), 0), fps=stated_fps(stream), duration=duration,
                  cut=_gif_cut(container))


GIF_TRAILER = b"\x3b"  # the byte a GIF file ends with


def _gif_cut(container) -> str | None:
    """How a GIF shows it was cut: it lacks the trailer byte its format ends with. FFmpeg's GIF demuxer counts the
    frames there are (its header says 26 of a cut 36-frame file) and ends at the cut without an error, so neither
    the header nor the decoder tells."""
    if container.format.name != "gif":
        return None
    try:
        with open(container.name, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))  # room for a tool's padding after the trailer
            tail = f.read()
    except OSError:  # not a file by that name (a pipe): nothing to tell
        return None
    # padding after the trailer (a newline or NULs a tool appended) is no cut: a whole GIF so padded was warned of
    whole = tail.rstrip(b"\x00\r\n\t ").endswith(GIF_TRAILER)
    return None if whole else "it ends without the GIF trailer (byte 0x3B) that closes a whole file"


def stated_fps(stream) -> float:
    """The frame rate a PyAV stream states (its average, else FFmpeg's guess, else its base rate); 0.0 for none."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def is_sparse(timing: FrameTiming, header: Header) -> bool:
    """The frames run at well under the header's rate while covering its duration (slots the index skips)."""
    rate = timing.mean_fps
    return bool(rate and header.fps and rate < SPARSE_RATIO * header.fps
                and (not header.duration or timing.covered >= SHORT_RATIO * header.duration))


def missing_tail(timing: FrameTiming, header: Header) -> str | None:
    """How the frames there are fall short of what the header states ("they end at 6.2 s of the 12.5 s its header
    states") or the file's format shows it cut (Header.cut), or None when they do not (or the header states too
    little to tell). Sparse frames are not short. One
    frame is judged too: an H.264 stream whose SPS is damaged decodes its first frame and drops the rest without an
    error, and a clip of one frame covers no more than one interval of the header's rate."""
    if timing.frames < 1:
        return None
    if header.cut:
        return header.cut
    if is_sparse(timing, header):
        return None
    interval = 1 / header.fps if header.fps else 0.0
    if header.duration and timing.covered < SHORT_RATIO * header.duration - interval:
        return f"its frames end at {timing.covered:.1f} s of the {header.duration:.1f} s its header states"
    if header.frames and timing.frames < SHORT_RATIO * header.frames:
        return f"{timing.frames} of the {header.frames} frames its header states are there"
    return None


def demuxed_timing(path: str | Path, max_frames: int) -> tuple[FrameTiming, Header] | None:
    """The timestamps of the first video stream's packets (read, not decoded: a fraction of decoding's cost) with
    the header, or None when the packets carry no timestamps (raw streams) or the file does not open."""
    import av

    from vidiff.video_decode import _av_error_types, video_stream

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = video_stream(container)
            if stream is None or not stream.time_base:
                return None
            header = header_of(container, stream)
            stamps = []
            for packet in container.demux(stream):
                if packet.size:
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    if stamp is None:
                        return None
                    stamps.append(stamp)
                    if len(stamps) > max_frames:
                        break
            base = float(stream.time_base)
    except _av_error_types():
        return None
    if not stamps:
        return None
    return FrameTiming(len(stamps), min(stamps) * base, max(stamps) * base), header
