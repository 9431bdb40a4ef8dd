"""VideoFolderDataset: captions, skipping, exact epoch replay across instances and DataLoader workers."""
import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidiff import io
from vidiff.data.video_folder import VideoFolderDataset


def counter_clip(n, offset, h=40, w=56):
    """Frame i is uniform grey 4*(i+offset)+8, so the start can be read back."""
    frames = np.stack([np.full((h, w, 3), 4 * (i + offset) + 8, np.uint8) for i in range(n)])
    return frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for k in range(5):
        io.write_video(root / f"clip_{k:06d}.mp4", counter_clip(20 + k, 5 * k), fps=8, quality=0)
        (root / f"clip_{k:06d}.json").write_text(json.dumps({"shape": "square"}))  # ground truth, not a caption
    (root / "clip_000000.txt").write_text("a red circle moving left\n")
    (root / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"clip_{k:06d}.mp4", "text": f"caption {k}"}) + "\n"
                                                 for k in range(5)))
    io.write_video(root / "short.mp4", counter_clip(3, 0), fps=8)
    (root / "broken.mp4").write_bytes(b"not a video" * 100)
    return root


def test_captions_skips_and_output_format(folder):
    ds = VideoFolderDataset(folder, num_frames=4, stride=2, size=(32, 32), scan_workers=1)
    assert len(ds) == 5 and len(ds.skipped) == 2
    assert {p.name for p, _ in ds.skipped} == {"short.mp4", "broken.mp4"}
    item = ds[0]
    assert item["caption"] == "a red circle moving left" and ds[3]["caption"] == "caption 3"
    assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
    assert -1 <= item["video"].min() and item["video"].max() <= 1
    # values encode the source index: consecutive clip frames are 2 source frames apart
    grey = ((item["video"][0, :, 16, 16] + 1) * 127.5 - 8) / 4
    assert torch.allclose(grey - grey[0], torch.tensor([0.0, 2, 4, 6]), atol=0.3)


def starts(ds, epoch):
    ds.set_epoch(epoch)
    return [(item["index"], round(float(item["video"][0, 0, 0, 0]), 4)) for item in (ds[i] for i in range(len(ds)))]


def test_epoch_replays_across_instances_and_differs_between_epochs(folder):
    a = VideoFolderDataset(folder, num_frames=3, size=(16, 16), seed=7, scan_workers=1)
    b = VideoFolderDataset(folder, num_frames=3, size=(16, 16), seed=7, scan_workers=1)
    assert starts(a, 1) == starts(b, 1)
    assert [a.clip_start(i) for i in range(5)] != [a.clip_start(i) for i in (a.set_epoch(2) or range(5))]


def test_epoch_replays_with_dataloader_workers(folder):
    ds = VideoFolderDataset(folder, num_frames=3, size=(16, 16), seed=3, scan_workers=1)
    ds.set_epoch(4)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=2, num_workers=workers, shuffle=False)
        batches[workers] = torch.cat([b["video"] for b in loader])
    assert torch.equal(batches[0], batches[2])


def test_read_failure_is_replaced_deterministically(folder, tmp_path):
    import shutil

    root = tmp_path / "race"
    shutil.copytree(folder, root)
    ds = VideoFolderDataset(root, num_frames=3, size=(16, 16), scan_workers=1)
    (root / "clip_000002.mp4").write_bytes(b"gone bad after the scan")
    item = ds[2]
    assert item["index"] == 3 and item["path"].endswith("clip_000003.mp4") and ds.read_failures == 1


def test_clips_at_several_frame_rates_are_warned_once_unless_resampled(tmp_path, caplog):
    """Clips at 30, 12 and 8 fps were read (cached, trained) each at its own rate without a word: a window of 16
    frames was half a second of one and two seconds of another."""
    mixed, same = tmp_path / "mixed", tmp_path / "same"
    for root, rates in ((mixed, (30, 12, 8)), (same, (30, 30000 / 1001))):
        root.mkdir()
        for k, fps in enumerate(rates):
            io.write_video(root / f"clip_{k}.mp4", counter_clip(24, 0), fps=fps)
    with caplog.at_level("WARNING", logger="vidiff"):
        VideoFolderDataset(mixed, num_frames=4, size=(32, 32), scan_workers=1)
    assert caplog.text.count("frame rates differ") == 1 and "(8 to 30 fps)" in caplog.text
    assert "give --fps (`vidiff data cache`) or data.fps (a training config)" in caplog.text
    for root, kwargs in ((mixed, {"fps": 8}), (same, {})):  # 29.97 and 30: one rate
        caplog.clear()
        with caplog.at_level("WARNING", logger="vidiff"):
            VideoFolderDataset(root, num_frames=4, size=(32, 32), scan_workers=1, **kwargs)
        assert "frame rates differ" not in caplog.text, kwargs
    caplog.clear()  # a stride keeps the rates apart: 30, 12 and 8 fps at stride 2 read as 15, 6 and 4
    with caplog.at_level("WARNING", logger="vidiff"):
        VideoFolderDataset(mixed, num_frames=4, size=(32, 32), scan_workers=1, stride=2)
    assert "(4 to 15 fps)" in caplog.text


def first_grey(item):
    """The source frame index that the first frame of an item encodes (see counter_clip)."""
    return round(float(((item["video"][0, 0, 16, 16] + 1) * 127.5 - 8) / 4))


def test_windows_cover_each_video_back_to_back_at_a_hop_or_spread(folder):
    from vidiff.data.video_folder import VideoWindows

    ds = VideoFolderDataset(folder, num_frames=4, size=(32, 32), scan_workers=1)
    whole = VideoWindows(ds)  # clip k has 20 + k frames: windows of 4 back to back
    assert [s for i, s in whole.windows if i == 0] == [0, 4, 8, 12, 16]
    # 23 frames: the 3 left over (20-22) were never cached; a last window, overlapping, ends at frame 22
    assert [s for i, s in whole.windows if i == 3] == [0, 4, 8, 12, 16, 19]
    assert len(whole) == 5 + 4 * 6  # clip 0 ends on a window; clips 1-4 each get the last one
    for k in (0, 3, len(whole) - 1):  # the frames are those of the named source frames
        i, start = whole.windows[k]
        item = whole[k]
        assert item["index"] == i and item["start"] == start and first_grey(item) == start + 5 * i
    assert [s for i, s in VideoWindows(ds, hop=7).windows if i == 1] == [0, 7, 14]
    spread = VideoWindows(ds, per_video=3)
    assert [s for i, s in spread.windows if i == 4] == [0, 10, 20]  # 24 frames: starts 0..20
    described = spread.describe()
    assert described["windows"][:3] == [["clip_000000.mp4", 0], ["clip_000000.mp4", 8], ["clip_000000.mp4", 16]]
    strided = VideoWindows(VideoFolderDataset(folder, num_frames=4, stride=2, size=(32, 32), scan_workers=1))
    assert [s for i, s in strided.windows if i == 0] == [0, 7, 13]  # a window spans 7 source frames, 13-19 last
    with pytest.raises(Exception, match="either a hop or windows per video"):
        VideoWindows(ds, hop=2, per_video=2)
    with pytest.raises(Exception, match="hop must be a positive integer"):
        VideoWindows(ds, hop=0)


def test_captions_as_users_save_them(tmp_path, caplog):
    """A Latin-1 caption was a UnicodeDecodeError traceback naming no file; a UTF-8 byte-order mark stayed in the
    caption (or hid a csv's first column name, "needs the columns file_name and text"); a metadata row naming no
    clip and clips without a caption trained without a word; .mpg / .ts / .flv / .3gp clips were left out."""
    from vidiff.config import ConfigError

    import av

    for name in ("a.mp4", "b.mp4", "d.mp4"):
        io.write_video(tmp_path / name, counter_clip(8, 0), fps=8)

    with av.open(str(tmp_path / "c.mpg"), "w", format="mpeg") as container:  # an MPEG-PS clip, as DVDs and cameras
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 56, 40, "yuv420p"
        for frame in counter_clip(8, 0):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    (tmp_path / "a.txt").write_bytes("\ufeffun cacatoès blanc\n".encode("utf-8"))  # Notepad's UTF-8, with a BOM
    (tmp_path / "metadata.csv").write_bytes("\ufefffile_name,text\nb.mp4,two\nc.mpg,three\nghost.mp4,none\n"
                                            .encode("utf-8"))  # Excel's "CSV UTF-8"
    with caplog.at_level("WARNING", logger="vidiff"):
        ds = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)
    captions = {p.name: c for p, _, _, c in ds.items}
    assert captions == {"a.mp4": "un cacatoès blanc", "b.mp4": "two", "c.mpg": "three", "d.mp4": ""}
    assert "name 1 clip(s) not in the folder or not readable, e.g. ghost.mp4" in caplog.text
    assert "1 of 4 clips have no caption" in caplog.text
    os.mkfifo(tmp_path / "b.txt")  # a FIFO, never opened (it would block): b.mp4 keeps its metadata caption
    (tmp_path / "d.txt").symlink_to(tmp_path / "nowhere.txt")
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidiff"):
        ds = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)
    assert {p.name: c for p, _, _, c in ds.items} == captions
    assert "2 caption file(s) are not regular files" in caplog.text
    assert "b.txt: read as no sidecar caption" in caplog.text
    (tmp_path / "b.txt").unlink()
    (tmp_path / "d.txt").unlink()
    (tmp_path / "a.txt").write_bytes("un cacatoès".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"a.txt: not UTF-8 text \(byte 0xe8"):
        VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)
    (tmp_path / "a.txt").write_text("a white cockatoo")
    from vidiff.data.video_folder import VideoWindows

    def digest():
        return VideoWindows(VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)).describe()[
            "captions_sha256"]

    before = digest()  # the latent cache's index records it: a fixed caption is no longer kept from the old cache
    (tmp_path / "a.txt").write_text("a white cockatoo, fixed")
    assert digest() != before


def test_a_metadata_csv_saved_as_unicode_text_names_utf16(tmp_path):
    """Excel's "Unicode Text" (UTF-16 with a byte-order mark) was refused as "not UTF-8 text (byte 0xff at offset
    0)", naming neither the encoding nor the way out; Excel's "CSV UTF-8" (a UTF-8 byte-order mark) is read."""
    from vidiff.config import ConfigError
    from vidiff.data.video_folder import read_captions

    table = "file_name,text\na.mp4,a red circle\nb.mp4,a blue square\n"
    for encoding in ("utf-16", "utf-16-be", "utf-32"):  # "utf-16" writes the little-endian mark, as Windows does
        data = table.encode(encoding)
        (tmp_path / "metadata.csv").write_bytes(data if data[:2] in (b"\xff\xfe", b"\x00\x00")
                                                else b"\xfe\xff" + data)
        name = "UTF-32" if encoding == "utf-32" else "UTF-16"
        with pytest.raises(ConfigError, match=rf"metadata.csv: {name} text, not UTF-8; save it again as UTF-8 "
                                              r'\(Excel: "CSV UTF-8"'):
            read_captions(tmp_path)
    (tmp_path / "metadata.csv").write_bytes(b"\xef\xbb\xbf" + table.encode())
    assert read_captions(tmp_path) == {"a.mp4": "a red circle", "b.mp4": "a blue square"}


def test_a_metadata_csv_separated_by_tabs_or_semicolons_is_read(tmp_path):
    """Excel's "Unicode Text" separates its columns with tabs (saved again as UTF-8, `iconv -f UTF-16 -t UTF-8`, it
    stays so), and its "CSV" with semicolons where the decimal mark is a comma: both were refused as "needs the
    columns file_name and text (it has ['file_name\\ttext'])". A comma inside a caption stays in it."""
    from vidiff.data.video_folder import read_captions
    from vidiff.errors import InputError

    want = {"a.mp4": "a red circle, moving left", "b.mp4": "a blue; square"}
    for table in ('file_name\ttext\r\na.mp4\ta red circle, moving left\r\nb.mp4\t"a blue; square"\r\n',
                  '"file_name";"text"\na.mp4;a red circle, moving left\nb.mp4;"a blue; square"\n',
                  'file_name,text\na.mp4,"a red circle, moving left"\nb.mp4,a blue; square\n'):
        (tmp_path / "metadata.csv").write_text(table)
        assert read_captions(tmp_path) == want, table
    (tmp_path / "metadata.csv").write_text("name\tcaption\na.mp4\tx\n")
    with pytest.raises(InputError, match=r"needs the columns file_name and text \(it has \['name\\tcaption'\]\)"):
        read_captions(tmp_path)


def test_metadata_file_names_written_as_paths_are_matched(tmp_path, caplog):
    """file_name "./a.mp4" or a Windows "sub\\b.mp4" named no clip: the clip trained with the empty caption and the
    warning called the row a clip not in the folder. The case is matched as written."""
    from vidiff.data.video_folder import read_captions
    from vidiff.errors import InputError

    for name in ("a.mp4", "sub/b.mp4", "sub/c.mp4", "D.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        io.write_video(tmp_path / name, counter_clip(8, 0), fps=8)
    rows = [("./a.mp4", "dot"), ("sub\\b.mp4", "backslash"), ("sub//c.mp4", "double"), ("d.mp4", "lower case")]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f, "text": t}) + "\n" for f, t in rows))
    with caplog.at_level("WARNING", logger="vidiff"):
        ds = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)
    captions = {p.relative_to(tmp_path).as_posix(): c for p, _, _, c in ds.items}
    assert captions == {"a.mp4": "dot", "sub/b.mp4": "backslash", "sub/c.mp4": "double", "D.mp4": ""}
    assert "name 1 clip(s) not in the folder or not readable, e.g. d.mp4" in caplog.text
    (tmp_path / "metadata.jsonl").unlink()
    (tmp_path / "metadata.csv").write_text("file_name,text\n.\\a.mp4,csv\n")
    assert read_captions(tmp_path) == {"a.mp4": "csv"}
    (tmp_path / "metadata.csv").write_text("file_name,text\na.mp4,csv\nsub/b.mp4\n")  # a row of one cell
    with pytest.raises(InputError, match=r"metadata.csv:3: needs a file_name and a text"):
        read_captions(tmp_path)


def test_a_clip_named_on_two_metadata_lines_is_said(tmp_path, caplog):
    """Two metadata.jsonl rows for one clip: the last won without a word (in metadata.csv the first did). Now the
    last wins in both, said once naming the file and its lines, "./a.mp4" and "a.mp4" being one clip."""
    from vidiff.data.video_folder import read_captions

    rows = [("a.mp4", "first"), ("b.mp4", "b"), ("./a.mp4", "second"), ("c.mp4", "c1"), ("c.mp4", "c2")]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f, "text": t}) + "\n" for f, t in rows))
    with caplog.at_level("WARNING", logger="vidiff"):
        assert read_captions(tmp_path) == {"a.mp4": "second", "b.mp4": "b", "c.mp4": "c2"}
    assert len(caplog.records) == 1
    assert ("metadata.jsonl: 2 clip(s) named on more than one line, each captioned by its last: a.mp4 (lines 1, 3); "
            "c.mp4 (lines 4, 5)") in caplog.text
    (tmp_path / "metadata.jsonl").unlink()
    (tmp_path / "metadata.csv").write_text("file_name,text\na.mp4,first\nb.mp4,b\na.mp4,second\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidiff"):
        assert read_captions(tmp_path) == {"a.mp4": "second", "b.mp4": "b"}
    assert "metadata.csv: 1 clip(s) named on more than one line, each captioned by its last: a.mp4 (lines 2, 4)" \
        in caplog.text


def test_metadata_jsonl_and_csv_together_are_said(tmp_path, caplog):
    """With both metadata files the csv captioned only the clips the jsonl lacks, without a word."""
    from vidiff.data.video_folder import read_captions

    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.mp4", "text": "jsonl a"}) + "\n")
    (tmp_path / "metadata.csv").write_text("file_name,text\na.mp4,csv a\nb.mp4,csv b\nc.mp4,csv c\n")
    with caplog.at_level("WARNING", logger="vidiff"):
        assert read_captions(tmp_path) == {"a.mp4": "jsonl a", "b.mp4": "csv b", "c.mp4": "csv c"}
    assert len(caplog.records) == 1
    assert ("both metadata.jsonl and metadata.csv are here: metadata.jsonl wins for a clip both name (1), "
            "metadata.csv captions only the 2 clip(s) metadata.jsonl does not name") in caplog.text


def test_a_sidecar_caption_saved_with_windows_line_ends(tmp_path):
    r"""A `<clip>.txt` saved with CRLF line ends (Notepad) kept "\r" in the caption: "one\r\ntwo". A jsonl text is a
    JSON string written on purpose, and is kept as given."""
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        io.write_video(tmp_path / name, counter_clip(8, 0), fps=8)
    (tmp_path / "a.txt").write_bytes(b"a red circle\r\nmoving left\r\n")
    (tmp_path / "b.txt").write_bytes(b"old mac\rline ends\r")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "c.mp4", "text": "kept\r\nas given"}) + "\n")
    ds = VideoFolderDataset(tmp_path, num_frames=4, size=(32, 32), scan_workers=1)
    assert {p.name: c for p, _, _, c in ds.items} == {"a.mp4": "a red circle\nmoving left",
                                                      "b.mp4": "old mac\nline ends", "c.mp4": "kept\r\nas given"}


def test_a_clip_of_sparse_frames_is_resampled_at_their_own_rate(tmp_path):
    """An AVI whose index skips frame slots (opencv-doc's tree.avi: 444 slots at 15 fps, 68 frames) was resampled to
    a --fps at the header's rate: at 14/3 fps a window took every third or fourth of its frames, 3.2 times the time
    it says it spans (a cache or training run learnt motion that fast), and this one of 8 frames was skipped as too
    short ("a clip needs 10"), as a variable-rate MKV stating 1000 fps was. Its frames' own mean rate (7/3 fps here)
    is the rate now: each frame is read twice."""
    from test_io_formats import sparse_avi

    root = tmp_path / "clips"
    root.mkdir()
    sparse_avi(root / "sparse.avi", [0, 6, 13, 19, 26, 32, 39, 45], size=32)  # frame i is grey 20 * i
    ds = VideoFolderDataset(root, num_frames=4, fps=14 / 3, size=(32, 32), scan_workers=1)
    assert ds.items[0][2] == pytest.approx(7 / 3)
    greys = ((ds.read_clip(0, lambda i: 0)["video"] + 1) * 127.5).mean(dim=(0, 2, 3))
    assert greys.tolist() == pytest.approx([0, 0, 20, 20], abs=3)


@pytest.mark.parametrize("row, said", [
    ('{"file_name": "a.mp4", "text": null}', "must be JSON strings (text is null)"),  # trained as the caption "None"
    ('{"file_name": "a.mp4", "text": ["a red circle"]}', 'text is ["a red circle"]'),  # as "['a red circle']"
    ('{"file_name": 5, "text": "x"}', "(file_name is 5)"),
    ('{"file_name": "a.mp4", "text": 1' + "0" * 5000 + "}", "needs a JSON object with 'file_name' and 'text' "
     "(Exceeds the limit (4300 digits)"),  # a ValueError traceback
])
def test_a_metadata_jsonl_row_that_is_not_two_strings_is_refused_naming_its_line(tmp_path, row, said):
    from vidiff.data.video_folder import read_captions
    from vidiff.errors import InputError

    (tmp_path / "metadata.jsonl").write_text('{"file_name": "b.mp4", "text": "fine"}\n' + row + "\n")
    with pytest.raises(InputError, match=r"metadata.jsonl:2: ") as caught:
        read_captions(tmp_path)
    assert said in str(caught.value)


def test_a_caption_holding_a_line_separator_character_is_read_whole(tmp_path):
    """json.dumps(ensure_ascii=False) leaves U+2028 / U+2029 / U+0085 raw inside a caption; str.splitlines() split
    the row there, and training and `eval shapes` refused it as "Unterminated string". CRLF line ends still read."""
    from vidiff.data.video_folder import read_captions
    from vidiff.eval.shapes import _metadata_prompts

    text = "a red circle\u2028moving left\u0085now"
    rows = [{"file_name": "a.mp4", "text": text}, {"file_name": "b.mp4", "text": "fine"}]
    (tmp_path / "metadata.jsonl").write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n",
                                             encoding="utf-8", newline="")
    captions = read_captions(tmp_path)
    assert sorted(captions.values()) == sorted([text, "fine"])
    assert sorted(_metadata_prompts(tmp_path).values()) == sorted([text, "fine"])
