"""The measured motion of a clip (vidiff/motion.py) and extensions that start from it (extend_video's strength)."""
import math

import pytest
import torch

from vidiff.motion import carry_forward, clip_velocity, pair_speeds, pair_velocities


def moving_texture(u: float, v: float, frames: int = 8, height: int = 48, width: int = 64, zoom: float = 1.0
                   ) -> torch.Tensor:
    """(F, 3, H, W) a smooth pattern (a sum of plane waves, `zoom` times larger) translated by (u, v) pixels per
    frame, sampled exactly."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    waves = [(0.11, 0.05, 0.0), (-0.07, 0.13, 1.0), (0.19, -0.09, 2.0), (0.03, 0.17, 0.5)]
    out = []
    for t in range(frames):
        xs, ys = x - u * t, y - v * t
        frame = sum(torch.sin(2 * math.pi * (a * xs + b * ys) / zoom + p) for a, b, p in waves)
        out.append(torch.stack([frame, 0.5 * frame, -frame]))
    return torch.stack(out).float()


@pytest.mark.parametrize("u, v", [(0.6, -0.3), (0.0, 1.2), (-1.5, 0.0)])
def test_a_translating_pattern_moves_at_its_velocity(u, v):
    got = pair_velocities(moving_texture(u, v))  # (F-1, 2)
    assert got.shape == (7, 2)
    assert torch.allclose(got, torch.tensor([u, v]).expand(7, 2), atol=0.04 * math.hypot(u, v))
    assert float(clip_velocity(moving_texture(u, v)).norm()) == pytest.approx(math.hypot(u, v), rel=0.04)


def test_large_frames_are_measured_in_their_own_pixels():
    small = float(pair_speeds(moving_texture(0.5, 0.25, height=48, width=64)).mean())
    large = float(pair_speeds(moving_texture(2.0, 1.0, height=192, width=256, zoom=4)).mean())  # the clip at 4x
    assert small == pytest.approx(math.hypot(0.5, 0.25), rel=0.04)
    assert large == pytest.approx(4 * small, rel=0.05)


def test_still_and_flat_clips_have_no_motion():
    still = moving_texture(0.0, 0.0)
    assert float(pair_speeds(still).max()) == pytest.approx(0.0, abs=1e-4)
    flat = torch.full((5, 3, 32, 32), 0.3)
    assert torch.equal(pair_speeds(flat), torch.zeros(4))  # no gradient: zero, not NaN


def test_uint8_frames_channels_last_match_float_frames():
    frames = moving_texture(0.7, 0.2)
    u8 = ((frames - frames.min()) / (frames.max() - frames.min()) * 255).round().to(torch.uint8)
    as_float = u8.float()
    assert torch.allclose(pair_speeds(u8.permute(0, 2, 3, 1).contiguous()), pair_speeds(as_float), atol=1e-5)
    with pytest.raises(ValueError, match="F >= 2"):
        pair_speeds(u8[:1])


def test_clip_velocity_is_the_slope_of_the_position_track():
    assert torch.allclose(clip_velocity(moving_texture(-0.4, 0.9)), torch.tensor([-0.4, 0.9]), atol=0.03)
    # a square drawn at whole pixels, 0.4 px a frame: it jumps 1 px every 2-3 frames; the slope of the track
    # reads 0.4 from 8 frames, where the first-to-last displacement says 3 / 7
    clip = _square_clip(8, 0.4)
    assert float(clip_velocity(clip)[0]) == pytest.approx(0.4, rel=0.08)
    assert abs(float(clip_velocity(clip)[1])) < 0.02


def test_carry_forward_moves_the_content_along_the_velocity():
    frame = torch.full((32, 40, 3), 20, dtype=torch.uint8)
    frame[10:16, 5:11] = torch.tensor([200, 30, 90], dtype=torch.uint8)  # a 6 x 6 square
    moved = carry_forward(frame, torch.tensor([1.5, -1.0]), [0.0, 2.0, 4.0])  # (3, H, W, 3)
    assert moved.shape == (3, 32, 40, 3) and moved.dtype == torch.uint8
    assert torch.equal(moved[0], frame)
    assert torch.equal(moved[1], torch.roll(frame, shifts=(-2, 3), dims=(0, 1)))  # whole pixels: exact
    assert torch.equal(moved[2], torch.roll(frame, shifts=(-4, 6), dims=(0, 1)))





@pytest.fixture(scope="module")
def tiny_pipe(load_tool):
    from vidiff.pipeline import VideoPipeline
    from vidiff.text import TextEncoder

    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    return VideoPipeline(tool.pipeline_config(steps=2), vae, kf, it, TextEncoder.load("default"))


def _square_clip(frames: int, step: float) -> torch.Tensor:
    clip = torch.full((frames, 64, 64, 3), 30, dtype=torch.uint8)
    for t in range(frames):
        x = round(10 + step * t)
        clip[t, 20:34, x : x + 14] = torch.tensor([220, 60, 40], dtype=torch.uint8)
    return clip


def test_extension_strength_starts_the_new_keyframes_from_the_clip_moved_on(tiny_pipe, monkeypatch):
    from vidiff.errors import InputError
    from vidiff.pipeline.layout import extension_windows

    clip = _square_clip(8, 1.0)  # moves right 1 px a frame
    inits = []
    run = tiny_pipe.keyframes.run

    def spy(*args, **kwargs):  # run(shape, gens, settings, cond, null_text, callback, negative_text, init)
        inits.append(kwargs.get("init", args[7] if len(args) > 7 else None))
        return run(*args, **kwargs)

    monkeypatch.setattr(tiny_pipe.keyframes, "run", spy)
    out, _ = tiny_pipe.extend_video(clip, "a red square moving right", num_frames=12, seed=0, strength=0.5,
                                    progress=False)
    assert out.shape == (20, 64, 64, 3) and torch.equal(out[:8], clip)
    windows = extension_windows(8, 12, 4, 5)
    assert len(inits) == len(windows) >= 2
    velocity = clip_velocity(clip)
    assert velocity[0] == pytest.approx(1.0, rel=0.05) and abs(float(velocity[1])) < 0.05
    for w, init in zip(windows, inits):  # each new keyframe starts from the last frame moved on to its time
        new = [w.start + i * 5 for i in range(w.num_known, 4)]
        expected = tiny_pipe.vae.encode_frames(carry_forward(clip[-1], velocity, [t - 7.0 for t in new]))[0]
        assert torch.allclose(init[0, :, w.num_known:], expected, atol=1e-5)
    with pytest.raises(InputError, match="strength"):
        tiny_pipe.extend_video(clip, "x", num_frames=4, strength=1.5, progress=False)
    # 1 (the default of a pipeline.yaml without extension_strength): from noise, as before
    inits.clear()
    plain, _ = tiny_pipe.extend_video(clip, "a red square moving right", num_frames=12, seed=0, progress=False)
    assert inits and all(init is None for init in inits) and not torch.equal(plain, out)


def test_extension_strength_in_pipeline_yaml_is_checked():
    from vidiff.config import ConfigError
    from vidiff.pipeline.config import PipelineConfig, validate_pipeline_config

    assert validate_pipeline_config(PipelineConfig(extension_strength=0.5)).extension_strength == 0.5
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="extension_strength"):
            validate_pipeline_config(PipelineConfig(extension_strength=bad))


def test_cli_extend_records_the_strength_it_used(load_tool, tmp_path):
    import dataclasses
    import json

    from vidiff.cli import main
    from vidiff.io import write_video
    from vidiff.pipeline import VideoPipeline
    from vidiff.text import TextEncoder

    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    config = dataclasses.replace(tool.pipeline_config(steps=1), extension_strength=0.5)
    folder = VideoPipeline(config, vae, kf, it, TextEncoder.load("default")).save_pretrained(tmp_path / "pipe")
    clip = _square_clip(6, 1.0).numpy()
    for frames, expected in ((6, 0.5), (1, 1.0)):  # one frame shows no motion: extended from noise
        write_video(tmp_path / f"in{frames}.mp4", clip[:frames], 8)
        out = tmp_path / f"e{frames}.mp4"
        assert main(["extend", str(tmp_path / f"in{frames}.mp4"), "a red square moving right", "--frames", "4",
                     "-o", str(out), "--model", str(folder), "--quiet"]) == 0
        assert json.loads(out.with_name(out.name + ".json").read_text())["settings"]["strength"] == expected
