"""Inputs as cameras, phones and encoders write them: codecs and pixel formats, display rotation and EXIF
orientation, files cut short. Both readers (decord, PyAV) and the streaming reader must agree on them."""
import logging
import math
import os
import warnings

import numpy as np
import pytest

from vidiff import io
from test_io import shapes_frames  # noqa: E402  (the Shapes-like clip of the io tests)


def _gradient_clip(num_frames=12, h=64, w=96):
    """Smooth colour ramps and a white block moving right: every codec here keeps it above 29 dB."""
    yy, xx = np.mgrid[:h, :w]
    frames = np.zeros((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        frames[i, ..., 0] = (xx * 2 + 8 * i) % 256
        frames[i, ..., 1] = (yy * 3) % 256
        frames[i, ..., 2] = 128
        frames[i, 20:40, 10 + 3 * i : 30 + 3 * i] = 255
    return frames


# (container suffix, encoder, pixel format): what users' files hold beyond the H.264 / VP9 / GIF vidiff writes
FORMATS = [(".avi", "mjpeg", "yuvj420p"), (".avi", "mpeg4", "yuv420p"), (".webm", "libvpx", "yuv420p"),
           (".webm", "libvpx-vp9", "yuva420p"), (".mov", "prores", "yuv422p10le"), (".mov", "png", "rgba"),
           (".mkv", "ffv1", "bgr0"), (".mkv", "libx265", "yuv420p"), (".mp4", "libx264", "yuv444p")]


@pytest.mark.parametrize("suffix, codec, pix_fmt", FORMATS)
def test_other_codecs_and_pixel_formats_read_back(tmp_path, suffix, codec, pix_fmt):
    import av

    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    src = _gradient_clip()
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, pix_fmt
        stream.codec_context.thread_count = 1
        if codec == "libx265":
            stream.options = {"x265-params": "log-level=error"}
        for f in src:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt)))
        container.mux(stream.encode())
    info = io.probe_video(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (96, 64, 12, 10.0)
    auto, _ = io.read_video(path)
    pyav, _ = io.read_video(path, backend="pyav")
    assert np.array_equal(np.stack(list(io.iter_video(path))), pyav.numpy())
    assert np.array_equal(auto.numpy(), pyav.numpy())  # the readers agree here (not on 10-bit 4:2:0: vidiff/io.py)
    mse = ((auto.numpy().astype(float) - src) ** 2).mean()
    assert 10 * math.log10(255**2 / max(mse, 1e-12)) > 27, codec  # a wrong range or channel order: < 20 dB


@pytest.mark.parametrize("orientation, turns", [(3, 2), (6, -1), (8, 1)])
def test_read_image_applies_the_exif_orientation(tmp_path, orientation, turns):
    from PIL import Image

    rgb = shapes_frames(1, h=32, w=48)[0]
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: shown turned 90 degrees clockwise, as a phone held upright writes it
    Image.fromarray(rgb).save(tmp_path / "photo.png", exif=exif)
    got = io.read_image(tmp_path / "photo.png").numpy()
    assert np.array_equal(got, np.rot90(rgb, turns))  # np.rot90 turns counter-clockwise
    assert io.image_size(tmp_path / "photo.png") == got.shape[1::-1]  # (width, height) from the header


def _write_turned(path, quarter_turns, frames, hflip=False, vflip=False, degrees=None):
    """An H.264 mp4 of `frames` tagged to be shown turned `quarter_turns` x 90 degrees counter-clockwise (or
    `degrees`), then mirrored."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        if quarter_turns or hflip or vflip or degrees is not None:
            stream.set_display_rotation(90 * quarter_turns if degrees is None else degrees, hflip=hflip, vflip=vflip)
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_clips_tagged_with_a_display_rotation_read_upright(tmp_path, k):
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    frames = np.zeros((4, 64, 96, 3), np.uint8)  # decord 0.6 fails on some turned sizes (80x48): auto uses PyAV
    frames[:, :12, :16] = 255  # a white block at the stored top-left corner
    _write_turned(tmp_path / "plain.mp4", 0, frames)
    _write_turned(tmp_path / "turned.mp4", k, frames)
    info = io.probe_video(tmp_path / "turned.mp4")
    assert (info.rotation, info.width, info.height) == (90 * k, *((64, 96) if k % 2 else (96, 64)))
    stored, _ = io.read_video(tmp_path / "plain.mp4", backend="pyav")
    want = np.rot90(stored.numpy(), k, axes=(1, 2))  # the same encoded pixels, turned counter-clockwise
    backends = ["auto", "pyav", "decord"] if io._decord_available() else ["auto", "pyav"]
    for backend in backends:
        got, _ = io.read_video(tmp_path / "turned.mp4", backend=backend)
        assert np.array_equal(got.numpy(), want), backend
    assert np.array_equal(np.stack(list(io.iter_video(tmp_path / "turned.mp4"))), want)
    corner = {1: (-1, 0), 2: (-1, -1), 3: (0, -1)}[k]  # where the stored top-left block is shown
    assert want[0][corner].min() > 200 and want[0][0, 0].max() < 50


@pytest.mark.parametrize("k, hflip, vflip", [(0, True, False), (0, False, True), (1, False, True), (2, True, False),
                                             (3, True, False)])
def test_clips_tagged_mirrored_read_as_a_player_shows_them(tmp_path, k, hflip, vflip):
    """A display matrix with a mirror (a front camera's clip): FFmpeg's angle of it is the reflection's, so a
    left-right mirror was read as a half turn and the picture shown upside down (and a turn with a top-bottom
    mirror a quarter turn the wrong way)."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:, :12, :16] = 255  # a white block at the stored top-left corner
    _write_turned(tmp_path / "plain.mp4", 0, frames)
    _write_turned(tmp_path / "mirrored.mp4", k, frames, hflip=hflip, vflip=vflip)
    stored, _ = io.read_video(tmp_path / "plain.mp4", backend="pyav")
    want = np.rot90(stored.numpy(), k, axes=(1, 2))  # turned counter-clockwise, then mirrored (as PyAV writes it)
    want = want[:, :, ::-1] if hflip else want[:, ::-1]
    info = io.probe_video(tmp_path / "mirrored.mp4")
    assert info.mirrored and (info.width, info.height) == want.shape[2:0:-1]
    got, _ = io.read_video(tmp_path / "mirrored.mp4", backend="pyav")
    assert np.array_equal(got.numpy(), want)
    assert np.array_equal(np.stack(list(io.iter_video(tmp_path / "mirrored.mp4"))), want)


def _write_turned_any(path, quarter_turns, frames, hflip, vflip):
    """_write_turned for any container: VP9 for .webm, H.264 otherwise."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9" if path.suffix == ".webm" else "libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        if quarter_turns or hflip or vflip:
            stream.set_display_rotation(90 * quarter_turns, hflip=hflip, vflip=vflip)
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


TURNS = [(k, hflip, vflip) for k in range(4) for hflip in (False, True) for vflip in (False, True)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_a_window_of_a_turned_or_mirrored_clip_is_the_whole_read_s_frames(tmp_path, suffix):
    """decord turns an MP4 / MOV by its display matrix's angle alone (no mirror: a left-right mirror read upside
    down) and an MKV / WebM not at all, so `read_video(num_frames=...)`, `data cache` and training showed such a clip
    otherwise than the whole-clip read (PyAV), up to 255 levels off."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    frames = np.zeros((6, 64, 96, 3), np.uint8)
    frames[:, :12, :16] = 255  # a white block at the stored top-left corner
    for i in range(6):
        frames[i, 40:, 10 * i : 10 * i + 10, 1] = 255  # a green square moving right: which frame it is
    backends = ["auto", "decord"] if io._decord_available() else ["auto"]
    for k, hflip, vflip in TURNS if suffix == ".mp4" else TURNS[::3]:
        path = tmp_path / f"k{k}{'h' * hflip}{'v' * vflip}{suffix}"
        _write_turned_any(path, k, frames, hflip, vflip)
        whole, _ = io.read_video(path, backend="pyav")
        info = io.probe_video(path)
        assert whole.shape[1:3] == (info.height, info.width)
        for backend in backends:
            for kw in ({}, {"orientation": (info.rotation, info.mirrored)}):  # learnt, or given by a folder scan
                got, _ = io.read_video(path, num_frames=3, start=2, backend=backend, **kw)
                assert np.array_equal(got.numpy(), whole[2:5].numpy()), (path.name, backend, kw)


def test_a_folder_reads_a_mirrored_clip_as_its_whole_read_without_decoding_its_first_frame_again(tmp_path,
                                                                                             monkeypatch):
    """Training's and `data cache`'s windows (VideoFolderDataset, decord) of a front camera's clip: the turn and
    mirror come from the folder scan's probe, so a window read decodes no extra frame for them."""
    import av

    from vidiff import video_orientation
    from vidiff.data.video_folder import VideoFolderDataset, VideoWindows

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    frames = np.zeros((6, 64, 96, 3), np.uint8)
    frames[:, :12, :16] = 255
    (tmp_path / "clips").mkdir()
    _write_turned_any(tmp_path / "clips" / "selfie.mp4", 1, frames, hflip=True, vflip=False)
    whole, _ = io.read_video(tmp_path / "clips" / "selfie.mp4", backend="pyav")  # (6, 96, 64, 3)
    folder = VideoFolderDataset(tmp_path / "clips", num_frames=3, size=(96, 64), scan_workers=1)
    monkeypatch.setattr(video_orientation, "first_frame_facts", None)  # a first frame decoded again: a TypeError
    video = VideoWindows(folder, hop=3)[1]["video"]  # frames 3..5
    assert _is_frames(video, whole[3:6])


def _is_frames(video, frames) -> bool:
    """A dataset's float (3,F,H,W) in [-1,1] at the frames' own size is those uint8 (F,H,W,3) frames."""
    back = ((video.permute(1, 2, 3, 0) + 1) * 127.5).round().to(frames.dtype)
    return bool((back.int() - frames.int()).abs().max() <= 1)


@pytest.mark.parametrize("degrees", [45, 135])
def test_a_display_matrix_off_a_quarter_turn_is_refused(tmp_path, degrees):
    """45 degrees was read as stored and 135 as a half turn, without a word (FFmpeg shows them rotated freely)."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    _write_turned(tmp_path / "odd.mp4", 0, np.zeros((2, 64, 96, 3), np.uint8), degrees=degrees)
    with pytest.raises(io.VideoDecodeError, match=f"turned {degrees} degrees, which is not a quarter turn"):
        io.probe_video(tmp_path / "odd.mp4")


def test_a_clip_cut_short_reads_its_start_and_says_so(tmp_path, caplog):
    import av

    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:  # index first, as streamed
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for f in shapes_frames(40):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    data = whole.read_bytes()
    cut.write_bytes(data[: 2 * len(data) // 3])  # a partial download
    with caplog.at_level("WARNING", logger="vidiff.io"):
        frames = list(io.iter_video(cut, num_threads=1))
    assert 1 <= len(frames) < 40
    assert f"{cut} is damaged at byte" in caplog.text and f"using the {len(frames)} frames" in caplog.text


def _faststart_clip(path, frames: int, rate: int = 8):
    """An H.264 mp4 with its index first (as streamed): a cut copy still states every frame."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for f in shapes_frames(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


def test_a_clip_cut_between_packets_reads_its_start_and_says_so(tmp_path, caplog):
    """Cut where a packet starts, the demuxer ends the stream without an error ("partial file"), so no packet
    fails to decode: the frames used to come back as if the clip were whole. The timestamps fall short of the
    header's 5 s, and that is said."""
    import av

    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    _faststart_clip(whole, 40)
    with av.open(str(whole)) as container:
        starts = [p.pos for p in container.demux(container.streams.video[0]) if p.size]
    cut.write_bytes(whole.read_bytes()[: starts[20]])  # packets 0..19 whole
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert len(list(io.iter_video(whole, num_threads=1))) == 40
    assert "cut short" not in caplog.text
    with caplog.at_level("WARNING", logger="vidiff.io"):
        frames = list(io.iter_video(cut, num_threads=1))
    assert 10 <= len(frames) <= 20 and "damaged at byte" not in caplog.text
    assert f"{cut} looks cut short or damaged: its frames end at" in caplog.text
    assert "of the 5.0 s its header states" in caplog.text and f"the {len(frames)} frames it has were read" in caplog.text


def test_a_cut_gif_reads_its_start_and_says_so(tmp_path, caplog):
    """`head -c 70% clip.gif`: FFmpeg's GIF demuxer counts the frames there are (its header says so too) and ends at
    the cut without an error, so a cut GIF read as whole where a cut MP4 or WebM was warned of. A GIF ends with its
    trailer byte, 0x3B: a file without it is warned of the same way, before decoding (interpolate) and after."""
    import torch

    from vidiff.commands.inputs import clip_timing
    from vidiff.frame_timing import missing_tail

    whole, cut = tmp_path / "whole.gif", tmp_path / "cut.gif"
    frames = torch.from_numpy(np.stack(list(shapes_frames(12))))
    io.write_video(whole, frames, 10)
    data = whole.read_bytes()
    assert data[-1:] == b"\x3b"
    cut.write_bytes(data[: len(data) * 7 // 10])
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert len(list(io.iter_video(whole, num_threads=1))) == 12
    assert "cut short" not in caplog.text
    assert missing_tail(*clip_timing(whole, io.probe_video(whole))) is None
    with caplog.at_level("WARNING", logger="vidiff.io"):
        kept = len(list(io.iter_video(cut, num_threads=1)))
    assert 4 <= kept < 12
    assert (f"{cut} looks cut short or damaged: it ends without the GIF trailer (byte 0x3B) that closes a whole "
            f"file; the {kept} frames it has were read") in caplog.text
    assert "without the GIF trailer" in missing_tail(*clip_timing(cut, io.probe_video(cut)))
    caplog.clear()  # a check that counts the frames after the caller has said the cut says nothing of its own
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert io.count_frames(cut, quiet=True) == kept
    assert not caplog.records and io.log.level == logging.NOTSET and not io.log.filters
    padded = tmp_path / "padded.gif"  # a whole GIF a tool padded after its trailer was warned of as cut
    padded.write_bytes(data + b"\n\x00\x00")
    assert missing_tail(*clip_timing(padded, io.probe_video(padded))) is None


def sparse_avi(path, slots, size: int = 64):
    """An MPEG-4 AVI at 15 fps holding frames only at the frame slots `slots` (its index skips the others, as
    opencv-doc's tree.avi does): the header counts every slot."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=15)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 15)
        for i, slot in enumerate(slots):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = slot, Fraction(1, 15)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_sparse_frames_are_told_from_a_cut_short_clip(tmp_path, caplog):
    from vidiff.frame_timing import demuxed_timing, is_sparse, missing_tail

    clip = tmp_path / "sparse.avi"
    sparse_avi(clip, [0, 6, 13, 19, 26, 32, 39, 45])
    assert io.probe_video(clip).num_frames == 46  # the header's slots
    timing, header = demuxed_timing(clip, 1000)
    assert timing.frames == 8 and timing.mean_fps == pytest.approx(7 / 3) and header.fps == pytest.approx(15)
    assert is_sparse(timing, header) and missing_tail(timing, header) is None
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert len(list(io.iter_video(clip))) == 8
    assert "cut short" not in caplog.text


def _write_timed(path, times_ms):
    """An H.264 clip (mp4 or mkv by the suffix) with a frame at each of `times_ms`."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for t, rgb in zip(times_ms, shapes_frames(len(times_ms), h=32, w=32)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _ffv1_timed(path, times_ms):
    """An intra-only (FFV1) clip of len(times_ms) frames whose packets carry these presentation times, in this order."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:  # intra-only: the packets' times are the frames'
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv444p"
        packets = [p for rgb in shapes_frames(len(times_ms), h=32, w=32)
                   for p in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))] + list(stream.encode())
        for i, (packet, t) in enumerate(zip(packets, times_ms)):
            packet.time_base, packet.pts, packet.dts = Fraction(1, 1000), t, i
            container.mux(packet)


def test_timestamps_that_go_back_are_said_once(tmp_path, caplog):
    """A clip whose stored frames are timed 0, 67, 33, 100, 133 ms plays them in another order than they are stored;
    it was read in stored order without a word."""
    _ffv1_timed(tmp_path / "back.mkv", [0, 67, 33, 100, 133])
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert len(list(io.iter_video(tmp_path / "back.mkv"))) == 5
    assert caplog.text.count("timestamps that go back") == 1
    assert f"{tmp_path / 'back.mkv'} has timestamps that go back (frame 2 at 33 ms after 67 ms): its frames were " \
           "read in stored order, not the order they play in" in caplog.text


def test_two_frames_with_one_timestamp_are_said_once(tmp_path, caplog):
    """Frames timed 0, 33, 33, 67, 100 ms: both frames at 33 ms were read as evenly spaced frames, without a word
    (the equal times also kept the variable-frame-rate check quiet)."""
    _ffv1_timed(tmp_path / "same.mkv", [0, 33, 33, 67, 100])
    with caplog.at_level("WARNING", logger="vidiff.io"):
        frames = list(io.iter_video(tmp_path / "same.mkv"))
    if len(frames) != 5:  # a demuxer that drops the repeated time leaves nothing to say
        pytest.skip(f"this FFmpeg gave {len(frames)} frames")
    assert caplog.text.count("the same timestamp") == 1
    assert "has frames with the same timestamp (frames 1 and 2 at 33 ms): both were read" in caplog.text


def test_an_avi_with_packed_b_frames_says_nothing_of_its_timestamps(caplog, sample_videos):
    """Megamind.avi: the times FFmpeg gives go back 88 times while the frames come in their order (AVI stores no
    presentation times)."""
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert io.count_frames(sample_videos / "Megamind.avi") == 270
    assert caplog.text == ""


def test_a_variable_frame_rate_is_said_when_the_frames_are_read(tmp_path, caplog):
    """A phone's clip that stalls (two frames 100 ms apart in a 30 fps clip) was read as evenly spaced frames at
    its mean rate without a word; an even clip (mkv rounds 33.3 ms to 33 / 34) says nothing."""
    _write_timed(tmp_path / "phone.mp4", [0, 33, 67, 100, 200, 300, 333, 367])
    _write_timed(tmp_path / "even.mkv", [round(i * 1000 / 30) for i in range(8)])
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert len(list(io.iter_video(tmp_path / "even.mkv"))) == 8
        assert caplog.text == ""
        assert len(list(io.iter_video(tmp_path / "phone.mp4"))) == 8
    assert f"{tmp_path / 'phone.mp4'} has a variable frame rate (frames 33 to 100 ms apart)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidiff.io"):  # the whole-clip read of extend and edit says it too
        assert io.read_video(tmp_path / "phone.mp4")[0].shape[0] == 8
    assert "has a variable frame rate" in caplog.text


def test_a_live_webm_without_duration_is_counted_and_a_raw_stream_still_refused(tmp_path):
    """A WebM written live (a browser's MediaRecorder) has no duration and no frame count in its header; it was
    refused as 'header gives no frame count or duration'. A raw .h264 stream, whose rate FFmpeg guesses, still is."""
    import av

    src = shapes_frames(5, h=32, w=48)
    for name, options in (("screen.webm", {"live": "1"}), ("camera.h264", {})):
        with av.open(str(tmp_path / name), "w", options=options) as container:
            stream = container.add_stream("libvpx-vp9" if name.endswith("webm") else "libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
            for f in src:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            container.mux(stream.encode())
    info = io.probe_video(tmp_path / "screen.webm")
    assert (info.num_frames, info.fps, info.width, info.height) == (5, 30.0, 48, 32)
    assert info.duration == pytest.approx(5 / 30)
    frames, fps = io.read_video(tmp_path / "screen.webm")
    assert frames.shape == (5, 32, 48, 3) and fps == 30.0
    with pytest.raises(io.VideoDecodeError, match="camera.h264: header gives no frame count or duration") as e:
        io.probe_video(tmp_path / "camera.h264")
    # it said no more: what to do is said, with the file's own name
    assert "a raw h264 stream" in str(e.value) and "`ffmpeg -r 30 -i camera.h264 -c copy camera.mp4`" in str(e.value)


def test_an_audio_file_with_album_art_has_no_video_stream(tmp_path):
    """An .m4a whose only video stream is its cover picture (attached_pic) was probed as a video of 90000 fps
    and tens of thousands of frames; `vidiff interpolate` refused it for its output rate, extend for its fps."""
    import av

    path = tmp_path / "song.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=44100)
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        image = av.VideoFrame.from_ndarray(shapes_frames(1, h=32, w=32)[0], format="rgb24").reformat(format="yuvj420p")
        for packet in [*cover.encode(image), *cover.encode(None)]:
            container.mux(packet)
        for k in range(10):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 44100, 1024 * k
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
    with pytest.raises(io.VideoDecodeError, match=r"song.m4a: no video stream \(only a cover picture\)"):
        io.probe_video(path)
    with pytest.raises(io.VideoDecodeError, match="no video stream"):
        io.read_video(path)


@pytest.mark.parametrize("trc, name", [(16, "PQ"), (18, "HLG"), (1, "")])
def test_an_hdr_clip_is_said_to_be_read_without_tone_mapping(tmp_path, caplog, trc, name):
    """A clip tagged with an HDR transfer (PQ: HDR10; HLG: phones' HDR video) is decoded to its stored code values,
    which look flat and pale as SDR; that happened without a word."""
    import av

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        ctx = stream.codec_context
        ctx.color_primaries, ctx.colorspace, ctx.color_trc = (9, 9, trc) if name else (1, 1, 1)
        for f in shapes_frames(2, h=32, w=32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    with caplog.at_level("WARNING", logger="vidiff.io"):
        info = io.probe_video(path)
    assert info.hdr == name
    assert (f"{path} is HDR ({name} transfer): its colours are read as stored, without tone mapping" in caplog.text
            if name else caplog.text == "")


def _write_mpeg_ps(path, frames, fps=25):
    import av

    with av.open(str(path), "w", format="mpeg") as container:
        stream = container.add_stream("mpeg1video", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def test_an_mpeg_ps_clip_is_edited_at_its_decoded_length_and_listed_in_folders(tmp_path, capsys):
    """MPEG-PS (.mpg, as camcorders write) stores no frame count, and FFmpeg guesses one from the bitrate: `vidiff
    edit` on a 31-frame .mpg was refused as '--frames 31 does not fit ...' or 'has 1 frames', a --frames never
    given, because edit took its length from the header. And a folder of such clips was skipped by eval and data
    commands without a word (.mpg, .m4v, .ts, .flv, .3gp were not in READABLE_SUFFIXES)."""
    from vidiff.cli import main

    clip = tmp_path / "camcorder.mpg"
    _write_mpeg_ps(clip, _gradient_clip(31, 64, 64))
    info = io.probe_video(clip)
    assert info.estimated and info.num_frames != 31  # the header's guess
    assert io.read_video(clip)[0].shape[0] == 31
    out = tmp_path / "edited.mp4"
    assert main(["edit", str(clip), "a red square moving up", "-o", str(out), "--quiet", "--steps", "2"]) == 0, \
        capsys.readouterr().err
    assert io.read_video(out)[0].shape[0] == 31
    for name in ("b.m4v", "c.ts", "d.flv", "e.3gp", "f.mpeg"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in io.list_video_files(tmp_path)] == [
        "b.m4v", "c.ts", "camcorder.mpg", "d.flv", "e.3gp", "edited.mp4", "f.mpeg"]


def test_an_animated_still_says_its_first_frame_is_used(tmp_path):
    """An animated GIF or PNG given as animate's image was cut to frame 0 without a word."""
    from PIL import Image

    from vidiff.image_io import read_image

    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(3)]
    for name in ("a.gif", "a.png"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=100)
        with pytest.warns(UserWarning, match="animated image of 3 frames; its first frame is used"):
            image = read_image(tmp_path / name)
        assert image.shape == (8, 8, 3) and int(image[0, 0, 0]) == 0
    frames[0].save(tmp_path / "still.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "still.png")


def test_a_png_whose_pixels_do_not_decode_is_not_blamed_on_its_exif(tmp_path, caplog):
    """A PNG whose header declares 4000x2000 but whose data holds a few bytes: the EXIF lookup decoded the pixels,
    failed, and a warning said 'unreadable EXIF orientation' before the real error."""
    import logging
    import struct
    import zlib

    from vidiff.errors import InputError

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 4000, 2000, 8, 2, 0, 0, 0)
    (tmp_path / "short.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                         + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    with caplog.at_level(logging.WARNING, logger="vidiff.io"), pytest.raises(InputError, match="not a readable image"):
        io.read_image(tmp_path / "short.png")
    assert "EXIF" not in caplog.text


def test_an_animated_webp_given_as_a_video_is_named_as_such(tmp_path):
    """FFmpeg here cannot decode an animated WebP; the refusal said 'no frame size in header (0x0)'."""
    from PIL import Image

    from vidiff.errors import VideoDecodeError

    frames = [Image.new("RGB", (16, 16), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(VideoDecodeError, match="an animated WebP, which this FFmpeg cannot decode; convert it"):
        io.probe_video(tmp_path / "a.webp")


def test_a_folder_of_camcorder_mts_clips_is_read(tmp_path):
    """AVCHD camcorders write MPEG-TS with 192-byte packets as 00001.MTS (.m2ts on a disc): `interpolate` read one,
    but a folder of them was "no video files" for `eval` and "no usable clips" for `data cache`."""
    import av

    clip = tmp_path / "00001.MTS"
    with av.open(str(clip), "w", format="mpegts", options={"mpegts_m2ts_mode": "1"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for rgb in shapes_frames(12, h=32, w=32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    assert clip.read_bytes()[4] == 0x47  # a 4-byte timestamp before each TS packet's sync byte: M2TS
    (tmp_path / "00002.m2ts").write_bytes(clip.read_bytes())
    assert [p.name for p in io.list_video_files(tmp_path)] == ["00001.MTS", "00002.m2ts"]
    assert io.read_video(clip)[0].shape == (12, 32, 32, 3)


def _half_transparent():
    """uint8 (32,32,4): left half opaque blue, right half transparent with red stored under it."""
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (0, 0, 255, 255)
    rgba[:, 16:] = (255, 0, 0, 0)
    return rgba


def test_an_image_with_transparency_is_said_with_what_its_transparent_pixels_show(tmp_path):
    """An RGBA PNG given to `animate` lost its alpha without a word: the transparent half showed the red stored
    under it. The warning names what the read pixels show; an opaque RGBA image says nothing."""
    from PIL import Image

    Image.fromarray(_half_transparent(), "RGBA").save(tmp_path / "cut.png")
    with pytest.warns(UserWarning, match=r"cut.png has transparency \(50% of its pixels are not opaque\): the alpha "
                                         r"is dropped.* \(here mostly rgb\(255, 0, 0\)\)"):
        image = io.read_image(tmp_path / "cut.png").numpy()
    assert image.shape == (32, 32, 3) and (image[:, 16:] == (255, 0, 0)).all() and (image[:, :16] == (0, 0, 255)).all()
    opaque = _half_transparent()
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.read_image(tmp_path / "opaque.png")


@pytest.mark.parametrize("name, codec, pix_fmt", [("cut.mov", "qtrle", "argb"), ("cut_png.mov", "png", "rgba"),
                                                  ("cut.webm", "libvpx-vp9", "yuva420p")])
def test_a_clip_with_transparency_is_said_with_what_its_transparent_pixels_show(tmp_path, caplog, name, codec,
                                                                                pix_fmt):
    """An RGBA MOV (qtrle, png) or a VP9 WebM with alpha given to extend / edit / interpolate lost its alpha without
    a word: the transparent pixels showed the red stored under them, not black."""
    import av

    path = tmp_path / name
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, pix_fmt
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_half_transparent(), format="rgba")))
        container.mux(stream.encode())
    with caplog.at_level("WARNING", logger="vidiff.io"):
        io.probe_video(path)
    if codec == "libvpx-vp9":
        assert f"{path} has a VP9 alpha layer (transparency), which is not decoded" in caplog.text
    else:
        assert (f"{path} has transparency (50% of its first frame's pixels are not opaque): the alpha is dropped, not "
                "composited over a background, so those pixels show the colour stored under them (here mostly "
                "rgb(255, 0, 0))") in caplog.text
    frames = io.read_video(path)[0].numpy()
    assert (np.abs(frames[:, :, 20:].astype(int) - (255, 0, 0)) <= 3).all()  # what the warning says they show


def test_an_opaque_clip_with_an_alpha_channel_says_nothing(tmp_path, caplog):
    """A screen recording in qtrle argb, or any GIF (FFmpeg decodes them as bgra), is opaque: no warning."""
    import av

    path = tmp_path / "opaque.mov"
    opaque = _half_transparent()
    opaque[..., 3] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("qtrle", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "argb"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(opaque, format="rgba")))
        container.mux(stream.encode())
    with caplog.at_level("WARNING", logger="vidiff.io"):
        io.probe_video(path)
    assert caplog.text == ""


def test_a_clip_rewritten_in_place_with_its_old_size_and_mtime_is_read_as_it_is_now(tmp_path):
    """first_frame_turn's cache was keyed by inode, size and mtime: a clip rewritten in place (ffmpeg -y keeps the
    inode) as its mirrored twin, the same size, with its mtime set back, was read as the old, unmirrored clip."""
    import av

    from vidiff.video_orientation import first_frame_turn

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:, :12, :16] = 255
    _write_turned(tmp_path / "plain.mp4", 0, frames)
    _write_turned(tmp_path / "mirrored.mp4", 0, frames, hflip=True)
    plain, mirrored = (tmp_path / "plain.mp4").read_bytes(), (tmp_path / "mirrored.mp4").read_bytes()
    if len(plain) != len(mirrored):
        pytest.skip("the display matrix changed the file's size here")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(plain)
    assert first_frame_turn(clip) == (0, False)
    before = clip.stat()
    with open(clip, "r+b") as f:  # in place: the same inode
        f.write(mirrored)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert clip.stat().st_ino == before.st_ino and clip.stat().st_mtime_ns == before.st_mtime_ns
    assert first_frame_turn(clip)[1] is True
