"""vidiff.io: write/read round trips, frame selection, backends agree, clear errors, atomic writes."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff import io
from vidiff.errors import InputError, VideoDecodeError


def shapes_frames(num_frames=8, h=64, w=64, seed=0):
    """Shapes-like clip: dark grey background, a flat red disc moving right, a flat blue square moving down."""
    rng = np.random.default_rng(seed)
    grey = int(rng.integers(16, 65))
    frames = np.full((num_frames, h, w, 3), grey, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for i in range(num_frames):
        disc = (yy - h // 2) ** 2 + (xx - 12 - 2 * i) ** 2 < 8**2
        frames[i][disc] = (220, 40, 40)
        frames[i, 4 + i : 14 + i, w - 16 : w - 6] = (50, 80, 230)
    return frames


def counter_frames(num_frames, h=32, w=32):
    """Frame i is uniform grey 8*i + 4, so a decoded frame's index is its mean / 8."""
    return np.stack([np.full((h, w, 3), 8 * i + 4, np.uint8) for i in range(num_frames)])


def decoded_index(frames: torch.Tensor) -> list[int]:
    return [round((f.float().mean().item() - 4) / 8) for f in frames]


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif"])
def test_round_trip_frame_count_and_error(tmp_path, suffix):
    frames = shapes_frames()
    path = io.write_video(tmp_path / f"clip{suffix}", frames, fps=8)
    out, fps = io.read_video(path)
    assert out.dtype == torch.uint8 and tuple(out.shape) == frames.shape
    mae = (out.numpy().astype(np.float64) - frames).__abs__().mean()
    limit = {".mp4": 3.0, ".webm": 4.0, ".gif": 0.0}[suffix]  # flat colours fit a GIF palette exactly
    assert mae <= limit, f"{suffix}: mean abs error {mae:.3f}/255"
    assert fps == pytest.approx(8.0)  # a GIF too: its 12 / 13 cs delays were read as 8.33 fps
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_gif_reads_back_at_the_rate_it_was_written():
    """GIF delays are whole 1/100 s, so most rates are stored as alternating delays; FFmpeg's rate reads the
    shortest (8 fps as 8.33, 30 as 33.3), and the simplest rate within the rounding is the one written."""
    import tempfile

    frames = shapes_frames(16, h=16, w=16)
    with tempfile.TemporaryDirectory() as folder:
        for fps in (8, 12, 30, 7.5, 3.3, 0.5, 50):
            path = io.write_video(Path(folder) / f"{fps}.gif", frames, fps=fps)
            assert io.probe_video(path).fps == pytest.approx(fps), fps


def test_torch_and_numpy_inputs_write_the_same(tmp_path):
    frames = shapes_frames(4)
    assert np.array_equal(io.as_frames(torch.from_numpy(frames)), frames)
    a = io.read_video(io.write_video(tmp_path / "a.mp4", frames, 8))[0]
    b = io.read_video(io.write_video(tmp_path / "b.mp4", torch.from_numpy(frames), 8))[0]
    assert (a.float() - b.float()).abs().mean() < 0.5  # x264 output is not bit-stable within one process


def test_odd_sizes_are_padded_with_edge_pixels_in_mp4_and_webm_and_kept_in_gif(tmp_path):
    frames = shapes_frames(3, h=33, w=47)
    from vidiff.video_writer import written_size

    for suffix in (".mp4", ".webm"):
        out, _ = io.read_video(io.write_video(tmp_path / f"odd{suffix}", frames, 8))
        assert tuple(out.shape) == (3, 34, 48, 3) and written_size(47, 33, suffix) == (48, 34)
    odd = shapes_frames(3, h=31, w=97)  # GIF has no even-side rule: 97x31 stays 97x31
    out, _ = io.read_video(io.write_video(tmp_path / "odd.gif", odd, 8))
    assert tuple(out.shape) == (3, 31, 97, 3) and written_size(97, 31, ".gif") == (97, 31)
    assert (out.float() - torch.from_numpy(odd).float()).abs().mean() < 1  # the frames, not shifted or scaled
    padded = io.pad_to_even(frames)
    assert np.array_equal(padded[:, 33, :47], frames[:, 32]) and np.array_equal(padded[:, :33, 47], frames[:, :, 46])


def test_a_gif_keeps_each_frames_colours_when_the_palette_changes(tmp_path):
    """Each GIF frame has its own palette, but FFmpeg's gif encoder made a pixel transparent (showing the frame
    before) where its palette index matched the previous frame's: `interpolate` of a 1x64 GIF brought an input
    frame back 42-44 levels off where it promises it exact. Three 12x1 frames of green levels from that run."""
    green = bytes.fromhex(
        "00d80000d80000d80000d80000fc0000d80000fc0000fc0000fc0000fc0000fc0000fc0000a60000b70000ac0000bc"
        "0000ca0000bc0000d00000d20000d000005d0000540000580000d80000fc0000d80000fc0000fc0000fc0000fc0000"
        "fc0000fc00000000000000000000")
    frames = np.frombuffer(green, np.uint8).reshape(3, 12, 1, 3)
    out, _ = io.read_video(io.write_video(tmp_path / "x.gif", frames, 8))
    assert np.array_equal(out.numpy(), frames)  # fewer than 256 colours a frame: exact


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = io.write_video(tmp_path / "keep.mp4", shapes_frames(4), 8)
    before = path.read_bytes()
    import av

    calls = {"n": 0}
    real = av.VideoFrame.from_ndarray

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash mid-write")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(RuntimeError):
        io.write_video(path, shapes_frames(8, seed=1), 8)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


@pytest.mark.parametrize(
    "frames, fps, name, match",
    [
        (np.zeros((2, 8, 8, 3), np.float32), 8, "x.mp4", "uint8"),
        (np.zeros((8, 8, 3), np.uint8), 8, "x.mp4", r"\(F,H,W,3\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), 0, "x.mp4", "fps"),
        (np.zeros((2, 8, 8, 3), np.uint8), 8, "x.avi", "suffix"),
        ([[1]], 8, "x.mp4", "frames"),
    ],
)
def test_write_rejects_bad_input(tmp_path, frames, fps, name, match):
    with pytest.raises(InputError, match=match):
        io.write_video(tmp_path / name, frames, fps)


@pytest.mark.parametrize("fps, shown", [(30.02 * 11, "330.22"), (240.00001, "240.00001"), (50.1, "50.1"),
                                         (0.05, "0.05"), (300, "300"), (60.0, "60.0"), (float("inf"), "inf")])
def test_a_refused_frame_rate_is_shown_short_and_never_as_one_within_the_limits(fps, shown):
    """`vidiff interpolate --factor 11` on a 30.02 fps clip said "got 330.2201467645097"; rounded, a rate just past
    the limit (240.00001) must not read as the limit itself."""
    from vidiff.video_writer import check_fps

    with pytest.raises(InputError, match=rf"\]( for \.\w+ files)?, got {re.escape(shown)}$"):
        check_fps(fps, ".gif" if fps in (50.1, 60.0) else ".mp4")


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_selection_by_count_stride_start_and_fps(tmp_path, backend):
    path = io.write_video(tmp_path / "count.mp4", counter_frames(24), fps=8, quality=0)
    read = lambda **kw: decoded_index(io.read_video(path, backend=backend, **kw)[0])  # noqa: E731
    assert read() == list(range(24))
    assert read(num_frames=5, stride=3, start=2) == [2, 5, 8, 11, 14]
    assert read(stride=5, start=3) == [3, 8, 13, 18, 23]
    assert read(fps=4) == list(range(0, 24, 2))
    assert read(num_frames=6, fps=3) == [0, 2, 5, 8, 10, 13]  # floor(k * 8/3)
    assert read(num_frames=4, fps=16, start=1) == [1, 1, 2, 2]  # above the source rate frames repeat
    assert io.read_video(path, num_frames=2, fps=3, backend=backend)[1] == pytest.approx(3.0)
    assert io.read_video(path, num_frames=2, stride=4, backend=backend)[1] == pytest.approx(2.0)
    with pytest.raises(VideoDecodeError, match="24 frames"):
        io.read_video(path, num_frames=10, stride=3, backend=backend)


def test_numpy_scalars_select_and_write_like_python_numbers(tmp_path):
    """np.int64 / np.float32 from numpy arithmetic were refused as "must be a positive integer"."""
    path = io.write_video(tmp_path / "np.mp4", counter_frames(24), fps=np.float32(8.0), quality=np.int64(0))
    frames, fps = io.read_video(path, num_frames=np.int64(5), stride=np.int32(3), start=np.int64(2))
    assert decoded_index(frames) == [2, 5, 8, 11, 14] and fps == pytest.approx(8 / 3)
    assert decoded_index(io.read_video(path, num_frames=np.int64(6), fps=np.float64(3.0))[0]) == [0, 2, 5, 8, 10, 13]


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_frames": 0}, "num_frames"), ({"stride": 0}, "stride"), ({"start": -1}, "start"),
     ({"fps": -2.0}, "fps"), ({"fps": 4, "stride": 2}, "stride or fps"), ({"backend": "ffmpeg"}, "backend"),
     ({"num_frames": True}, "num_frames"), ({"stride": np.float32(2.0)}, "stride"), ({"fps": True}, "fps")],
)
def test_read_rejects_bad_arguments(tmp_path, kwargs, name):
    path = io.write_video(tmp_path / "c.mp4", counter_frames(4), fps=8)
    with pytest.raises(InputError, match=name):
        io.read_video(path, **kwargs)


def test_missing_directory_and_non_video_paths_are_named(tmp_path):
    with pytest.raises(VideoDecodeError, match="nope.mp4: file not found"):
        io.read_video(tmp_path / "nope.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(VideoDecodeError, match="dir.mp4: is a directory"):
        io.probe_video(tmp_path / "dir.mp4")
    (tmp_path / "text.mp4").write_text("just some words, not a video\n" * 20)
    with pytest.raises(VideoDecodeError, match="text.mp4: cannot open container"):
        io.read_video(tmp_path / "text.mp4")


def test_probe_reads_metadata_and_enforces_limits(tmp_path):
    path = io.write_video(tmp_path / "p.mp4", counter_frames(12, h=48, w=64), fps=6)
    info = io.probe_video(path)
    assert (info.width, info.height, info.num_frames, info.codec) == (64, 48, 12, "h264")
    assert info.fps == pytest.approx(6.0) and info.duration == pytest.approx(2.0, abs=0.2)
    for limits, key in [(io.VideoLimits(max_pixels=64 * 47), "max_pixels"), (io.VideoLimits(max_frames=11), "max_frames"),
                        (io.VideoLimits(max_duration=1.0), "max_duration")]:
        with pytest.raises(VideoDecodeError, match=key):
            io.read_video(path, limits=limits)


def test_read_image_png_jpeg_and_non_image(tmp_path):
    from PIL import Image

    rgb = shapes_frames(1)[0]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert torch.equal(io.read_image(tmp_path / "a.png"), torch.from_numpy(rgb))
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "b.png")
    assert torch.equal(io.read_image(tmp_path / "b.png"), torch.from_numpy(rgb))
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    jpg = io.read_image(tmp_path / "c.jpg")
    assert jpg.shape == (64, 64, 3) and (jpg.float() - torch.from_numpy(rgb).float()).abs().mean() < 3
    (tmp_path / "d.png").write_text("not an image")
    with pytest.raises(InputError, match="d.png: not a readable image"):
        io.read_image(tmp_path / "d.png")
    with pytest.raises(InputError, match="e.png: file not found"):
        io.read_image(tmp_path / "e.png")


def test_a_phone_photo_is_read_and_a_larger_still_than_any_phone_is_refused(tmp_path):
    """A 12 MP phone photo (4032x3024) was refused by the video frame limit (9.4 MP) in `animate` and --keyframe;
    stills have their own limit (2**27 pixels) and a header claiming more is refused before decoding."""
    import struct
    import zlib

    from PIL import Image

    Image.new("RGB", (4032, 3024), (200, 40, 30)).save(tmp_path / "phone.jpg", quality=90)
    photo = io.read_image(tmp_path / "phone.jpg")
    assert photo.shape == (3024, 4032, 3) and (photo[1500, 2000].int() - torch.tensor([200, 40, 30])).abs().max() < 4

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 12_000, 12_000, 8, 2, 0, 0, 0)  # 144 MP: past the limit, under PIL's bomb error
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    with pytest.raises(InputError, match=r"big.png: 12000x12000 exceeds max_pixels=134217728; downscale it first"):
        io.check_image(tmp_path / "big.png")


def test_import_is_cheap():
    code = "import sys, vidiff.io; sys.exit(int(any(m in sys.modules for m in ('av', 'decord', 'PIL', 'torch'))))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---- real clips (tests/conftest.py `sample_videos`) ---------------------------------------------------

REAL = ["vtest.avi", "Megamind.avi", "tree.avi", "cockatoo.mp4", "realshort.mp4"]


@pytest.mark.parametrize("name", REAL)
def test_decord_and_pyav_agree_on_real_clips(sample_videos, name):
    path = sample_videos / name
    for kw in ({"num_frames": 6, "stride": 2}, {"num_frames": 4, "stride": 3, "start": 7}):
        if name == "Megamind.avi" and kw.get("start"):
            continue  # decord seeks one frame early in this AVI (see io.DECORD_SUFFIXES); "auto" uses PyAV
        a, fa = io.read_video(path, backend="decord", **kw)
        b, fb = io.read_video(path, backend="pyav", **kw)
        assert fa == pytest.approx(fb) and a.shape == b.shape
        diff = (a.int() - b.int()).abs()
        # decord and PyAV bundle different FFmpeg builds; on msmpeg4 (vtest.avi) about 1e-5 of the values
        # differ by 1-2 levels (scattered, inside the picture). Everything else is bit-identical.
        assert diff.max() <= 2 and (diff > 0).float().mean() < 1e-4, (name, kw)
        if name != "vtest.avi":
            assert torch.equal(a, b), (name, kw)


def test_auto_backend_is_exact_after_seek_on_megamind(sample_videos):
    path = sample_videos / "Megamind.avi"
    ref, _ = io.read_video(path, num_frames=12, backend="pyav")
    got, _ = io.read_video(path, num_frames=3, stride=3, start=5)  # auto
    assert torch.equal(got, ref[[5, 8, 11]])


@pytest.mark.parametrize("name, src_fps, target, expected", [
    ("vtest.avi", 10.0, 4.0, [0, 2, 5, 7, 10, 12]),  # step 2.5
    ("cockatoo.mp4", 20.0, 8.0, [0, 2, 5, 7, 10, 12]),  # step 2.5
    ("cockatoo.mp4", 20.0, 6.0, [0, 3, 6, 10, 13, 16]),  # step 10/3
])
def test_fps_selection_on_real_clips(sample_videos, name, src_fps, target, expected):
    path = sample_videos / name
    assert io.probe_video(path).fps == pytest.approx(src_fps)
    ref, _ = io.read_video(path, num_frames=expected[-1] + 1)
    got, fps = io.read_video(path, num_frames=len(expected), fps=target)
    assert fps == pytest.approx(target)
    assert torch.equal(got, ref[expected])


# ---- streaming: frames read and written one at a time ------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_streamed_write_gives_the_same_bytes_and_streamed_read_the_same_frames(tmp_path, suffix):
    frames = shapes_frames(9, h=34, w=48)  # even-padding applies per frame too
    whole = io.write_video(tmp_path / f"whole{suffix}", frames, 8)
    streamed = io.write_video_frames(tmp_path / f"streamed{suffix}", (torch.from_numpy(f) for f in frames), 8)
    read, _ = io.read_video(whole, backend="pyav")
    if suffix == ".gif":  # palette quantisation is deterministic: the same bytes
        assert streamed.read_bytes() == whole.read_bytes()
    else:  # x264 once gave other bytes for the same frames inside the full suite: compare what they decode to
        from vidiff.eval.metrics import psnr

        again, _ = io.read_video(streamed, backend="pyav")
        assert again.shape == read.shape and psnr(again, read) > 40
    assert np.array_equal(np.stack(list(io.iter_video(whole))), read.numpy())


def test_streamed_write_failing_midway_or_changing_size_leaves_the_old_file(tmp_path):
    path = io.write_video(tmp_path / "keep.mp4", shapes_frames(4), 8)
    before = path.read_bytes()

    def failing():
        yield from shapes_frames(3)
        raise RuntimeError("simulated failure of the producer")

    with pytest.raises(RuntimeError, match="producer"):
        io.write_video_frames(path, failing(), 8)
    sizes = [np.zeros((16, 16, 3), np.uint8), np.zeros((16, 18, 3), np.uint8)]
    with pytest.raises(InputError, match="frame size changed from 16x16 to 18x16"):
        io.write_video_frames(path, iter(sizes), 8)
    with pytest.raises(InputError, match="no frames"):
        io.write_video_frames(path, iter([]), 8)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_iter_video_decodes_lazily_and_checks_the_header_first(tmp_path, monkeypatch):
    path = io.write_video(tmp_path / "c.mp4", counter_frames(12), 8)
    frames = io.iter_video(path)
    assert decoded_index(torch.from_numpy(np.stack([next(frames) for _ in range(3)]))) == [0, 1, 2]
    with pytest.raises(VideoDecodeError, match="max_frames=5"):
        io.iter_video(path, limits=io.VideoLimits(max_frames=5))  # the header's count, before any decoding
    with pytest.raises(VideoDecodeError, match="no video stream|cannot open"):
        (tmp_path / "x.mp4").write_bytes(b"not a video at all" * 10)
        io.iter_video(tmp_path / "x.mp4")


def test_written_clips_state_the_colour_matrix_their_frames_were_converted_with(tmp_path):
    """Frames were converted to YUV with BT.601 and written untagged; players guess BT.709 for an untagged HD
    stream (mpv, VLC, browsers), so a phone clip (tagged BT.709, which vidiff reads right) up-converted to 1280x720
    showed its greens 27 levels darker (30, 200, 60 as 15, 173, 55). The file states what was used now."""
    import av

    frames = np.zeros((2, 64, 96, 3), np.uint8)
    frames[:, :, :48] = (30, 200, 60)
    frames[:, :, 48:] = (220, 30, 30)
    for suffix in (".mp4", ".webm"):
        path = io.write_video(tmp_path / f"c{suffix}", frames, 8)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            assert (frame.colorspace, frame.color_range) == (6, 1), suffix  # SMPTE 170M (BT.601), limited range
            assert (stream.codec_context.color_primaries, stream.codec_context.color_trc) == (1, 1)  # sRGB's: BT.709
            rgb = frame.reformat(format="rgb24", src_colorspace=frame.colorspace,
                                 src_color_range=frame.color_range).to_ndarray()
        assert np.abs(rgb[:, 8:40].astype(int) - (30, 200, 60)).max() <= 3, suffix
        assert np.abs(rgb[:, 56:88].astype(int) - (220, 30, 30)).max() <= 3, suffix


def test_a_path_under_home_is_read_and_written_there(tmp_path, monkeypatch, capsys):
    """write_video("~/x.gif", ...) said "folder ~ does not exist" and read_video("~/clip.mp4") looked for a folder
    named "~" in the working directory; "~" is the home folder for every reader and writer, as from_pretrained
    takes it, and so for a "~/..." quoted on the command line."""
    from PIL import Image

    from vidiff.cli import main
    from vidiff.eval.fvd import clip_names, load_network, video_files
    from vidiff.output_safety import check_output

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / "clips").mkdir(parents=True), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    frames = shapes_frames(num_frames=4, h=32, w=32)
    assert io.write_video("~/clips/x.gif", frames, fps=8) == home / "clips" / "x.gif"
    assert io.read_video("~/clips/x.gif")[0].shape == (4, 32, 32, 3)
    assert io.read_video("~/clips/x.gif", num_frames=2, start=1)[0].shape == (2, 32, 32, 3)
    assert io.probe_video("~/clips/x.gif").num_frames == 4
    assert io.count_frames("~/clips/x.gif") == 4
    Image.fromarray(frames[0]).save(home / "a.png")
    assert io.read_image("~/a.png").shape == (32, 32, 3) and io.image_size("~/a.png") == (32, 32)
    io.check_image("~/a.png")
    assert io.check_folder("~/clips", "X") == home / "clips"
    assert io.list_video_files(Path("~")) == [home / "clips" / "x.gif"]
    files = video_files("~", "FOLDER")
    assert clip_names(files, "~") == ["clips/x.gif"]
    assert check_output("~/out.mp4") == home / "out.mp4"
    with pytest.raises(InputError, match=f"{home}/net.pt"):  # looked up in the home folder, not found there
        load_network("~/net.pt")
    (home / "clips" / "x.txt").write_text("a red circle moving right")
    assert main(["eval", "shapes", "~/clips"]) == 0
    assert ["colour", "1", "1", "100.0%"] in [line.split() for line in capsys.readouterr().out.splitlines()]
    assert list(cwd.iterdir()) == []
