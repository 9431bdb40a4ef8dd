"""Small files that claim a large picture: a JPEG whose frame header says 11000x11000 over a 64x64 scan, a GIF of
600 one-pixel frames on a 1920x1080 canvas. Each is refused in one line, before it is decoded and before any
weights load (the bundled pipeline's, whose loading the tests refuse)."""
import io as pyio
import struct
from pathlib import Path

import numpy as np
import pytest

from vidiff import io
from vidiff.cli import main
from vidiff.errors import InputError


@pytest.fixture
def no_weights(monkeypatch):
    """The bundled pipeline's weights must not load: each test's error has to come first."""
    from vidiff.pipeline import VideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before the bad file was refused")

    monkeypatch.setattr(VideoPipeline, "from_pretrained", refuse)


def _jpeg_claiming(path: Path, side: int) -> Path:
    """A 64x64 baseline JPEG (about 1 KB) whose SOF0 says side x side: libjpeg decodes the rest as grey."""
    from PIL import Image

    buffer = pyio.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, side, side)  # height, width
    path.write_bytes(bytes(data))
    return path


def test_a_jpeg_whose_data_cannot_hold_its_picture_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 974-byte file claiming 11000x11000 decoded to 363 MB of grey (2.3 GB peak, 21 s in animate) without a word."""
    from PIL import ImageFile

    path = _jpeg_claiming(tmp_path / "big.jpg", 11000)
    assert path.stat().st_size < 4000
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded before it was refused"))
    for read in (io.read_image, io.check_image, io.image_size):
        with pytest.raises(InputError, match=r"big.jpg: its compressed data \(\d+ bytes\) is too short for a "
                                             r"11000x11000 picture \(at least 236328 bytes\); the file is cut short"):
            read(path)


def test_jpegs_that_hold_their_picture_still_read(tmp_path):
    """The bound is 1 bit per 8x8 block: a flat white photo with optimised tables (the least a Huffman-coded JPEG
    spends) is about twice that, and a 64x64 file whose header is left alone reads."""
    from PIL import Image

    for kwargs in ({"optimize": True}, {"optimize": True, "progressive": True}):
        path = tmp_path / "flat.jpg"
        Image.new("L", (4000, 3000), 255).save(path, "JPEG", quality=1, **kwargs)
        assert io.image_size(path) == (4000, 3000)
    assert tuple(io.read_image(_jpeg_claiming(tmp_path / "own.jpg", 64)).shape) == (64, 64, 3)


def test_animate_refuses_the_jpeg_in_one_line(no_weights, tmp_path, capsys):
    path = _jpeg_claiming(tmp_path / "big.jpg", 11000)
    rc = main(["animate", str(path), "a red square moving right", "-o", str(tmp_path / "o.mp4"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "too short for a 11000x11000 picture" in err, err
    assert not list(tmp_path.glob("o.*"))


def _gif_of_dots(path: Path, frames: int, width: int = 1920, height: int = 1080) -> Path:
    """A GIF of `frames` frames, each one pixel drawn on a width x height canvas (11 bytes of LZW each, 25 fps):
    every frame decodes to the whole canvas."""
    data = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes([0, 0, 0, 255, 0, 0]))
    for i in range(frames):
        data += b"\x21\xf9\x04\x04" + struct.pack("<H", 4) + b"\x00\x00"  # kept under the next frame, 4 cs
        data += b"\x2c" + struct.pack("<HHHHB", i % width, height // 2, 1, 1, 0)  # 1x1 at (i, middle)
        data += b"\x02\x02\x44\x01\x00"  # LZW (min code size 2): clear, index 1, end
    path.write_bytes(bytes(data + b"\x3b"))
    return path


def test_a_small_gif_that_decodes_to_gigabytes_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 14 KB GIF of 600 frames on a 1920x1080 canvas decoded to 3.5 GiB (6000 frames, 140 KB: 35 GiB) when
    read whole, as the eval commands read clips; the header's count and size are now checked against
    limits.MAX_CLIP_BYTES (2 GiB) before a frame is decoded."""
    from vidiff import video_decode
    from vidiff.limits import MAX_CLIP_BYTES

    path = _gif_of_dots(tmp_path / "dots.gif", 600)
    assert path.stat().st_size < 16_000 and io.probe_video(path).num_frames == 600
    assert io.read_video(path, num_frames=2)[0].shape == (2, 1080, 1920, 3)  # a window reads
    monkeypatch.setattr(video_decode, "checked_frames", lambda *a, **k: pytest.fail("decoded before refused"))
    assert MAX_CLIP_BYTES == 2 * 2**30
    for kwargs in ({}, {"num_frames": 400}, {"fps": 50}):  # fps 50: every frame twice, 1200 kept
        with pytest.raises(io.VideoDecodeError, match=r"dots.gif: \d+ frames of 1920x1080 would take \d\.\d\d GiB "
                                                      r"decoded; the frames one read keeps are bounded at 2 GiB"):
            io.read_video(path, **kwargs)
    small = _gif_of_dots(tmp_path / "dots16.gif", 16, 64, 64)  # 16 frames of 64x64: 192 KiB
    with pytest.raises(io.VideoDecodeError, match="16 frames of 64x64 would take 0.188 MiB decoded; the frames one read keeps are bounded at 0.176 MiB"):
        io.read_video(small, limits=io.VideoLimits(max_bytes=15 * 64 * 64 * 3))


def test_frames_past_the_bound_are_counted_while_decoding(tmp_path):
    """A header that understates its frames (an AVI of 40 frames whose header says 16) is stopped when the frames
    kept reach the bound, before they are held."""
    from test_hostile_streams import _undercounting_avi

    path = _undercounting_avi(tmp_path / "long.avi", 40, 16)
    limits = io.VideoLimits(max_bytes=20 * 64 * 64 * 3)
    assert io.read_video(path, num_frames=20, limits=limits)[0].shape[0] == 20  # at the bound: read
    with pytest.raises(io.VideoDecodeError, match="long.avi: more than 20 frames of 64x64 would take over the bound"):
        io.read_video(path, limits=limits)


def test_eval_shapes_counts_the_gif_as_unreadable(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    _gif_of_dots(folder / "bomb.gif", 600)
    (folder / "bomb.txt").write_text("a red square moving left")
    assert main(["eval", "shapes", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "1 clip could not be decoded" in out and "bomb.gif: 600 frames of 1920x1080 would take 3.48 GiB" in out


def test_extend_says_a_decode_error_as_its_other_errors(no_weights, tmp_path, capsys):
    """extend's errors name 'video PATH: ...'; one found while decoding (here past the 1024-frame limit of a header
    that says 16) lacked the 'video ' its probe's errors have."""
    from test_hostile_streams import _undercounting_avi

    path = _undercounting_avi(tmp_path / "long.avi", 1100, 16)
    rc = main(["extend", str(path), "a red square moving right", "--frames", "4", "-o", str(tmp_path / "o.mp4"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"video {path}: more than max_frames=1024 frames" in err, err


def test_a_one_frame_clip_is_said_in_the_singular(tmp_path):
    path = _gif_of_dots(tmp_path / "one.gif", 1, 16, 16)
    with pytest.raises(io.VideoDecodeError, match="but the video has 1 frame$"):
        io.read_video(path, num_frames=2)


def test_a_phones_multi_picture_jpeg_reads_as_its_first_picture_without_a_word(tmp_path):
    """PIL opens a JPEG with a multi-picture block (phones write one with a preview or depth picture) as "MPO": the
    JPEG data check skipped it, and it was warned of as "an animated image of 2 frames"."""
    import warnings

    from PIL import Image

    from vidiff.image_io import read_image

    ramp = np.linspace(0, 255, 64).astype(np.uint8)  # smooth, which JPEG keeps within a few levels
    pixels = np.stack([np.repeat(ramp[:, None], 80, 1), np.full((64, 80), 90, np.uint8),
                       np.repeat(ramp[::-1, None], 80, 1)], -1)
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, "MPO", save_all=True, append_images=[Image.fromarray(pixels[::-1].copy())])
    assert Image.open(path).format == "MPO"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_image(path)
    assert tuple(image.shape) == (64, 80, 3)
    assert np.abs(image.numpy().astype(int) - pixels).mean() < 4  # the first picture, through JPEG's loss


@pytest.mark.parametrize("kind", ["16-bit grey", "8-bit RGB"])
def test_reading_a_still_keeps_little_more_than_the_picture_it_returns(tmp_path, kind):
    """A still up to 2**27 pixels is read (phone photos); a 235 KB 16-bit PNG of 11000x11000 took 2.7 GB (int64
    arithmetic over every sample) and an 8-bit one 2.4 GB (a made-up alpha channel and copies), 6 and 5 times what
    read_image returns. numpy's allocations are traced here (PIL's own buffers are not)."""
    import tracemalloc

    from PIL import Image

    from vidiff.image_io import read_image

    pixels = np.full((500, 1000), 40000, np.uint16) if kind == "16-bit grey" else np.full((500, 1000, 3), 7, np.uint8)
    path = tmp_path / "still.png"
    Image.fromarray(pixels).save(path)
    read_image(path)  # imports and caches outside the measure
    tracemalloc.start()
    try:
        out = read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (500, 1000, 3)
    assert int(out[0, 0, 0]) == (156 if kind == "16-bit grey" else 7)  # 40000 * 255 / 65535 = 155.6
    assert peak <= 2.2 * out.numel()  # the array PIL hands over and the returned copy


def test_an_image_without_a_turn_is_not_copied_to_be_turned(tmp_path):
    from PIL import Image

    from vidiff.image_io import _upright

    Image.new("RGB", (16, 8)).save(tmp_path / "plain.png")
    with Image.open(tmp_path / "plain.png") as img:
        assert _upright(img) is img


def test_a_damaged_tiff_page_is_one_line_naming_the_file(tmp_path):
    """Counting an animated image's frames reads every page: a TIFF whose second page lost its width was PIL's
    TypeError traceback ("Missing dimensions")."""
    from PIL import Image

    from vidiff.image_io import read_image

    path = tmp_path / "pages.tif"
    Image.new("RGB", (8, 8), (200, 0, 0)).save(path, save_all=True, append_images=[Image.new("RGB", (8, 8))])
    data = bytearray(path.read_bytes())
    first = struct.unpack_from("<I", data, 4)[0]  # "II": little-endian offsets
    second = struct.unpack_from("<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0])[0]
    for k in range(struct.unpack_from("<H", data, second)[0]):
        if struct.unpack_from("<H", data, second + 2 + 12 * k)[0] == 256:  # ImageWidth
            struct.pack_into("<H", data, second + 2 + 12 * k, 0xC000)  # a private tag: the page has no width
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"pages\.tif: not a readable image \(Missing dimensions\)"):
        read_image(path)


def test_an_icon_larger_than_its_directory_says_is_refused_in_one_line(tmp_path):
    """PIL decodes an ICO's picture while opening it and warns when it is not the size its directory states: the
    Python warning printed three lines (file, line, source) above the command's error."""
    import warnings

    from PIL import Image

    from vidiff.image_io import read_image
    from vidiff.io import VideoLimits

    picture = pyio.BytesIO()
    Image.new("RGBA", (300, 200), (255, 0, 0, 255)).save(picture, "PNG")
    png = picture.getvalue()
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22)  # the directory says 16x16
    path = tmp_path / "icon.ico"
    path.write_bytes(struct.pack("<HHH", 0, 1, 1) + entry + png)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the read
        with pytest.raises(InputError, match=r"icon\.ico: 300x200 exceeds max_pixels=10000"):
            read_image(path, limits=VideoLimits(max_pixels=10_000))


def test_opening_an_image_keeps_pils_warnings_other_than_its_size(tmp_path, monkeypatch):
    """Only the warnings about size are kept quiet while an image is opened (the pixel bound is vidiff's own one-line
    check): a JPEG whose EXIF block PIL finds corrupt, which may have lost the photo's orientation, was read without a
    word once every warning of the open was ignored."""
    import warnings

    from PIL import Image

    from vidiff.image_io import image_size, read_image

    path = tmp_path / "photo.jpg"
    cut_exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03"  # 5 entries said, the first cut short
    Image.new("RGB", (8, 5), (9, 9, 9)).save(path, exif=cut_exif)
    with pytest.warns(UserWarning, match="Corrupt EXIF data"):
        assert read_image(path).shape == (5, 8, 3)

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30)  # 8x5 = 40 pixels: PIL's bomb warning, not its error
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 5)).save(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(plain) == (8, 5)
