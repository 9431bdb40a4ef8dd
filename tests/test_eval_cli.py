"""Interpolation and reconstruction scoring (with stand-in fills / VAEs) and the `vidiff eval ...` commands."""
import json
import math
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from vidiff.cli import main
from vidiff.errors import InputError
from vidiff.eval.interpolation import evaluate_interpolation, linear_blend
from vidiff.eval.metrics import psnr
from vidiff.eval.reconstruction import evaluate_reconstruction

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _moving_clips(num=3, frames=9, size=24, seed=0) -> list[torch.Tensor]:
    """A bright square sliding right over a grey background: smooth motion with a real interpolation error."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(num):
        clip = np.full((frames, size, size, 3), rng.integers(16, 65), np.uint8)
        colour, y = rng.integers(100, 256, 3), rng.integers(2, size - 10)
        for f in range(frames):
            clip[f, y : y + 8, 2 + f : 10 + f] = colour
        clips.append(torch.from_numpy(clip))
    return clips


# ---- interpolation ----


def test_oracle_fill_is_perfect_and_keyframes_are_not_scored():
    clips = _moving_clips()

    def oracle(keyframes, stride, seed):
        truth = next(c for c in clips if torch.equal(c[: 2 * stride + 1 : stride], keyframes[:3]))
        out = truth[: (keyframes.shape[0] - 1) * stride + 1].clone()
        out[::stride] = 0  # wrong keyframes must not count: only in-between frames are scored
        return out

    result = evaluate_interpolation(clips, oracle, stride=4)
    assert result["model"]["psnr"] == math.inf and result["model"]["ssim"] == pytest.approx(1.0)
    assert result["num_frames"] == 3 * 2 * 3  # 3 clips, 2 gaps of 3 in-between frames
    assert math.isfinite(result["baseline"]["psnr"]) and result["baseline"]["ssim"] < 1.0


def test_linear_blend_fill_equals_baseline_row():
    result = evaluate_interpolation(_moving_clips(), linear_blend, stride=4)
    assert result["model"] == result["baseline"]
    assert len(result["model"]["psnr_by_offset"]) == 3


def test_linear_blend_formula_and_hold_fill_is_worse():
    keys = torch.tensor([0, 200], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 1, 3)
    out = linear_blend(keys, 4)
    assert out[:, 0, 0, 0].tolist() == [0, 50, 100, 150, 200]  # (1 - t/s) * left + t/s * right

    def hold(keyframes, stride, seed):  # repeat the left keyframe: a worse fill on smooth motion
        return torch.cat([keyframes[:-1].repeat_interleave(stride, 0), keyframes[-1:]])

    clips = [torch.from_numpy(np.stack([np.full((16, 16, 3), 10 * f, np.uint8) for f in range(9)]))]
    result = evaluate_interpolation(clips, hold, stride=4)
    assert result["baseline"]["psnr"] == math.inf  # a linear fade is exactly the linear blend
    assert result["model"]["psnr"] < 40


def test_interpolation_bad_input():
    with pytest.raises(InputError, match="stride"):
        evaluate_interpolation(_moving_clips(), linear_blend, stride=1)
    with pytest.raises(InputError, match="too short"):
        evaluate_interpolation(_moving_clips(frames=3), linear_blend, stride=4)
    with pytest.raises(InputError, match="fill returned"):
        evaluate_interpolation(_moving_clips(), lambda k, s, seed: k, stride=4)


def test_interpolation_names_the_clip_whose_frames_are_under_the_ssim_window():
    """A 7x5 clip in --videos: the refusal came from ssim after every fill had run, naming no clip (and giving the
    size as height x width)."""
    def fill(keyframes, stride, seed):
        raise AssertionError("filled a clip that cannot be scored")

    clips = [_moving_clips(num=1, frames=5)[0], torch.zeros(5, 5, 7, 3, dtype=torch.uint8)]
    with pytest.raises(InputError, match=r"^small\.gif: frames of 7x5 are smaller than the 11x11 SSIM window"):
        evaluate_interpolation(clips[1:], fill, stride=2, names=["small.gif"])
    result = evaluate_interpolation(clips[:1], linear_blend, stride=2, names=["ok.gif"])
    assert result["num_clips"] == 1


# ---- reconstruction ----


class _ShiftVAE:
    """Identity latents; decode adds `shift` pixel levels (of 255), an analytic PSNR."""

    def __init__(self, shift: float):
        self.shift = shift

    def encode(self, video):
        return video.clone()

    def decode(self, latents):
        return latents + self.shift / 127.5


def test_reconstruction_scores_are_analytic():
    clips = [torch.randint(10, 200, (5, 16, 16, 3), dtype=torch.uint8) for _ in range(2)]
    assert evaluate_reconstruction(_ShiftVAE(0), clips)["psnr"] == math.inf
    result = evaluate_reconstruction(_ShiftVAE(2), clips)
    assert result["psnr"] == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-6)
    assert result["num_frames"] == 10 and len(result["clips"]) == 2
    with pytest.raises(InputError, match="empty: expected uint8 frames"):
        evaluate_reconstruction(_ShiftVAE(0), [torch.zeros(0, 16, 16, 3, dtype=torch.uint8)], names=["empty"])


def test_reconstruction_runs_a_clip_in_the_vaes_passes_as_one_whole_pass_would():
    """A clip went through the VAE in one call, its float frames, latents and output held whole: memory grew with
    its length (118 MB a frame at 320x240). The encoder now sees frame_chunk frames, the decoder one of its passes,
    and the frames come back as one whole pass gives them (up to float rounding: at most 1 level in few pixels)."""
    from vidiff.eval.reconstruction import frames_to_video, roundtrip, video_to_frames
    from vidiff.vae import AutoencoderKL, VAEConfig

    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4, mid_attention=False,
                                  frame_chunk=2, temporal_decoder=True)).eval()
    clip = _moving_clips(num=1, frames=20, size=16)[0]
    with torch.no_grad():
        whole = video_to_frames(vae.decode(vae.encode(frames_to_video(clip), frame_chunk=0), frame_chunk=0))
    seen = {"encode": [], "decode": []}
    for name in seen:
        def spy(x, _call=getattr(vae, name), _name=name, **kw):
            seen[_name].append(x.shape[2])
            return _call(x, **kw)
        setattr(vae, name, spy)
    restored = roundtrip(vae, clip)
    radius = vae.decoder.temporal_radius
    assert radius > 0 and max(seen["encode"]) <= 2 and max(seen["decode"]) <= 2 + 2 * radius < clip.shape[0]
    diff = (restored.int() - whole.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01
    result = evaluate_reconstruction(vae, [clip])
    assert result["psnr"] == pytest.approx(float(psnr(whole, clip)), abs=0.05)


# ---- the commands ----


def _write_gifs(folder, clips):
    folder.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        imageio.mimsave(folder / f"clip_{i:02d}.gif", list(clip.numpy()), duration=125, loop=0)


class _Features(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 6, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))


def test_eval_fvd_command(tmp_path, capsys):
    clips = _moving_clips(num=6, frames=8, size=24)
    _write_gifs(tmp_path / "real", clips)
    _write_gifs(tmp_path / "fake", [c.flip(2) for c in clips])
    net = tmp_path / "net.pt"
    torch.jit.script(_Features()).save(str(net))
    out = tmp_path / "eval" / "fvd.json"
    args = ["eval", "fvd", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--network", str(net),
            "--frames", "8", "--size", "16", "--num", "5", "--json", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["eval"] == "fvd" and doc["result"]["num_a"] == 5 and doc["result"]["fvd"] > 0
    assert doc["settings"]["clip_length"] == 8 and doc["settings"]["resolution"] == 16
    assert "FVD" in capsys.readouterr().out

    torch.save({"w": torch.zeros(2)}, tmp_path / "pickled.pt")
    bad = args[:7] + [str(tmp_path / "pickled.pt")] + args[8:]
    assert main(bad) == 2
    assert "TorchScript" in capsys.readouterr().err
    assert main(["eval", "fvd", "--real", str(tmp_path / "nope"), "--fake", ".", "--network", str(net)]) == 2
    assert "--real" in capsys.readouterr().err


def test_eval_interpolation_command(tmp_path, monkeypatch, capsys):
    import vidiff.pipeline
    import vidiff.pipeline.config
    import vidiff.pipeline.trained

    calls = []

    class FakePipe:
        config = SimpleNamespace(interpolation=SimpleNamespace(max_gap=8))  # one pass up to gap 8
        trained = {}
        frame_multiple = 1
        # a decode pass of 256 MiB a frame: within `vidiff interpolate`'s 1.5 GiB, chunks of 2 keyframes at stride 4
        vae = SimpleNamespace(decode_windows=lambda f: [(0, f, 0)], decode_bytes=lambda f, h, w: f << 28)

        def fill_between(self, keyframes, stride, seed=0, **sampling):
            calls.append((keyframes.shape[0], seed))
            return linear_blend(keyframes, stride)

    loaded = {}
    monkeypatch.setattr(vidiff.pipeline.VideoPipeline, "from_pretrained",
                        classmethod(lambda cls, folder, **placement: loaded.update(placement) or FakePipe()))
    # the stride is checked against the folder's records before the weights load: the fake folder's are FakePipe's
    monkeypatch.setattr(vidiff.pipeline.config, "read_pipeline_folder", lambda folder: FakePipe.config)
    monkeypatch.setattr(vidiff.pipeline.trained, "read_trained_records", lambda folder, config: {"interpolation": None})
    _write_gifs(tmp_path / "clips", _moving_clips(num=2, frames=9))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "pipeline.yaml").write_text("{}\n")
    out = tmp_path / "interp.json"
    assert main(["eval", "interpolation", "--model", str(tmp_path / "model"), "--videos", str(tmp_path / "clips"),
                 "--stride", "4", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["rows"][0][1:] == doc["rows"][1][1:]  # the blend as the model: identical rows
    assert doc["columns"][:3] == ["method", "PSNR (dB)", "SSIM"]
    captured = capsys.readouterr()
    assert "linear blend" in captured.out
    # each clip (keyframes 0, 4, 8) filled a chunk at a time as `vidiff interpolate` fills it, not in one pass
    assert calls == [(2, 0), (2, 1), (2, 1), (2, 2)]
    assert "eval interpolation" in captured.err  # the progress bar, on stderr
    # fp32 by default, so that the scores compare with the documented ones; what ran is recorded
    assert loaded["dtype"] == torch.float32 and doc["settings"]["dtype"] == "fp32"
    assert doc["settings"]["device"] == loaded["device"]
    assert main(["eval", "interpolation", "--model", str(tmp_path / "model"), "--videos", str(tmp_path / "clips"),
                 "--stride", "4", "--no-progress", "--dtype", "auto", "--json", str(out)]) == 0
    assert "eval interpolation" not in capsys.readouterr().err
    from vidiff.commands.device_args import auto_dtype, dtype_name

    assert json.loads(out.read_text())["settings"]["dtype"] == dtype_name(auto_dtype(loaded["device"]))
    assert main(["eval", "interpolation", "--model", str(tmp_path), "--videos", str(tmp_path / "clips"),
                 "--stride", "4"]) == 2
    assert "pipeline.yaml" in capsys.readouterr().err


def _clip_of(frames, height, width):
    return torch.randint(0, 256, (frames, height, width, 3), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)  # frames that differ: a GIF writer merges equal ones


def _refuse_to_load(monkeypatch):
    """Any pipeline load fails the test: the checks under test must come before it."""
    import vidiff.pipeline

    def no_load(cls, folder):
        raise AssertionError("the pipeline loaded")

    monkeypatch.setattr(vidiff.pipeline.VideoPipeline, "from_pretrained", classmethod(no_load))


def test_eval_interpolation_names_a_small_clip_before_the_model_loads(tmp_path, monkeypatch, capsys):
    """A 7x5 clip after a 320x240 one: the model loaded and filled the first clip (10 s with the bundled
    real-footage pipeline and 9 frames, minutes for whole clips) before the small one was refused."""
    _refuse_to_load(monkeypatch)
    _write_gifs(tmp_path / "clips", [_moving_clips(num=1, frames=5)[0], _clip_of(5, 5, 7)])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "pipeline.yaml").write_text("{}\n")
    assert main(["eval", "interpolation", "--model", str(tmp_path / "model"), "--videos", str(tmp_path / "clips"),
                 "--stride", "2"]) == 2
    err = capsys.readouterr().err
    assert "clip_01.gif: frames of 7x5; the scores need at least 11x11 pixels (the SSIM window)" in err
    assert "--size N" in err


def test_eval_interpolation_names_a_short_clip_before_the_model_loads(tmp_path, monkeypatch, capsys):
    """A 2-frame clip after a 9-frame one at --stride 2, or a --frames past a clip's length: refused only after the
    model loaded and filled the clips before it (310 s after realshort.mp4 with the bundled pipeline; 4 s now)."""
    _refuse_to_load(monkeypatch)
    _write_gifs(tmp_path / "clips", [_moving_clips(num=1, frames=9)[0], _clip_of(2, 16, 16)])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "pipeline.yaml").write_text("{}\n")
    base = ["eval", "interpolation", "--model", str(tmp_path / "model"), "--videos", str(tmp_path / "clips")]
    assert main(base + ["--stride", "2"]) == 2
    assert "clip_01.gif: 2 frames is too short for stride 2 (needs 3)" in capsys.readouterr().err
    assert main(base + ["--stride", "4", "--frames", "3"]) == 2
    assert "--frames 3: too few for --stride 4 (needs 5)" in capsys.readouterr().err
    (tmp_path / "clips" / "clip_01.gif").unlink()
    assert main(base + ["--stride", "2", "--frames", "10"]) == 2
    assert "clip_00.gif: 9 frames is too short for --frames 10 (needs 10)" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--seed", "-1"], "--seed must be in [0, 2**63), got -1"),
    (["--seed", str(2**63)], "--seed must be in [0, 2**63)"),
    (["--sampler", "nope"], "--sampler 'nope' is unknown"),
])
def test_eval_interpolation_refuses_a_bad_seed_or_sampler_before_loading(tmp_path, monkeypatch, capsys, extra,
                                                                         message):
    """They used to reach the sampler after the pipeline had loaded and every clip was read ("seed: expected an
    integer ..."), and without --model a bad one was silently ignored."""
    _refuse_to_load(monkeypatch)
    _write_gifs(tmp_path / "clips", _moving_clips(num=1, frames=5))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "pipeline.yaml").write_text("{}\n")
    for model in ([], ["--model", str(tmp_path / "model")]):
        assert main(["eval", "interpolation", *model, "--videos", str(tmp_path / "clips"), "--stride", "2",
                     *extra]) == 2
        err = capsys.readouterr().err
        # without --model a sampling setting is refused as such (it was recorded in the JSON and unused)
        expected = message if model else "set how the model's fills are sampled; without --model only the baselines"
        assert expected in err and len(err.strip().splitlines()) == 1, err


def test_eval_reconstruction_command_with_a_tiny_vae(tmp_path, capsys):
    from vidiff.vae import AutoencoderKL, VAEConfig

    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4, mid_attention=False))
    vae.save(tmp_path / "vae")
    clips = _moving_clips(num=2, frames=4, size=16)
    _write_gifs(tmp_path / "clips", clips)
    out = tmp_path / "rec.json"
    assert main(["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"),
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["dtype"] == "fp32"  # the default, whatever `vidiff interpolate`'s auto would pick
    assert "eval reconstruction" in capsys.readouterr().err  # the progress bar
    # Recompute the first clip's PSNR through the same VAE: the command must report exactly that.
    from vidiff.eval.reconstruction import roundtrip
    from vidiff.io import read_video

    frames, _ = read_video(tmp_path / "clips" / "clip_00.gif")
    expected = psnr(roundtrip(AutoencoderKL.load(tmp_path / "vae"), frames), frames)
    assert doc["result"]["clips"][0]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert doc["rows"][-1][0] == "mean (all frames)"
    # --size: the centre square, area-resized, is what goes through the VAE
    assert main(["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"),
                 "--size", "12", "--json", str(out)]) == 0
    from vidiff.data.real_footage import center_square

    small = center_square(frames, 12)
    expected = psnr(roundtrip(AutoencoderKL.load(tmp_path / "vae"), small), small)
    assert json.loads(out.read_text())["result"]["clips"][0]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert main(["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"),
                 "--size", "8"]) == 2
    assert "--size must be at least 11" in capsys.readouterr().err
    assert main(["eval", "reconstruction", "--vae", str(tmp_path), "--videos", str(tmp_path / "clips")]) == 2
    assert "--vae" in capsys.readouterr().err


def test_eval_reads_the_clips_of_subfolders_as_training_does(tmp_path):
    """`eval reconstruction / interpolation --videos` scored the top-level clips only, while `data cache` and `train`
    read subfolders too: a folder laid out in subfolders was scored on a part of it without a word."""
    from vidiff.data.safe_decode import scan_videos
    from vidiff.vae import AutoencoderKL, VAEConfig

    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    clips = _moving_clips(num=2, frames=5, size=16)
    for folder in ("clips", "clips/sub", "clips/sub/deeper", "clips/.hidden"):  # a hidden folder: a temporary copy
        _write_gifs(tmp_path / folder, clips[:1])
    _write_gifs(tmp_path / "clips" / "sub", clips)
    (tmp_path / "clips" / ".clip_09.gif").write_bytes(b"")  # a hidden file: a write in progress
    expected = ["clip_00.gif", "sub/clip_00.gif", "sub/clip_01.gif", "sub/deeper/clip_00.gif"]
    scanned = scan_videos(tmp_path / "clips", num_workers=1, progress=False)
    assert [p.relative_to(tmp_path / "clips").as_posix() for p, _ in scanned.good] == expected  # what training reads
    out = tmp_path / "rec.json"
    assert main(["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"),
                 "--json", str(out)]) == 0
    assert [c["name"] for c in json.loads(out.read_text())["result"]["clips"]] == expected
    assert main(["eval", "interpolation", "--videos", str(tmp_path / "clips"), "--stride", "2", "--windows", "1",
                 "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["result"]["groups"]) == expected


def test_eval_reconstruction_refuses_frames_the_vae_cannot_take_before_it_loads(tmp_path, monkeypatch, capsys):
    """A 17x16 clip after a good one was scored only after the VAE loaded and the earlier clips ran, and the error
    named no clip ("video: height and width must be multiples of 2"); --size 13 failed the same way."""
    from vidiff.vae import AutoencoderKL, VAEConfig

    torch.manual_seed(0)
    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")  # downsampling factor 2
    clips = _moving_clips(num=1, frames=4, size=16)
    _write_gifs(tmp_path / "clips", clips + [torch.cat([clips[0], clips[0][:, :, :1]], dim=2)])  # 16x16, 17x16

    def no_load(*args, **kwargs):
        raise AssertionError("the VAE loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    base = ["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "clip_01.gif: frames of 17x16" in err and "multiples of the VAE's factor 2" in err and "--size" in err
    assert main(base + ["--size", "13"]) == 2
    assert "--size 13: must be a multiple of the VAE's downsampling factor 2 (e.g. 12)" in capsys.readouterr().err


def test_eval_reconstruction_names_a_clip_shorter_than_frames_before_the_vae_loads(tmp_path, monkeypatch, capsys):
    """--frames 6 over a 6-frame and a 4-frame clip: the VAE loaded and ran the first clip before the second was
    refused as 'asked for 6 frames from 0 every 1, but the video has 4 frames'."""
    from vidiff.vae import AutoencoderKL, VAEConfig

    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    _write_gifs(tmp_path / "clips", [_clip_of(6, 16, 16), _clip_of(4, 16, 16)])

    def no_load(*args, **kwargs):
        raise AssertionError("the VAE loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    assert main(["eval", "reconstruction", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"),
                 "--frames", "6"]) == 2
    assert "clip_01.gif: 4 frames is too short for --frames 6 (needs 6)" in capsys.readouterr().err


def test_eval_shapes_command(tmp_path, capsys):
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "shapes", num=2, frames=8, progress=False)
    out = tmp_path / "shapes.json"
    assert main(["eval", "shapes", str(tmp_path / "shapes"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["eval"] == "shapes" and doc["result"]["num_clips"] == 2
    assert doc["columns"] == ["attribute", "correct", "total", "accuracy"]
    assert {row[0] for row in doc["rows"]} >= {"colour", "shape", "direction"}
    assert f"Shapes accuracy: 2 clips in {tmp_path / 'shapes'}\n" in capsys.readouterr().out


def test_eval_shapes_with_no_usable_prompt_is_an_error(tmp_path, capsys):
    """Clips without prompts (or corrupt ones with none) printed a table of zeros and exited 0."""
    from vidiff.io import write_video

    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "a.mp4", np.zeros((4, 32, 32, 3), np.uint8), 8)
    (tmp_path / "clips" / "b.mp4").write_text("not a video")
    assert main(["eval", "shapes", str(tmp_path / "clips"), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "none of its 2 video files has a usable prompt" in err and "a.mp4: no prompt" in err, err
    assert not (tmp_path / "r.json").exists()


def test_eval_shapes_says_an_undecodable_clip_apart_from_wrong_ones(tmp_path, capsys):
    """A clip that does not decode counts as a failure on every attribute, said as unreadable (it read as
    'wrong: asked ..., found <the decoder's error>')."""
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "clips", 1, frames=8, progress=False)
    (tmp_path / "clips" / "b.mp4").write_text("not a video")
    (tmp_path / "clips" / "b.txt").write_text("a red circle moving left\n")
    assert main(["eval", "shapes", str(tmp_path / "clips")]) == 0
    out = capsys.readouterr().out
    assert "1 clip could not be decoded and counts as wrong on every attribute" in out
    assert "  unreadable: b.mp4:" in out and "wrong: b.mp4" not in out
    assert "colour             1      2     50.0%" in out  # the Shapes clip is read right, b.mp4 fails


def test_eval_interpolation_names_the_clip_too_short_for_its_windows(tmp_path, capsys):
    """With --windows a clip shorter than stride + 1 frames was refused as '2 frames is too short for stride 2',
    naming no clip of the folder."""
    clips = _moving_clips(num=2, frames=9)
    _write_gifs(tmp_path / "clips", [clips[0], clips[1][:2]])  # clip_01.gif: 2 frames
    assert main(["eval", "interpolation", "--videos", str(tmp_path / "clips"), "--stride", "2",
                 "--windows", "2"]) == 2
    assert "clip_01.gif: 2 frames is too short for stride 2 (needs 3)" in capsys.readouterr().err


def test_every_folder_option_says_missing_or_a_file(tmp_path, capsys):
    """A missing folder was "not a folder" (FOLDER, --real, --videos) or lacked a file in it ("--vae: no config.yaml
    in nope", "--model: no pipeline.yaml in nope"); a file given for a folder was told the same."""
    _write_gifs(tmp_path / "clips", _moving_clips(num=2, frames=8, size=24))
    clips, file = str(tmp_path / "clips"), tmp_path / "note.txt"
    file.write_text("x")
    for path, message in ((tmp_path / "nope", "no such folder"), (file, "is a file, not a folder")):
        for argv, name in ((["eval", "shapes", str(path)], "FOLDER"),
                           (["eval", "fvd", "--real", str(path), "--fake", clips, "--network", str(file)], "--real"),
                           (["eval", "reconstruction", "--vae", str(path), "--videos", clips], "--vae"),
                           (["eval", "reconstruction", "--vae", clips, "--videos", str(path)], "--videos"),
                           (["eval", "interpolation", "--model", str(path), "--videos", clips, "--stride", "2"],
                            "--model")):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert f"{name} {path}: {message}" in err and len(err.strip().splitlines()) == 1, err


def test_the_shapes_table_counts_one_clip_in_the_singular():
    """`vidiff eval shapes` on one clip printed "Shapes accuracy: 1 clips in ..."."""
    from vidiff.eval.shapes import ATTRIBUTES, format_shapes_table

    counts = {a: {"correct": 1, "total": 1} for a in ATTRIBUTES}
    result = {"folder": "out", "num_clips": 1, "accuracy": {a: 1.0 for a in ATTRIBUTES}, "counts": counts,
              "skipped": ["b.mp4"], "clips": []}
    lines = format_shapes_table(result).splitlines()
    assert lines[0] == "Shapes accuracy: 1 clip in out" and "skipped 1 clip without a usable prompt: b.mp4" in lines


def test_eval_names_a_clip_whose_frames_change_size_part_way_before_anything_loads(tmp_path, monkeypatch, capsys):
    """A clip late in the folder whose frames turn 32x32 at frame 8 (joined recordings) passed the header checks;
    the model (or VAE) loaded and scored the clips before it, then the read failed (12 s with the bundled
    real-footage pipeline and 3 Shapes clips before it; eval reconstruction after 48 of 72 frames)."""
    from test_hostile_streams import _size_changing_clip

    from vidiff.commands.interpolate import BUNDLED as BUNDLED_INTERP
    from vidiff.vae import AutoencoderKL, VAEConfig

    _refuse_to_load(monkeypatch)
    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")

    def no_load(*args, **kwargs):
        raise AssertionError("the VAE loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    _write_gifs(tmp_path / "clips", _moving_clips(num=1, frames=9, size=64))
    _size_changing_clip(tmp_path / "clips" / "z_joined.avi")
    clips = ["--videos", str(tmp_path / "clips")]
    for argv in (["interpolation", "--model", str(BUNDLED_INTERP), "--stride", "2", *clips],
                 ["reconstruction", "--vae", str(tmp_path / "vae"), *clips]):
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err
        assert "z_joined.avi: frame 8 is 32x32, the header says 64x64" in err and err.count("\n") == 1, err
    # the frames a --frames leaves unread are not decoded: the first 8 are whole
    assert main(["eval", "interpolation", "--stride", "2", "--frames", "8", *clips]) == 0


def test_eval_fvd_names_a_short_or_damaged_clip_before_any_features(tmp_path, monkeypatch, capsys):
    """A clip late in --fake shorter than --frames, or whose frames change size part-way, was met after every
    --real clip and the fakes before it had run through the feature network (minutes with an I3D on thousands of
    clips)."""
    from test_hostile_streams import _size_changing_clip

    import vidiff.eval.fvd

    def no_features(*args, **kwargs):
        raise AssertionError("features were computed")

    monkeypatch.setattr(vidiff.eval.fvd, "fvd", no_features)
    clips = _moving_clips(num=3, frames=9, size=24)
    _write_gifs(tmp_path / "real", clips)
    _write_gifs(tmp_path / "fake", clips[:2] + [_clip_of(6, 24, 24)])
    net = tmp_path / "net.pt"
    torch.jit.script(_Features()).save(str(net))
    base = ["eval", "fvd", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--network", str(net),
            "--frames", "8", "--size", "16"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'fake' / 'clip_02.gif'}: 6 frames is too short for --frames 8 (needs 8)" in err, err
    (tmp_path / "fake" / "clip_02.gif").unlink()
    _size_changing_clip(tmp_path / "fake" / "z_joined.avi")  # 8 frames at 64x64, then 32x32
    assert main(base + ["--frames", "9"]) == 2  # the 9th frame is read
    assert "--fake: " in (err := capsys.readouterr().err) and "frame 8 is 32x32, the header says 64x64" in err, err


def test_eval_reads_a_clip_resized_while_it_decodes(tmp_path, monkeypatch):
    """With --size, a clip is centre-cropped and resized frame chunk by chunk as it decodes: read whole at full
    size first, a 1080p clip of a minute passed read_video's bound on the bytes one read keeps and was refused
    by eval interpolation / reconstruction, which score 128 x 128. The frames equal the whole read's, resized."""
    from vidiff import io
    from vidiff.data.real_footage import center_square
    from vidiff.eval.fvd import read_clips

    rng = np.random.default_rng(3)
    clip = torch.from_numpy(rng.integers(0, 256, (70, 48, 80, 3), dtype=np.uint8))
    path = tmp_path / "c.mp4"
    io.write_video(path, clip, fps=10)
    whole = {n: center_square(next(read_clips([path], n))[1], 32)
             for n in (None, 5)}
    for n, expected in whole.items():
        _, got = next(read_clips([path], n, 32))
        assert got.shape == (expected.shape[0], 32, 32, 3) and torch.equal(got, expected)
    # a bound on kept bytes that the full-size clip passes and the resized one does not
    monkeypatch.setattr(io, "DEFAULT_LIMITS", io.VideoLimits(max_bytes=70 * 48 * 80 * 3 - 1))
    with pytest.raises(Exception, match="would take"):
        next(read_clips([path], None))
    assert next(read_clips([path], None, 32))[1].shape == (70, 32, 32, 3)


@pytest.mark.parametrize("name, data, said", [
    ("metadata.jsonl", b'{"file_name": "clip_000000.mp4", "text": "a red circle"}\n[1, 2]\n',
     "metadata.jsonl, line 2: needs a JSON object"),  # was AttributeError: 'list' object has no attribute 'get'
    ("metadata.jsonl", b'{"file_name": "clip_000000.mp4", "text": "a red circle caf\xe9"}\n',
     "metadata.jsonl: not UTF-8 text"),  # was a UnicodeDecodeError traceback
    ("clip_000000.mp4.json", b'{"prompt": "a red circle", "seed": ' + b"9" * 5000 + b"}",
     "clip_000000.mp4.json: not valid JSON (Exceeds the limit (4300 digits)"),  # was a ValueError traceback
])
def test_eval_shapes_refuses_a_hostile_caption_file_in_one_line(tmp_path, capsys, name, data, said):
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "clips", 1, frames=8, progress=False)
    for extra in ("clip_000000.txt", "clip_000000.json"):
        (tmp_path / "clips" / extra).unlink()
    (tmp_path / "clips" / name).write_bytes(data)
    assert main(["eval", "shapes", str(tmp_path / "clips")]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err


def test_eval_shapes_reads_a_metadata_jsonl_with_a_byte_order_mark_as_training_does(tmp_path, capsys):
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "clips", 1, frames=8, progress=False)
    caption = (tmp_path / "clips" / "clip_000000.txt").read_text().strip()
    for extra in ("clip_000000.txt", "clip_000000.json"):
        (tmp_path / "clips" / extra).unlink()
    (tmp_path / "clips" / "metadata.jsonl").write_text(
        "\ufeff" + json.dumps({"file_name": "clip_000000.mp4", "text": caption}) + "\n", encoding="utf-8")
    assert main(["eval", "shapes", str(tmp_path / "clips")]) == 0  # was "line 1: not valid JSON (Unexpected BOM)"
    assert "all_correct        1      1    100.0%" in capsys.readouterr().out


def test_the_shapes_table_escapes_control_characters_of_file_names(tmp_path, capsys):
    """A clip named with a terminal escape sequence (clear the screen) or a bidi override reached stdout raw."""
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "clips", 1, frames=8, progress=False)
    evil = "c\x1b[2J\u202e"
    (tmp_path / "clips" / "clip_000000.mp4").rename(tmp_path / "clips" / f"{evil}.mp4")
    (tmp_path / "clips" / f"{evil}.txt").write_text("a blue circle moving left\n")  # wrong: it is listed
    assert main(["eval", "shapes", str(tmp_path / "clips")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "  wrong: c\\x1b[2J\\u202e.mp4: asked 'a blue circle moving left'" in out


def test_the_eval_tables_escape_control_characters_of_clip_names():
    """A clip named with a terminal escape sequence reached stdout raw in the eval interpolation / reconstruction /
    fvd tables (eval shapes' table escaped it already)."""
    from vidiff.commands.eval_output import format_table

    table = format_table(["clip", "PSNR (dB)"], [["c\x1b[2J\u202e.mp4", 30.5], ["plain.mp4", 28.25]])
    assert "\x1b" not in table and "\u202e" not in table and "c\\x1b[2J\\u202e.mp4" in table
    assert table.splitlines()[2].startswith("plain.mp4") and len(table.splitlines()) == 3


def test_fvd_refuses_a_folder_short_of_num_before_the_network_or_any_features(tmp_path, monkeypatch, capsys):
    """--num over a folder's clip count was found by the feature extraction, after the network had loaded and run
    over every --real clip, in an error naming no folder ("only 2 clips available, fewer than num_samples=3")."""
    import vidiff.eval.fvd
    from vidiff.eval.fvd import FeatureProtocol, fvd

    _write_gifs(tmp_path / "real", _moving_clips(num=3, frames=8, size=16))
    _write_gifs(tmp_path / "fake", _moving_clips(num=2, frames=8, size=16, seed=1))
    net = tmp_path / "net.pt"
    torch.jit.script(_Features()).save(str(net))

    def no_features(*args, **kwargs):
        raise AssertionError("features were computed")

    monkeypatch.setattr(vidiff.eval.fvd, "extract_features", no_features)
    with pytest.raises(InputError, match=r"^--fake: 2 video files in .*fake, fewer than --num 3$"):
        fvd(tmp_path / "real", tmp_path / "fake", net, FeatureProtocol(clip_length=8, resolution=16, num_samples=3))
    monkeypatch.setattr(vidiff.eval.fvd, "load_network", no_features)
    base = ["eval", "fvd", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--network", str(net),
            "--frames", "8", "--size", "16", "--num"]
    assert main(base + ["3"]) == 2
    err = capsys.readouterr().err
    assert f"--fake: 2 video files in {tmp_path / 'fake'}, fewer than --num 3" in err and err.count("\n") == 1, err
    assert main(base + ["4"]) == 2 and "--real: 3 video files" in capsys.readouterr().err


def test_eval_shapes_names_what_it_skipped_and_metadata_rows_without_a_clip(tmp_path, capsys):
    """A metadata.jsonl row whose clip is not in the folder (a generation that crashed before writing it, a name
    written another way) left the score without a word, and the table said "skipped 1 clip" naming none."""
    import shutil

    from vidiff.data.shapes_folder import generate_shapes_dataset

    clips = tmp_path / "clips"
    generate_shapes_dataset(clips, 3, frames=8, progress=False)
    captions = [(clips / f"clip_00000{i}.txt").read_text().strip() for i in range(3)]
    for path in [*clips.glob("*.txt"), *clips.glob("clip_*.json")]:
        path.unlink()
    (clips / "sub").mkdir()
    shutil.move(clips / "clip_000002.mp4", clips / "sub" / "clip_000002.mp4")  # and no row names it
    rows = [{"file_name": "clip_000000.mp4", "text": captions[0]}, {"file_name": "clip_000001.mp4", "text": captions[1]},
            {"file_name": "crashed.mp4", "text": captions[2]}]
    (clips / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "shapes", str(clips), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 clip without a usable prompt: sub/clip_000002.mp4: no prompt" in out, out
    assert "metadata.jsonl names 1 clip not in the folder (not scored): crashed.mp4\n" in out, out
    assert json.loads((tmp_path / "r.json").read_text())["result"]["metadata_without_clip"] == ["crashed.mp4"]
    # every row misnamed: the refusal names a row, the likely cause
    (clips / "metadata.jsonl").write_text("".join(json.dumps({**r, "file_name": f"c{i}.mp4"}) + "\n"
                                                  for i, r in enumerate(rows)))
    assert main(["eval", "shapes", str(clips)]) == 2
    err = capsys.readouterr().err
    assert "nothing was scored" in err and "metadata.jsonl names 3 file(s) not in it, e.g. c0.mp4" in err, err
