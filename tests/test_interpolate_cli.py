"""`vidiff interpolate`: its checks (exit 2, one line, before weights load), the bundled real-footage pipeline as
its default, the written clip and sidecar, and streaming that gives the file the in-memory up-conversion gives."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_interpolate import _clip, interp_only  # noqa: F401  (the tiny interpolation-only pipeline fixture)
from vidiff.cpu_precision import cpu_has_fast
from vidiff.pipeline.upconvert import upconvert

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "vidiff", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={"OMP_NUM_THREADS": "1", "PATH": ""}, timeout=timeout)


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    from vidiff.io import write_video

    path = tmp_path_factory.mktemp("video") / "in.mp4"
    write_video(path, _clip(3, 20, 36, seed=3), fps=10)
    return path


@pytest.mark.parametrize("extra,message", [
    (["--factor", "5"], "trained on windows of 3..5 frames"),  # prime: no split into trained gaps
    (["--fps", "25"], "not an integer multiple"),
    (["--factor", "1"], "--factor"),
    (["--factor", "2", "--tile", "8"], "--tile"),
    (["--factor", "2", "--decode-memory", "nan"], "--decode-memory"),
    (["--factor", "2", "--chunk", "1"], "--chunk"),
])
def test_interpolate_refuses_bad_arguments_before_loading(interp_only, small_video, tmp_path, extra, message):
    t0 = time.perf_counter()
    proc = _cli("interpolate", small_video, "-o", tmp_path / "out.mp4", "--model", interp_only, *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and not (tmp_path / "out.mp4").exists()
    assert time.perf_counter() - t0 < 30


def test_interpolate_refuses_missing_input_and_output_over_input(interp_only, small_video, tmp_path):
    proc = _cli("interpolate", tmp_path / "nope.mp4", "-o", tmp_path / "o.mp4", "--factor", "2", "--model", interp_only)
    assert proc.returncode == 2 and "nope.mp4" in proc.stderr
    proc = _cli("interpolate", small_video, "-o", small_video, "--factor", "2", "--model", interp_only)
    assert proc.returncode == 2 and "-o" in proc.stderr


def test_interpolate_without_model_uses_the_bundled_real_footage_pipeline(small_video, tmp_path):
    from vidiff.commands.interpolate import BUNDLED

    out = tmp_path / "o.mp4"
    proc = _cli("interpolate", small_video, "-o", out, "--factor", "2", "--quiet")  # 20x36: padded to 24x40
    assert proc.returncode == 0, proc.stderr
    record = json.loads(Path(str(out) + ".json").read_text())
    assert Path(record["model"]["folder"]).resolve() == BUNDLED.resolve(), record["model"]
    assert record["input_frames_exact"] is True and record["settings"]["frames_written"] == 5


def test_generate_on_an_interpolation_only_pipeline_exits_2(interp_only, tmp_path):
    proc = _cli("generate", "a red circle moving left", "-o", tmp_path / "g.mp4", "--model", interp_only)
    assert proc.returncode == 2 and "interpolation-only" in proc.stderr, proc.stderr


def test_interpolate_writes_the_upconverted_clip_and_sidecar(interp_only, small_video, tmp_path):
    from vidiff.commands.device_args import auto_dtype, dtype_name
    from vidiff.io import read_video

    out = tmp_path / "up.mp4"
    proc = _cli("interpolate", small_video, "-o", out, "--fps", "20", "--model", interp_only, "--seed", "5",
                "--quiet", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \(5 frames from 3, 20 fps, made in \d+\.\d s, \d+\.\d\d s per "
                        r"output frame\)\n", proc.stdout), proc.stdout  # the time it took, not the clip's length
    frames, fps = read_video(out)
    assert frames.shape == (5, 20, 36, 3) and fps == pytest.approx(20)
    record = json.loads(Path(str(out) + ".json").read_text())
    assert record["command"] == "interpolate" and record["seed"] == 5
    assert record["settings"]["factor"] == 2 and record["settings"]["frames_written"] == 5
    assert record["input_frames_exact"] is True
    assert set(record["model"]["sha256"]) == {"vae", "interpolation", "pipeline"}
    # --dtype auto: bf16 on a CPU with AMX-BF16 or AVX512-BF16 (2.4x faster there), else fp32
    assert record["settings"]["dtype"] == dtype_name(auto_dtype("cpu")) and record["settings"]["threads"] == 1
    # what ran, not the plan (chunk 8, tile 384): the 3 frames as one chunk, one tile of the 20x36 frame padded to
    # 24x40, its overlap at most half of that tile
    settings = record["settings"]
    assert (settings["chunk"], settings["tile"], settings["overlap"]) == (3, 40, 20)
    assert settings["passes"] == [{"factor": 2, "chunk": 3, "tile": 40}]
    # the sidecar says the tiling that ran: --tile 20 runs as 16 (a multiple of 8), --overlap 10 as half of that
    proc = _cli("interpolate", small_video, "-o", tmp_path / "t.mp4", "--factor", "2", "--model", interp_only,
                "--tile", "20", "--overlap", "10", "--quiet")
    assert proc.returncode == 0, proc.stderr
    tiled = json.loads(Path(str(tmp_path / "t.mp4") + ".json").read_text())["settings"]
    assert (tiled["tile"], tiled["overlap"], tiled["passes"][0]["tile"]) == (16, 8, 16)
    bf16 = tmp_path / "up_bf16.mp4"  # the networks in bf16: same frame count, inputs still exact
    proc = _cli("interpolate", small_video, "-o", bf16, "--factor", "2", "--model", interp_only, "--seed", "5",
                "--quiet", "--dtype", "bf16")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(Path(str(bf16) + ".json").read_text())
    expected = "bf16" if cpu_has_fast(torch.bfloat16) else "fp32"  # emulated bf16 falls back (cpu_precision.py)
    assert record["settings"]["dtype"] == expected and record["input_frames_exact"] is True
    assert read_video(bf16)[0].shape == frames.shape


def test_interpolate_streams_a_clip_longer_than_a_chunk_as_the_in_memory_upconvert(interp_only, tmp_path):
    """The command reads and writes chunk by chunk; its file is the one the whole-clip upconvert gives."""
    from vidiff.io import read_video, write_video
    from vidiff.pipeline import VideoPipeline

    source = write_video(tmp_path / "seven.mp4", _clip(7, 24, 40, seed=4), fps=10)
    out = tmp_path / "up.gif"  # GIF: deterministic bytes for the same frames (x264 very rarely is not)
    proc = _cli("interpolate", source, "-o", out, "--factor", "2", "--chunk", "3", "--model", interp_only,
                "--seed", "2", "--quiet", "--dtype", "fp32")  # as the pipeline below (auto is bf16 on AMX CPUs)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(Path(str(out) + ".json").read_text())
    assert record["settings"]["chunk"] == 3 and record["input_frames_exact"] is True
    assert record["settings"]["frames_in"] == 7 and record["settings"]["frames_written"] == 13
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(interp_only)
    frames, _ = read_video(source)
    whole = upconvert(lambda k, s, seed: pipe.fill_between(k, s, seed=seed), frames, 2, seed=2, chunk=3,
                      multiple=8, tile=record["settings"]["tile"], progress=False)
    assert out.read_bytes() == write_video(tmp_path / "whole.gif", whole, 20).read_bytes()


def test_a_factor_beyond_the_trained_gaps_runs_as_passes_within_them(interp_only, small_video, tmp_path):
    """The tiny part was trained on gaps 2..4: --factor 16 runs as 4 x 4, 6 as 2 x 3 (the most even split of the
    fewest passes), each pass up-converting the last one's frames; 5 (prime) and 7 are refused before loading."""
    from vidiff.commands.interpolate_plan import up_conversion_passes
    from vidiff.errors import InputError
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.pipeline.trained import read_trained_records

    config = read_pipeline_folder(interp_only)
    trained = read_trained_records(interp_only, config)["interpolation"]
    max_gap = config.interpolation.max_gap
    assert up_conversion_passes(4, max_gap, trained) == [4]
    assert up_conversion_passes(16, max_gap, trained) == [4, 4]
    assert up_conversion_passes(6, max_gap, trained) == [2, 3]
    assert up_conversion_passes(8, max_gap, trained) == [2, 4]
    assert up_conversion_passes(32, max_gap, trained) == [2, 4, 4]
    for factor in (5, 7, 10):
        with pytest.raises(InputError, match="--factor|trained on"):
            up_conversion_passes(factor, max_gap, trained)
    out = tmp_path / "x6.mp4"
    proc = _cli("interpolate", small_video, "-o", out, "--factor", "6", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(Path(str(out) + ".json").read_text())
    assert [p["factor"] for p in record["settings"]["passes"]] == [2, 3]
    assert record["settings"]["frames_written"] == 6 * (3 - 1) + 1 and record["input_frames_exact"] is True


def _validated(*argv):
    """`vidiff interpolate ARGV` parsed and checked (interpolate.validate: headers only, no weights); the args."""
    from vidiff.cli import build_parser
    from vidiff.commands.interpolate import validate

    args = build_parser().parse_args(["interpolate", *map(str, argv)])
    validate(args)
    return args


def test_a_small_tile_given_alone_takes_half_of_it_as_overlap(interp_only, small_video, tmp_path):
    """--tile below 64 used to be refused for the default --overlap 32, which the user never gave."""
    from vidiff.errors import InputError

    common = [small_video, "-o", tmp_path / "o.mp4", "--factor", "2", "--model", interp_only]
    assert _validated(*common, "--tile", "16").overlap == 8
    assert _validated(*common, "--tile", "100").overlap == 32
    assert _validated(*common).overlap == 32
    assert _validated(*common, "--tile", "16", "--overlap", "3").overlap == 3
    with pytest.raises(InputError, match=r"--overlap must be in \[0, 8\], got 9"):
        _validated(*common, "--tile", "16", "--overlap", "9")


def test_an_output_in_a_folder_not_made_yet_is_written_there(interp_only, small_video, tmp_path, capsys):
    """The checks let such an -o through (its folder can be made, as for generate); the writer used to refuse it
    after the weights had loaded ("video path ...: folder ... does not exist")."""
    from vidiff.cli import main
    from vidiff.io import read_video

    torch.set_num_threads(1)
    out = tmp_path / "new" / "deeper" / "up.mp4"
    assert main(["interpolate", str(small_video), "-o", str(out), "--factor", "2", "--model", str(interp_only),
                 "--quiet"]) == 0, capsys.readouterr().err
    assert read_video(out)[0].shape[0] == 5 and Path(str(out) + ".json").is_file()


def test_eval_interpolation_refuses_an_untrained_stride_without_offering_force_layout(interp_only, tmp_path,
                                                                                       capsys):
    """`eval interpolation --stride 5` on a part trained on gaps 2..4 named neither --stride nor a way out that the
    command has: it suggested --force-layout, which only generate and interpolate take."""
    from vidiff.cli import main
    from vidiff.commands.interpolate_plan import up_conversion_passes
    from vidiff.errors import InputError
    from vidiff.pipeline.config import read_pipeline_folder
    from vidiff.pipeline.trained import read_trained_records

    config = read_pipeline_folder(interp_only)
    trained = read_trained_records(interp_only, config)["interpolation"]
    with pytest.raises(InputError, match=r"\(--force-layout runs it anyway\)$") as e:  # interpolate's refusal keeps
        up_conversion_passes(5, config.interpolation.max_gap, trained)  # its hint, the flag alone (force_layout=True
    assert "force_layout" not in str(e.value)  # was named beside it)
    with pytest.raises(InputError, match=r"^--stride 5: one pass needs .*trained on windows of 3\.\.5") as e:
        up_conversion_passes(5, config.interpolation.max_gap, trained, name="--stride", can_force=False)
    assert "force" not in str(e.value)
    torch.set_num_threads(1)
    from vidiff.io import write_video

    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "long.mp4", _clip(6, 20, 36, seed=3), fps=10)  # long enough for stride 5
    assert main(["eval", "interpolation", "--model", str(interp_only), "--videos", str(tmp_path / "clips"),
                 "--stride", "5"]) == 2
    err = capsys.readouterr().err
    assert "--stride 5" in err and "force" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("device", ["cuda:x", "cuda:", "cuda:-1", "cuda:1.5", "cuda:0 "])
def test_a_malformed_cuda_device_is_refused_by_the_checks(interp_only, small_video, tmp_path, device):
    """Anything after "cuda:" used to pass; on a CUDA machine torch then failed with a traceback ("Invalid device
    string") as the weights loaded."""
    from vidiff.errors import InputError

    with pytest.raises(InputError, match="use auto, cpu, cuda or cuda:N"):
        _validated(small_video, "-o", tmp_path / "o.mp4", "--factor", "2", "--model", interp_only, "--device", device)


def test_a_cuda_device_past_the_machines_count_is_refused_before_loading(monkeypatch):
    """cuda:3 on a machine with one GPU: torch's "invalid device ordinal" traceback mid-load before; now one line."""
    from types import SimpleNamespace

    from vidiff.commands.device_args import resolve_device
    from vidiff.errors import InputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    args = SimpleNamespace(device="cuda:3", threads=None)
    with pytest.raises(InputError, match=r"--device cuda:3: this machine has 1 CUDA device\(s\), cuda:0 to cuda:0"):
        resolve_device(args)
    assert resolve_device(SimpleNamespace(device="cuda:0", threads=None)) == "cuda:0"
    assert resolve_device(SimpleNamespace(device="cuda", threads=None)) == "cuda"


def test_a_clip_whose_header_estimates_one_frame_is_up_converted_from_its_frames(interp_only, tmp_path, capsys):
    """MPEG-PS stores no frame count; FFmpeg estimates a short clip's duration from the bitrate, and 3 frames read
    as 1 in the header: the command refused it as '1 frame(s); interpolation needs at least 2'."""
    import av

    from vidiff.cli import main
    from vidiff.io import probe_video, read_video

    clip = tmp_path / "camcorder.mpg"
    with av.open(str(clip), "w", format="mpeg") as container:
        stream = container.add_stream("mpeg2video", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in _clip(3, 32, 32, seed=4).numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert probe_video(clip).num_frames == 1  # the header's estimate
    out = tmp_path / "up.mp4"
    assert main(["interpolate", str(clip), "-o", str(out), "--factor", "2", "--model", str(interp_only),
                 "--quiet"]) == 0, capsys.readouterr().err
    frames, fps = read_video(out)
    assert frames.shape == (5, 32, 32, 3) and fps == pytest.approx(20)
    assert json.loads(Path(str(out) + ".json").read_text())["input_frames_exact"] is True
    one = tmp_path / "one.mp4"  # a clip of one frame is still refused before the weights load
    from vidiff.io import write_video

    write_video(one, _clip(1, 32, 32), fps=10)
    assert main(["interpolate", str(one), "-o", str(tmp_path / "o.mp4"), "--factor", "2", "--model", "nope"]) == 2
    assert "one.mp4: 1 frame(s); interpolation needs at least 2" in capsys.readouterr().err


def test_a_clip_of_sparse_frames_is_up_converted_at_their_own_rate(interp_only, tmp_path, capsys):
    """tree.avi of opencv-doc states 444 frames at 15 fps and holds 68 over its 29.5 s; up-converted at twice the
    header's rate the output played 6.5 times too fast. Its frames' own mean rate is what the factor multiplies."""
    from test_io_formats import sparse_avi

    from vidiff.cli import main
    from vidiff.io import probe_video

    clip, out = tmp_path / "sparse.avi", tmp_path / "up.mp4"
    sparse_avi(clip, [0, 6, 13, 19, 26, 32, 39, 45], size=32)
    assert main(["interpolate", str(clip), "-o", str(out), "--factor", "2", "--model", str(interp_only),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "its 8 frames span 3.4 s, 2.33 fps on average, where its header says 15 fps (46 frames)" in err
    written = probe_video(out)
    assert written.num_frames == 15 and written.fps == pytest.approx(14 / 3, rel=1e-3)
    record = json.loads(Path(str(out) + ".json").read_text())
    assert record["settings"]["fps_in"] == pytest.approx(7 / 3) and record["input_frames_exact"] is True


def test_a_clip_cut_short_is_said_before_the_work(interp_only, tmp_path):
    """A partial download decodes its first frames without an error; interpolate says so before it starts (the
    decoder says it again when it reaches the cut) and up-converts the frames there are."""
    import av
    from test_io_formats import _faststart_clip

    whole, cut, out = tmp_path / "whole.mp4", tmp_path / "cut.mp4", tmp_path / "up.mp4"
    _faststart_clip(whole, 40)
    with av.open(str(whole)) as container:
        starts = [p.pos for p in container.demux(container.streams.video[0]) if p.size]
    cut.write_bytes(whole.read_bytes()[: starts[20]])
    proc = _cli("interpolate", cut, "-o", out, "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.index(f"video {cut} looks cut short or damaged: its frames end at")
    assert "of the 5.0 s its header states; up-converting the frames it has" in proc.stderr
    assert first < proc.stderr.index(f"{cut} looks cut short or damaged: its frames end at", first + 1)


def test_an_odd_sized_clip_and_a_fractional_rate_are_said_and_recorded_as_written(interp_only, tmp_path):
    """A 35x21 clip (a GIF saved by PIL, so its odd size is the input's) is written 36x22 to an .mp4 and 35x21 to
    a .gif, and `--fps 20` on a 10.01 fps clip gives 20.02 fps: the padding and the rate are warned, and the
    sidecar's size is the file's, beside the input's."""
    from PIL import Image

    from vidiff.io import read_video, write_video

    odd = tmp_path / "odd.gif"
    images = [Image.fromarray(f) for f in _clip(3, 21, 35, seed=4).numpy()]
    images[0].save(odd, save_all=True, append_images=images[1:], duration=100, loop=0)
    out = tmp_path / "up.mp4"
    proc = _cli("interpolate", odd, "-o", out, "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "is 35x21: the .mp4 output is stored as 36x22" in proc.stderr and "plays at" not in proc.stderr
    assert read_video(out)[0].shape[1:3] == (22, 36)
    settings = json.loads(Path(str(out) + ".json").read_text())["settings"]
    assert settings["size"] == [36, 22] and settings["input_size"] == [35, 21]
    gif = tmp_path / "up.gif"  # GIF has no even-side rule: the size is kept, and nothing is said
    proc = _cli("interpolate", odd, "-o", gif, "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "stored as" not in proc.stderr and read_video(gif)[0].shape[1:3] == (21, 35)
    assert json.loads(Path(str(gif) + ".json").read_text())["settings"]["size"] == [35, 21]

    clip = tmp_path / "rate.mp4"
    write_video(clip, _clip(3, 20, 36, seed=4), fps=10.01)
    proc = _cli("interpolate", clip, "-o", tmp_path / "up2.mp4", "--fps", "20", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "the output plays at 20.02 fps, 2 x the clip's 10.01" in proc.stderr and "stored as" not in proc.stderr
    assert "audio track" not in proc.stderr  # vidiff's own clips are silent
    assert read_video(tmp_path / "up2.mp4")[1] == pytest.approx(20.02, abs=1e-3)


def test_the_cpu_time_note_speaks_only_for_long_runs():
    from vidiff.commands.interpolate_plan import cpu_time_note

    assert cpu_time_note(320, 240, 141) is None  # ~2 s a frame: under 10 minutes
    note = cpu_time_note(1920, 1080, 49)
    assert note.startswith("1920x1080 frames on the CPU: about 172 s per output frame") and "~2.3 h" in note


def test_a_clip_with_sound_is_told_its_audio_is_not_carried(interp_only, tmp_path):
    import av
    import numpy as np

    from vidiff.io import probe_video

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 36, 20, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for frame in _clip(3, 20, 36, seed=2).numpy():
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        samples.sample_rate = 16000
        container.mux(audio.encode(samples))
        container.mux(audio.encode())
    assert probe_video(path).audio
    proc = _cli("interpolate", path, "-o", tmp_path / "up.mp4", "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert f"video {path} has an audio track; the output holds the video only" in proc.stderr


def test_an_anamorphic_clip_keeps_its_pixel_shape(interp_only, tmp_path):
    """A clip of 36x20 stored pixels that are 4/3 as wide as tall (anamorphic DVD / HDV video, shown 48x20) was
    written with square pixels: the up-converted clip showed the picture squeezed to 36x20, without a word."""
    from fractions import Fraction

    import av

    from vidiff.io import probe_video

    path = tmp_path / "wide.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 36, 20, "yuv420p"
        video.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for frame in _clip(3, 20, 36, seed=2).numpy():
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
    assert probe_video(path).sample_aspect == Fraction(4, 3)
    out = tmp_path / "up.mp4"
    proc = _cli("interpolate", path, "-o", out, "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].sample_aspect_ratio == Fraction(4, 3)
    assert probe_video(out).sample_aspect == Fraction(4, 3)
    assert json.loads(Path(str(out) + ".json").read_text())["settings"]["sample_aspect"] == "4/3"
    proc = _cli("interpolate", path, "-o", tmp_path / "up.webm", "--factor", "2", "--model", interp_only, "--quiet")
    assert proc.returncode == 0 and "has non-square pixels (width / height 4/3): a .webm output shows them square" \
        in proc.stderr, proc.stderr


def test_a_given_tile_past_the_decode_memory_is_said(tmp_path):
    """--tile and --chunk are kept as given, and a given tile outgrowing --decode-memory ran without a word (a
    1080p clip at --tile 2048: about 10 GiB per decode pass against the 1.5 GiB budget)."""
    from vidiff.io import write_video

    clip = tmp_path / "in.mp4"
    write_video(clip, _clip(2, 240, 320, seed=5), fps=10)
    proc = _cli("interpolate", clip, "-o", tmp_path / "big.mp4", "--factor", "2", "--tile", "384",
                "--decode-memory", "0.05", "--quiet")  # the bundled pipeline: one 320x240 tile of 3 frames
    assert proc.returncode == 0, proc.stderr
    assert "--tile 384: a VAE decode pass of 320x240 frames takes about" in proc.stderr
    assert "over --decode-memory 0.05 GiB; left out, the tile and chunk are chosen to fit it" in proc.stderr
    proc = _cli("interpolate", clip, "-o", tmp_path / "fits.mp4", "--factor", "2", "--tile", "384", "--quiet")
    assert proc.returncode == 0 and "--decode-memory" not in proc.stderr, proc.stderr


def test_slow_motion_writes_the_frames_at_the_clips_rate(interp_only, small_video, tmp_path, capsys):
    """Slow motion was impossible: an output rate past the format's limit (10 fps x 6 = 60 fps for a GIF, 24 fps x
    16 = 384 for an .mp4) was refused without a way out; --slow-motion writes the frames at the clip's own rate."""
    from vidiff.cli import main
    from vidiff.io import read_video

    torch.set_num_threads(1)
    out = tmp_path / "slow.gif"
    common = [str(small_video), "-o", str(out), "--factor", "6", "--model", str(interp_only), "--quiet"]
    assert main(["interpolate", *common]) == 2
    err = capsys.readouterr().err
    assert "in [0.1, 50] for .gif files, got 60.0; --slow-motion writes the frames at the clip's 10 fps" in err, err
    assert main(["interpolate", *common, "--slow-motion"]) == 0, capsys.readouterr().err
    frames, fps = read_video(out)
    assert frames.shape[0] == 6 * (3 - 1) + 1 and fps == pytest.approx(10)
    settings = json.loads(Path(str(out) + ".json").read_text())["settings"]
    assert settings["slow_motion"] is True and settings["fps_out"] == pytest.approx(10)
    assert main(["interpolate", str(small_video), "-o", str(tmp_path / "f.mp4"), "--fps", "20", "--slow-motion",
                 "--model", str(interp_only)]) == 2
    assert "--slow-motion writes at the clip's 10 fps; give --factor instead of --fps 20" in capsys.readouterr().err


def test_each_pass_has_its_own_progress_bar_label(interp_only, small_video, tmp_path):
    """--factor 16 runs as 4 x 4: both bars were labelled 'interpolate' and counted input frames (2/2, then 8/8)."""
    proc = _cli("interpolate", small_video, "-o", tmp_path / "x16.mp4", "--factor", "16", "--model", interp_only,
                "--slow-motion")
    assert proc.returncode == 0, proc.stderr
    assert "pass 1/2: 100%" in proc.stderr and "9/9" in proc.stderr, proc.stderr
    assert "pass 2/2: 100%" in proc.stderr and "33/33" in proc.stderr, proc.stderr


def test_the_output_states_its_colour_matrix_as_the_clip_does(interp_only, tmp_path):
    """A phone clip states BT.709 (vidiff reads it so); its up-conversion was converted with BT.601 and stated
    nothing, and players guess BT.709 for an unstated HD stream: the output's greens showed 27 levels darker than
    the clip's. Now the output states BT.601; a clip that states no matrix gets an output that states none either,
    so that a player shows both with the matrix it guesses."""
    import av
    import numpy as np

    from vidiff.cli import main

    green = np.zeros((3, 32, 32, 3), np.uint8)
    green[:] = (30, 200, 60)
    for name, matrix in (("phone.mp4", 1), ("plain.mp4", None)):  # 1: AVCOL_SPC_BT709
        with av.open(str(tmp_path / name), "w") as container:
            stream = container.add_stream("libx264", rate=8)
            stream.width = stream.height = 32
            stream.pix_fmt = "yuv420p"
            if matrix:
                stream.codec_context.colorspace, stream.codec_context.color_range = matrix, 1
            for rgb in green:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame = frame.reformat(format="yuv420p", dst_colorspace=matrix or 5, dst_color_range=1)
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        out = tmp_path / f"up_{name}"
        assert main(["interpolate", str(tmp_path / name), "-o", str(out), "--factor", "2", "--model",
                     str(interp_only), "--quiet"]) == 0
        with av.open(str(out)) as container:
            frame = next(container.decode(video=0))
            assert int(frame.colorspace) == (6 if matrix else 2), name  # BT.601 (SMPTE 170M), or unstated
            shown = frame.reformat(format="rgb24", src_colorspace=int(frame.colorspace)).to_ndarray()
        if matrix:  # shown with the matrix it states: the clip's colour (BT.709 would give about 15, 173, 55)
            assert np.abs(shown.astype(int) - (30, 200, 60)).max() <= 4
