"""The flow anchor (diffusion.anchor: known_flow): the known ends warped along optical flow and encoded, which a
part denoises around and reads as an input; the keyframe errors carried along the same flow; the training stage
and fill_between computing the anchor the same way."""
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("cv2")

from vidiff.diffusion import Denoiser  # noqa: E402
from vidiff.diffusion.cond import Cond  # noqa: E402
from vidiff.errors import InputError  # noqa: E402
from vidiff.optical_flow import flow_timeline, warp_blend  # noqa: E402


def _picture(h: int, w: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return np.stack([128 + 90 * np.sin(xx / 5 + yy / 7), 128 + 80 * np.cos(yy / 4 - xx / 9),
                     128 + 60 * np.sin((xx + yy) / 6)], axis=-1)


def _moving(frames: int, step: int, h: int = 48, w: int = 48) -> torch.Tensor:
    """uint8 (frames,h,w,3): a smooth picture moving `step` px left per frame."""
    pic = _picture(h, w + step * (frames - 1))
    return torch.from_numpy(np.stack([pic[:, i * step:i * step + w] for i in range(frames)]).round()
                            .astype(np.uint8))


def test_flow_timeline_keeps_the_keyframes_and_finds_the_middle_of_a_translation():
    clip = _moving(5, 2)  # 8 px between the keyframes
    frames, flows = flow_timeline(clip[::4], 4)
    assert frames.shape == clip.shape and torch.equal(frames[::4], clip[::4]) and len(flows) == 1
    inner = (slice(None), slice(10, -10), slice(10, -10))  # away from the borders the flow cannot see past
    err_flow = (frames[1:4].double() - clip[1:4].double())[inner].abs().mean()
    blend = torch.lerp(clip[0].double(), clip[4].double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64).view(3, 1, 1, 1))
    err_blend = (blend - clip[1:4].double())[inner].abs().mean()
    assert err_flow < 3 and err_flow < err_blend / 5, (err_flow, err_blend)


def test_errors_carried_along_the_flow_move_with_the_picture():
    from vidiff.pipeline.residual import carry_keyframe_residual

    keys = _moving(2, 8)
    decoded = torch.full((5, 48, 48, 3), 100, dtype=torch.uint8)
    _, flows = flow_timeline(keys, 4)
    zero = [(np.zeros_like(f01), np.zeros_like(f10)) for f01, f10 in flows]
    # with no motion the carry along the flow is the carry in place
    assert torch.equal(carry_keyframe_residual(decoded, keys, 4, zero), carry_keyframe_residual(decoded, keys, 4))
    # with the motion, the middle frame's correction is each end's error warped half way: the picture there
    carried = carry_keyframe_residual(decoded, keys, 4, flows)
    truth = _moving(5, 2)
    inner = (slice(10, -10), slice(10, -10))
    along = (carried[2].double() - truth[2].double())[inner].abs().mean()
    in_place = (carry_keyframe_residual(decoded, keys, 4)[2].double() - truth[2].double())[inner].abs().mean()
    assert along < 3 and along < in_place / 5, (along, in_place)
    assert torch.equal(carried[::4], keys)


def test_warp_blend_of_a_constant_is_the_constant():
    flow = np.random.default_rng(0).normal(0, 3, (8, 8, 2)).astype(np.float32)
    ones = np.full((8, 8, 3), 7.0, np.float32)
    np.testing.assert_allclose(warp_blend(ones, ones, flow, -flow, 0.3), ones, rtol=1e-6)


def _cond(x0: torch.Tensor, anchor: torch.Tensor | None) -> Cond:
    mask = torch.zeros(x0.shape[0], x0.shape[2])
    mask[:, [0, -1]] = 1
    return Cond(known=x0 * mask[:, None, :, None, None], known_mask=mask, anchor=anchor)


def test_a_flow_anchored_denoiser_is_the_anchor_plus_the_plain_denoiser_of_the_residual():
    g = torch.Generator().manual_seed(0)
    x0, anchor = torch.randn(2, 3, 5, 4, 4, generator=g), torch.randn(2, 3, 5, 4, 4, generator=g)
    x = x0 + 0.5 * torch.randn(x0.shape, generator=g)
    net = lambda x_in, c_noise, cond: torch.tanh(x_in) * 0.3 + cond.anchor * 0.1  # noqa: E731
    plain, anchored = Denoiser(net, "v", 0.5), Denoiser(net, "v", 0.5, anchor="known_flow")
    cond = _cond(x0, anchor)
    torch.testing.assert_close(anchored(x, 0.5, cond), anchor + plain(x - anchor, 0.5, cond))
    noise = torch.randn(x0.shape, generator=g)
    torch.testing.assert_close(anchored.loss(x0, 0.5, cond, noise=noise), plain.loss(x0 - anchor, 0.5, cond, noise=noise))
    with pytest.raises(InputError, match="known_flow"):
        anchored(x, 0.5, _cond(x0, None))
    # a guidance pass without the known frames has no anchor, as with the blend
    empty = cond.without_known()
    assert torch.equal(empty.anchor, torch.zeros_like(anchor))
    torch.testing.assert_close(anchored(x, 0.5, empty), plain(x, 0.5, empty))


def test_a_unet_with_anchor_input_reads_the_anchor():
    from vidiff.models import UNet3D, UNet3DConfig

    cfg = UNet3DConfig(in_channels=2, out_channels=2, block_out_channels=(8, 8), layers_per_block=1,
                       attention_levels=(False, False), mid_attention=False, norm_groups=4, conditioning=True,
                       anchor_input=True)
    net = UNet3D(cfg)
    assert net.conv_in.in_channels == 2 * 2 + 1 + 2
    torch.nn.init.normal_(net.conv_out.weight)  # not the zero start, so the output depends on the input
    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(1, 2, 3, 8, 8, generator=g), torch.randn(1, 2, 3, 8, 8, generator=g)
    a, b = torch.randn(1, 2, 3, 8, 8, generator=g), torch.randn(1, 2, 3, 8, 8, generator=g)
    with torch.no_grad():
        out_a, out_b = net(x, torch.zeros(1), _cond(x0, a)), net(x, torch.zeros(1), _cond(x0, b))
        out_none = net(x, torch.zeros(1), _cond(x0, None))
        out_zero = net(x, torch.zeros(1), _cond(x0, torch.zeros_like(a)))
    assert not torch.allclose(out_a, out_b)
    torch.testing.assert_close(out_none, out_zero)  # no anchor reads as zeros


# ---- fill_between with a flow-anchored part (the flow_pipe fixture: tests/conftest.py) ----------------------
def test_fill_between_of_a_part_that_predicts_zero_is_the_flow_anchor_decoded(flow_pipe):
    from vidiff.optical_flow import flow_anchor
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.residual import carry_keyframe_residual

    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(flow_pipe)
    keys = _moving(9, 2, 32, 40)[::4]  # 3 keyframes, 8 px apart
    out = pipe.fill_between(keys, 4, seed=0)
    assert out.shape == (9, 32, 40, 3) and torch.equal(out[::4], keys)
    with torch.inference_mode():
        anchor, flows = flow_anchor(pipe.vae, keys, 4)
        anchor[:, :, ::4] = pipe.vae.encode_frames(keys)  # the known ends are the encoded keyframes
        expected = carry_keyframe_residual(pipe.vae.decode_to_frames(anchor)[0], keys, 4, flows)
    # one Euler step from sigma 80: the anchor plus c_skip * 80 * noise (about 1e-3 here, which the random
    # decoder turns into a level or two at a few pixels)
    diff = (out.int() - expected.int()).abs()
    assert diff.float().mean() < 0.3 and diff.max() <= 6, (diff.float().mean(), diff.max())
    # the anchor, not the blend: the same pipeline denoising around the blend of the ends is far off
    from vidiff.diffusion.anchor import known_blend

    with torch.inference_mode():
        blend = known_blend(anchor, torch.tensor([[1.0, 0, 0, 0, 1, 0, 0, 0, 1]]))
        other = carry_keyframe_residual(pipe.vae.decode_to_frames(blend)[0], keys, 4)
    assert (out.int() - other.int()).abs().float().mean() > 10 * diff.float().mean()
    assert torch.equal(out, pipe.fill_between(keys, 4, seed=0))


def test_a_flow_anchored_pipeline_without_opencv_is_refused_before_its_weights_load(flow_pipe, monkeypatch):
    from vidiff.pipeline import VideoPipeline

    monkeypatch.setattr("vidiff.optical_flow.flow_available", lambda: False)
    monkeypatch.setattr("vidiff.pipeline.load._load_net", lambda *a: pytest.fail("weights loaded first"))
    with pytest.raises(InputError, match="opencv"):
        VideoPipeline.from_pretrained(flow_pipe)


def test_a_flow_anchored_part_is_refused_beside_a_keyframe_part(flow_pipe, tmp_path, load_tool):
    from vidiff.pipeline import VideoPipeline

    folder = load_tool("make_random_pipeline").write_random_pipeline(tmp_path / "both", tiny=True, steps=1)
    shutil.rmtree(folder / "interpolation")
    shutil.copytree(flow_pipe / "interpolation", folder / "interpolation")
    cfg = yaml.safe_load((folder / "pipeline.yaml").read_text())
    cfg["interpolation"]["anchor"] = "known_flow"
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match="interpolation-only"):
        VideoPipeline.from_pretrained(folder)


def test_the_training_stage_anchors_each_window_on_its_own_ends(tmp_path, monkeypatch):
    """The stage's anchor for a window is flow_anchor of the window's first and last pixel frames."""
    from vidiff.training.stages import LatentDiffusionStage
    from vidiff.optical_flow import flow_anchor
    from vidiff.vae import AutoencoderKL, VAEConfig

    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 8), layers_per_block=1, norm_groups=4, latent_channels=2,
                                  mid_attention=False)).eval()
    stage = LatentDiffusionStage.__new__(LatentDiffusionStage)
    stage._vae = vae
    monkeypatch.setattr(LatentDiffusionStage, "vae", lambda self: vae)
    pixels = torch.stack([_moving(9, 1, 16, 16), _moving(9, 2, 16, 16)])  # (2,9,16,16,3)
    idx = torch.tensor([[2, 3, 4, 5], [0, 1, 2, 3]])
    x0 = torch.zeros(2, 2, 4, 8, 8)
    out = stage._flow_anchor({"pixels": pixels}, idx, x0)
    with torch.no_grad():
        for i, row in enumerate(idx):
            want = flow_anchor(vae, pixels[i][[int(row[0]), int(row[-1])]], 3)[0][0]
            torch.testing.assert_close(out[i], want)
    with pytest.raises(ValueError, match="pixels"):
        stage._flow_anchor({}, idx, x0)


def test_an_anchored_part_starts_sampling_from_its_anchor_plus_noise(flow_pipe, monkeypatch):
    """The part learned x0 - anchor, so the sampler's first x is anchor + sigma_max * noise, not the noise alone
    (which, at a sigma_max near the data's scale, would hand the network -anchor as part of its input)."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.pipeline.timeline import encode_text
    from vidiff.random import per_row_randn

    pipe = VideoPipeline.from_pretrained(flow_pipe)
    stage = pipe.interpolation
    captured = {}

    def fake_sample(guided, x, sigmas, **kw):
        captured.update(x=x.clone(), sigma=float(sigmas[0]))
        return x

    monkeypatch.setattr("vidiff.pipeline.stage.sample", fake_sample)
    text, null_text = encode_text(pipe.text_encoder, [""])
    g = torch.Generator().manual_seed(5)
    c = pipe.vae.config.latent_channels
    shape = (c, 5, 4, 6)
    anchor, known = torch.randn(1, *shape, generator=g), torch.randn(1, *shape, generator=g)
    mask = torch.tensor([[1.0, 0, 0, 0, 1]])
    cond = dataclasses.replace(text, known=known * mask[:, None, :, None, None], known_mask=mask, anchor=anchor)
    stage.run(shape, [torch.Generator().manual_seed(3)], stage.settings(), cond, null_text)
    noise = per_row_randn(shape, [torch.Generator().manual_seed(3)]) * captured["sigma"]
    torch.testing.assert_close(captured["x"], noise + anchor)


def test_frames_of_any_size_are_filled_padded_and_cut_back(flow_pipe):
    """DIS refuses frames under 12 px and the U-Net needs multiples of frame_multiple: both are padded inside."""
    from vidiff.optical_flow import dis_flow
    from vidiff.pipeline import VideoPipeline

    still = _moving(1, 1, 6, 9)[0].numpy()
    flow = dis_flow(still, still)
    assert flow.shape == (6, 9, 2) and np.abs(flow).max() < 0.5
    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(flow_pipe)
    for h, w in [(4, 6), (8, 12), (pipe.frame_multiple + 3, 2 * pipe.frame_multiple)]:
        keys = _moving(5, 1, h, w)[::4]
        out = pipe.fill_between(keys, 4, seed=0)
        assert out.shape == (5, h, w, 3) and torch.equal(out[::4], keys)



def test_flow_on_wide_frames_under_16_px_tall_measures_the_shift():
    """OpenCV's DIS killed the process (SIGSEGV) on frames 12..15 px tall and 40+ wide, as dis_flow padded a 64x1
    clip to 12 px: run in a child so that a crash fails this test instead of the session."""
    import subprocess
    import sys

    sizes = [(4, 64), (12, 64), (15, 200)]  # 4: a 64x1 clip as the pipeline pads it
    code = ("import numpy as np; from vidiff.optical_flow import dis_flow; from test_flow_anchor import _moving\n"
            f"for h, w in {sizes}:\n"
            "    a, b = _moving(2, 2, h, w).numpy(); f = dis_flow(a, b)\n"
            "    print(f.shape == (h, w, 2), float(np.median(f[:, 8:-8, 0])))")
    here = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OMP_NUM_THREADS": "1", "PYTHONPATH": f"{here.parent}:{here}"})
    assert proc.returncode == 0, proc.stderr[-500:]
    for line in proc.stdout.splitlines():  # the picture moves 2 px left: a(y, x) ~ b(y, x - 2)
        shape_ok, dx = line.split()
        assert shape_ok == "True" and float(dx) == pytest.approx(-2.0, abs=0.3)
    assert len(proc.stdout.splitlines()) == len(sizes)


def test_flow_gives_the_callers_opencv_thread_count_back():
    """The flow ran OpenCV on torch's thread count and left it there: a notebook's cv2.setNumThreads(3) was 1 after
    a fill_between of a flow-anchored pipeline under torch.set_num_threads(1)."""
    import cv2

    before, threads = cv2.getNumThreads(), torch.get_num_threads()
    seen = []
    real_create = cv2.DISOpticalFlow_create
    try:
        cv2.setNumThreads(threads + 2)
        cv2.DISOpticalFlow_create = lambda *a: (seen.append(cv2.getNumThreads()), real_create(*a))[1]
        flow_timeline(_moving(2, 3), 4)
        assert seen and set(seen) == {threads}  # the flow itself ran on torch's count
        assert cv2.getNumThreads() == threads + 2
    finally:
        cv2.DISOpticalFlow_create = real_create
        cv2.setNumThreads(before)
