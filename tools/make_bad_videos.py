"""Writes a battery of bad video files next to a few valid clips, for the bad-file safety tests.

    python tools/make_bad_videos.py OUT_DIR [--no-bombs]

`make_battery(folder)` returns {file name: expected} where expected is the frame count a scan must keep
the file with, or None when the scan must skip it. The per-case decisions:

- truncated mp4, index at the end (PyAV's default): skipped at 1/10/50/90 %; at 99 % the cut only removes
  trailing bytes the demuxer does not need, so the file is kept with all 24 frames.
- truncated mp4, index first (faststart): skipped at 1/10/50 % (no index, or the first frames are gone);
  at 90 / 99 % kept with the frames before the cut (PARTIAL: the test checks 0 < frames a full read yields
  <= the scan's packet count <= 24, and < 24 for the cut files).
- an oversized moov box size is clamped to the file end by FFmpeg: kept; a renamed moov tag: skipped.
- bytes flipped inside the frame data leave the container and the index intact: H.264 conceals the damage,
  so the file is kept (the pixels are wrong, which no probe can know). Bytes flipped in the header boxes
  make it unreadable: skipped.
- a one-frame video is a valid video: kept with 1 frame (a dataset that needs more frames skips it later).
- "unreadable" for root: chmod 000 does not stop root, so the battery uses a dangling symlink and a
  symlink loop; both fail at os.stat in the parent with a named reason.
"""
from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

TRUNCATIONS = (1, 10, 50, 90, 99)  # percent of the file kept
PARTIAL = -1  # kept, with fewer frames than written: the test counts them by decoding


def _encode(path: Path, frames: np.ndarray, fps, *, fmt="mp4", codec="libx264", faststart=False,
            pix_fmt="yuv420p", options=None) -> Path:
    import av

    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=opts) as c:
        s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=options or {})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for rgb in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(s.encode(None))
    return path


def _clip(n, h=64, w=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((n, h, w, 3), int(rng.integers(16, 65)), np.uint8)
    for i in range(n):
        frames[i, 20:36, 4 + 2 * i : 20 + 2 * i] = (220, 40, 40)
    return frames


def _flat_encode(path: Path, n: int, w: int, h: int, rate) -> Path:
    """Low-entropy H.264: the same grey frame n times (tiny file, large decode)."""
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "40"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        frame = av.VideoFrame(w, h, "yuv420p")
        for plane, value in zip(frame.planes, (40, 128, 128)):
            plane.update(bytes([value]) * plane.buffer_size)
        for i in range(n):
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mvhd() -> bytes:
    # version 0: times, timescale 1000, duration 0, rate 1.0, volume 1.0, unity matrix, next track id 1
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    body = struct.pack(">B3xIIII", 0, 0, 0, 1000, 0) + struct.pack(">IH10x", 0x10000, 0x100) + matrix
    return _box(b"mvhd", body + bytes(24) + struct.pack(">I", 1))


def _patch_all(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new)


def make_battery(folder: str | os.PathLike, bombs: bool = True) -> dict[str, int | None]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    expected: dict[str, int | None] = {}

    def put(name: str, data: bytes, exp=None):
        (folder / name).write_bytes(data)
        expected[name] = exp

    # ---- valid clips ----
    _encode(folder / "good_h264.mp4", _clip(16), 8)
    _encode(folder / "good_vp9.webm", _clip(12, seed=1), 8, fmt="webm", codec="libvpx-vp9")
    _encode(folder / "good_mpeg4.avi", _clip(10, seed=2), 10, fmt="avi", codec="mpeg4")
    _encode(folder / "GOOD_UPPER.MP4", _clip(6, seed=3), 8)
    _encode(folder / "one_frame.mp4", _clip(1, seed=4), 8)  # valid, just short
    expected.update({"good_h264.mp4": 16, "good_vp9.webm": 12, "good_mpeg4.avi": 10, "GOOD_UPPER.MP4": 6,
                     "one_frame.mp4": 1})
    from vidiff.io import write_video

    write_video(folder / "good_palette.gif", _clip(10, seed=5), 10)
    expected["good_palette.gif"] = 10

    # ---- not videos at all ----
    put("zero_bytes.mp4", b"")
    put("one_byte.mp4", b"\x00")
    put("random_4k.mp4", rng.bytes(4096))
    put("random_200k.mp4", rng.bytes(200_000))
    put("random.webm", rng.bytes(8192))
    put("random.avi", rng.bytes(8192))
    put("random.gif", rng.bytes(8192))
    put("zeros_1m.mp4", bytes(1 << 20))
    put("text.mp4", b"this is a caption file renamed to .mp4\n" * 50)
    put("text.webm", b"hello\n" * 500)
    put("html.mp4", b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n" * 20)
    put("gzip.mp4", gzip.compress(rng.bytes(10_000)))
    put("elf_binary.mp4", Path(sys.executable).resolve().read_bytes()[:65536])
    put("mp4_magic_random.mp4", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + rng.bytes(20_000))
    put("ftyp_only.mp4", _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2"))
    put("no_stream.mp4", _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2") + _box(b"moov", _mvhd()))

    # ---- damaged mp4 ----
    base = _encode(folder / "_base.mp4", _clip(24, seed=6), 8).read_bytes()
    fast = _encode(folder / "_fast.mp4", _clip(24, seed=6), 8, faststart=True).read_bytes()
    for name in ("_base.mp4", "_fast.mp4"):
        (folder / name).unlink()
    for pct in TRUNCATIONS:
        # the index is at the end: a cut loses it, except the last 1 %, which only cuts unneeded trailing boxes
        put(f"trunc_{pct:02d}.mp4", base[: len(base) * pct // 100], 24 if pct == 99 else None)
        # index first: 90 / 99 % keep an index and the frames before the cut; counted by decoding in the test
        put(f"trunc_faststart_{pct:02d}.mp4", fast[: len(fast) * pct // 100], PARTIAL if pct >= 90 else None)
    put("head_random_tail.mp4", fast[:1500] + rng.bytes(len(fast) - 1500))
    put("moov_size_flipped.mp4", _flip_box_size(fast, b"moov"), 24)  # FFmpeg clamps the box to the file end
    put("moov_tag_flipped.mp4", _patch_all(fast, b"moov", b"mooX"))
    put("stsd_flipped.mp4", _flip_after(fast, b"stsd", 8, 64))
    put("avcc_flipped.mp4", _flip_after(fast, b"avcC", 4, 24))
    mdat = fast.index(b"mdat")
    put("data_flipped_early.mp4", _flip_range(fast, mdat + 200, mdat + 232, rng), 24)
    # damage in the last frames fails the decoder at its flush: the frames before it are read
    put("data_flipped_late.mp4", _flip_range(fast, len(fast) - 400, len(fast) - 368, rng), PARTIAL)

    # ---- other containers, damaged ----
    webm = _encode(folder / "_w.webm", _clip(12, seed=7), 8, fmt="webm", codec="libvpx-vp9").read_bytes()
    avi = _encode(folder / "_a.avi", _clip(12, seed=8), 10, fmt="avi", codec="mpeg4").read_bytes()
    for name in ("_w.webm", "_a.avi"):
        (folder / name).unlink()
    put("webm_trunc_05.webm", webm[: len(webm) // 20])
    put("avi_header_only.avi", avi[:200])
    put("avi_fcc_flipped.avi", _patch_all(avi, b"FMP4", b"\xff\xfe\xfd\xfc"))

    # ---- audio only ----
    _audio_only(folder / "audio_only.mp4", "mp4", "aac")
    _audio_only(folder / "audio_only.webm", "webm", "libopus")
    expected.update({"audio_only.mp4": None, "audio_only.webm": None})

    # ---- headers that lie about their size ----
    put("y4m_60000x60000.mp4", b"YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096))
    raw = _encode(folder / "_r.avi", _clip(2, h=8, w=8), 10, fmt="avi", codec="rawvideo", pix_fmt="rgb24").read_bytes()
    (folder / "_r.avi").unlink()
    huge = _patch_all(raw, struct.pack("<ii", 8, 8), struct.pack("<ii", 60000, 60000))  # avih
    huge = _patch_all(huge, struct.pack("<ii", 8, -8), struct.pack("<ii", 60000, -60000))  # top-down bitmap
    put("raw_avi_60000x60000.avi", huge)
    claims = _patch_all(avi, b"strh", b"strh")  # dwLength of the video stream header: 10 million frames
    i = claims.index(b"strh") + 8 + 32
    put("avi_claims_10m_frames.avi", claims[:i] + struct.pack("<I", 10_000_000) + claims[i + 4 :])

    # ---- decompression bombs: small files that decode to gigabytes ----
    if bombs:
        _flat_encode(folder / "bomb_8k_h264.mp4", 30, 7680, 4320, 8)  # 30 x 100 MB = 3 GB of RGB
        _flat_encode(folder / "bomb_long_still.mp4", 800, 1280, 720, Fraction(1, 5))  # 4000 s, 2.2 GB of RGB
        expected.update({"bomb_8k_h264.mp4": None, "bomb_long_still.mp4": None})

    # ---- not regular files / unreadable ----
    os.mkfifo(folder / "fifo_no_writer.mp4")
    (folder / "directory.mp4").mkdir()
    (folder / "directory.mp4" / "inner.mp4").write_bytes(b"")  # not walked: the directory itself is the entry
    os.symlink(folder / "does_not_exist.mp4", folder / "dangling_link.mp4")
    os.symlink(folder / "loop_b.mp4", folder / "loop_a.mp4")
    os.symlink(folder / "loop_a.mp4", folder / "loop_b.mp4")
    expected.update({n: None for n in ("fifo_no_writer.mp4", "directory.mp4", "dangling_link.mp4", "loop_a.mp4",
                                       "loop_b.mp4")})

    # ---- sidecars that must never be taken for videos ----
    (folder / "good_h264.txt").write_text("a red square moving right")
    (folder / "good_h264.json").write_text('{"shape": "square"}')
    (folder / "metadata.jsonl").write_text('{"file_name": "good_vp9.webm", "text": "a red square"}\n')
    return expected


def _audio_only(path: Path, fmt: str, codec: str) -> None:
    import av

    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=48000)
        s.layout = "mono"
        t = np.arange(48000 // 2) / 48000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        fmt_name = s.codec_context.format.name
        frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = 48000
        resampler = av.AudioResampler(format=fmt_name, layout="mono", rate=48000)
        for f in resampler.resample(frame):
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def _flip_box_size(data: bytes, kind: bytes) -> bytes:
    i = data.index(kind) - 4
    return data[:i] + b"\xff\xff\xff\xf0" + data[i + 4 :]


def _flip_after(data: bytes, kind: bytes, offset: int, length: int) -> bytes:
    i = data.index(kind) + offset
    return data[:i] + bytes(b ^ 0xFF for b in data[i : i + length]) + data[i + length :]


def _flip_range(data: bytes, lo: int, hi: int, rng) -> bytes:
    return data[:lo] + rng.bytes(hi - lo) + data[hi:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--no-bombs", action="store_true", help="skip the two large-decode files (slow to encode)")
    args = parser.parse_args()
    expected = make_battery(args.out_dir, bombs=not args.no_bombs)
    bad = sum(v is None for v in expected.values())
    sys.stdout.write(f"{len(expected)} files: {bad} bad, {len(expected) - bad} valid or partial\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
