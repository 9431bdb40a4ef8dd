"""Output safety (vidiff/output_safety.py), the safe YAML loader, deterministic writers, 16-bit images, metrics and
checkpoint crash safety: the library-level checks behind the CLI battery in test_hostile_inputs.py."""
from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidiff import io
from vidiff.config import ConfigError, parse_yaml
from vidiff.errors import InputError
from vidiff.output_safety import (
    NAME_MAX, OutputError, atomic_write, check_output, is_our_temporary, open_temporary, remove_stale_temporaries,
    temporary_name, write_text,
)

REPO = Path(__file__).resolve().parents[1]


def frames(count=10, size=48, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(0, 30, (count, size, size, 3), dtype=np.uint8), axis=0, dtype=np.uint8)


# ---- check_output ------------------------------------------------------------------------------------------------


def test_check_output_refuses_inputs_through_links(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"clip")
    (tmp_path / "soft.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    (tmp_path / "sub").mkdir()
    for out in (src, tmp_path / "soft.mp4", tmp_path / "hard.mp4", tmp_path / "sub" / ".." / "in.mp4"):
        with pytest.raises(InputError, match="is the input"):
            check_output(out, [src])
    assert check_output(tmp_path / "other.mp4", [src]) == tmp_path / "other.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "in.mp4", "soft.mp4", "sub"]  # probe removed


def test_check_output_refuses_folders_fifos_long_names_and_unwritable_places(tmp_path):
    (tmp_path / "d.mp4").mkdir()
    os.mkfifo(tmp_path / "f.mp4")
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path / "d.mp4")
    with pytest.raises(InputError, match="not a regular file"):
        check_output(tmp_path / "f.mp4")
    with pytest.raises(InputError, match=f"256 bytes; the limit is {NAME_MAX}"):
        check_output(tmp_path / ("a" * 252 + ".mp4"))
    with pytest.raises(InputError, match="cannot write in folder /proc"):
        check_output("/proc/x.mp4")
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "missing" / "x.mp4", create_folder=False)
    assert check_output(tmp_path / "missing" / "x.mp4") and not (tmp_path / "missing").exists()
    # a file where a folder of the path should be: os.stat's ENOTDIR read "cannot check the output (Not a directory)"
    (tmp_path / "in.mp4").write_bytes(b"a clip")
    for out, create in ((tmp_path / "in.mp4" / "x.mp4", True), (tmp_path / "in.mp4" / "sub" / "x.mp4", False)):
        with pytest.raises(InputError) as e:
            check_output(out, create_folder=create)
        assert str(e.value) == f"-o {out}: {tmp_path / 'in.mp4'} is a file, not a folder"
    # "-o out.mp4/" names a folder that does not exist yet; Path() would drop the slash and write a file
    with pytest.raises(InputError, match="ends with /, so it names a folder"):
        check_output(f"{tmp_path}/new.mp4/")


def test_a_255_byte_name_writes_and_its_temporary_stays_short(tmp_path):
    out = tmp_path / ("b" * 251 + ".mp4")  # exactly 255 bytes: the old ".NAME.xxxxxxxx.tmp.mp4" passed 255
    assert len(temporary_name(out).encode()) < 80 and is_our_temporary(temporary_name(out))
    io.write_video(out, frames(4), 8)
    assert io.read_video(out)[0].shape == (4, 48, 48, 3)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


# ---- atomic writes -----------------------------------------------------------------------------------------------


def test_planted_symlinks_are_replaced_never_followed(tmp_path):
    from vidiff.sidecar import write_contact_sheet, write_sidecar

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out.mp4"
    for name in ("out.mp4", "out.mp4.json", "out.mp4.json.tmp", "out.sheet.png", "report.html.tmp"):
        (tmp_path / name).symlink_to(victim)
    io.write_video(out, frames(4), 8)
    write_sidecar(out, {"seed": 1})
    write_contact_sheet(out, frames(4))
    assert victim.read_text() == "keep me"
    assert not out.is_symlink() and io.read_video(out)[0].shape[0] == 4
    assert json.loads((tmp_path / "out.mp4.json").read_text()) == {"seed": 1}
    assert (tmp_path / "out.sheet.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "a.json"
    out.write_text("old")

    def half(f):
        f.write(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(out, half)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match="no space left on the device"):
        atomic_write(out, lambda f: (_ for _ in ()).throw(disk_full))
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_ctrl_c_at_any_line_of_a_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    """Ctrl-C (or SIGTERM, which the CLI raises as an exception too) lands between two lines: raised at each line
    of output_safety.py in turn, the target is the old or the new file and no temporary is left. Between
    os.open and the lock the temporary was left behind (4 of 40 Ctrl-C of `vidiff data shapes`)."""
    import vidiff.output_safety as output_safety

    out = tmp_path / "a.json"
    out.write_text("old")
    for n in itertools.count(1):
        lines = 0

        def tracer(frame, event, arg):
            nonlocal lines
            if frame.f_code.co_filename != output_safety.__file__:
                return None
            if event == "line":
                lines += 1
                if lines == n:
                    raise KeyboardInterrupt
            return tracer

        sys.settrace(tracer)
        try:
            write_text(out, "new")
            finished = True
        except KeyboardInterrupt:
            finished = False
        finally:
            sys.settrace(None)
        assert out.read_text() in ("old", "new") and [p.name for p in tmp_path.iterdir()] == ["a.json"], n
        if finished:
            break
    assert n > 20 and out.read_text() == "new"


def test_orphaned_and_day_old_temporaries_go_on_the_next_write(tmp_path):
    old = time.time() - 2 * 86400
    orphan = tmp_path / temporary_name(tmp_path / "a.mp4")  # left by a kill -9: nobody holds its lock
    orphan.write_bytes(b"half")
    os.utime(orphan, (time.time() - 5, time.time() - 5))
    legacy = tmp_path / ".a.0123abcd.tmp.mp4"  # the previous writer's naming, a day old
    legacy.write_bytes(b"half")
    os.utime(legacy, (old, old))
    young_legacy = tmp_path / ".b.0123abcd.tmp.mp4"
    young_legacy.write_bytes(b"maybe in use")
    mine = tmp_path / ".notes.txt"  # not ours
    mine.write_text("user file")
    os.utime(mine, (old, old))
    with open_temporary(tmp_path / "c.mp4") as (_, live):  # a live writer in this folder keeps its temporary
        os.utime(live, (time.time() - 5, time.time() - 5))
        write_text(tmp_path / "x.json", "{}")
        names = {p.name for p in tmp_path.iterdir()}
        assert live.name in names
    assert orphan.name not in names and legacy.name not in names
    assert {young_legacy.name, mine.name, "x.json"} <= names
    assert remove_stale_temporaries(tmp_path) == 1  # the writer above closed without renaming: now an orphan
    assert live.name not in {p.name for p in tmp_path.iterdir()}


# ---- deterministic writers and timing ----------------------------------------------------------------------------

_WRITE = """
import sys, numpy as np
from vidiff.io import write_video
rng = np.random.default_rng(0)
frames = np.cumsum(rng.integers(0, 30, (12, 64, 64, 3), dtype=np.uint8), axis=0, dtype=np.uint8)
for path in sys.argv[1:]:
    write_video(path, frames, 8)
"""


def test_two_processes_write_identical_files_in_every_format(tmp_path):
    outs = []
    for run in ("a", "b"):
        paths = [str(tmp_path / f"{run}{suffix}") for suffix in (".mp4", ".webm", ".gif")]
        env = {**os.environ, "OMP_NUM_THREADS": "4"}  # threads must not change the encode
        subprocess.run([sys.executable, "-c", _WRITE, *paths], check=True, cwd=REPO, env=env)
        outs.append(paths)
    for a, b in zip(*outs):
        assert Path(a).read_bytes() == Path(b).read_bytes(), a
        assert np.array_equal(io.read_video(a)[0].numpy(), io.read_video(b)[0].numpy())


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
@pytest.mark.parametrize("fps", [0.1, 1.0, 7.5, 23.976, 240.0])
def test_files_play_at_the_requested_fps(tmp_path, suffix, fps):
    path = io.write_video(tmp_path / f"a{suffix}", frames(6, 32), fps)
    info = io.probe_video(path)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(6 / fps, rel=0.02)


def test_gif_plays_at_the_requested_fps_and_refuses_rates_it_cannot_show(tmp_path):
    path = io.write_video(tmp_path / "a.gif", frames(8, 32), 8)
    assert io.probe_video(path).duration == pytest.approx(1.0, abs=0.011)  # 8 frames at 12/13 cs
    with pytest.raises(InputError, match=r"\[0.1, 50\] for .gif"):
        io.write_video(tmp_path / "b.gif", frames(2, 32), 60)
    for bad in (1e-9, 0.0, float("nan"), float("inf"), 1e300, True):
        with pytest.raises(InputError, match=r"fps must be a number in \[0.1, 240\]"):
            io.write_video(tmp_path / "c.mp4", frames(2, 32), bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]


# ---- images ------------------------------------------------------------------------------------------------------


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    grey = np.array([[0, 257, 32768, 65535]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb = io.read_image(tmp_path / "g16.png").numpy()
    assert rgb.shape == (1, 4, 3) and rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb == rgb[..., :1]).all()
    Image.new("RGBA", (2, 2), (10, 20, 30, 0)).save(tmp_path / "a.png")
    assert io.read_image(tmp_path / "a.png")[0, 0].tolist() == [10, 20, 30]  # alpha dropped, colour kept
    Image.new("F", (2, 2), 0.5).save(tmp_path / "f.tiff")
    with pytest.raises(InputError, match="pixel mode 'F' is not supported"):
        io.read_image(tmp_path / "f.tiff")


def test_a_16_bit_pgm_reads_like_a_16_bit_png(tmp_path):
    """PIL opens a 16-bit PGM as mode "I", which was refused with "save it as ... 16-bit grey" (it was); a TIFF's
    "I" holds 32-bit samples and stays refused."""
    from PIL import Image

    grey = np.array([[0, 257, 32768, 65535]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.pgm")
    rgb = io.read_image(tmp_path / "g16.pgm").numpy()
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255] and (rgb == rgb[..., :1]).all()
    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "i32.tiff")
    with pytest.raises(InputError, match="pixel mode 'I' is not supported"):
        io.read_image(tmp_path / "i32.tiff")


# ---- YAML --------------------------------------------------------------------------------------------------------


def test_safe_yaml_keeps_config_scalars():
    assert parse_yaml("a: 1e-8\nb: no\nc: [1, 2]\nd: true\n") == {"a": 1e-8, "b": "no", "c": [1, 2], "d": True}
    assert parse_yaml("x: &a [1, 2]\ny: *a\n") == {"x": [1, 2], "y": [1, 2]}  # a few aliases are fine
    # YAML 1.1's base-60 and leading-zero octal stay text (1:00 was 60 steps, 010 was 8); the usual numbers do not
    assert parse_yaml("a: 1:00\nb: 010\nc: 0x1F\nd: -2.5\ne: 1_000\nf: .inf\ng: 1.0e-3\nh: 190:20:30.15\n") == {
        "a": "1:00", "b": "010", "c": 31, "d": -2.5, "e": 1000, "f": float("inf"), "g": 1e-3, "h": "190:20:30.15"}


@pytest.mark.parametrize("text, message", [
    ("a: 1\nb: 2\na: 3\n", "key 'a' appears twice in one mapping"),
])
def test_safe_yaml_refuses_a_duplicated_key(text, message):
    from vidiff.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_yaml(text)
    assert parse_yaml("base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n")["m"] == {"x": 2}  # a merge may be overridden


@pytest.mark.parametrize("text, message", [
    ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                                             for p, c in zip("abcdefg", "bcdefgh")), "expands to more than 100000"),
    ("x: !!python/object/apply:os.system [true]\n", "tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("x: !!binary aGk=\n", "is not allowed"),
    ("x: !local 3\n", "is not allowed"),
    ("x: " + "[" * 100 + "]" * 100, "nested deeper than 64"),
    ("x: &a [1, *a]\n", "recursive"),
    ("a: [1\n", "not valid YAML"),
    ("".join(f"k{i}: &a{i} 1\n" for i in range(300)) + "l: [" + ", ".join(f"*a{i}" for i in range(300)) + "]",
     "more than 256 aliases"),
])
def test_safe_yaml_refusals_are_one_line(text, message):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message) as e:
        parse_yaml(text, where="t.yaml")
    assert time.perf_counter() - start < 2.0
    assert str(e.value).startswith("t.yaml") and "\n" not in str(e.value) and len(str(e.value)) < 400


def test_safe_yaml_files_must_be_regular_utf8_and_small(tmp_path):
    from vidiff.safe_yaml import MAX_BYTES, load_file

    (tmp_path / "a.yaml").write_bytes(b"a: \xff\n")
    os.mkfifo(tmp_path / "f.yaml")
    (tmp_path / "big.yaml").write_bytes(b"#" * (MAX_BYTES + 1))
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfa: 1\n")
    with pytest.raises(ConfigError, match="not UTF-8 text \\(byte 0xff at offset 3\\)"):
        load_file(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_file(tmp_path / "f.yaml")
    (tmp_path / "dir.yaml").mkdir()  # os.fdopen raised IsADirectoryError: [Errno 21] Is a directory: 3
    with pytest.raises(ConfigError, match="dir.yaml: a folder"):
        load_file(tmp_path / "dir.yaml")
    with pytest.raises(ConfigError, match="larger than the"):
        load_file(tmp_path / "big.yaml")
    assert load_file(tmp_path / "bom.yaml") == {"a": 1}


def test_error_messages_quote_at_most_about_200_characters():
    from vidiff.config import apply_overrides, from_dict
    from vidiff.pipeline.config import PipelineConfig

    with pytest.raises(ConfigError) as e:
        from_dict(PipelineConfig, {"fps": "z" * 100_000})
    assert len(str(e.value)) < 300 and "zzz..." in str(e.value)
    with pytest.raises(ConfigError) as e:
        from_dict(PipelineConfig, {f"k{i}" + "q" * 10_000: 1 for i in range(50)})
    assert len(str(e.value)) < 900 and "and 45 more" in str(e.value)
    with pytest.raises(ConfigError) as e:
        apply_overrides({}, ["x" * 100_000])
    assert len(str(e.value)) < 300


# ---- pipeline folders --------------------------------------------------------------------------------------------


def test_part_paths_must_stay_inside_the_pipeline_folder(tmp_path):
    from vidiff.pipeline.config import PartsConfig, PipelineConfig, part_paths

    (tmp_path / "p" / "vae").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "p" / "link").symlink_to(tmp_path / "elsewhere")
    folder = tmp_path / "p"
    assert part_paths(folder, PipelineConfig())["vae"] == folder / "vae"
    for bad in ("../elsewhere", str(tmp_path / "elsewhere"), "link", "vae/../..", "", "."):
        with pytest.raises(ConfigError, match="parts.keyframes .* leads outside the pipeline folder"):
            part_paths(folder, PipelineConfig(parts=PartsConfig(keyframes=bad)))


def test_a_deeply_nested_safetensors_header_is_refused_before_parsing(tmp_path):
    import struct

    from vidiff.parts import check_safetensors_header, json_nesting

    header = b"[" * 200_000 + b"]" * 200_000
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(InputError, match="nested 200000 levels deep"):
        check_safetensors_header(tmp_path / "m.safetensors")
    assert json_nesting(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}') == 3


# ---- training: metrics.jsonl and checkpoints ---------------------------------------------------------------------


def test_metrics_are_never_rewritten_in_place(tmp_path, monkeypatch):
    from vidiff.training import logging as run_logging

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    inode = path.stat().st_ino
    run_logging.truncate_metrics(path, 3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "killed")))
    with pytest.raises(OutputError):
        run_logging.truncate_metrics(path, 1)  # a failure at the worst moment: the history is intact
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_a_full_disk_while_logging_metrics_is_one_line_and_leaves_no_torn_line(tmp_path, file_size_limit):
    """metrics.jsonl grows by a line per logged step; a disk that filled there (here the file-size limit) ended
    training in an OSError traceback and left the half line it had written."""
    from vidiff.training.logging import MetricsLogger, read_metrics

    logger = MetricsLogger(tmp_path, None)
    row = {"step": 1, "loss": 0.5, "note": "x" * 200}
    line_bytes = len(json.dumps(row)) + 1
    with file_size_limit(3 * line_bytes + line_bytes // 2):
        for step in (1, 2, 3):
            logger.log({**row, "step": step})
        with pytest.raises(OutputError, match=r"metrics\.jsonl: cannot log step 4 \(file too large: over the "
                                              r"file-size limit") as e:
            logger.log({**row, "step": 4})
    assert "\n" not in str(e.value)
    text = (tmp_path / "metrics.jsonl").read_text()
    assert text.endswith("}\n") and [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    assert len(text) == 3 * line_bytes
    logger.log({**row, "step": 4})  # room again: logging goes on
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    logger.close()


def test_a_full_checkpoint_folder_is_one_line_and_leaves_the_old_ones(tmp_path, monkeypatch):
    import safetensors.torch
    import torch

    from vidiff.training import checkpoint as ckpt

    sd = {"model": {"w": torch.arange(4.0)}}
    ckpt.save_checkpoint(tmp_path, 1, sd, {"state": {"step": 1}}, "h", keep=2)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(ckpt.CheckpointWriteError, match="no space left on the device") as e:
        ckpt.save_checkpoint(tmp_path, 2, sd, {"state": {"step": 2}}, "h", keep=2)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000001"] and ckpt.verify(tmp_path / "step_00000001")


def test_a_checkpoint_past_the_file_size_limit_says_why_in_words(tmp_path, file_size_limit):
    """safetensors' own writer reports a full disk as "Error while serializing: I/O error: File too large (os error
    27)"; the line says it as the other writes do, and the older checkpoint stays."""
    import torch

    from vidiff.training import checkpoint as ckpt

    small = {"model": {"w": torch.arange(4.0)}}
    ckpt.save_checkpoint(tmp_path, 1, small, {"state": {"step": 1}}, "h", keep=2)
    with file_size_limit(64 * 1024):
        with pytest.raises(ckpt.CheckpointWriteError, match=r"cannot write checkpoint step 2 \(file too large: over "
                                                            r"the file-size limit \(ulimit -f\)"):
            ckpt.save_checkpoint(tmp_path, 2, {"model": {"w": torch.zeros(65536)}}, {"state": {"step": 2}}, "h", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000001"] and ckpt.verify(tmp_path / "step_00000001")


@pytest.mark.parametrize("mask", [0o022, 0o007])
def test_checkpoints_clips_and_sidecars_get_the_mode_open_would_give(tmp_path, mask):
    """A checkpoint's .safetensors came out 0600 (safetensors' save_file) and every atomic write 0644 whatever the
    umask: a run folder shared with a group was unreadable, or not group-writable under umask 002 / 007."""
    import stat

    import torch

    from vidiff.training import checkpoint as ckpt

    before = os.umask(mask)
    try:
        folder = ckpt.save_checkpoint(tmp_path / "ckpt", 1, {"model": {"w": torch.arange(4.0)}},
                                      {"state": {"step": 1}}, "h", keep=2)
        clip = io.write_video(tmp_path / "a.gif", frames(3, 16), fps=8)
        sidecar = write_text(tmp_path / "a.json", "{}\n")
    finally:
        os.umask(before)
    files = [*folder.iterdir(), clip, sidecar]
    assert {p.name for p in files} >= {"model.safetensors", "state.json", "manifest.json", "a.gif", "a.json"}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(0o666 & ~mask) for p in files}


def test_a_corrupt_newest_checkpoint_never_counts_toward_keep(tmp_path):
    import torch

    from vidiff.training import checkpoint as ckpt

    sd = {"model": {"w": torch.arange(64.0)}}
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, sd, {"state": {"step": step}}, "h", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000002", "step_00000003"]
    weights = tmp_path / "step_00000003" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # same size, one flipped byte: only the hash can tell
    weights.write_bytes(bytes(data))
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000002"
    ckpt.save_checkpoint(tmp_path, 4, sd, {"state": {"step": 4}}, "h", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000002", "step_00000004"]


# ---- report ------------------------------------------------------------------------------------------------------


def test_report_inline_reads_only_regular_files_inside_the_run(tmp_path):
    from PIL import Image

    from vidiff.eval.report import build_report

    run = tmp_path / "run"
    (run / "previews").mkdir(parents=True)
    Image.new("RGB", (4, 4), (200, 0, 0)).save(run / "previews" / "a.gif")
    page = build_report(run, inline=True)
    assert "data:image/gif;base64," in page.read_text()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (run / "previews" / "b.gif").symlink_to(secret)
    before = page.read_bytes()
    with pytest.raises(InputError, match="leads outside the run folder"):
        build_report(run, inline=True)
    assert page.read_bytes() == before  # the old page stays whole
    os.unlink(run / "previews" / "b.gif")
    os.mkfifo(run / "previews" / "c.gif")
    start = time.perf_counter()
    with pytest.raises(InputError, match="not a regular file"):
        build_report(run, inline=True)
    assert time.perf_counter() - start < 5


def test_hashes_of_victims_behind_every_temporary_name(tmp_path):
    """Every fixed name the old writers used for temporaries, planted as a symlink: no write follows one."""
    from vidiff.eval.report import build_report
    from vidiff.training.logging import truncate_metrics

    victim = tmp_path / "victim"
    victim.write_text("v")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    for name in ("report.html.tmp", "metrics.jsonl.tmp", "loss.png"):
        (run / name).symlink_to(victim)
    build_report(run)
    truncate_metrics(run / "metrics.jsonl", 1)
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="needs Linux's O_TMPFILE")
def test_the_write_probe_leaves_no_name_even_if_interrupted(tmp_path, monkeypatch):
    from vidiff import output_safety

    def interrupted(*args, **kwargs):  # a Ctrl-C landing on the probe's cleanup line
        raise KeyboardInterrupt

    monkeypatch.setattr(output_safety, "_unlink", interrupted)
    monkeypatch.setattr(os, "unlink", interrupted)
    assert output_safety._cannot_create_in(tmp_path) is None
    assert os.listdir(tmp_path) == []  # the probe was an unnamed file: nothing to clean up


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_exists_but_makes_no_files_is_said_so():
    """`-o /proc/x.mp4` said "cannot write in folder /proc (No such file or directory)" of a folder that exists."""
    from vidiff.output_safety import check_output

    with pytest.raises(InputError) as e:
        check_output("/proc/x.mp4")
    assert str(e.value) == "-o /proc/x.mp4: cannot write in folder /proc (the folder takes no new files)"


@pytest.mark.parametrize("suffix, size, limit", [(".mp4", 32, 100), (".mp4", 32, 2000), (".webm", 64, 100),
                                                 (".gif", 64, 100), (".gif", 64, 1000)])
def test_a_full_disk_while_a_clip_is_encoded_is_one_output_error(tmp_path, capfd, file_size_limit, suffix, size,
                                                                 limit):
    """A write past the file-size limit in the middle of an encode: PyAV keeps one error of its file callbacks at a
    time, so the next failing write or the mp4 muxer's seek back printed "PyAV library exception being dropped:"
    and a traceback on stderr (under `vidiff generate`'s one line), and one met while the trailer was written came
    out as PyAVCallbackError ("Error in PyAV callback"), a traceback. Now: the OutputError naming the file, nothing
    on stderr, nothing left, and the next write in the process is whole."""
    from vidiff.video_writer import write_video

    clip, out = frames(count=8, size=size), tmp_path / f"clip{suffix}"
    with file_size_limit(limit), pytest.raises(OutputError, match=r"clip\.\w+: write failed \(file too large"):
        write_video(out, clip, 8)
    assert capfd.readouterr().err == "" and list(tmp_path.iterdir()) == []
    write_video(out, clip, 8)
    assert io.read_video(out)[0].shape[0] == 8
