"""Streams that are not what their header says: a frame size that changes part-way, two video streams, an MP4
edit list that hides frames, a header that undercounts. Every reader and every command must read the same frames
from them, or refuse them in one line before any weights load (the bundled pipeline's, whose loading the tests
refuse)."""
import re
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidiff import io
from vidiff.cli import main


@pytest.fixture
def no_weights(monkeypatch):
    """The bundled pipeline's weights must not load: each test's error has to come first."""
    from vidiff.pipeline import VideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before the bad clip was refused")

    monkeypatch.setattr(VideoPipeline, "from_pretrained", refuse)


def _square(i: int, size: int) -> np.ndarray:
    frame = np.full((size, size, 3), 40, np.uint8)
    frame[size // 2 - 4 : size // 2 + 4, 2 * i : 2 * i + 8] = (220, 40, 40)
    return frame


def _h264_segment(size: int, frames: int = 8) -> bytes:
    import io as pyio

    import av

    buffer = pyio.BytesIO()
    with av.open(buffer, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=8, options={"bframes": "0"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_square(i, size), format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _size_changing_clip(path: Path) -> Path:
    """8 frames at 64x64, then 8 at 32x32 in one H.264 stream (joined recordings), muxed into `path`."""
    import av

    raw = path.with_suffix(".h264")
    raw.write_bytes(_h264_segment(64) + _h264_segment(32))
    with av.open(str(raw)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        tick = Fraction(1, 8) if path.suffix == ".avi" else Fraction(1, 1000)  # AVI takes its rate from it
        stream.time_base = tick
        for n, packet in enumerate(p for p in source.demux(source.streams.video[0]) if p.size):
            packet.stream, packet.time_base = stream, tick
            packet.pts = packet.dts = round(n / 8 / tick)  # 8 fps
            out.mux(packet)
    raw.unlink()
    return path


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_a_stream_that_changes_size_is_refused_by_every_reader(tmp_path, suffix):
    """The PyAV reader stacked frames of two sizes (a traceback from seven commands); decord rescaled the 32x32
    frames to 64x64 without a word. A whole clip is now read by PyAV, which checks every frame's size."""
    path = _size_changing_clip(tmp_path / f"joined{suffix}")
    for backend in ("auto", "pyav"):
        with pytest.raises(io.VideoDecodeError, match="frame 8 is 32x32, the header says 64x64"):
            io.read_video(path, backend=backend)
    assert io.read_video(path, num_frames=8)[0].shape == (8, 64, 64, 3)  # a window before the change reads


@pytest.mark.parametrize("task", ["extend", "edit"])
def test_commands_refuse_a_stream_that_changes_size_in_one_line(no_weights, tmp_path, capsys, task):
    path = _size_changing_clip(tmp_path / "joined.avi")
    frames = ["--frames", "4"] if task == "extend" else []
    rc = main([task, str(path), "a red square moving right", *frames, "-o", str(tmp_path / "o.mp4"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "frame 8 is 32x32, the header says 64x64" in err, err
    assert not list(tmp_path.glob("o.*"))


def test_interpolate_refuses_a_size_change_late_in_the_clip_before_the_weights_load(no_weights, tmp_path, capsys):
    """interpolate decoded two frames, loaded the weights and met frame 8 mid-run, after filling the chunks before
    it (all lost: the output is written whole or not at all); every frame is now decoded once before the load."""
    path = _size_changing_clip(tmp_path / "joined.avi")
    rc = main(["interpolate", str(path), "--factor", "2", "-o", str(tmp_path / "o.mp4"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "frame 8 is 32x32, the header says 64x64" in err, err
    assert not list(tmp_path.glob("o.*"))


def test_two_video_streams_read_as_the_first_by_both_readers(tmp_path):
    """decord took FFmpeg's 'best' stream (here the second, 30 frames of noise) where probe and PyAV took the first
    (16 frames of a red square): extend continued the noise."""
    import av

    path = tmp_path / "two.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        first, second = (container.add_stream("libx264", rate=8) for _ in range(2))
        for stream in (first, second):
            stream.width = stream.height = 64
            stream.pix_fmt = "yuv420p"
        for i in range(30):
            if i < 16:
                container.mux(first.encode(av.VideoFrame.from_ndarray(_square(i, 64), format="rgb24")))
            noise = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            container.mux(second.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")))
        container.mux(first.encode(None))
        container.mux(second.encode(None))
    info = io.probe_video(path)
    assert (info.num_frames, info.video_streams) == (16, 2)
    whole, _ = io.read_video(path)
    window, _ = io.read_video(path, num_frames=8, start=4)  # a window: decord's kind of read
    assert whole.shape[0] == 16
    assert np.array_equal(window.numpy(), whole[4:12].numpy())
    red = whole[5].numpy()[28:36, 14:18]
    assert red[..., 0].mean() > 180 and red[..., 1].mean() < 90  # the square, not noise
    if io._decord_available():
        with pytest.raises(io.InputError, match="2 video streams"):
            io.read_video(path, num_frames=8, backend="decord")


def _edit_list_clip(path: Path) -> Path:
    """16 frames whose first 2 have negative timestamps, so the MP4 edit list hides them (a trimmed clip)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8, options={"bframes": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 8)
        for i in range(16):
            frame = av.VideoFrame.from_ndarray(_square(i, 64), format="rgb24")
            frame.pts, frame.time_base = i - 2, Fraction(1, 8)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_frames_an_edit_list_hides_stay_hidden(no_weights, tmp_path, capsys):
    """The header counts 16 frames, players show 14. decord showed the 2 hidden ones (extend and edit wrote them),
    and edit laid out 16 frames from the header, loaded the weights, then met 14."""
    path = _edit_list_clip(tmp_path / "trimmed.mp4")
    assert io.probe_video(path).num_frames == 16  # what the header says
    frames, _ = io.read_video(path)
    assert frames.shape[0] == 14
    assert frames[0, 28:36, 4:12, 0].float().mean() > 180  # the first shown frame has the square at x = 4
    rc = main(["edit", str(path), "a blue square moving right", "-o", str(tmp_path / "o.mp4"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "has 14 frames, and edit keeps a clip's length" in err, err


def _undercounting_avi(path: Path, frames: int, claimed: int) -> Path:
    """An AVI of `frames` flat frames whose two frame counts (avih, strh) say `claimed`."""
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("libx264", rate=8, options={"preset": "ultrafast", "bframes": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.index(b"avih") + 8 + 16, claimed)  # dwTotalFrames
    struct.pack_into("<I", data, data.index(b"strh") + 8 + 32, claimed)  # dwLength
    path.write_bytes(bytes(data))
    return path


def test_a_header_that_undercounts_is_stopped_at_the_frame_limit(no_weights, tmp_path, capsys):
    """A 4 MB AVI of 120000 frames whose header said 16 was decoded whole (3.3 GiB, minutes) before edit refused
    it; a reader now stops at its limit, and the commands at theirs (1024 frames)."""
    path = _undercounting_avi(tmp_path / "long.avi", 1100, 16)
    assert io.probe_video(path).num_frames == 16
    with pytest.raises(io.VideoDecodeError, match="more than max_frames=1000 frames"):
        io.read_video(path, limits=io.VideoLimits(max_frames=1000))
    for task, extra in (("edit", []), ("extend", ["--frames", "4"])):
        rc = main([task, str(path), "a red square moving right", *extra, "-o", str(tmp_path / "o.mp4"),
                   "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and "1024" in err and err.count("\n") == 1, (task, err)


def _damaged_sps_clip(path: Path) -> Path:
    """16 frames of H.264 whose SPS (in the avcC of an MKV / MP4) has four bytes overwritten, as a fuzzer's byte
    flips left it: FFmpeg decodes the first frame (at a size the damaged SPS states) and drops the other 15
    without an error."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8, options={"bframes": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(16):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_square(i, 64), format="rgb24")))
        container.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    # avcC: version 1, profile, compatibility, level, 0xff, one SPS (0xe1), its 2-byte length, then the NAL unit
    # (0x67). The whole pattern, not 0xff 0xe1 alone: MKV's random SegmentUID can hold those two bytes earlier.
    found = [m.start() for m in re.finditer(rb"\x01...\xff\xe1..\x67", bytes(data), re.DOTALL)]
    assert len(found) == 1, found
    sps = found[0] + 8
    data[sps + 6 : sps + 10] = b"\xff\xff\xff\x7f"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_stream_that_decodes_one_frame_of_many_is_warned_of(tmp_path, caplog, suffix):
    """A whole read returned 1 frame of the 16 the header states without a word (the tail check needed two frames
    to judge); the single frame is now judged against the header as any cut-short read is. A true one-frame clip
    stays quiet."""
    path = _damaged_sps_clip(tmp_path / f"sps{suffix}")
    assert io.probe_video(path).num_frames == 16
    with caplog.at_level("WARNING", logger="vidiff.io"):
        frames, _ = io.read_video(path)
    assert frames.shape[0] == 1
    assert f"{path} looks cut short or damaged: its frames end at 0.0 s of the 2.0 s its header states" in caplog.text
    caplog.clear()
    one = io.write_video(tmp_path / "one.mp4", _square(0, 64)[None], fps=8)
    with caplog.at_level("WARNING", logger="vidiff.io"):
        assert io.read_video(one)[0].shape[0] == 1
    assert "cut short" not in caplog.text


def test_decord_says_nothing_on_stderr_about_a_damaged_stream(tmp_path, capfd):
    """decord's own FFmpeg printed each damaged frame's errors ("Invalid UE golomb code", "[h264 @ 0x...] error while
    decoding MB") on stderr, under a command's one line or a successful `eval reconstruction`; PyAV's stays quiet.
    Its errors lose their log prefixes ("[21:38:48] /github/workspace/src/video/video_reader.cc:270: ")."""
    if not io._decord_available():
        pytest.skip("decord is not installed")
    path = _damaged_sps_clip(tmp_path / "sps.mp4")
    capfd.readouterr()
    with pytest.raises(io.VideoDecodeError, match="the video has 1 frame$"):
        io.read_video(path, num_frames=4)  # decord fails, PyAV decides
    assert capfd.readouterr().err == ""
    gif = io.write_video(tmp_path / "a.gif", np.stack([_square(i, 64) for i in range(4)]), fps=8)
    with pytest.raises(io.VideoDecodeError) as refused:
        io.read_video(gif, num_frames=2, backend="decord")  # decord cannot open GIFs
    assert "decode failed (decord): [" in str(refused.value) and "/github/" not in str(refused.value)


def _mjpeg_avi_with_exif(path: Path, frames: int = 5) -> Path:
    """A camera's MJPEG AVI: every frame a JPEG holding an EXIF block (FFmpeg 8 puts it on each decoded frame as side
    data of a type PyAV 18 does not know)."""
    import io as pyio

    import av
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Camera"  # Make
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuvj420p"
        for i in range(frames):
            jpeg = pyio.BytesIO()
            Image.new("RGB", (32, 24), (50 * i, 0, 0)).save(jpeg, "JPEG", exif=exif, quality=95)
            packet = av.Packet(jpeg.getvalue())
            packet.stream, packet.time_base, packet.pts = stream, Fraction(1, 10), i
            container.mux(packet)
    return path


def test_frames_with_side_data_pyav_does_not_know_read_as_any_other(tmp_path):
    """A camera's MJPEG clip with EXIF in each frame was refused by the whole read ("decode failed (pyav): 31 is not a
    valid Type") and was a ValueError traceback from probe_video."""
    clip = _mjpeg_avi_with_exif(tmp_path / "camera.avi")
    assert io.probe_video(clip).num_frames == 5
    frames, fps = io.read_video(clip, backend="pyav")
    assert fps == 10 and frames.shape == (5, 24, 32, 3)
    assert [int(v) for v in frames[:, 12, 16, 0]] == pytest.approx([0, 50, 100, 150, 200], abs=3)
    assert sum(1 for _ in io.iter_video(clip)) == 5


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_exif_photo_read_as_a_video_is_upright_as_read_as_an_image(tmp_path, orientation):
    """FFmpeg turns a photo by its EXIF Orientation (a display matrix beside the EXIF side data): the video readers
    show it as read_image does, mirrors included."""
    from PIL import Image

    from vidiff.image_io import read_image

    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[:4, :6] = 255  # a marked corner: every turn and mirror moves it elsewhere
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{orientation}.png"
    Image.fromarray(pixels).save(path, exif=exif)
    info = io.probe_video(path)
    frames, _ = io.read_video(path)
    assert (info.width, info.height) == (frames.shape[2], frames.shape[1])
    assert np.array_equal(frames[0].numpy(), read_image(path).numpy())


def test_a_clip_none_of_whose_frames_demux_says_so(tmp_path):
    """An MP4 whose sample size table claims 10**9 samples (FFmpeg drops its index, so no packet demuxes) while its
    time table states 16 frames: the whole read said "asked for None frames from 0 every 1, but the video has 0
    frames" (extend's error)."""
    import torch

    path = tmp_path / "clip.mp4"
    io.write_video(path, torch.zeros(16, 64, 64, 3, dtype=torch.uint8), 8)
    data = bytearray(path.read_bytes())
    stsz = data.index(b"stsz")
    struct.pack_into(">II", data, stsz + 8, 1, 10**9)  # every sample 1 byte, 10**9 of them
    path.write_bytes(bytes(data))
    assert io.probe_video(path).num_frames == 16  # the time table's count
    for read in (lambda: io.read_video(path), lambda: io.read_video(path, num_frames=4, backend="pyav")):
        with pytest.raises(io.VideoDecodeError, match=r"clip\.mp4: no frame could be decoded$"):
            read()


def test_a_whole_read_starting_past_the_end_names_the_start(tmp_path):
    import torch

    path = tmp_path / "clip.mp4"
    io.write_video(path, torch.zeros(16, 64, 64, 3, dtype=torch.uint8), 8)
    with pytest.raises(io.VideoDecodeError, match=r"asked for the frames from 20 on, but the video has 16 frames$"):
        io.read_video(path, start=20, backend="pyav")


def test_side_data_read_when_another_thread_named_the_unknown_types_meanwhile():
    """Two threads meeting their first frame with unknown side data at once: this one's read failed before the other
    named the unknown types, and it found them named when it looked. It took that as another error and raised
    "31 is not a valid Type" for a frame that reads."""
    from av.sidedata.sidedata import Type

    from vidiff import video_orientation

    class Frame:  # the first read of side_data fails as PyAV's does before the naming, the next ones read
        def __init__(self, meanwhile=None):
            self.reads, self.meanwhile = 0, meanwhile

        @property
        def side_data(self):
            self.reads += 1
            if self.reads > 1:
                return ["entry"]
            if self.meanwhile:
                video_orientation._side_data(self.meanwhile)  # the other thread, between the failure and the look
            raise ValueError("31 is not a valid Type")

    named = vars(Type).get("_missing_")
    try:
        if named:
            delattr(Type, "_missing_")  # as before any frame of this process met an unknown type
        assert video_orientation._side_data(Frame(meanwhile=Frame())) == ["entry"]
        assert Type(31).name == "UNKNOWN_31"
    finally:
        if named:
            Type._missing_ = named
        elif "_missing_" in vars(Type):
            delattr(Type, "_missing_")


def _uneven_mkv(path: Path, frames: int = 16) -> Path:
    """`frames` white-on-black maps in an MKV whose frames are 10 ms to 1 s apart at a stated 30 fps: Matroska
    states no frame count, so the probe estimates it from the duration (4 s x 30 fps = 120)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"bframes": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.where(_square(i, 64) > 100, 255, 0).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += (10, 200, 33, 1000)[i % 4]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("task", ["edit --mask", "generate --control"])
def test_maps_whose_frame_count_the_header_only_estimates_are_counted(no_weights, tmp_path, capsys, task):
    """A 16-frame mask / control-maps MKV with uneven timestamps was refused as "120 frames, the clip has 16" (the
    probe's duration x fps estimate); its frames are now counted, and the command goes on to load the weights."""
    maps = _uneven_mkv(tmp_path / "maps.mkv")
    assert io.probe_video(maps).estimated and io.probe_video(maps).num_frames != 16
    command, flag = task.split()
    if command == "edit":
        clip = tmp_path / "clip.mp4"
        io.write_video(clip, np.stack([_square(i, 64) for i in range(16)]), 8)
        argv = ["edit", str(clip), "a blue square moving right", flag, str(maps)]
    else:
        argv = ["generate", "a red square moving right", flag, str(maps)]
    with pytest.raises(AssertionError, match="the weights were loaded"):
        main([*argv, "-o", str(tmp_path / "o.mp4"), "--quiet"])
    assert "120 frames" not in capsys.readouterr().err
    assert not list(tmp_path.glob("o.*"))
