"""Interpolation-only pipelines and up-conversion: the arithmetic of chunks, padding and tiles over any fill, the
memory planner, streaming, a pipeline folder without a keyframe part, and the keyframe residual carry. The
`vidiff interpolate` command itself: tests/test_interpolate_cli.py."""
from pathlib import Path

import pytest
import torch
import yaml

from vidiff.errors import InputError
from vidiff.eval.interpolation import linear_blend
from vidiff.pipeline.config import read_pipeline_folder
from vidiff.pipeline.upconvert import output_length, plan_passes, tile_starts, upconvert, upconvert_frames


def _clip(frames: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (frames, h, w, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


# ---- up-conversion over any fill --------------------------------------------------------------------------
def test_tile_starts_cover_with_overlap():
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(300, 128, 32)
    assert starts == [0, 96, 172]
    assert starts[-1] + 128 == 300 and all(b - a <= 128 - 32 for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("tile", [512, 24])
def test_upconvert_of_a_pixelwise_fill_equals_the_whole_clip_fill(tile):
    """The linear blend is per pixel and per gap, so chunking, padding and tiling must not change it at all."""
    frames = _clip(11, 37, 50)
    seen = []

    def fill(keys, stride, seed):
        seen.append(tuple(keys.shape))
        return linear_blend(keys, stride)

    out = upconvert(fill, frames, 3, multiple=8, tile=tile, overlap=8, chunk=4, progress=False)
    assert out.shape == (output_length(11, 3), 37, 50, 3) == (31, 37, 50, 3)
    assert torch.equal(out[::3], frames)
    assert torch.equal(out, linear_blend(frames, 3))
    assert all(h % 8 == 0 and w % 8 == 0 for _, h, w, _ in seen)  # padded to the network's multiple
    assert max(k for k, *_ in seen) == 4  # chunks of 4 input frames
    if tile == 24:
        assert len(seen) > 4 * 3  # several tiles per chunk


@pytest.mark.parametrize("factor, said", [(0, "factor must be in [1, 256], got 0"),
                                          (-1, "factor must be in [1, 256], got -1"),
                                          (2.0, "factor must be an integer in [1, 256], got 2.0")])
def test_upconvert_from_python_names_a_bad_factor(factor, said):
    """upconvert is how docs/pipeline.md up-converts from Python: factor 0 failed as "slice step cannot be zero",
    -1 and 2.0 as torch's errors about zeros()."""
    with pytest.raises(InputError) as e:
        upconvert(linear_blend, _clip(3, 8, 8), factor, progress=False)
    assert str(e.value) == said


def test_upconvert_blends_tiles_and_returns_input_frames_exactly():
    """A fill that adds a tile-dependent offset to the in-between frames: overlaps are blended (values between
    the two tiles' offsets), and the input frames stay exact whatever the fill does."""
    frames = torch.full((3, 16, 40, 3), 100, dtype=torch.uint8)

    def fill(keys, stride, seed):
        out = linear_blend(keys, stride).to(torch.int16)
        out[1:-1] += int(keys[0, 0, 0, 0]) % 7 + len(keys)  # same offset in every tile: 100 % 7 + 3 = 5
        return out.clamp(0, 255).to(torch.uint8)

    out = upconvert(fill, frames, 2, multiple=8, tile=24, overlap=8, chunk=3, progress=False)
    assert torch.equal(out[::2], frames)
    assert (out[1::2] == 105).all()


def test_plan_passes_fits_the_budget_with_the_least_decoding():
    """The real-footage VAE's shape as loaded for inference: a temporal decoder of radius 8 that decodes 8 frames
    per pass, 4 x (2.65 x 48 + 3.3 x 96) = 1776 bytes per pixel and frame. At 320x240 a 1.5 GiB budget fits two
    gaps (9 frames) of the whole frame, not three; more budget buys the longest chunk that still decodes in one pass
    (21 frames), never one that needs context passes."""
    from vidiff.models.vae import for_inference
    from vidiff.vae import AutoencoderKL, VAEConfig

    vae = for_inference(AutoencoderKL(VAEConfig(block_out_channels=(48, 96, 128), norm_groups=16, latent_channels=16,
                                                mid_attention=False, frame_chunk=8, temporal_decoder=True)))
    assert vae.decoder.temporal_radius == 8

    def plan(budget_gib, factor=4, h=240, w=320, **kw):
        return plan_passes(factor, h, w, multiple=8, budget=int(budget_gib * 2**30),
                           decode_windows=vae.decode_windows, decode_bytes=vae.decode_bytes, **kw)

    assert plan(1.5) == (3, 384)  # 9 x 76800 px x 1776 B = 1.14 GiB; 13 frames would be 1.65
    assert plan(4.5) == (6, 384)  # 21 frames in one pass (2.67 GiB), not 7 or 8 (25+ frames: passes with context)
    assert plan(1.5, h=720, w=1280) == (2, 384)  # one gap of 720p (7.6 GiB) in tiles of 384: 1.22 GiB
    chunk, tile = plan(1.0, h=720, w=1280)  # under 1 GiB even a 384 tile does not fit: the tile shrinks
    assert (chunk, tile) == (2, 344) and vae.decode_bytes(5, tile, tile) <= 2**30 < vae.decode_bytes(5, 352, 352)
    assert plan(1.5, chunks=[8])[0] == 8 and plan(1.5, chunks=[8])[1] < 384  # a given chunk is kept: tiles shrink
    per_frame = AutoencoderKL(VAEConfig(block_out_channels=(48, 96, 128), norm_groups=16, latent_channels=16,
                                        mid_attention=False, frame_chunk=8))
    assert plan_passes(4, 240, 320, multiple=8, budget=2**30, decode_windows=per_frame.decode_windows,
                       decode_bytes=per_frame.decode_bytes) == (8, 384)  # no context: the longest chunk


# ---- interpolation-only pipeline ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interp_only(tmp_path_factory, load_tool) -> Path:
    """A tiny random pipeline without its keyframe part, the interpolation part trained on gaps 2..4."""
    import shutil

    make = load_tool("make_random_pipeline")
    folder = make.write_random_pipeline(tmp_path_factory.mktemp("pipe") / "interp", tiny=True, steps=2)
    shutil.rmtree(folder / "keyframes")
    cfg = yaml.safe_load((folder / "pipeline.yaml").read_text())
    cfg["parts"]["keyframes"] = None
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "interpolation" / "trained_on.yaml").write_text(yaml.safe_dump(
        {"stage": "interpolation", "text_encoder": "default", "num_frames": [3, 5], "frame_strides": [1, 1]}))
    return folder


def test_interpolation_only_pipeline_fills_and_refuses_text_to_video(interp_only, tmp_path):
    from vidiff.pipeline import VideoPipeline

    assert read_pipeline_folder(interp_only).parts.keyframes is None
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(interp_only)
    assert pipe.keyframes is None
    keys = _clip(3, 24, 40)  # not the pipeline's 64x64: any multiple of 8
    out = pipe.fill_between(keys, 2, seed=1)
    assert out.shape == (5, 24, 40, 3) and torch.equal(out[::2], keys)
    assert torch.equal(out, pipe.fill_between(keys, 2, seed=1))
    with pytest.raises(InputError, match="interpolation-only"):
        pipe.text_to_video("a red circle moving left")
    with pytest.raises(InputError, match="interpolation-only"):
        pipe.extend_video(_clip(5, 64, 64), "more", num_frames=4)
    with pytest.raises(InputError, match="trained on windows of 3..5 frames"):
        pipe.fill_between(keys, 6)
    saved = pipe.save_pretrained(tmp_path / "copy")
    assert not (saved / "keyframes").exists() and read_pipeline_folder(saved).parts.keyframes is None


def test_interpolation_only_pipeline_says_so_before_checking_the_inputs(interp_only):
    """An image of another size was told to be resized, a clip of a non-layout length that its length does not fit,
    and the edit's refusal named "this request": each must say first that the pipeline has no keyframe part."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(interp_only)
    with pytest.raises(InputError, match=r"interpolation-only .*: animating an image needs a keyframe model"):
        pipe.image_to_video(_clip(1, 24, 40)[0], "a red circle moving left")
    with pytest.raises(InputError, match=r"interpolation-only .*: editing a video needs a keyframe model"):
        pipe.edit_video(_clip(2, 24, 40), "a blue circle moving left")


@pytest.mark.parametrize("height, width", [(0, 16), (8, 4097)])
def test_fill_between_names_the_keyframes_of_a_size_it_cannot_fill(interp_only, height, width):
    """The size check was the request's, of height= and width= that fill_between does not take: "width: must be an
    integer in [1, 4096], got 4104" for a 4097 px frame (the padded width)."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(interp_only)
    with pytest.raises(InputError) as e:
        pipe.fill_between(torch.zeros(2, height, width, 3, dtype=torch.uint8), 2)
    assert str(e.value).startswith(f"keyframes: frames of {width}x{height} pixels; each side must be 1 to 4096")


@pytest.mark.parametrize("stride, count, said", [
    (None, 3, "stride must be an integer >= 1, got None"),  # was filled at pipeline.yaml's keyframe stride
    (0, 3, "stride must be an integer >= 1, got 0"),
    ("2", 3, "stride must be an integer >= 1, got '2'"),
    (7, 3, "stride 7 cannot be filled by this interpolation model (largest gap per pass 5); strides that work: 2, 3, "
           "4 (the fillable strides the interpolation part was trained on)"),
    (2, 300, "frames / keyframes / stride: 599 / 300 / 2 exceed the limits 1024 / 256 / 256")])
def test_fill_between_names_its_own_arguments_in_a_layout_refusal(interp_only, stride, count, said):
    """fill_between(keyframes, stride) was refused in request()'s names: "keyframe_stride must be an integer >= 1",
    "num_frames / num_keyframes / keyframe_stride: ...", settings it does not take; stride=None ran at stride 5."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(interp_only)
    with pytest.raises(InputError) as e:
        pipe.fill_between(torch.zeros(count, 8, 8, 3, dtype=torch.uint8), stride)
    assert str(e.value) == said


def test_fill_between_past_the_trained_gaps_names_the_passes_that_reach_it(interp_only):
    """fill_between(keyframes, 16) was refused offering only force_layout (an untrained layout), not the passes of
    trained gaps that `vidiff interpolate --factor 16` runs; the call it names fills the stride, keyframes kept."""
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(interp_only)
    keyframes = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    with pytest.raises(InputError) as e:
        pipe.fill_between(keyframes, 16)
    assert str(e.value).endswith("runs it anyway); or fill it in passes of trained gaps (4 x 4), as `vidiff "
                                 "interpolate --factor 16` does: fill_between(fill_between(keyframes, 4), 4)")
    frames = pipe.fill_between(pipe.fill_between(keyframes, 4), 4)
    assert frames.shape == (17, 8, 8, 3) and torch.equal(frames[::16], keyframes)


def test_bundled_real_footage_pipeline_follows_a_moving_picture():
    """The shipped real-interp pipeline denoises around its ends warped along optical flow (docs/real_footage.md):
    on a textured picture moving 2 px per frame its in-between frames follow the motion (28 dB against the truth
    when written, 33 away from the borders), where the linear blend of the ends is at 20 dB. A part or VAE that
    broke the picture, or a fill that ignored the motion, would be far below. The input frames come back exactly."""
    from vidiff.commands.interpolate import BUNDLED
    from vidiff.eval.metrics import psnr
    from vidiff.pipeline import VideoPipeline

    pytest.importorskip("cv2")
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(BUNDLED)
    assert pipe.keyframes is None and pipe.vae.decoder.temporal_radius > 0
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(72.0), indexing="ij")
    picture = torch.stack([128 + 90 * torch.sin(xx / 3 + yy / 5), 128 + 80 * torch.cos(yy / 4 - xx / 6),
                           100 + 50 * torch.sin((xx + 2 * yy) / 4)], dim=-1)  # (64,72,3)
    truth = torch.stack([picture[:, 2 * k:64 + 2 * k] for k in range(5)]).round().to(torch.uint8)
    keys = truth[::4]  # moved 8 px in 4 frames
    out = pipe.fill_between(keys, 4, seed=0)
    assert torch.equal(out[::4], keys)
    blend = psnr(linear_blend(keys, 4)[1:4], truth[1:4])
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from the borders no flow can see past
    assert psnr(out[1:4], truth[1:4]) > blend + 5, (psnr(out[1:4], truth[1:4]), blend)
    assert psnr(out[1:4][inner], truth[1:4][inner]) > 30


# ---- keyframe residual carry --------------------------------------------------------------------------------
def test_carry_keyframe_residual_adds_the_ends_errors_by_closeness():
    from vidiff.pipeline.residual import carry_keyframe_residual

    decoded = torch.full((5, 2, 2, 3), 100, dtype=torch.uint8)
    keys = torch.tensor([110, 140, 90], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 2, 2, 3).contiguous()
    out = carry_keyframe_residual(decoded, keys, 2)
    assert out[:, 0, 0, 0].tolist() == [110, 125, 140, 115, 90]  # errors +10, +40, -10; halves between
    decoded[1] = 250
    assert int(carry_keyframe_residual(decoded, keys, 2)[1, 0, 0, 0]) == 255  # clamped


def test_fill_between_with_carry_residual(interp_only):
    import dataclasses

    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.residual import carry_keyframe_residual

    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(interp_only)
    keys = _clip(3, 16, 24, seed=7)
    plain = pipe.fill_between(keys, 2, seed=2)
    with torch.inference_mode():
        decoded_keys = pipe.vae.decode_to_frames(pipe.vae.encode_frames(keys))[0]
    pipe.config = dataclasses.replace(pipe.config, interpolation=dataclasses.replace(pipe.config.interpolation,
                                                                                     carry_residual=True))
    carried = pipe.fill_between(keys, 2, seed=2)
    assert torch.equal(carried[::2], keys)
    plain = plain.clone()
    plain[::2] = decoded_keys
    expected = carry_keyframe_residual(plain, keys, 2)
    assert (carried.int() - expected.int()).abs().max() <= 1  # the keyframes decoded alone or in the timeline


def test_chunk_seeds_wrap_around_at_2_63():
    """Chunk i is filled with seed + i, wrapping to 0 at 2**63: every seed in [0, 2**63) works, as in generate and
    the Python API (`vidiff interpolate --seed` stopped at 2**62, `generate --seed` at 2**63 - --num)."""
    seeds = []

    def fill(keys, stride, seed):
        seeds.append(seed)
        return linear_blend(keys, stride)

    upconvert(fill, _clip(7, 16, 16), 2, seed=2**63 - 2, multiple=8, chunk=3, progress=False)
    assert seeds == [2**63 - 2, 2**63 - 1, 0]
    seeds.clear()
    upconvert(fill, _clip(7, 16, 16), 2, seed=5, multiple=8, chunk=3, progress=False)
    assert seeds == [5, 6, 7]  # seeds below the wrap as before


def test_upconvert_frames_reads_its_input_one_chunk_ahead():
    """Streaming: the first output frame comes after at most two chunks of input were read, whatever the length."""
    clip = _clip(40, 16, 16)
    pulled = []

    def source():
        for i, frame in enumerate(clip):
            pulled.append(i)
            yield frame

    def fill(keys, stride, seed):
        return linear_blend(keys, stride)

    stream = upconvert_frames(fill, source(), 3, multiple=8, chunk=4, progress=False)
    first = next(stream)
    assert torch.equal(first, clip[0]) and len(pulled) == 4 + 3
    rest = torch.stack([first, *stream])
    assert torch.equal(rest, upconvert(fill, clip, 3, multiple=8, chunk=4, progress=False))
    assert rest.shape[0] == output_length(40, 3)


def test_the_progress_bar_shows_every_tile_of_a_large_frame(capsys):
    """A 1080p chunk is 18 tiles of about a minute each; the 'tile i/N' note was set without a refresh, so it showed
    only when the frame count moved (4 of 18 tiles, fewer under tqdm's dynamic miniters): minutes of a still bar."""
    import time

    frames = _clip(2, 16, 40)

    def fill(keys, stride, seed):
        time.sleep(0.12)  # past tqdm's mininterval, as every tile of a large frame is
        return linear_blend(keys, stride)

    upconvert(fill, frames, 2, multiple=8, tile=8, overlap=0, chunk=2, progress=True)
    shown = capsys.readouterr().err
    assert all(f"tile {i}/10" in shown for i in range(1, 11)), shown


def test_the_progress_bar_counts_output_frames_under_its_label(capsys):
    """The bar counted input frames (0/795 on a 795-frame clip while 1589 frames were written) and every pass of a
    --factor 16 was labelled alike; it counts the output frames now, under the label it is given."""
    out = list(upconvert_frames(lambda k, s, seed: linear_blend(k, s), iter(_clip(5, 16, 16)), 2,
                                                  multiple=8, chunk=3, total=5, desc="pass 1/2"))
    assert len(out) == 9
    shown = capsys.readouterr().err
    assert "pass 1/2: 100%" in shown and "9/9" in shown and "/5 " not in shown, shown


def test_plan_passes_counts_the_blend_of_the_chunk():
    """upconvert_frames holds a chunk's blend in float64 RGB (24 bytes per pixel and output frame) while its tiles
    decode; the plan left it out, so a 4K clip at --factor 2 took a chunk of 3 (5 frames: 0.93 GiB of blend beside
    a 1.22 GiB decode pass, against a 1.5 GiB budget; 3.5 GiB peak with the blend's temporaries)."""
    from vidiff.models.vae import for_inference
    from vidiff.vae import AutoencoderKL, VAEConfig

    vae = for_inference(AutoencoderKL(VAEConfig(block_out_channels=(48, 96, 128), norm_groups=16, latent_channels=16,
                                                mid_attention=False, frame_chunk=8, temporal_decoder=True)))
    budget = int(1.5 * 2**30)
    chunk, tile = plan_passes(2, 2160, 3840, multiple=16, budget=budget, decode_windows=vae.decode_windows,
                              decode_bytes=vae.decode_bytes)
    assert (chunk, tile) == (2, 384)
    from vidiff.pipeline.upconvert import accumulation_bytes

    assert accumulation_bytes(5, 2160, 3840) == 5 * 2160 * 3840 * 24
    frames = output_length(chunk, 2)
    assert vae.decode_bytes(frames, 384, 384) + accumulation_bytes(frames, 2160, 3840) <= budget
    assert vae.decode_bytes(5, 384, 384) + accumulation_bytes(5, 2160, 3840) > budget  # chunk 3 did not fit
    assert plan_passes(2, 240, 320, multiple=8, budget=budget, decode_windows=vae.decode_windows,
                       decode_bytes=vae.decode_bytes) == (6, 384)  # a small frame's blend changes nothing


def test_a_pass_over_the_decode_budget_even_at_its_shortest_chunk_is_said():
    """4K at --factor 8: the blend of the shortest chunk's tiles alone is 1.67 GiB, over the 1.5 GiB default, and
    the plan cannot shrink it with the tile; it ran without a word."""
    from types import SimpleNamespace

    from vidiff.commands.interpolate_plan import over_budget_note
    from vidiff.pipeline.upconvert import plan_passes

    vae = SimpleNamespace(decode_windows=lambda frames: [(0, frames, 0)],
                          decode_bytes=lambda frames, h, w: frames * h * w * 4)
    chunk, tile = plan_passes(8, 2160, 3840, multiple=8, budget=int(1.5 * 2**30), decode_windows=vae.decode_windows,
                              decode_bytes=vae.decode_bytes)
    note = over_budget_note(3840, 2160, 8, chunk, tile, 8, 1.5, vae)
    assert note is not None and "3840x2160 frames at --factor 8" in note and "over --decode-memory 1.5 GiB" in note
    assert over_budget_note(320, 240, 2, 8, 320, 8, 1.5, vae) is None  # a small clip fits
