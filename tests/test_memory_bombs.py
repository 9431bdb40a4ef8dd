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
