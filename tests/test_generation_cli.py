"""`vidiff generate | animate | extend` end to end with a tiny random pipeline, and every argument check."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff import __version__
from vidiff.cli import main
from vidiff.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny layers on a shared 2-core machine: one thread is the fastest
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory, one_thread, load_tool) -> Path:
    """A tiny random pipeline written by save_pretrained (2 sampler steps per stage)."""
    pytest.importorskip("vidiff.text")
    from vidiff.pipeline import VideoPipeline
    from vidiff.text import TextEncoder

    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    pipe = VideoPipeline(tool.pipeline_config(steps=2), vae, kf, it, TextEncoder.load("default"))
    return pipe.save_pretrained(tmp_path_factory.mktemp("pipe") / "tiny")


@pytest.fixture(scope="module")
def garbage_pipeline(tiny_pipeline, tmp_path_factory) -> Path:
    """The same folder with every weights file replaced by garbage bytes."""
    folder = tmp_path_factory.mktemp("garbage") / "pipe"
    shutil.copytree(tiny_pipeline, folder)
    for weights in folder.rglob("model.safetensors"):
        weights.write_bytes(b"\x00not safetensors at all" * 10)
    return folder


def test_generate_writes_mp4_and_sidecar(tiny_pipeline, tmp_path, capsys):
    import re

    from vidiff.io import read_video
    from vidiff.parts import file_sha256

    out = tmp_path / "clips" / "out.mp4"
    rc = main(["generate", "a red circle moving left", "-o", str(out), "--model", str(tiny_pipeline),
               "--seed", "5", "--num", "2", "--contact-sheet", "--quiet"])
    assert rc == 0
    # the seconds are the time it took, not the clip's length ("seed 5, 84.5 s)" read as a clip of 84.5 s)
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r"made in \d+\.\d s\)$", "made in T s)", line) for line in lines] == [
        f"wrote {out.with_name(f'out_{i:03d}.mp4')} (16 frames, 8 fps, seed {5 + i}, made in T s)" for i in range(2)]
    for i in range(2):
        path = out.with_name(f"out_{i:03d}.mp4")
        frames, fps = read_video(path)
        assert frames.shape == (16, 64, 64, 3) and fps == pytest.approx(8.0)
        record = json.loads(path.with_name(path.name + ".json").read_text())
        assert record["prompt"] == "a red circle moving left" and record["seed"] == 5 + i
        assert record["command"] == "generate" and record["vidiff_version"] == __version__
        assert record["settings"]["num_frames"] == 16 and record["settings"]["keyframe_stride"] == 5
        assert record["settings"]["keyframes"]["steps"] == 2 and record["settings"]["keyframes"]["sampler"] == "dpmpp_2m"
        assert record["model"]["folder"] == str(tiny_pipeline.resolve())
        assert record["model"]["sha256"]["keyframes"] == file_sha256(tiny_pipeline / "keyframes" / "model.safetensors")
        assert record["elapsed_s"] > 0 and record["output"] == path.name
        assert path.with_name(f"out_{i:03d}.sheet.png").is_file()


def test_animate_and_extend_through_the_cli(tiny_pipeline, tmp_path):
    from PIL import Image

    from vidiff.io import read_video, write_video

    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)  # other size: cropped + resized
    Image.fromarray(image).save(tmp_path / "still.png")
    rc = main(["animate", str(tmp_path / "still.png"), "a red circle moving left", "-o", str(tmp_path / "a.gif"),
               "--model", str(tiny_pipeline), "--quiet"])
    assert rc == 0
    record = json.loads((tmp_path / "a.gif.json").read_text())
    assert record["inputs"]["image_size"] == [128, 96] and record["command"] == "animate"
    assert read_video(tmp_path / "a.gif")[0].shape == (16, 64, 64, 3)

    clip = np.random.default_rng(1).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "in.mp4", clip, 8)
    rc = main(["extend", str(tmp_path / "in.mp4"), "a red circle moving left", "--frames", "7",
               "-o", str(tmp_path / "e.mp4"), "--model", str(tiny_pipeline), "--quiet"])
    assert rc == 0
    frames, _ = read_video(tmp_path / "e.mp4")
    assert frames.shape[0] == 13
    record = json.loads((tmp_path / "e.mp4.json").read_text())
    assert record["inputs"]["input_frames"] == 6 and record["settings"]["new_frames"] == 7
    assert record["settings"]["frames_written"] == 13
    assert record["settings"]["seam_fade"] == 4 and record["settings"]["strength"] == 1.0  # pipeline.yaml's


def test_extend_and_edit_keep_an_anamorphic_clips_pixel_shape(tiny_pipeline, tmp_path, capsys):
    """A clip whose pixels are 4/3 as wide as tall (anamorphic DVD / HDV video) was extended or edited into square
    pixels: the output showed the picture squeezed, without a word (interpolate kept the shape already)."""
    from fractions import Fraction

    import av

    from vidiff.io import probe_video

    clip = tmp_path / "wide.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for frame in np.random.default_rng(3).integers(0, 256, (11, 64, 64, 3), dtype=np.uint8):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert probe_video(clip).sample_aspect == Fraction(4, 3)
    for task, out, extra in (("extend", "e.mp4", ["--frames", "5"]), ("edit", "d.mp4", [])):
        assert main([task, str(clip), "a red circle moving left", "-o", str(tmp_path / out), *extra,
                     "--model", str(tiny_pipeline), "--quiet"]) == 0
        assert probe_video(tmp_path / out).sample_aspect == Fraction(4, 3), task
        assert json.loads((tmp_path / f"{out}.json").read_text())["inputs"]["sample_aspect"] == "4/3"
    capsys.readouterr()
    assert main(["edit", str(clip), "a red circle moving left", "-o", str(tmp_path / "d.gif"),
                 "--model", str(tiny_pipeline), "--quiet"]) == 0
    assert "has non-square pixels (width / height 4/3): a .gif output shows them square" in capsys.readouterr().err


def test_extend_and_edit_play_a_clip_of_sparse_frames_at_their_own_rate(tiny_pipeline, tmp_path, capsys):
    """An AVI whose index skips frame slots (opencv-doc's tree.avi: 444 slots at 15 fps, 68 frames) was extended or
    edited at the header's rate, so the output played 6.5 times too fast without a word (interpolate took the
    frames' own rate already); a variable-rate MKV whose header states its timebase's 1000 fps was refused
    ("fps ... must be a number in [0.1, 240]"), and with --fps its estimated 2626 frames were refused as over the
    1024-frame limit though it holds 11."""
    from fractions import Fraction

    import av
    from test_io_formats import sparse_avi

    from vidiff.io import probe_video

    sparse = tmp_path / "sparse.avi"
    sparse_avi(sparse, [round(6.5 * i) for i in range(11)])  # 11 frames over slots 0..65 of 15 fps: 2.31 fps
    for task, out, extra, frames in (("extend", "e.mp4", ["--frames", "5"], 16), ("edit", "d.mp4", [], 11)):
        assert main([task, str(sparse), "a red circle moving left", "-o", str(tmp_path / out), *extra,
                     "--model", str(tiny_pipeline), "--quiet"]) == 0
        written = probe_video(tmp_path / out)
        assert written.num_frames == frames and written.fps == pytest.approx(150 / 65, rel=1e-3), task
        assert json.loads((tmp_path / f"{out}.json").read_text())["settings"]["fps"] == pytest.approx(150 / 65)
        assert "its 11 frames span 4.8 s, 2.31 fps on average, where its header says 15 fps" in capsys.readouterr().err

    vfr = tmp_path / "screen.mkv"  # a frame every 125 ms, stated at 1000 fps
    with av.open(str(vfr), "w") as container:
        stream = container.add_stream("libx264", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(np.random.default_rng(4).integers(0, 256, (11, 64, 64, 3), dtype=np.uint8)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = 125 * i, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert probe_video(vfr).fps == pytest.approx(1000) and probe_video(vfr).estimated
    assert main(["extend", str(vfr), "a red circle moving left", "-o", str(tmp_path / "v.mp4"), "--frames", "5",
                 "--model", str(tiny_pipeline), "--quiet"]) == 0
    written = probe_video(tmp_path / "v.mp4")
    assert written.num_frames == 16 and written.fps == pytest.approx(8, rel=1e-3)


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    (tmp_path / "not_an_image.png").write_text("hello, I am text")
    (tmp_path / "clip.mp4").write_bytes(b"x" * 100)
    from vidiff.io import write_video

    write_video(tmp_path / "fifteen.mp4", np.zeros((15, 64, 64, 3), dtype=np.uint8), 8)
    g = ["generate", "a red circle", "-o", str(tmp_path / "o.mp4")]
    return [
        (["edit", str(tmp_path / "fifteen.mp4"), "x", "-o", str(tmp_path / "o.mp4")],
         "fifteen.mp4 has 15 frames, and edit keeps a clip's length: that does not fit .*clip lengths that fit at "
         "stride 5: 11, 16"),

        (g + ["--guidance", "nan"], "--guidance must be a finite number"),
        (g + ["--guidance", "-1"], "--guidance must be a finite number"),
        (g + ["--image-guidance", "-0.5"], "--image-guidance must be a finite number"),
        # settings that were taken and changed nothing (the sidecar said they were applied)
        (g + ["--image-guidance", "3"], "--image-guidance: guides the keyframes toward known frames, and this "
                                        "generate has none"),
        (g + ["--sampler", "ddim", "--pc-steps", "5"], "--pc-steps / --pc-snr: apply to the pc sampler .*not 'ddim'"),
        # the library's checks, named by the flags given (they said guidance_rescale:, churn:, pc_snr:)
        (g + ["--guidance-rescale", "nan"], r"error: --guidance-rescale: must be a number in \[0, 1\], got nan"),
        (g + ["--churn", "-1", "--sampler", "heun"], r"error: --churn: must be a number in \[0, 100\], got -1"),
        (g + ["--churn", "1"], "error: --churn: applies to the heun sampler"),
        (g + ["--sampler", "pc", "--pc-snr", "0"], r"error: --pc-snr: must be a number in \[1e-06, 1\], got 0"),
        (g + ["--sampler", "pc", "--pc-steps", "0"], r"error: --pc-steps: must be an integer in \[1, 20\], got 0"),
        (["edit", str(tmp_path / "fifteen.mp4"), "x", "--feather", "7", "-o", str(tmp_path / "o.mp4")],
         "--feather: blends a redrawn region into the kept clip; without a mask"),
        (["edit", str(tmp_path / "fifteen.mp4"), "x", "--strength", "1", "--repeats", "4", "-o", str(tmp_path / "o.mp4")],
         "--repeats: at strength 1"),
        (g + ["--steps", "0"], r"--steps must be in \[1, 1000\], got 0"),
        (g + ["--steps", "-4"], r"--steps must be in \[1, 1000\]"),
        (g + ["--sampler", "plms"], "--sampler 'plms' is unknown; choose one of dpmpp_2m"),
        (g + ["--frames", "16", "--keyframes", "5", "--stride", "5"], "does not fit 5 keyframes at stride 5"),
        (g + ["--num", "0"], r"--num must be in \[1, 10000\]"),
        (g + ["--threads", "0"], r"--threads must be in \[1, 1024\]"),
        (["generate", "x", "-o", str(tmp_path / "o.avi")], "output suffix must be one of .mp4, .webm, .gif"),
        (["animate", str(tmp_path / "missing.png"), "x", "-o", str(tmp_path / "o.mp4")], "missing.png: file not found"),
        (["animate", str(tmp_path / "not_an_image.png"), "x", "-o", str(tmp_path / "o.mp4")], "not a readable image"),
        (["extend", str(tmp_path / "missing.mp4"), "x", "--frames", "5", "-o", str(tmp_path / "o.mp4")], "file not found"),
        (["extend", str(tmp_path / "clip.mp4"), "x", "-o", str(tmp_path / "o.mp4")], "--frames: give the number"),
        (["extend", str(tmp_path / "clip.mp4"), "x", "--frames", "5", "--seam-fade", "-1", "-o", str(tmp_path / "o.mp4")],
         r"--seam-fade must be in \[0, 1024\], got -1"),
        (["extend", str(tmp_path / "clip.mp4"), "x", "--frames", "5", "--seam-fade", str(10**20), "-o",
          str(tmp_path / "o.mp4")], r"--seam-fade must be in \[0, 1024\]"),  # an OverflowError after sampling
        (["extend", str(tmp_path / "clip.mp4"), "x", "--frames", "5", "--strength", "2", "-o", str(tmp_path / "o.mp4")],
         r"--strength: must be a number in \[0, 1\], got 2.0"),
    ]


def test_bad_arguments_fail_fast_before_weights(garbage_pipeline, tmp_path, capsys):
    for argv, message in _bad_cases(tmp_path):
        start = time.perf_counter()
        rc = main(argv + ["--model", str(garbage_pipeline)])
        elapsed = time.perf_counter() - start
        err = capsys.readouterr().err.strip()
        assert rc == 2, argv
        assert err.startswith("vidiff: error: ") and "\n" not in err and "Traceback" not in err, err
        import re

        assert re.search(message, err), (message, err)
        assert elapsed < 1.0, (argv, elapsed)
    assert not list(tmp_path.glob("o.*"))


def test_edit_of_a_misfit_length_offers_what_the_bundled_pipeline_was_trained_on(tmp_path, capsys):
    """A 7-frame clip was offered "frame counts that fit: 6, 11", and a 6-frame clip is then refused (2 keyframes;
    the Shapes keyframe part was trained on 3..9); 7 frames are 3 keyframes at --stride 3, which was not said."""
    from vidiff.io import write_video

    write_video(tmp_path / "seven.mp4", np.zeros((7, 64, 64, 3), dtype=np.uint8), 8)
    assert main(["edit", str(tmp_path / "seven.mp4"), "x", "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("seven.mp4 has 7 frames, and edit keeps a clip's length: that does not fit the keyframe "
                        "layout with keyframe stride 5 (frames = (keyframes - 1) * stride + 1); --stride 3 fits it; "
                        "clip lengths that fit at stride 5: 11"), err
    assert main(["edit", str(tmp_path / "seven.mp4"), "x", "--stride", "3", "--steps", "1", "--quiet",
                 "-o", str(tmp_path / "o.mp4")]) == 0


def test_edit_of_a_clip_longer_than_every_trained_layout_says_so(tmp_path, capsys):
    """A 46-frame clip was told that "a longer clip asked by its length alone (num_frames, --frames) is continued
    by extension windows", which edit (no --frames; it keeps the clip's length) does not do."""
    from vidiff.io import write_video

    write_video(tmp_path / "long.mp4", np.zeros((46, 64, 64, 3), dtype=np.uint8), 8)
    for stride in ([], ["--stride", "3"]):
        assert main(["edit", str(tmp_path / "long.mp4"), "x", "-o", str(tmp_path / "o.mp4"), *stride]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("long.mp4 has 46 frames: too long for this pipeline, which edits clips of up to 41 "
                            "frames (9 keyframes at stride 5, the longest layout its parts were trained on); edit "
                            "it in parts of at most that length"), err
    assert not (tmp_path / "o.mp4").exists()


def test_edit_of_a_clip_shorter_than_every_trained_layout_says_so(tmp_path, capsys):
    """A 2-frame clip was offered "clip lengths that fit at stride 5: 11" (before that 6, 11, and 6 frames is 2
    keyframes, refused as untrained); no --stride makes it fit, so it is called too short, with the shortest
    length the bundled parts take. A 1-frame clip gets the same minimum (it was told 2 frames)."""
    from vidiff.io import write_video

    write_video(tmp_path / "two.mp4", np.zeros((2, 64, 64, 3), dtype=np.uint8), 8)
    for stride in ([], ["--stride", "3"]):
        assert main(["edit", str(tmp_path / "two.mp4"), "x", "-o", str(tmp_path / "o.mp4"), *stride]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("two.mp4 has 2 frames: too short for this pipeline, which edits clips of 7 frames or "
                            "more (3 keyframes at stride 3, the shortest layout its parts were trained on)"), err
    write_video(tmp_path / "one.mp4", np.zeros((1, 64, 64, 3), dtype=np.uint8), 8)
    assert main(["edit", str(tmp_path / "one.mp4"), "x", "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("one.mp4 has 1 frame: too short for this pipeline, which edits clips of 7 frames or more (3 "
                        "keyframes at stride 3, the shortest layout its parts were trained on); for a still image: "
                        "vidiff animate"), err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("task", ["extend", "edit"])
def test_a_clip_of_the_wrong_size_is_refused_from_its_header(garbage_pipeline, tmp_path, capsys, monkeypatch, task):
    """Its frames are never decoded: a 768x576 clip was read whole (2 GB) before its size was compared."""
    from vidiff import io

    io.write_video(tmp_path / "big.mp4", np.zeros((16, 48, 80, 3), dtype=np.uint8), 8)
    monkeypatch.setattr(io, "read_video", lambda *a, **k: pytest.fail("decoded a clip of the wrong size"))
    frames = ["--frames", "5"] if task == "extend" else []
    rc = main([task, str(tmp_path / "big.mp4"), "x", *frames, "-o", str(tmp_path / "o.mp4"),
               "--model", str(garbage_pipeline)])
    err = capsys.readouterr().err
    assert rc == 2 and "frames are 80x48, this pipeline makes 64x64; resize the clip first" in err, err


@pytest.mark.parametrize("task", ["extend", "edit"])
def test_a_still_image_given_as_the_video_is_refused(garbage_pipeline, tmp_path, capsys, task):
    """FFmpeg opens a PNG as a one-frame video at 25 fps: extend wrote a 25 fps clip from it."""
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "still.png")
    frames = ["--frames", "4"] if task == "extend" else []
    rc = main([task, str(tmp_path / "still.png"), "x", *frames, "-o", str(tmp_path / "o.mp4"),
               "--model", str(garbage_pipeline)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a still image, not a video; `vidiff animate IMAGE PROMPT`" in err, err


def test_an_edit_of_a_one_frame_clip_does_not_name_frames(garbage_pipeline, tmp_path, capsys):
    """It said "--frames must be an integer >= 2", an option edit refuses. With --force-layout no trained grid
    sets the minimum: 2 frames (2 keyframes at stride 1)."""
    from vidiff import io

    io.write_video(tmp_path / "one.mp4", np.zeros((1, 64, 64, 3), np.uint8), 8)
    rc = main(["edit", str(tmp_path / "one.mp4"), "x", "-o", str(tmp_path / "o.mp4"), "--model", str(garbage_pipeline),
               "--force-layout"])
    err = capsys.readouterr().err
    assert rc == 2 and "has 1 frame: too short; an edit redraws clips of 2 frames or more" in err, err
    assert "--frames" not in err


def test_missing_model_folder(tmp_path, capsys):
    assert main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "nope")]) == 2
    assert f"pipeline folder {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err


def test_garbage_weights_are_a_clear_error(garbage_pipeline, tmp_path, capsys):
    rc = main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(garbage_pipeline), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.endswith("vae/model.safetensors: not a safetensors file (bad header length)") and "\n" not in err


def test_validation_imports_no_torch(garbage_pipeline, tmp_path):
    """In a fresh process a bad argument is reported before torch (let alone weights) is imported."""
    code = ("import sys; from vidiff.cli import main; "
            f"rc = main(['generate', 'x', '-o', {str(tmp_path / 'o.mp4')!r}, '--model', {str(garbage_pipeline)!r}, "
            "'--frames', '20', '--keyframes', '4']); print(rc, 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == ["2", "False"], run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and "--frames 20" in run.stderr


def test_loaded_pipeline_is_batch_invariant(tiny_pipeline):
    """With the real text encoder: the same seed gives the same frames alone, again, and inside a batch of 2."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(tiny_pipeline)
    one, _ = pipe.text_to_video("a red circle moving left", seed=3, progress=False)
    again, _ = pipe.text_to_video("a red circle moving left", seed=3, progress=False)
    pair, _ = pipe.text_to_video(["a green triangle moving up", "a red circle moving left"], seed=[9, 3], progress=False)
    assert torch.equal(one, again) and torch.equal(one, pair[1]) and not torch.equal(pair[0], pair[1])


def test_wrong_tensors_are_a_clear_error(tiny_pipeline, tmp_path):
    """A real safetensors file with the wrong tensors: an InputError naming the file, not a traceback."""
    from safetensors.torch import save_file

    from vidiff.errors import InputError
    from vidiff.pipeline import VideoPipeline

    folder = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline, folder)
    save_file({"conv_in.weight": torch.zeros(2, 2)}, str(folder / "interpolation" / "model.safetensors"))
    with pytest.raises(InputError, match=r"interpolation/model.safetensors: does not fit interpolation/config.yaml's "
                                         r"model \(\d+ missing \(e.g. .*\); 1 of another shape \(e.g. conv_in.weight: "
                                         r"\(2, 2\) in the file"):
        VideoPipeline.from_pretrained(folder)
    # another part's weights: the message named only the first line of torch's ("Error(s) in loading state_dict")
    shutil.copy(tiny_pipeline / "vae" / "model.safetensors", folder / "interpolation" / "model.safetensors")
    with pytest.raises(InputError, match=r"does not fit interpolation/config.yaml's model .* unexpected \(e.g. "
                                         r"decoder\."):
        VideoPipeline.from_pretrained(folder)


@pytest.mark.parametrize("flags, message", [(["--stride", "2"], "keyframe stride 2"),
                                            (["--keyframes", "12"], "12 keyframes"),
                                            (["--keyframes", "11"], "the longest clip in one pass is 41 frames (9 "
                                                                    "keyframes at stride 5); a longer clip asked by "
                                                                    "its length alone (num_frames, --frames) is "
                                                                    "continued by extension windows"),
                                            (["--stride", "10"], "keyframe stride 10")])
def test_layout_outside_the_bundled_training_exits_fast_without_torch(tmp_path, flags, message):
    """The bundled parts were trained on 4 keyframes at stride 5 (their trained_on.yaml): other layouts are refused
    in a fresh process, in under a second, before torch (let alone weights) is imported."""
    import time

    code = ("import sys; from vidiff.cli import main; "
            f"rc = main(['generate', 'a red circle moving left', '-o', {str(tmp_path / 'o.mp4')!r}, *{flags!r}]); "
            "print(rc, 'torch' in sys.modules)")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert run.stdout.split() == ["2", "False"], run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and message in run.stderr and "(--force-layout runs it anyway)" in run.stderr
    assert "force_layout=True" not in run.stderr  # the Python keyword was named beside the flag
    assert elapsed < 1.0, elapsed
    assert not (tmp_path / "o.mp4").exists()


def test_generate_in_bf16_with_a_stochastic_sampler_records_its_settings(tiny_pipeline, tmp_path, monkeypatch):
    from vidiff import cpu_precision

    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: True)  # bf16 even where the CPU emulates it
    out = tmp_path / "bf16.mp4"
    rc = main(["generate", "a red circle moving left", "-o", str(out), "--model", str(tiny_pipeline), "--quiet",
               "--dtype", "bf16", "--sampler", "heun", "--churn", "3", "--negative-prompt", "a blue square",
               "--batch-invariant", "off", "--threads", "1"])
    assert rc == 0
    settings = json.loads(out.with_name(out.name + ".json").read_text())["settings"]
    assert settings["dtype"] == "bf16" and settings["batch_invariant"] is False
    # the thread count (the same seed gives the same frames at the same count) and --force-layout were not recorded
    assert settings["threads"] == 1 and settings["force_layout"] is False
    assert settings["keyframes"]["sampler"] == "heun" and settings["keyframes"]["churn"] == 3.0
    assert settings["negative_prompts"] == ["a blue square"]


def test_region_edit_through_the_cli(tiny_pipeline, tmp_path, capsys):
    """`vidiff edit --mask`: the mask file is checked against the clip before any weights load, the edit runs, and
    the sidecar records the mask, the feather and the strength used (1 with a mask)."""
    from PIL import Image

    from vidiff.io import read_video, write_video

    clip = np.random.default_rng(2).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "in.mp4", clip, 8)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:40, 8:32] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask[:32]).save(tmp_path / "short.png")
    write_video(tmp_path / "mask8.mp4", np.zeros((8, 64, 64, 3), dtype=np.uint8), 8)
    edit = ["edit", str(tmp_path / "in.mp4"), "a blue square moving up", "--model", str(tiny_pipeline), "--quiet"]
    rc = main(edit + ["--mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "e.mp4")])
    assert rc == 0
    assert read_video(tmp_path / "e.mp4")[0].shape == (16, 64, 64, 3)
    settings = json.loads((tmp_path / "e.mp4.json").read_text())["settings"]
    assert settings["strength"] == 1.0 and settings["feather"] == 3 and settings["mask"].endswith("mask.png")
    assert settings["repeats"] == 1  # at strength 1 one pass is all there is (the sidecar said 2)
    capsys.readouterr()
    for flags, message in ((["--mask", str(tmp_path / "short.png")], "64x32 pixels, the clip is 64x64"),
                           (["--mask", str(tmp_path / "mask8.mp4")], "8 frames, the clip has 16"),
                           (["--mask", str(tmp_path / "none.png")], "none.png: file not found"),
                           (["--mask", str(tmp_path / "mask.png"), "--feather", "-1"], "--feather: must be an integer"),
                           (["--mask", str(tmp_path / "mask.png"), "--strength", "2"], r"strength: must be a number"),
                           (["--repeats", "0"], "--repeats: must be an integer in [1, 16], got 0")):
        start = time.perf_counter()
        rc = main(edit + flags + ["-o", str(tmp_path / "bad.mp4")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("vidiff: error: ") and "\n" not in err and message in err, (flags, err)
        assert time.perf_counter() - start < 1.0
    assert not (tmp_path / "bad.mp4").exists()


def test_a_foreground_edit_of_a_clip_without_objects_is_refused_before_the_weights_load(tmp_path, capsys,
                                                                                        monkeypatch):
    """`edit --mask foreground` on a flat clip (nothing apart from its background) loaded the weights before the
    pipeline refused it (4.6 s instead of a check before torch's weights)."""
    from vidiff.io import write_video
    from vidiff.pipeline import VideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before --mask foreground was checked")

    monkeypatch.setattr(VideoPipeline, "from_pretrained", refuse)
    write_video(tmp_path / "flat.mp4", np.full((16, 64, 64, 3), 60, dtype=np.uint8), 8)
    rc = main(["edit", str(tmp_path / "flat.mp4"), "a blue circle", "--mask", "foreground", "--quiet",
               "-o", str(tmp_path / "o.mp4")])
    assert rc == 2
    assert capsys.readouterr().err == ("vidiff: error: mask 'foreground': no frame of the clip shows anything apart "
                                       "from its background\n")
    assert not (tmp_path / "o.mp4").exists()


def test_a_gif_mask_or_maps_with_repeated_frames_merged_says_why_it_is_short(tmp_path, capsys):
    """Pillow (as ImageMagick) stores a GIF frame repeated in a row once: 16 mask frames, white for 8 then black,
    became 2 frames of 1 s, refused as "2 frames, the clip has 16" with nothing saying where the frames went."""
    from PIL import Image

    from vidiff.io import write_video

    write_video(tmp_path / "in.mp4", np.zeros((16, 64, 64, 3), dtype=np.uint8), 8)
    frames = [Image.fromarray(np.full((64, 64), 255 if i < 8 else 0, np.uint8)) for i in range(16)]
    frames[0].save(tmp_path / "m.gif", save_all=True, append_images=frames[1:], duration=125, loop=0)
    note = ("; it lasts 2 s, as the clip's 16 frames at 8 fps do: a GIF writer stores a frame repeated in a row once, "
            "so give one frame per clip frame in another format (.mp4)\n")
    for command, flag in ((["edit", str(tmp_path / "in.mp4"), "a blue circle", "--mask"], "--mask"),
                          (["generate", "a red circle", "--control"], "--control")):
        assert main(command + [str(tmp_path / "m.gif"), "-o", str(tmp_path / "o.mp4")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"vidiff: error: {flag} {tmp_path / 'm.gif'}: 2 frames, the clip has 16 ") and \
            err.endswith(note) and err.count("\n") == 1, err
    assert main(["generate", "a red circle", "--control", str(tmp_path / "m.gif"), "--fps", "4",  # lasts 4 s then
                 "-o", str(tmp_path / "o.mp4")]) == 2
    assert "GIF writer" not in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_region_edit_with_parts_not_trained_for_it_is_refused_before_weights(tmp_path):
    """Parts whose trained_on.yaml lists no region training: `edit --mask` exits 2 naming it (here the bundle's
    parts with "region" taken out of their records; the weights are never read)."""
    from PIL import Image

    from vidiff.io import write_video

    bundled = REPO / "vidiff" / "bundled" / "shapes"
    model = tmp_path / "pipe"
    shutil.copytree(bundled, model, ignore=shutil.ignore_patterns("*.safetensors"))
    for part in ("keyframes", "interpolation"):
        record = model / part / "trained_on.yaml"
        record.write_text(record.read_text().replace("- region\n", ""))
    write_video(tmp_path / "in.mp4", np.zeros((16, 64, 64, 3), dtype=np.uint8), 8)
    Image.fromarray(np.full((64, 64), 255, dtype=np.uint8)).save(tmp_path / "m.png")
    run = subprocess.run([sys.executable, "-m", "vidiff", "edit", str(tmp_path / "in.mp4"), "x", "--mask",
                          str(tmp_path / "m.png"), "-o", str(tmp_path / "o.mp4"), "--model", str(model)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 2 and "region" in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_a_length_no_grid_fits_is_made_longer_and_cut(tiny_pipeline, tmp_path):
    """--frames 20 with the default stride 5: the 21-frame grid (5 keyframes), cut to 20 frames."""
    from vidiff.io import read_video

    rc = main(["generate", "a red circle moving left", "-o", str(tmp_path / "t.mp4"), "--model", str(tiny_pipeline),
               "--frames", "20", "--quiet"])
    assert rc == 0
    assert read_video(tmp_path / "t.mp4")[0].shape[0] == 20
    settings = json.loads((tmp_path / "t.mp4.json").read_text())["settings"]
    assert settings["num_frames"] == 20 and settings["layout_frames"] == 21 and settings["frames_written"] == 20


def test_user_keyframes_on_the_command_line(tiny_pipeline, tmp_path, capsys):
    """--keyframe INDEX=IMAGE: off-grid frames come back exactly at their index and the sidecar names the files;
    bad values fail fast with one line."""
    from PIL import Image

    from vidiff.io import read_video

    rng = np.random.default_rng(0)
    still = tmp_path / "still.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(still)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    out = tmp_path / "kf.mp4"
    assert main(["generate", "a red circle moving left", "-o", str(out), "--model", str(tiny_pipeline), "--quiet",
                 "--keyframe", f"7={still}", "--keyframe", f"0={tmp_path / 'noise.png'}"]) == 0
    frames, _ = read_video(out)
    assert frames.shape[0] == 16 and (frames[7].float() - 128).abs().mean() < 4  # the grey frame, through the codec
    record = json.loads(Path(f"{out}.json").read_text())
    assert record["inputs"]["keyframes"] == {"0": str((tmp_path / "noise.png").resolve()), "7": str(still.resolve())}
    cases = [(["--keyframe", f"16={still}"], "index 16 is not a frame of the clip of 16 frames (0..15, or"),
             (["--keyframe", "x=a.png"], "expected INDEX=IMAGE"),
             (["--keyframe", f"3={still}", "--keyframe", f"3={still}"], "frame 3 is given twice"),
             (["--keyframe", f"-1={still}", "--keyframe", f"15={still}"], "frame 15 is given twice"),
             (["--keyframe", f"-17={still}"], "index -17 is not a frame of the clip of 16 frames (0..15, or -1..-16"),
             (["--keyframe", f"3={tmp_path / 'missing.png'}"], "not found"),
             (["--keyframe", f"3={still}", "-o", str(still)], "-o"),
             (["--keyframe", f"3={tmp_path / 'corrupt.png'}"], "corrupt.png"),
             (["--keyframe", f"3={tmp_path}"], str(tmp_path.name))]
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    for extra, message in cases:
        capsys.readouterr()
        argv = ["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_pipeline), *extra]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (extra, err)
    assert not (tmp_path / "o.mp4").exists()
    # animate: the image is frame 0, --keyframe adds others (the last frame here, counted from the end)
    out = tmp_path / "anim.mp4"
    assert main(["animate", str(tmp_path / "noise.png"), "a red circle", "-o", str(out), "--model", str(tiny_pipeline),
                 "--quiet", "--keyframe", f"-1={still}"]) == 0
    frames, _ = read_video(out)
    assert (frames[15].float() - 128).abs().mean() < 4 and (frames[0].float() - 128).abs().mean() > 30
    assert json.loads(Path(f"{out}.json").read_text())["inputs"]["keyframes"] == {"15": str(still.resolve())}
    assert main(["animate", str(still), "x", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_pipeline),
                 "--keyframe", f"0={still}"]) == 2
    assert "frame 0 of animate is its image" in capsys.readouterr().err


def test_user_keyframes_outside_the_bundled_training_are_refused(tmp_path, capsys):
    """41 frames at stride 5 is 9 keyframes, inside the bundle's 3..9; a user frame at 3 needs 10 around it."""
    from PIL import Image

    still = tmp_path / "still.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(still)
    assert main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--frames", "41", "--keyframe", f"3={still}"]) == 2
    err = capsys.readouterr().err
    assert "10 keyframes" in err and "trained on 3..9" in err and "(--force-layout runs it anyway)" in err
    assert "force_layout=True" not in err  # the Python keyword was named beside the flag
    # it offered only --force-layout; what it offers now runs inside the training
    assert ("fits: keyframe 3 moved to 5 on the stride's grid or a clip of 39 frames with the keyframes where they "
            "are" in err), err
    for extra in (["--frames", "41", "--keyframe", f"5={still}"], ["--frames", "39", "--keyframe", f"3={still}"]):
        assert main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--steps", "1", "--quiet", *extra]) == 0, extra


def test_a_long_clip_with_a_keyframe_off_the_grid_is_made_at_the_length_asked(tmp_path, capsys):
    """--frames 64 --keyframe 7=k.png was refused ("need 10 keyframes ... or a clip of 38 frames"): the first pass
    is now the longest that holds the keyframe laid around (36 frames), then extension windows to 64; the sidecar
    records that pass and its keyframes. A keyframe no first pass holds (38) is refused before any weights load."""
    from PIL import Image

    from vidiff.io import read_video

    key = np.full((64, 64, 3), 60, np.uint8)
    key[16:48, 8:40] = (230, 30, 30)
    Image.fromarray(key).save(tmp_path / "k.png")
    out = tmp_path / "o.mp4"
    args = ["generate", "a red circle moving left", "-o", str(out), "--frames", "64", "--steps", "1", "--quiet"]
    assert main([*args, "--keyframe", f"7={tmp_path / 'k.png'}"]) == 0
    assert "the first pass is 36 frames (keyframes laid around them); the other 28 frames" in capsys.readouterr().err
    frames = read_video(out)[0]
    assert frames.shape[0] == 64 and (frames[7].float() - torch.from_numpy(key).float()).abs().mean() < 6
    settings = json.loads(Path(f"{out}.json").read_text())["settings"]
    assert (settings["num_frames"], settings["extended_by"], settings["frames_written"]) == (36, 28, 64)
    assert settings["keyframe_positions"] == [0, 4, 7, 12, 16, 21, 26, 30, 35]
    assert main([*args, "--keyframe", f"38={tmp_path / 'k.png'}", "-o", str(tmp_path / "p.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none holds keyframes at [38] off the stride's grid" in err, err
    assert err.rstrip().endswith("fits: keyframe 38 moved to 40 on the stride's grid") and "frames with the" not in err
    assert not (tmp_path / "p.mp4").exists()


def test_animate_offers_moving_its_keyframes_not_the_image(tmp_path, capsys):
    """animate --frames 41 --keyframe 7=b.png was offered "keyframes on the stride's grid at [0, 5]", and
    --keyframe 0= is refused for animate (frame 0 is its image): the offer names only the keyframes that move."""
    from PIL import Image

    still = tmp_path / "still.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(still)
    out = str(tmp_path / "o.mp4")
    assert main(["animate", str(still), "x", "-o", out, "--frames", "41", "--keyframe", f"7={still}"]) == 2
    err = capsys.readouterr().err
    assert "fits: keyframe 7 moved to 5 on the stride's grid or a clip of 38 frames" in err, err
    assert main(["animate", str(still), "x", "-o", out, "--steps", "1", "--quiet", "--frames", "41",
                 "--keyframe", f"5={still}"]) == 0


def test_a_negative_prompt_without_text_guidance_is_refused(garbage_pipeline, tmp_path, capsys):
    """--negative-prompt at --guidance 1 changed nothing, and the sidecar recorded it as applied."""
    rc = main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(garbage_pipeline), "--guidance", "1",
               "--negative-prompt", "a blue square"])
    err = capsys.readouterr().err
    assert rc == 2 and "--negative-prompt: replaces the empty prompt of text guidance, which is off here" in err


def test_a_guidance_rescale_without_guidance_is_refused(garbage_pipeline, tmp_path, capsys):
    """--guidance-rescale at --guidance 1 changed nothing (the conditional pass alone runs), and the sidecar
    recorded it; refused before the (garbage) weights load."""
    rc = main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(garbage_pipeline), "--guidance", "1",
               "--guidance-rescale", "0.7"])
    err = capsys.readouterr().err
    assert rc == 2 and "--guidance-rescale: rescales text guidance, which is off here (--guidance 1)" in err
    assert not (tmp_path / "o.mp4").exists()


def test_text_guidance_0_with_a_negative_prompt_is_refused_and_without_it_warned(garbage_pipeline, tmp_path, capsys):
    """--guidance 0 --negative-prompt "a blue square moving up" drew blue squares moving up for the prompt "a red
    circle moving left" (4 of 4), and --guidance 0 alone ignored the prompt, both without a word."""
    base = ["generate", "a red circle moving left", "-o", str(tmp_path / "o.mp4"), "--model", str(garbage_pipeline),
            "--guidance", "0"]
    assert main([*base, "--negative-prompt", "a blue square moving up"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("vidiff: error: --negative-prompt: at text guidance 0 the keyframes follow the negative prompt "
                   "and not the prompt (guidance keeps only its side without the prompt, where the negative prompt "
                   "stands); give a --guidance above 0, or no negative prompt")
    assert main(base) == 2  # the garbage weights fail to load, after the checks
    assert "vidiff: warning: text guidance 0 samples the keyframes without the prompt" in capsys.readouterr().err


def test_an_empty_model_path_and_an_empty_pipeline_yaml_are_refused(tiny_pipeline, tmp_path, capsys):
    """--model "" ran the bundled pipeline; an emptied pipeline.yaml ran with built-in defaults (guidance 5, another
    sampler) in place of the folder's own settings."""
    from vidiff.errors import InputError
    from vidiff.pipeline import VideoPipeline

    with pytest.raises(SystemExit) as stop:
        main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", ""])
    assert stop.value.code == 2 and "--model: empty folder path" in capsys.readouterr().err
    folder = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline, folder)
    (folder / "pipeline.yaml").write_bytes(b"")
    assert main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(folder)]) == 2
    assert f"{folder / 'pipeline.yaml'}: is empty" in capsys.readouterr().err
    for bad in (None, ""):
        with pytest.raises(InputError, match="from_pretrained: expected a pipeline folder path"):
            VideoPipeline.from_pretrained(bad)


def test_a_forced_layout_is_warned_of_once(tmp_path):
    """The CLI's check and the library both warned of a forced layout: the same line twice on stderr. (The bundled
    parts were trained on 3..9 keyframes at stride 3..5.)"""
    code = ("import sys; from vidiff.cli import main; "
            f"sys.exit(main(['generate', 'a red circle moving left', '-o', {str(tmp_path / 'o.mp4')!r}, "
            "'--keyframes', '2', '--stride', '5', '--steps', '1', '--force-layout', '--quiet', '--threads', '1']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if "running it because the layout was forced" in line]
    assert len(warned) == 1, run.stderr


def test_fps_is_the_one_asked_for_or_the_input_clips(tiny_pipeline, tmp_path):
    """--fps sets the written file's rate and the sidecar's; extend keeps the input clip's rate without it."""
    from vidiff.io import read_video, write_video

    out = tmp_path / "g.mp4"
    assert main(["generate", "x", "-o", str(out), "--model", str(tiny_pipeline), "--quiet", "--fps", "12"]) == 0
    assert read_video(out)[1] == 12.0 and json.loads(Path(f"{out}.json").read_text())["settings"]["fps"] == 12.0
    clip = tmp_path / "in.mp4"
    write_video(clip, torch.zeros(8, 64, 64, 3, dtype=torch.uint8), 10)
    out = tmp_path / "e.mp4"
    assert main(["extend", str(clip), "x", "-o", str(out), "--model", str(tiny_pipeline), "--quiet", "--frames", "3"]) == 0
    assert read_video(out)[1] == 10.0 and json.loads(Path(f"{out}.json").read_text())["settings"]["fps"] == 10.0


def test_a_prompt_longer_than_the_encoder_reads_is_warned_in_one_line(tiny_pipeline, tmp_path, capsys):
    """The text encoder reads max_length tokens; a longer prompt still runs, with one `vidiff: warning:` line."""
    out = tmp_path / "g.mp4"
    prompt = " ".join(["a red circle moving left"] * 20)
    assert main(["generate", prompt, "-o", str(out), "--model", str(tiny_pipeline), "--quiet", "--steps", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "tokens" in line]
    assert len(lines) == 1 and lines[0].startswith("vidiff: warning: prompt 'a red circle") and "reads the first" in lines[0]


def test_a_shapes_pipeline_warns_when_the_prompt_leaves_attributes_to_chance(tiny_pipeline, tmp_path, capsys):
    """pipeline.yaml's prompt_vocabulary: shapes -> one warning line naming what the prompt does not say; a
    pipeline without it (open text) says nothing."""
    shapes = tmp_path / "shapes-pipe"
    shutil.copytree(tiny_pipeline, shapes)
    text = (shapes / "pipeline.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("prompt_vocabulary:")]  # once: no duplicates
    (shapes / "pipeline.yaml").write_text("\n".join(lines + ["prompt_vocabulary: shapes"]) + "\n")
    for model, prompt, expected in ((shapes, "a cat walking", "found no colour, shape or direction"),
                                    (shapes, "a red circle moving left", None),
                                    (shapes, "a red ring moving left", "the text encoder gets 'a red circle moving"),
                                    (shapes, "a red star moving left", "found no shape it knows"),
                                    (tiny_pipeline, "a red cube moving left", None),
                                    (tiny_pipeline, "a cat walking", None)):
        capsys.readouterr()
        assert main(["generate", prompt, "-o", str(tmp_path / "g.mp4"), "--model", str(model), "--quiet",
                     "--steps", "1"]) == 0
        warned = [line for line in capsys.readouterr().err.splitlines() if "Shapes pipeline" in line]
        if expected is None:
            assert warned == [], (model, prompt)
        else:
            assert len(warned) == 1 and warned[0].startswith("vidiff: warning: ") and expected in warned[0], warned
    # animate: the image sets the colour and shape, the prompt alone the motion, left to chance when it names none
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 40, np.uint8)).save(tmp_path / "still.png")
    for prompt, expected in (("a red circle", "found no direction it knows"), ("a cat walking", "found no direction"),
                             ("a red circle moving left", None), ("a cube moving left", None)):
        capsys.readouterr()
        assert main(["animate", str(tmp_path / "still.png"), prompt, "-o", str(tmp_path / "a.mp4"), "--model",
                     str(shapes), "--quiet", "--steps", "1"]) == 0
        warned = [line for line in capsys.readouterr().err.splitlines() if "Shapes pipeline" in line]
        if expected is None:
            assert warned == [], (prompt, warned)
        else:
            assert len(warned) == 1 and expected in warned[0] and "colour" not in warned[0], warned
    # an edit's prompt sets the new colour: its words are told too; what it leaves out the clip keeps (no note)
    for prompt, expected in (("a milky circle", "'milky' (white) is not a word"), ("a red circle", None),
                             ("a scarlet circle", "'scarlet' is read as red")):
        capsys.readouterr()
        assert main(["edit", str(tmp_path / "g.mp4"), prompt, "-o", str(tmp_path / "e.mp4"), "--model", str(shapes),
                     "--quiet", "--steps", "1"]) == 0
        warned = [line for line in capsys.readouterr().err.splitlines() if "Shapes pipeline" in line]
        if expected is None:
            assert warned == []
        else:
            assert len(warned) == 1 and warned[0].startswith(f"vidiff: warning: {expected}"), warned


def test_a_length_past_one_pass_is_made_by_extension_windows(tiny_pipeline, tmp_path, capsys):
    """--frames past the keyframe part's longest trained pass: that pass, then extension windows (as `vidiff
    extend`), instead of a refusal; the clip starts with the one-pass clip of the same seed, frame for frame."""
    from vidiff.io import read_video
    from vidiff.pipeline.trained import TrainedOn, write_trained_on

    model = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline, model)
    write_trained_on(model / "keyframes", TrainedOn(stage="keyframes", num_frames=(3, 4), frame_strides=(5, 5),
                                                    known_patterns=("none", "first", "first_k"), max_first_k=2))
    args = ["generate", "a red circle moving left", "--model", str(model), "--quiet", "--seed", "3"]
    assert main([*args, "--frames", "30", "-o", str(tmp_path / "long.gif")]) == 0
    assert "30 frames: longer than one pass of this pipeline (16 frames, 4 keyframes at stride 5); the other 14" \
        in capsys.readouterr().err
    assert main([*args, "--frames", "16", "-o", str(tmp_path / "short.gif")]) == 0
    long, short = read_video(tmp_path / "long.gif")[0], read_video(tmp_path / "short.gif")[0]
    assert long.shape[0] == 30 and torch.equal(long[:16], short)
    settings = json.loads((tmp_path / "long.gif.json").read_text())["settings"]
    assert settings["extended_by"] == 14 and settings["frames_written"] == 30 and settings["num_frames"] == 16
    # an explicit keyframe count past the trained ones is still refused (the user asked for that layout)
    assert main([*args, "--keyframes", "6", "-o", str(tmp_path / "k.gif")]) == 2
    # and a length short of the fewest trained keyframes (3 here) is cut from the shortest trained grid (11 frames)
    assert main([*args, "--frames", "7", "-o", str(tmp_path / "seven.gif")]) == 0
    assert main([*args, "--frames", "11", "-o", str(tmp_path / "eleven.gif")]) == 0
    seven, eleven = read_video(tmp_path / "seven.gif")[0], read_video(tmp_path / "eleven.gif")[0]
    settings = json.loads((tmp_path / "seven.gif.json").read_text())["settings"]
    assert seven.shape[0] == 7 and settings["layout_frames"] == 11 and settings["frames_written"] == 7
    assert (seven.float() - eleven[:7].float()).abs().mean() < 2.0  # the same frames; GIF palettes differ by clip



def test_keyframes_and_control_with_a_length_past_one_pass_or_short_of_the_fewest(tiny_pipeline, tmp_path, capsys):
    """--frames past one pass with --keyframe (and image_to_video(num_frames=...) in Python, where `vidiff animate`
    worked) was refused as "needs 14 keyframes ... --force-layout"; keyframes in the first pass are made there now,
    later ones and control maps are refused naming them. A length short of the fewest trained keyframes with
    --keyframe was refused on the command line where text_to_video made it."""
    from PIL import Image

    from vidiff.io import read_video, write_video
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.trained import TrainedOn, write_trained_on

    model = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline, model)
    write_trained_on(model / "keyframes", TrainedOn(stage="keyframes", num_frames=(3, 4), frame_strides=(5, 5),
                                                    known_patterns=("none", "first", "first_k"), max_first_k=2))
    grey = np.full((64, 64, 3), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    write_video(tmp_path / "maps.mp4", np.zeros((30, 64, 64, 3), np.uint8), 8)
    args = ["generate", "a red circle moving left", "--model", str(model), "--quiet"]
    assert main([*args, "--frames", "30", "--keyframe", f"0={tmp_path / 'grey.png'}", "-o", str(tmp_path / "a.gif")]) == 0
    frames = read_video(tmp_path / "a.gif")[0]
    assert frames.shape[0] == 30 and (frames[0].float() - 128).abs().mean() < 4
    capsys.readouterr()
    for extra, message in (
            (["--keyframe", f"-1={tmp_path / 'grey.png'}"], "30 frames: longer than one pass of this pipeline (16 "
             "frames, 4 keyframes at stride 5); the frames after it are made by extension windows, which take no "
             "known frames (a keyframe at frame 29): give at most 16 frames, or keyframes before frame 16"),
            (["--control", str(tmp_path / "maps.mp4")], "which take no control maps: give at most 16 frames")):
        assert main([*args, "--frames", "30", *extra, "-o", str(tmp_path / "b.gif")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main([*args, "--frames", "6", "--keyframe", f"0={tmp_path / 'grey.png'}", "-o", str(tmp_path / "c.gif")]) == 0
    assert read_video(tmp_path / "c.gif")[0].shape[0] == 6
    # off the grid too (it laid 2 keyframes over the 2 frames asked and refused them as untrained)
    write_trained_on(model / "keyframes", TrainedOn(stage="keyframes", num_frames=(3, 4), frame_strides=(3, 5),
                                                    known_patterns=("none", "first", "first_k", "random_subset"),
                                                    max_first_k=2))
    assert main([*args, "--frames", "2", "--keyframe", f"1={tmp_path / 'grey.png'}", "-o", str(tmp_path / "d.gif")]) == 0
    frames = read_video(tmp_path / "d.gif")[0]
    assert frames.shape[0] == 2 and (frames[1].float() - 128).abs().mean() < 4
    pipe = VideoPipeline.from_pretrained(model)
    clip, _ = pipe.image_to_video(grey, "a red circle moving left", num_frames=30, progress=False)
    assert clip.shape[0] == 30 and torch.equal(clip[0], torch.from_numpy(grey))
    with pytest.raises(InputError, match="which take no known frames \\(a keyframe at frame 20\\)"):
        pipe.text_to_video("x", num_frames=30, keyframes={20: grey}, progress=False)


def test_a_misfit_with_keyframes_says_what_frames_alone_make(tmp_path, capsys):
    """--frames 64 --keyframes 12 offered "frame counts that fit: 34, 45, 56", each then refused (12 keyframes are
    past the bundle's 3..9), and --frames 200 --keyframes 9 offered 25, 33, 41 without a word that --frames 200
    alone makes the clip (a pass, then extension windows)."""
    out = str(tmp_path / "o.mp4")
    assert main(["generate", "x", "-o", out, "--frames", "64", "--keyframes", "12"]) == 2
    assert capsys.readouterr().err.strip() == (
        "vidiff: error: --keyframes 12: the keyframe part was trained on 3..9 keyframes (--force-layout runs more or "
        "fewer); without --keyframes, 64 frames are made as a pass of 41 and extension windows")
    assert main(["generate", "x", "-o", out, "--frames", "20", "--keyframes", "2"]) == 2
    assert "without --keyframes, 20 frames are made on a trained grid" in capsys.readouterr().err
    assert main(["generate", "x", "-o", out, "--frames", "200", "--keyframes", "9"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "frame counts that fit: 25, 33, 41; or without --keyframes, 200 frames are made as a pass of 41 and "
        "extension windows")
    assert main(["generate", "x", "-o", out, "--frames", "20", "--keyframes", "4"]) == 2  # within one pass: as before
    assert capsys.readouterr().err.strip().endswith("frame counts that fit: 10, 13, 16")
    # a grid that fits the length, at a stride the parts never saw (64 = 4 x 21): the stride alone was said
    import PIL.Image

    for command in (["generate", "x"], ["animate", str(tmp_path / "a.png"), "x"]):
        PIL.Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
        assert main([*command, "-o", out, "--frames", "64", "--keyframes", "4"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vidiff: error: layout 64 frames = 4 keyframes x stride 21 needs keyframe stride 21")
        assert err.endswith("; or without --keyframes, 64 frames are made as a pass of 41 and extension windows")
    assert main(["generate", "x", "-o", out, "--frames", "29", "--keyframes", "3"]) == 2  # 3 x stride 14
    assert capsys.readouterr().err.strip().endswith("; or without --keyframes, 29 frames are made on a trained grid")
    assert main(["generate", "x", "-o", out, "--frames", "64", "--keyframes", "4", "--stride", "21"]) == 2
    assert "without --keyframes" not in capsys.readouterr().err  # the stride was asked: no other length is offered


def test_a_misfit_suggests_lengths_the_bundle_was_trained_on(tmp_path, capsys):
    """It suggested 16, 19, 22 for --frames 20 --keyframes 4, and 19 and 22 (strides 6, 7) were then refused."""
    assert main(["generate", "x", "-o", str(tmp_path / "o.mp4"), "--frames", "20", "--keyframes", "4"]) == 2
    assert capsys.readouterr().err.strip().endswith("frame counts that fit: 10, 13, 16")


def test_the_python_api_warns_of_a_shapes_prompt_as_the_command_line_does(tiny_pipeline, tmp_path):
    """`vidiff generate "a cat walking"` warned that colour, shape and direction are left to chance, and `vidiff edit
    ... "a scarlet circle"` that 'scarlet' is no trained word; text_to_video and edit_video said nothing."""
    import warnings

    from vidiff.pipeline import VideoPipeline

    shapes = tmp_path / "shapes-pipe"
    shutil.copytree(tiny_pipeline, shapes)
    lines = [line for line in (shapes / "pipeline.yaml").read_text().splitlines()
             if not line.startswith("prompt_vocabulary:")]
    (shapes / "pipeline.yaml").write_text("\n".join(lines + ["prompt_vocabulary: shapes"]) + "\n")
    pipe = VideoPipeline.from_pretrained(shapes)

    def said(call) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught if "Shapes pipeline" in str(w.message)]

    run = dict(steps=1, progress=False)
    notes = said(lambda: pipe.text_to_video(["a cat walking", "a red circle moving left"], seed=[0, 1], **run))
    assert len(notes) == 1 and notes[0].startswith("prompt 'a cat walking': this Shapes pipeline found no colour, "
                                                   "shape or direction"), notes
    # two prompts with the same note: each names its own (they read alike, and the default filter showed one)
    notes = said(lambda: pipe.text_to_video(["", "  ", ""], seed=[0, 1, 2], **run))
    assert [n.split(": this Shapes")[0] for n in notes] == ["prompt ''", "prompt '  '"], notes
    notes = said(lambda: pipe.text_to_video(["a cat walking", "a cat walking"], seed=[0, 1], **run))
    assert len(notes) == 1 and notes[0].startswith("this Shapes pipeline"), notes  # one prompt: worded as ever
    assert said(lambda: pipe.text_to_video("a red circle moving left", **run)) == []
    clip, _ = pipe.text_to_video("a red circle moving left", **run)
    notes = said(lambda: pipe.edit_video(clip, "a milky circle", **run))
    assert len(notes) == 1 and "'milky' (white) is not a word" in notes[0], notes
    notes = said(lambda: pipe.edit_video(clip, "a scarlet circle", **run))  # a colour the xkcd survey names
    assert len(notes) == 1 and "'scarlet' is read as red" in notes[0], notes
    assert said(lambda: pipe.image_to_video(clip[0], "moving up", **run)) == []  # the image sets colour and shape
    # `vidiff animate still.png "a red circle"` said the direction is left to chance; image_to_video said nothing
    notes = said(lambda: pipe.image_to_video(clip[0], "a red circle", **run))
    assert len(notes) == 1 and "found no direction it knows" in notes[0], notes


def test_options_are_not_taken_by_prefix(tmp_path, capsys):
    """`extend --keyframe 6` was read as --keyframes 6 (extend has no --keyframe), `generate --frame 5` as --frames."""
    for argv, unknown in ((["extend", "c.mp4", "x", "--frames", "5", "--keyframe", "6"], "--keyframe 6"),
                          (["generate", "x", "--frame", "5"], "--frame 5")):
        with pytest.raises(SystemExit) as e:
            main(argv + ["-o", str(tmp_path / "o.mp4")])
        assert e.value.code == 2 and f"unrecognized arguments: {unknown}" in capsys.readouterr().err


def test_a_prompt_or_value_that_starts_with_a_dash_is_told_how_to_give_it(tmp_path, capsys):
    """`vidiff generate "-red" -o out.mp4` said "the following arguments are required: prompt" (one was given), and
    `--negative-prompt "-blue"` "expected one argument"; neither said why or what works."""
    out = str(tmp_path / "o.mp4")
    for argv, told in ((["generate", "-red", "-o", out], "the following arguments are required: prompt; '-red'"),
                       (["generate", "a red circle", "--negative-prompt", "-blue", "-o", out],
                        "argument --negative-prompt: expected one argument; '-blue'")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and told in err and err.count("\n") == 1, err
        assert "starts with '-', so it was read as an option" in err and "`... -o out.mp4 -- " in err
    with pytest.raises(SystemExit):  # a misspelled option is no prompt
        main(["generate", "a red circle", "-o", out, "--bogus"])
    assert "starts with" not in capsys.readouterr().err
    assert main(["generate", "-o", out, "--steps", "0", "--", "-red"]) == 2  # after --, the prompt: --steps refused
    assert "--steps" in capsys.readouterr().err


def test_a_negative_keyframe_index_is_a_value_not_an_option():
    from vidiff.cli import join_negative_values

    assert join_negative_values(["generate", "x", "--keyframe", "-1=a.png", "--seed", "-3"]) == \
        ["generate", "x", "--keyframe=-1=a.png", "--seed", "-3"]
    assert join_negative_values(["--keyframe", "--seed"]) == ["--keyframe", "--seed"]  # argparse names it missing
    assert join_negative_values(["--keyframe"]) == ["--keyframe"]


def test_every_seed_below_2_63_works_and_later_samples_wrap(tiny_pipeline, tmp_path, capsys):
    """One rule for seeds: [0, 2**63), as the Python API takes them. `--seed 2**63 - 1` was refused (the limit was
    2**63 - --num, one under the API's); sample i's seed + i now wraps to 0 at 2**63."""
    from vidiff.io import read_video

    top = 2**63 - 1
    args = ["generate", "a red circle moving left", "--model", str(tiny_pipeline), "--quiet"]
    assert main(args + ["-o", str(tmp_path / "w.gif"), "--seed", str(top), "--num", "2"]) == 0
    assert main(args + ["-o", str(tmp_path / "zero.gif"), "--seed", "0"]) == 0
    seeds = [json.loads((tmp_path / f"w_{i:03d}.gif.json").read_text())["seed"] for i in range(2)]
    assert seeds == [top, 0]
    assert np.array_equal(read_video(tmp_path / "w_001.gif")[0], read_video(tmp_path / "zero.gif")[0])
    assert main(args + ["-o", str(tmp_path / "x.gif"), "--seed", str(2**63)]) == 2
    assert "--seed must be in [0, 2**63), got 9223372036854775808" in capsys.readouterr().err


def test_a_centre_crop_that_keeps_little_of_the_image_is_warned():
    """A 1x4000 image animated at 64x64 kept one pixel of it without a word; under a quarter of the area kept is
    said, naming the sizes; a crop of a 4:3 photo to a square (75% kept) is not."""
    import warnings

    from vidiff.commands.inputs import fit_image

    with pytest.warns(UserWarning, match=r"^image 1x4000\.png is 1x4000: the centre crop to the model's 64x64 shape "
                                         r"keeps 1x1 \(0\.025% of it\)"):
        out = fit_image(torch.zeros((4000, 1, 3), dtype=torch.uint8), 64, 64, "image 1x4000.png")
    assert out.shape == (64, 64, 3)
    with pytest.warns(UserWarning, match=r"--keyframe 0=wide\.png is 1000x100: .* keeps 100x100 \(10% of it\)"):
        fit_image(torch.zeros((100, 1000, 3), dtype=torch.uint8), 64, 64, "--keyframe 0=wide.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_image(torch.zeros((480, 640, 3), dtype=torch.uint8), 64, 64).shape == (64, 64, 3)


def test_the_sidecar_records_the_keyframe_layout_that_ran(tmp_path):
    """A keyframe off the grid gets keyframes laid around it; the sidecar said only the grid (5 keyframes at stride
    5 over 21 frames), which neither ran nor could be given back."""
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 200, 40)).save(tmp_path / "yel.png")
    for index, want in ((9, [0, 4, 9, 14, 19]), (10, [0, 5, 10, 15, 20])):
        out = tmp_path / f"k{index}.mp4"
        assert main(["generate", "a green triangle moving right", "-o", str(out), "--steps", "1", "--frames", "20",
                     "--keyframe", f"{index}={tmp_path / 'yel.png'}", "--quiet"]) == 0
        settings = json.loads((tmp_path / f"k{index}.mp4.json").read_text())["settings"]
        assert settings["keyframe_positions"] == want and settings["num_frames"] == 20
    assert main(["generate", "a green triangle moving right", "-o", str(tmp_path / "p.mp4"), "--steps", "1",
                 "--quiet"]) == 0
    assert "keyframe_positions" not in json.loads((tmp_path / "p.mp4.json").read_text())["settings"]


@pytest.mark.parametrize("argv, told", [
    (["interpolate", "-dash.mp4", "-o", "o.mp4", "--factor", "2"], "`./-dash.mp4`"),
    (["extend", "-dash.mp4", "a red circle", "-o", "o.mp4"], "`./-dash.mp4`"),
    (["edit", "-dash.mp4", "a red circle", "-o", "o.mp4"], "`./-dash.mp4`"),
    (["animate", "-still.png", "a red circle", "-o", "o.mp4"], "`./-still.png`"),
    (["eval", "shapes", "-clips"], "`./-clips`"),
    (["report", "-run"], "`./-run`"),
    (["export", "-run", "-o", "p"], "`./-run`"),
    (["interpolate", "a.mp4", "-o", "-out.mp4"], "(`--output=-out.mp4`), or a file as `-o ./-out.mp4`"),
    (["edit", "a.mp4", "x", "--mask", "-m.png", "-o", "o.mp4"], "(`--mask=-m.png`), or a file as `--mask ./-m.png`"),
    (["data", "cache", "--videos", "-v", "--vae", "x", "--out", "y"], "or a file as `--videos ./-v`"),
    (["generate", "x", "--sampler", "-q", "-o", "o.mp4"], "after `=` (`--sampler=-q`) (see"),
    (["extend", "a.mp4", "-red", "-o", "o.mp4"], "`... -o out.mp4 -- -red`"),
])
def test_a_file_or_value_that_starts_with_a_dash_is_told_how_to_give_it(argv, told, capsys):
    """`vidiff interpolate -dash.mp4 ...` said "the following arguments are required: video" and `-o -out.mp4`
    "expected one argument", each with the hint for a prompt (`--negative-prompt=-dash.mp4`), which is no way to
    name a file: a file is named ./-dash.mp4 in every command, an option's value given after `=`."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "starts with '-', so it was read as an option" in err and told in err, err
    assert err.count("\n") == 1 and (" -- -red" in told) == ("give a prompt" in err), err


@pytest.mark.parametrize("argv", [["interpolate", "--factor", "2"], ["extend", "a red circle", "--frames", "4"],
                                  ["edit", "a red circle"]])
def test_a_clip_that_does_not_open_is_said_alike_by_every_command(argv, tmp_path, capsys):
    """A text file named text.mp4: extend and edit said `s/text.mp4: cannot open container: [Errno 1094995529]
    Invalid data found when processing input: 's/text.mp4'` (no "video", FFmpeg's errno, the name twice), where
    interpolate said "video s/text.mp4: ..."; one wording now, without the noise."""
    clip = tmp_path / "text.mp4"
    clip.write_text("hello\n")
    assert main([argv[0], str(clip), *argv[1:], "-o", str(tmp_path / "o.mp4")]) == 2
    assert capsys.readouterr().err == (f"vidiff: error: video {clip}: cannot open container: Invalid data found when "
                                       "processing input\n")


def test_compile_without_a_cpp_compiler_is_refused_before_the_weights_load(tiny_pipeline, tmp_path, capsys,
                                                                           monkeypatch):
    """--compile on a CPU machine without a working C++ compiler loaded the weights and began sampling, then ended
    in torch's InvalidCxxCompiler traceback (96 s into `vidiff generate --compile --steps 2`)."""
    import torch._inductor.config

    from vidiff.pipeline import VideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before --compile was checked")

    monkeypatch.setattr(VideoPipeline, "from_pretrained", refuse)
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, str(tmp_path / "no-such-g++")))
    rc = main(["generate", "a red circle moving left", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_pipeline),
               "--compile", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert err.startswith("vidiff: error: --compile: torch.compile needs a C++ compiler on the CPU and finds none")


def test_an_output_inside_a_file_says_the_file_is_not_a_folder_before_the_weights_load(tiny_pipeline, tmp_path,
                                                                                     capsys, monkeypatch):
    """`-o in.mp4/x.mp4` with in.mp4 an existing clip said "cannot check the output (Not a directory)"."""
    from vidiff.pipeline import VideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before -o was checked")

    monkeypatch.setattr(VideoPipeline, "from_pretrained", refuse)
    (tmp_path / "in.mp4").write_bytes(b"a clip")
    out = tmp_path / "in.mp4" / "x.mp4"
    rc = main(["generate", "a red circle moving left", "-o", str(out), "--model", str(tiny_pipeline)])
    assert rc == 2
    assert capsys.readouterr().err == f"vidiff: error: -o {out}: {tmp_path / 'in.mp4'} is a file, not a folder\n"
    assert (tmp_path / "in.mp4").read_bytes() == b"a clip"
