"""Structure control (docs/control.md): the adapter, Cond's control fields, the maps and paths, the control training
stage, the pipeline with control parts and `vidiff generate --control`."""
import dataclasses
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError
from vidiff.models import UNet3D, UNet3DConfig
from vidiff.models.control_adapter import ControlAdapter, ControlAdapterConfig

TINY = dict(block_out_channels=(16, 32), layers_per_block=1, attention_levels=(False, True), num_head_channels=16,
            norm_groups=8, conditioning=True, context_dim=8)


def _perturb(module, scale=0.1, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return module


@pytest.fixture()
def net_and_inputs():
    torch.manual_seed(0)
    net = _perturb(UNet3D(UNet3DConfig(**TINY)).eval(), 0.05, seed=0)
    x = torch.randn(2, 4, 3, 8, 8)
    cond = Cond(context=torch.randn(2, 5, 8), frame_stride=torch.tensor([1.0, 2.0]))
    maps = (torch.rand(2, 1, 3, 32, 32) > 0.5).float()
    return net, x, cond, maps


def _adapter(hidden=16):
    return ControlAdapter(ControlAdapterConfig(block_out_channels=(16, 32), hidden_channels=hidden, norm_groups=8))


def test_zero_initialised_adapter_leaves_the_unet_output_bit_identical(net_and_inputs):
    net, x, cond, maps = net_and_inputs
    with torch.no_grad():
        before = net(x, torch.ones(2), cond)
        net.attach_control(_adapter())
        after = net(x, torch.ones(2), dataclasses.replace(cond, control=maps))
        no_maps = net(x, torch.ones(2), cond)
    assert torch.equal(before, after) and torch.equal(before, no_maps)
    assert not any(k.startswith("control") for k in net.state_dict())  # the U-Net part is unchanged


def test_trained_adapter_changes_the_output_and_scale_zero_gives_it_back(net_and_inputs):
    net, x, cond, maps = net_and_inputs
    with torch.no_grad():
        before = net(x, torch.ones(2), cond)
        net.attach_control(_perturb(_adapter()))
        controlled = net(x, torch.ones(2), dataclasses.replace(cond, control=maps))
        zero = net(x, torch.ones(2), dataclasses.replace(cond, control=maps, control_scale=torch.zeros(2)))
        mixed = net(x, torch.ones(2), dataclasses.replace(cond, control=maps, control_scale=torch.tensor([0.0, 1.0])))
    assert (controlled - before).abs().max() > 1e-3
    assert torch.equal(zero, before)
    assert torch.equal(mixed[0], before[0]) and not torch.equal(mixed[1], before[1])


def test_control_needs_an_adapter_and_maps_that_fit(net_and_inputs):
    net, x, cond, maps = net_and_inputs
    with pytest.raises(ValueError, match="no control adapter"):
        net(x, torch.ones(2), dataclasses.replace(cond, control=maps))
    net.attach_control(_adapter())
    for bad in (maps[:, :, :2], maps[..., :16], torch.rand(2, 2, 3, 32, 32)):
        with pytest.raises(ValueError, match="cond.control must be"):
            net(x, torch.ones(2), dataclasses.replace(cond, control=bad))
    with pytest.raises(ValueError, match="block_out_channels"):
        net.attach_control(ControlAdapter(ControlAdapterConfig(block_out_channels=(16, 16), norm_groups=8)))


def test_adapter_moves_with_the_unet_and_stays_out_of_its_state_dict(net_and_inputs):
    net, _, _, _ = net_and_inputs
    adapter = _adapter()
    net.attach_control(adapter)
    net.to(torch.float64)
    assert adapter.conv_in.weight.dtype == torch.float64
    assert len(adapter(torch.rand(1, 1, 2, 32, 32, dtype=torch.float64))) == 2


def test_cond_rows_cat_and_to_keep_control():
    maps = torch.rand(3, 1, 4, 16, 16)
    cond = Cond(context=torch.randn(3, 5, 8), context_mask=torch.ones(3, 5, dtype=torch.bool), control=maps,
                control_scale=torch.tensor([1.0, 0.5, 0.0]))
    row = cond.rows(slice(1, 2))
    assert torch.equal(row.control, maps[1:2]) and row.control_scale.tolist() == [0.5]
    joined = Cond.cat([cond, cond.without_text(torch.zeros(1, 2, 8), torch.ones(1, 2, dtype=torch.bool))])
    assert torch.equal(joined.control, torch.cat([maps, maps])) and joined.batch_size == 6
    assert cond.without_known().control is maps
    half = cond.to(dtype=torch.bfloat16)
    assert half.control.dtype == torch.bfloat16 and half.control_scale.dtype == torch.float32


# ---- maps and paths ---------------------------------------------------------------------------------------------

def test_silhouette_centroid_follows_the_path_and_blobs_have_the_fixed_radius():
    from vidiff.data.control_maps import BLOB_RADIUS, map_centres, render_control_clip, sample_control_clip

    for seed in range(12):
        clip = sample_control_clip(np.random.default_rng(seed), 16, 64)
        frames, maps = render_control_clip(clip)
        for want, got, blob in zip(clip.centres, map_centres(maps["silhouette"]), map_centres(maps["blob"])):
            assert max(abs(got[0] - want[0]), abs(got[1] - want[1])) <= 0.5 + 1e-9, (clip.shape, want, got)
            assert np.hypot(blob[0] - got[0], blob[1] - got[1]) < 0.35
        area = maps["blob"].sum(axis=(1, 2))
        assert np.all(np.abs(area - np.pi * BLOB_RADIUS**2) < 12)  # pixel discs of radius 5: 69..89 px
        on = maps["silhouette"] > 0
        assert np.all((frames[on] == frames[on][0]).all(-1))  # the object's pixels, one palette colour


@pytest.mark.parametrize("kind", ["axis", "straight", "diagonal", "curved", "stop_and_go"])
def test_paths_stay_inside_the_frame(kind):
    from vidiff.data.control_maps import render_control_clip, sample_control_clip

    for seed in range(20):
        clip = sample_control_clip(np.random.default_rng(seed), 16, 64, path=kind)
        _, maps = render_control_clip(clip)
        on = maps["silhouette"] > 0
        assert on.any(axis=(1, 2)).all()
        assert not on[:, 0].any() and not on[:, -1].any() and not on[:, :, 0].any() and not on[:, :, -1].any()
        steps = np.linalg.norm(np.diff(np.array(clip.centres), axis=0), axis=1)
        if kind == "stop_and_go":
            assert (steps < 1e-9).any() and (steps > 0.5).any()
        if kind == "diagonal":
            d = np.array(clip.centres[-1]) - np.array(clip.centres[0])
            assert 0.5 < abs(d[0]) / abs(d[1]) < 2.0
        assert (clip.direction is not None) == (kind == "axis")


def test_maps_from_frames_threshold_any_channel():
    from vidiff.data.control_maps import maps_from_frames

    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[0, 1, 1, 2] = 200
    frames[1, 2, 2] = 100
    maps = maps_from_frames(frames)
    assert maps.dtype == np.float32 and maps.sum() == 1 and maps[0, 1, 1] == 1


def test_maps_from_rgba_frames_read_colour_and_treat_transparent_pixels_as_off():
    """An opaque alpha channel (255 everywhere) is not a colour: it turned every pixel on."""
    from vidiff.data.control_maps import maps_from_frames

    rgba = np.zeros((2, 4, 4, 4), np.uint8)
    rgba[..., 3] = 255  # opaque black: off
    rgba[0, 1, 1, 0] = 220  # opaque red: on
    rgba[1, 2, 2] = (255, 255, 255, 0)  # transparent white: off
    rgba[1, 3, 3] = (0, 200, 0, 128)  # half-opaque green: on
    maps = maps_from_frames(rgba)
    assert maps.sum() == 2 and maps[0, 1, 1] == 1 and maps[1, 3, 3] == 1
    np.testing.assert_array_equal(maps_from_frames(rgba[..., :3]) * (rgba[..., 3] > 127), maps)


def test_bool_control_maps_are_taken_as_on_and_off():
    """control=np.zeros((16,64,64), bool) was refused ("expected uint8 ... or float (F,H,W) maps, got bool") while
    edit masks take bool; True is on, as 255 in a uint8 map, and a bool map of other rank is still refused."""
    from vidiff.pipeline.control import check_control_maps

    on = np.zeros((2, 8, 8), bool)
    on[0, 2:4, 3:5] = True
    maps = check_control_maps(on, 2, 8, 8)
    assert maps.dtype == torch.float32
    assert torch.equal(maps, check_control_maps(on.astype(np.uint8) * 255, 2, 8, 8)) and maps.sum() == 4
    assert torch.equal(check_control_maps(torch.from_numpy(on), 2, 8, 8), maps)
    with pytest.raises(InputError, match=r"float or bool \(F,H,W\) maps, got bool \(2, 8, 8, 3\)"):
        check_control_maps(np.zeros((2, 8, 8, 3), bool), 2, 8, 8)



def test_uint8_maps_of_zeros_and_ones_are_read_as_masks_read_them():
    """uint8 maps of 0/1 ((d < r).astype(np.uint8)) were read "on above 127": every pixel off, and the clip
    followed empty maps without a word; 0..255 maps, and RGBA alpha, keep the 127 threshold."""
    from vidiff.pipeline.control import check_control_maps

    on = np.zeros((2, 8, 8), bool)
    on[0, 2:4, 3:5], on[1, 6, 1] = True, True
    expected = torch.from_numpy(on.astype(np.float32))
    assert torch.equal(check_control_maps(on.astype(np.uint8), 2, 8, 8), expected)
    assert torch.equal(check_control_maps(np.repeat(on[..., None], 3, -1).astype(np.uint8), 2, 8, 8), expected)
    assert torch.equal(check_control_maps(on.astype(np.uint8) * 255, 2, 8, 8), expected)
    assert check_control_maps(on.astype(np.uint8) * 100, 2, 8, 8).sum() == 0  # 0..255: 100 is off
    assert check_control_maps(np.zeros((2, 8, 8), np.uint8), 2, 8, 8).sum() == 0


def test_half_precision_control_maps_are_taken_as_their_values_and_a_string_is_named():
    """A bfloat16 tensor of maps (a model's output in bf16) raised TypeError "Got unsupported ScalarType BFloat16"
    (numpy has no bf16); half and bf16 values are exact in float32, so the maps equal the float32 ones."""
    from vidiff.pipeline.control import check_control_maps

    maps = torch.zeros(2, 8, 8)
    maps[0, 2:4, 3:5], maps[1, 5, 5] = 1.0, 0.5
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(check_control_maps(maps.to(dtype), 2, 8, 8), maps)
    with pytest.raises(InputError, match=r"^control: float maps must be finite and in \[0, 1\]$"):
        check_control_maps((maps * 2).to(torch.bfloat16), 2, 8, 8)
    # maps of two sizes in a list: numpy's ValueError "inhomogeneous shape"
    with pytest.raises(InputError, match=r"^control: not one array of maps \(setting an array element"):
        check_control_maps([np.zeros((8, 8)), np.zeros((4, 4))], 2, 8, 8)
    # a map kind is read off a clip (edit_video); text_to_video named it in numpy's words, "got <U4 ()"
    with pytest.raises(InputError, match=r"^control: expected maps, got the string 'blob' \(maps of a kind"):
        check_control_maps("blob", 2, 8, 8)

# ---- the pipeline -----------------------------------------------------------------------------------------------

from test_pipeline import HashText  # noqa: E402  (the fixed random text encoder of the pipeline tests)


def _control_config(tool):
    from vidiff.pipeline.config import PartsConfig

    return dataclasses.replace(tool.pipeline_config(steps=2), control_maps=("silhouette", "blob"),
                               parts=PartsConfig(control_keyframes="control-keyframes",
                                                 control_interpolation="control-interpolation"))


@pytest.fixture(scope="module")
def pipes(load_tool):
    """(pipeline with random adapters on both U-Nets, the same pipeline without adapters)."""
    from vidiff.pipeline import VideoPipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    for i, net in enumerate((kf, it)):
        cfg = ControlAdapterConfig(block_out_channels=net.config.block_out_channels, hidden_channels=16, norm_groups=8)
        net.attach_control(_perturb(ControlAdapter(cfg), 0.2, seed=10 + i).eval())
    with_control = VideoPipeline(_control_config(tool), vae, kf, it, HashText())
    plain = VideoPipeline(tool.pipeline_config(steps=2), *tool.random_parts(tiny=True, seed=0), HashText())
    yield with_control, plain, tool
    torch.set_num_threads(threads)


def _maps(kind="silhouette", seed=3, path="curved"):
    from vidiff.data.control_maps import render_control_clip, sample_control_clip

    return render_control_clip(sample_control_clip(np.random.default_rng(seed), 16, 64, path=path))[1][kind]


def test_pipeline_control_is_deterministic_and_changes_the_frames(pipes):
    pipe, plain, _ = pipes
    maps = _maps()
    a, _ = pipe.text_to_video("a red circle", seed=1, control=maps, progress=False)
    b, _ = pipe.text_to_video("a red circle", seed=1, control=torch.from_numpy(maps), progress=False)
    uint8 = (maps[..., None].repeat(3, -1) * 255).astype(np.uint8)
    c, _ = pipe.text_to_video("a red circle", seed=1, control=uint8, progress=False)
    other, _ = pipe.text_to_video("a red circle", seed=1, control=_maps("blob", seed=4), progress=False)
    none, _ = pipe.text_to_video("a red circle", seed=1, progress=False)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, none) and not torch.equal(a, other)
    baseline, _ = plain.text_to_video("a red circle", seed=1, progress=False)
    zero, _ = pipe.text_to_video("a red circle", seed=1, control=maps, control_scale=0.0, progress=False)
    assert torch.equal(none, baseline) and torch.equal(zero, baseline)
    # no scale given: the pipeline's control_scale (pipeline.yaml) weights the control
    default_two = type(pipe)(dataclasses.replace(pipe.config, control_scale=2.0), pipe.vae, pipe.keyframes.net,
                             pipe.interpolation.net, pipe.text_encoder)
    two, _ = pipe.text_to_video("a red circle", seed=1, control=maps, control_scale=2.0, progress=False)
    assert torch.equal(default_two.text_to_video("a red circle", seed=1, control=maps, progress=False)[0], two)
    assert not torch.equal(two, a)


def test_each_stage_gets_the_maps_of_its_frames(pipes, monkeypatch):
    from vidiff.pipeline import timeline

    pipe, _, _ = pipes
    maps = _maps()
    seen = []
    original = timeline.with_control

    def spy(cond, stage, control, rows, positions):
        out = original(cond, stage, control, rows, positions)
        seen.append((positions, out.control))
        return out

    monkeypatch.setattr(timeline, "with_control", spy)
    pipe.text_to_video("a red circle", seed=0, control=maps, progress=False)
    assert seen[0][0] == [[0, 5, 10, 15]] and torch.equal(seen[0][1][0, 0], torch.from_numpy(maps[[0, 5, 10, 15]]))
    window = seen[1][0][0]
    assert window == list(range(window[0], window[0] + 6))  # gaps of 5: windows of 6 frames
    assert torch.equal(seen[1][1][0, 0], torch.from_numpy(maps[window]))


def test_control_requests_are_checked_before_sampling(pipes):
    pipe, plain, _ = pipes
    maps = _maps()
    with pytest.raises(InputError, match="no control parts"):
        plain.text_to_video("a red circle", control=maps, progress=False)
    for bad, match in ((maps[:15], "15 frames"), (maps[:, :32], "pixels"), (maps * 2, r"\[0, 1\]"),
                       (np.full_like(maps, np.nan), "finite"), (maps.astype(np.int64), "expected")):
        with pytest.raises(InputError, match=match):
            pipe.text_to_video("a red circle", control=bad, progress=False)
    for scale in (float("nan"), -1.0, 6.0, True):
        with pytest.raises(InputError, match="control_scale"):
            pipe.text_to_video("a red circle", control=maps, control_scale=scale, progress=False)
    # a scale without maps weighed nothing and was taken (NaN too); the command line refuses --control-scale alone
    clip = np.zeros((16, 64, 64, 3), np.uint8)
    for call in (lambda s: pipe.text_to_video("a red circle", control_scale=s, progress=False),
                 lambda s: plain.text_to_video("a red circle", control_scale=s, progress=False),
                 lambda s: pipe.edit_video(clip, "a red circle", control=None, control_scale=s, progress=False)):
        for scale in (2.0, float("nan")):
            with pytest.raises(InputError, match="control_scale: weighs control maps, and this request has none"):
                call(scale)


def test_control_parts_save_and_load_with_the_pipeline(pipes, tmp_path):
    from vidiff.pipeline import VideoPipeline

    pipe, _, _ = pipes
    folder = pipe.save_pretrained(tmp_path / "pipe")
    assert (folder / "control-keyframes" / "model.safetensors").is_file()
    loaded = VideoPipeline.from_pretrained(folder)
    loaded.text_encoder = HashText()
    maps = _maps("blob")
    a, _ = pipe.text_to_video("a blue square", seed=2, control=maps, progress=False)
    b, _ = loaded.text_to_video("a blue square", seed=2, control=maps, progress=False)
    assert torch.equal(a, b)


# ---- training ---------------------------------------------------------------------------------------------------

def test_control_stage_trains_three_steps_and_exports_a_part_the_pipeline_loads(load_tool, tmp_path):
    from vidiff.parts import load_part_config, load_part_weights
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.control import install_control_parts
    from vidiff.training.config import load_train_config
    from vidiff.training.loop import train

    folder = load_tool("make_random_pipeline").write_random_pipeline(tmp_path / "pipe", tiny=True, steps=2)
    repo = Path(__file__).resolve().parents[1]
    for stage, config in (("keyframes", "shapes-control-keyframes.yaml"),
                          ("interpolation", "shapes-control-interpolation.yaml")):
        cfg = load_train_config(repo / "configs" / config, [
            f"base={folder / stage}", f"vae={folder / 'vae'}", f"output_dir={tmp_path / stage}",
            "train.max_steps=3", "train.batch_size=2", "train.log_every=1", "model.hidden_channels=8"])
        run = train(cfg)
        export = run / "export"
        adapter = ControlAdapter(load_part_config(export, ControlAdapterConfig))
        adapter.load_state_dict(load_part_weights(export), strict=True)
        assert adapter.config.block_out_channels == (16, 32) and adapter.config.base_sha256
        assert any(bool(p.abs().sum() > 0) for p in adapter.out.parameters())  # the zero convs moved
    install_control_parts(folder, {"control_keyframes": tmp_path / "keyframes" / "export",
                                   "control_interpolation": tmp_path / "interpolation" / "export"})
    pipe = VideoPipeline.from_pretrained(folder)
    frames, _ = pipe.text_to_video("a red circle", seed=0, control=_maps(), progress=False)
    assert frames.shape == (16, 64, 64, 3)


def test_control_stage_starts_from_init_weights(load_tool, tmp_path):
    """An adapter for a fine-tuned base can start from the adapter of the base it came from."""
    from vidiff.parts import load_part_weights, save_part
    from vidiff.training.config import load_train_config
    from vidiff.training.control_stage import ControlStage

    folder = load_tool("make_random_pipeline").write_random_pipeline(tmp_path / "pipe", tiny=True, steps=2)
    repo = Path(__file__).resolve().parents[1]
    args = [f"base={folder / 'keyframes'}", f"vae={folder / 'vae'}", f"output_dir={tmp_path / 'run'}",
            "model.hidden_channels=8"]
    cfg = load_train_config(repo / "configs" / "shapes-control-keyframes.yaml", args)
    trained = ControlStage(cfg).model.adapter
    _perturb(trained, seed=5)  # as if trained: every weight non-zero and not the initialisation
    save_part(tmp_path / "old", trained.config, trained.state_dict())
    cfg = load_train_config(repo / "configs" / "shapes-control-keyframes.yaml",
                            args + [f"init_weights={tmp_path / 'old'}"])
    started = ControlStage(cfg).model.adapter.state_dict()
    saved = load_part_weights(tmp_path / "old")
    assert started.keys() == saved.keys() and all(torch.equal(started[k], saved[k]) for k in saved)
    fresh = ControlStage(load_train_config(repo / "configs" / "shapes-control-keyframes.yaml", args))
    assert not all(torch.equal(fresh.model.adapter.state_dict()[k], saved[k]) for k in saved)


def test_control_config_is_checked(tmp_path):
    from vidiff.config import ConfigError
    from vidiff.training.config import load_train_config

    repo = Path(__file__).resolve().parents[1]
    bundled = repo / "vidiff" / "bundled" / "shapes"
    base = [f"base={bundled / 'keyframes'}", f"vae={bundled / 'vae'}"]
    for extra, match in ((["base=/nonexistent"], "base"), (["control.map_kinds=[edges]"], "map_kinds"),
                         (["model.block_out_channels=[8]"], "set from the base"),
                         (["control.clip_frames=10"], "clip_frames")):
        with pytest.raises(ConfigError, match=match):
            load_train_config(repo / "configs" / "shapes-control-keyframes.yaml", base + extra)


# ---- the command line -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def control_folder(pipes, tmp_path_factory):
    from vidiff import io

    pipe, _, _ = pipes
    folder = tmp_path_factory.mktemp("ctl")
    pipe.save_pretrained(folder / "pipe")
    uint8 = (_maps()[..., None].repeat(3, -1) * 255).astype(np.uint8)
    io.write_video(folder / "maps.mp4", torch.from_numpy(uint8), 8)
    io.write_video(folder / "maps15.mp4", torch.from_numpy(uint8[:15]), 8)
    io.write_video(folder / "small.mp4", torch.from_numpy(np.ascontiguousarray(uint8[:, :32, :32])), 8)
    plain = folder / "plain"  # the same pipeline without its control parts
    shutil.copytree(folder / "pipe", plain)
    text = (plain / "pipeline.yaml").read_text()
    for name in ("control_keyframes", "control_interpolation"):
        text = re.sub(rf"{name}: \S+", f"{name}: null", text)
    # the kinds list, inline or as "- kind" lines, becomes empty
    (plain / "pipeline.yaml").write_text(re.sub(r"control_maps:[^\n]*(\n- [^\n]*)*", "control_maps: []", text))
    return folder


def test_cli_control_arguments_fail_fast(control_folder, tmp_path, capsys):
    from vidiff.cli import main

    f = control_folder
    common = ["generate", "a red circle", "-o", str(tmp_path / "o.mp4"), "--model", str(f / "pipe")]
    cases = [(["--control", str(f / "maps15.mp4")], "15 frames, the clip has 16 (from --frames, or --keyframes and "
                                                    "--stride; --frames 15 makes a clip as long as the maps)"),
             (["--control", str(f / "small.mp4")], "32x32"),
             (["--control", str(f / "missing.mp4")], "not found"),
             (["--control", str(f / "maps.mp4"), "--control-scale", "nan"], "--control-scale"),
             (["--control", str(f / "maps.mp4"), "--control-scale", "5.5"], "--control-scale"),
             (["--control-scale", "1"], "give --control"),
             (["--control", str(f / "maps.mp4"), "--frames", "11"], "11"),
             (["--control", str(f / "maps.mp4"), "--model", str(f / "plain")], "no control parts")]
    for extra, match in cases:
        capsys.readouterr()
        start = time.perf_counter()
        rc = main(common + extra)
        elapsed = time.perf_counter() - start
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("vidiff: error: ") and err.count("\n") == 1 and match in err, (extra, err)
        assert elapsed < 1.0, (extra, elapsed)
        assert not (tmp_path / "o.mp4").exists()


def test_cli_control_of_a_length_no_clip_takes_offers_no_frames(tmp_path, capsys):
    """The refusal of maps of another length offered `--frames N` for any N: `--frames 1` (a control image) is
    refused by --frames' range, and `--frames 64` on the bundle by extension windows, which take no maps."""
    from PIL import Image

    from vidiff import io
    from vidiff.cli import main

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "one.png")
    io.write_video(tmp_path / "long.mp4", torch.zeros(64, 64, 64, 3, dtype=torch.uint8), 8)
    for maps, count in (("one.png", "1 frame"), ("long.mp4", "64 frames")):
        capsys.readouterr()
        rc = main(["generate", "a red circle", "-o", str(tmp_path / "o.mp4"), "--control", str(tmp_path / maps)])
        err = capsys.readouterr().err
        assert rc == 2 and f"{count}, the clip has 16" in err, err
        assert "--frames 1 " not in err and "--frames 64 " not in err, err
        assert "control maps for 2 to 41 frames fit this pipeline" in err, err  # the bundle: 9 keyframes at stride 5
    # a length a clip can have is still offered
    io.write_video(tmp_path / "twenty.mp4", torch.zeros(20, 64, 64, 3, dtype=torch.uint8), 8)
    assert main(["generate", "a red circle", "-o", str(tmp_path / "o.mp4"), "--control", str(tmp_path / "twenty.mp4")]) == 2
    assert "--frames 20 makes a clip as long as the maps" in capsys.readouterr().err


def test_cli_generate_with_control_records_it(control_folder, tmp_path):
    import json

    from vidiff.cli import main

    out = tmp_path / "o.mp4"
    rc = main(["generate", "a red circle", "-o", str(out), "--model", str(control_folder / "pipe"), "--quiet",
               "--control", str(control_folder / "maps.mp4"), "--control-scale", "0.5"])
    assert rc == 0 and out.is_file()
    settings = json.loads(Path(f"{out}.json").read_text())["settings"]
    assert settings["control"] == str((control_folder / "maps.mp4").resolve()) and settings["control_scale"] == 0.5
    # without --control-scale the sidecar records the pipeline's control_scale
    out = tmp_path / "default.mp4"
    assert main(["generate", "a red circle", "-o", str(out), "--model", str(control_folder / "pipe"), "--quiet",
                 "--control", str(control_folder / "maps.mp4")]) == 0
    assert json.loads(Path(f"{out}.json").read_text())["settings"]["control_scale"] == 1.0


def test_cli_animate_follows_control_maps_as_image_to_video_does(pipes, control_folder, tmp_path):
    """image_to_video takes maps (text to video with frame 0 known, which the keyframe adapter trains on); `vidiff
    animate` had no --control, so the command line could not do what the library does."""
    import json

    from vidiff import io
    from vidiff.cli import main
    from PIL import Image

    pipe = pipes[0]
    maps, _ = io.read_video(control_folder / "maps.mp4")
    image = torch.from_numpy(np.full((64, 64, 3), 40, np.uint8))
    image[20:36, 20:36] = torch.tensor([220, 40, 40], dtype=torch.uint8)
    Image.fromarray(image.numpy()).save(tmp_path / "still.png")
    out = tmp_path / "a.mp4"
    rc = main(["animate", str(tmp_path / "still.png"), "a red square", "-o", str(out), "--model",
               str(control_folder / "pipe"), "--quiet", "--control", str(control_folder / "maps.mp4"),
               "--control-scale", "0.5"])
    assert rc == 0
    settings = json.loads(Path(f"{out}.json").read_text())["settings"]
    assert settings["control"] == str((control_folder / "maps.mp4").resolve()) and settings["control_scale"] == 0.5
    got, _ = io.read_video(out)
    with_maps, _ = pipe.image_to_video(image, "a red square", control=maps, control_scale=0.5, seed=0, progress=False)
    without, _ = pipe.image_to_video(image, "a red square", seed=0, progress=False)
    assert not torch.equal(with_maps, without)
    err_with = (got.float() - with_maps.float()).abs().mean().item()
    err_without = (got.float() - without.float()).abs().mean().item()
    # the random-weight frames are noise, which the mp4 codec rounds coarsely: the file is the controlled clip's
    assert err_without > 2 * err_with, (err_with, err_without)


def test_pipeline_control_scale_is_checked():
    from vidiff.config import ConfigError
    from vidiff.pipeline.config import read_pipeline_folder

    from vidiff.pipeline.config import pipeline_config_from_dict
    from vidiff.safe_yaml import load_file

    bundled = Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"
    assert read_pipeline_folder(bundled).control_scale == 2.0
    raw = load_file(bundled / "pipeline.yaml")
    for bad in (9.0, -1, float("nan"), "2"):
        with pytest.raises(ConfigError, match="control_scale"):
            pipeline_config_from_dict({**raw, "control_scale": bad}, where="pipeline.yaml")


def test_control_stage_resume_is_exact(load_tool, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from vidiff.training.control_stage import ControlStage

    from vidiff.training.config import load_train_config
    from vidiff.training.loop import train

    folder = load_tool("make_random_pipeline").write_random_pipeline(tmp_path / "pipe", tiny=True, steps=2)
    repo = Path(__file__).resolve().parents[1]

    def cfg(out, steps):
        return load_train_config(repo / "configs" / "shapes-control-interpolation.yaml", [
            f"base={folder / 'interpolation'}", f"vae={folder / 'vae'}", f"output_dir={out}", f"train.max_steps={steps}",
            "train.batch_size=2", "train.checkpoint_every=2", "model.hidden_channels=8", "optimizer.warmup_steps=1"])

    import shutil

    train(cfg(tmp_path / "straight", 4))  # checkpoints at steps 2 and 4
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "export")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "step_00000004")
    steps = []
    loss = ControlStage.loss
    monkeypatch.setattr(ControlStage, "loss", lambda self, m, b, d, step: steps.append(step) or loss(self, m, b, d, step))
    train(cfg(tmp_path / "resumed", 4), resume="auto")
    assert steps == [2, 3]  # resumed from the step-2 checkpoint
    a = load_file(str(tmp_path / "straight" / "export" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "export" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- edits that keep the clip's structure ---------------------------------------------------------------------------

def test_maps_read_off_a_clip_are_the_maps_it_was_rendered_from():
    from vidiff.data.control_maps import render_control_clip, sample_control_clip
    from vidiff.data.maps_from_video import maps_from_clip

    for seed in range(40):
        frames, maps = render_control_clip(sample_control_clip(np.random.default_rng(seed), 16, 64))
        for kind in ("silhouette", "blob"):
            assert np.array_equal(maps_from_clip(frames, kind), maps[kind]), (seed, kind)
    with pytest.raises(InputError, match="kind must be one of"):
        maps_from_clip(frames, "depth")
    with pytest.raises(InputError, match="uint8 \\(F,H,W,3\\)"):
        maps_from_clip(frames[..., 0], "blob")


def test_blob_maps_give_one_disc_per_object_and_none_for_specks():
    from vidiff.data.control_maps import disc_mask
    from vidiff.data.maps_from_video import maps_from_clip

    frame = np.full((1, 64, 64, 3), 60, np.uint8)
    frame[0, 10:16, 10:16] = (255, 0, 0)  # a 6x6 square, centroid (13, 13)
    frame[0, 40:50, 30:40] = (0, 0, 255)  # a 10x10 square, centroid (35, 45)
    frame[0, 60, 2] = (255, 255, 255)  # one speck
    frame[0, 5:8, 50:51] = (250, 250, 0)  # three pixels: below MIN_COMPONENT
    blob = maps_from_clip(frame, "blob")[0]
    expected = disc_mask((13.0, 13.0), 64, 64) | disc_mask((35.0, 45.0), 64, 64)  # the two centroids; no speck
    assert np.array_equal(blob, expected.astype(np.float32))
    silhouette = maps_from_clip(frame, "silhouette")[0]
    assert silhouette.sum() == 36 + 100 + 1 + 3  # every foreground pixel, specks too


def test_edit_follows_the_clips_own_structure_maps(pipes, monkeypatch):
    from vidiff.data.control_maps import render_control_clip, sample_control_clip
    from vidiff.pipeline import timeline

    pipe, plain, _ = pipes
    frames, maps = render_control_clip(sample_control_clip(np.random.default_rng(5), 16, 64, path="curved"))
    clip = torch.from_numpy(frames)
    seen = []
    original = timeline.with_control
    monkeypatch.setattr(timeline, "with_control", lambda cond, stage, control, rows, positions: seen.append(
        (positions, control)) or original(cond, stage, control, rows, positions))
    auto, _ = pipe.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False)
    # "auto" on a pipeline with blob-trained parts: the blob maps read off the clip, at each stage's frames
    assert seen and all(c is not None for _, c in seen)
    assert torch.equal(seen[0][1][0][0, 0], torch.from_numpy(maps["blob"]))
    given, _ = pipe.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False, control=maps["blob"])
    assert torch.equal(auto, given)
    silhouette, _ = pipe.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False, control="silhouette")
    none, _ = pipe.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False, control=None)
    assert not torch.equal(auto, silhouette) and not torch.equal(auto, none)
    # a pipeline without control parts: "auto" is plain SDEdit, a kind is refused
    base, _ = plain.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False)
    assert torch.equal(base, plain.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False,
                                              control=None)[0])
    with pytest.raises(InputError, match="'blob' maps from the clip need control parts"):
        plain.edit_video(clip, "a red circle", control="blob", progress=False)
    # strength 1 with structure: text to video following the clip's maps
    one, _ = pipe.edit_video(clip, "a red circle", strength=1.0, seed=1, progress=False)
    assert torch.equal(one, pipe.text_to_video("a red circle", seed=1, control=maps["blob"], progress=False)[0])


def test_cli_edit_structure_is_checked_and_recorded(control_folder, tmp_path, capsys):
    import json

    from vidiff import io
    from vidiff.cli import main
    from vidiff.data.control_maps import render_control_clip, sample_control_clip

    frames, _ = render_control_clip(sample_control_clip(np.random.default_rng(6), 16, 64))
    io.write_video(tmp_path / "in.mp4", torch.from_numpy(frames), 8)
    common = ["edit", str(tmp_path / "in.mp4"), "a red circle", "-o", str(tmp_path / "o.mp4"), "--quiet"]
    for extra, match in ((["--model", str(control_folder / "plain"), "--structure", "blob"], "needs control parts"),
                         (["--model", str(control_folder / "plain"), "--control-scale", "1"], "no structure maps"),
                         (["--model", str(control_folder / "pipe"), "--control-scale", "9"], "--control-scale")):
        capsys.readouterr()
        assert main(common + extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, (extra, err)
    assert main(common + ["--model", str(control_folder / "pipe")]) == 0
    settings = json.loads((tmp_path / "o.mp4.json").read_text())["settings"]
    assert settings["structure"] == "blob" and settings["control_scale"] == 1.0
    assert main(common + ["--model", str(control_folder / "pipe"), "--structure", "none"]) == 0
    assert json.loads((tmp_path / "o.mp4.json").read_text())["settings"]["structure"] is None
    assert main(common + ["--model", str(control_folder / "pipe"), "--mask", "foreground"]) == 0
    settings = json.loads((tmp_path / "o.mp4.json").read_text())["settings"]
    assert settings["mask"] == "foreground" and settings["structure"] == "blob" and settings["strength"] == 1.0


def test_structure_edits_draw_in_between_frames_fresh_and_plain_sdedit_renoises_them(pipes, monkeypatch):
    from vidiff.data.control_maps import render_control_clip, sample_control_clip

    pipe, _, _ = pipes
    clip = torch.from_numpy(render_control_clip(sample_control_clip(np.random.default_rng(7), 16, 64))[0])
    for control, fill_strength, fill_init in (("auto", 1.0, False), (None, 0.6, True)):
        calls = []
        for name in ("keyframes", "interpolation"):
            stage = getattr(pipe, name)
            run = stage.run
            monkeypatch.setattr(stage, "run", lambda shape, gens, settings, *rest, _n=name, _run=run, **kw: calls.append(
                (_n, settings.strength, kw.get("init", rest[4] if len(rest) > 4 else None) is not None))
                or _run(shape, gens, settings, *rest, **kw))
        pipe.edit_video(clip, "a red circle", strength=0.6, seed=1, progress=False, control=control)
        monkeypatch.undo()
        # the keyframes always start from the noised input (the last pass's keyframes on the second of two passes)
        assert calls[:2] == [("keyframes", 0.6, True)] * 2
        assert all(c == ("interpolation", fill_strength, fill_init) for c in calls[2:]), (control, calls)


def test_foreground_mask_redraws_the_objects_and_keeps_the_background(pipes):
    from vidiff.data.control_maps import render_control_clip, sample_control_clip
    from vidiff.pipeline.editing import foreground_mask
    from vidiff.pipeline.region import feather_weights

    pipe, plain, _ = pipes
    frames, maps = render_control_clip(sample_control_clip(np.random.default_rng(8), 16, 64))
    clip = torch.from_numpy(frames)
    mask = foreground_mask(clip)
    grown = torch.from_numpy(maps["silhouette"])[:, None]
    assert torch.equal(mask, torch.nn.functional.max_pool2d(grown, 5, stride=1, padding=2)[:, 0] > 0.5)
    for p in (pipe, plain):  # with blob maps ("auto" on the control pipeline) and without
        out, _ = p.edit_video(clip, "a red circle", mask="foreground", seed=2, progress=False)
        outside = feather_weights(mask, 3) == 0
        assert torch.equal(out[outside], clip[outside]) and not torch.equal(out, clip)
    with pytest.raises(InputError, match="no frame of the clip shows anything"):
        pipe.edit_video(torch.full((16, 64, 64, 3), 70, dtype=torch.uint8), "x", mask="foreground", progress=False)


def test_user_keyframes_off_the_grid_get_the_maps_of_their_grid(pipes, monkeypatch):
    from vidiff.pipeline import timeline

    pipe, _, _ = pipes
    maps = _maps()
    image = torch.from_numpy(np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    seen = []
    original = timeline.with_control
    monkeypatch.setattr(timeline, "with_control", lambda cond, stage, control, rows, positions: seen.append(
        positions) or original(cond, stage, control, rows, positions))
    frames, _ = pipe.text_to_video(["a red circle", "a blue square"], seed=[1, 2], keyframes={7: image},
                                   control=maps, progress=False)
    assert frames.shape == (2, 16, 64, 64, 3) and torch.equal(frames[0, 7], image) and torch.equal(frames[1, 7], image)
    assert seen[0] == [[0, 4, 7, 11, 15]] * 2  # the keyframe pass: the grid laid around frame 7, both rows
    windows = [w for calls in seen[1:] for w in calls]
    assert sorted({w[0] for w in windows}) == [0, 4, 7, 11] and all(w == list(range(w[0], w[-1] + 1)) for w in windows)
