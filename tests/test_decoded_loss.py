"""The decoded loss (decoded_loss.enabled): an interpolation part with the flow anchor trained on the frames the
pipeline returns (decoded, with the keyframe errors carried along the flow), not on latents."""
import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from vidiff.config import ConfigError, from_dict  # noqa: E402
from vidiff.training.config import TrainConfig, config_hash, validate  # noqa: E402
from vidiff.training.decoded_loss import DecodedLoss, crop_box  # noqa: E402


def _moving(frames: int, step: int, size: int) -> torch.Tensor:
    """uint8 (frames,size,size,3): a smooth picture moving `step` px left per frame."""
    w = size + step * (frames - 1)
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pic = np.stack([128 + 90 * np.sin(xx / 5 + yy / 7), 128 + 80 * np.cos(yy / 4 - xx / 9),
                    128 + 60 * np.sin((xx + yy) / 6)], axis=-1)
    return torch.from_numpy(np.stack([pic[:, i * step:i * step + size] for i in range(frames)]).round()
                            .astype(np.uint8))


def _window(pipe, clip: torch.Tensor, sigma: float):
    """DecodedLoss of the pipeline's own part and VAE, and its inputs for one window whose ends are known."""
    from vidiff.optical_flow import flow_anchor
    from vidiff.pipeline.timeline import encode_text

    gap = clip.shape[0] - 1
    with torch.no_grad():
        x0 = pipe.vae.encode_frames(clip).float()
        anchor, flows = flow_anchor(pipe.vae, clip[[0, -1]], gap)
    text, _ = encode_text(pipe.text_encoder, [""])
    mask = torch.zeros(1, gap + 1)
    mask[:, [0, -1]] = 1.0
    c = text.__class__(context=text.context, context_mask=text.context_mask, known=x0 * mask[:, None, :, None, None],
                       known_mask=mask, cond_sigma=torch.zeros(1), anchor=anchor)
    truth = clip.permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    loss = DecodedLoss(pipe.interpolation.denoiser, pipe.vae, carry=True)
    return loss, (x0, torch.full((1,), sigma), torch.zeros_like(x0), c, truth, flows)


def test_the_decoded_loss_scores_the_frames_fill_between_returns(flow_pipe):
    from vidiff.pipeline import VideoPipeline

    torch.set_num_threads(1)
    pipe = VideoPipeline.from_pretrained(flow_pipe)
    clip = _moving(5, 2, 32)  # the ends 8 px apart
    out = pipe.fill_between(clip[[0, -1]], 4, seed=0)  # uint8 (5,32,32,3)
    loss, args = _window(pipe, clip, pipe.config.interpolation.sigma_max)
    h = args[0].shape[-1]
    with torch.no_grad():
        frames, truth = loss.returned_frames(*args, (0, 0, h))
        per_sample = loss(*args, (0, 0, h))
    torch.testing.assert_close(truth, args[4])  # the whole frame is scored when the crop is the whole frame
    got = ((frames[0] + 1) * 127.5).permute(1, 2, 3, 0)  # (5,32,32,3)
    diff = (got - out.float())[1:-1].abs()  # the in-between frames (the loss leaves the ends out)
    # fill_between rounds twice (decoded frames, then with the carry) and its noise moves the latents by ~1e-3
    assert diff.mean() < 0.6 and diff.max() <= 4, (diff.mean(), diff.max())
    want = ((out[1:-1].float() / 127.5 - 1 - truth[0].permute(1, 2, 3, 0)[1:-1]) ** 2).mean()
    assert per_sample.shape == (1,) and abs(float(per_sample[0]) - float(want)) < 0.05 * float(want)
    # without the carry the frames are the decoded latents alone: worse here (the random VAE loses the picture)
    loss.carry = False
    with torch.no_grad():
        assert float(loss(*args, (0, 0, h))[0]) > 2 * float(per_sample[0])


def test_the_gradient_reaches_the_part_and_not_the_vae(flow_pipe):
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(flow_pipe)
    net = pipe.interpolation.net.train().requires_grad_(True)
    pipe.vae.requires_grad_(False)
    loss, args = _window(pipe, _moving(4, 2, 32), 10.0)
    loss(*args, (1, 1, 6)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert all(p.grad is None for p in pipe.vae.parameters())


def test_the_crop_scores_its_inside_and_the_frame_edges():
    assert crop_box((0, 0, 10), (16, 16), 4) == ((slice(0, 10), slice(0, 10)), (slice(0, 36), slice(0, 36)))
    assert crop_box((3, 6, 10), (16, 16), 4) == ((slice(3, 13), slice(6, 16)), (slice(4, 36), slice(4, 40)))
    assert crop_box((0, 0, 16), (16, 16), 4) == ((slice(0, 16), slice(0, 16)), (slice(0, 64), slice(0, 64)))


def test_the_crop_cuts_the_truth_where_it_decodes(flow_pipe):
    from vidiff.pipeline import VideoPipeline

    pipe = VideoPipeline.from_pretrained(flow_pipe)
    loss, args = _window(pipe, _moving(3, 2, 32), 10.0)
    f = pipe.vae.downsample_factor
    with torch.no_grad():
        _, truth = loss.returned_frames(*args, (1, 2, 4))
    top, left = 1 * f + f, 2 * f + f  # a latent of margin inside the frame on every side here
    torch.testing.assert_close(truth, args[4][..., top:top + 2 * f, left:left + 2 * f])


def _interp_config(**over) -> dict:
    data = {"stage": "interpolation", "data": {"kind": "latent_cache", "root": "x"},
            "model": {"block_out_channels": [8, 8], "attention_levels": [False, False], "norm_groups": 4,
                      "in_channels": 4, "out_channels": 4},
            "diffusion": {"anchor": "known_flow"}}
    data.update(over)
    return data


def _conditioned(**over) -> dict:
    """_interp_config with a U-Net that takes known frames, as validate wants of a latent stage (the hash below is
    of the config without)."""
    data = _interp_config(**over)
    return {**data, "model": {**data["model"], "conditioning": True}}


def test_the_decoded_loss_is_refused_outside_a_flow_anchored_interpolation_stage(tmp_path):
    vae = str(tmp_path)
    with pytest.raises(ConfigError, match="decoded_loss.enabled"):
        validate(from_dict(TrainConfig, _conditioned(stage="keyframes", decoded_loss={"enabled": True, "vae": vae})))
    with pytest.raises(ConfigError, match="decoded_loss.enabled"):
        validate(from_dict(TrainConfig, _conditioned(diffusion={"anchor": "known_blend"},
                                                     decoded_loss={"enabled": True, "vae": vae})))
    with pytest.raises(ConfigError, match="decoded_loss.sigma"):
        validate(from_dict(TrainConfig, _conditioned(decoded_loss={"enabled": True, "vae": vae, "sigma": 0.0})))
    with pytest.raises(ConfigError, match="decoded_loss.vae"):
        validate(from_dict(TrainConfig, _conditioned(decoded_loss={"enabled": True})))
    on = validate(from_dict(TrainConfig, _conditioned(decoded_loss={"enabled": True, "vae": vae})))
    off = validate(from_dict(TrainConfig, _conditioned()))
    assert config_hash(on) != config_hash(off)


def test_the_default_section_leaves_the_config_hash_of_older_runs_alone():
    """Runs from before the section existed resume without --force: the hash leaves the section out at its
    defaults (the value below is this config's hash before the section was added)."""
    off = from_dict(TrainConfig, _interp_config())  # not validated: its U-Net takes no known frames (see above)
    assert config_hash(off) == OLD_HASH


OLD_HASH = "d44efb9d87c2d816730bb2f3ac3b63bae48dcaf52285612d5516d94927b838f5"


def test_the_stage_scores_a_batch_of_cache_windows(flow_pipe):
    """latent_stage picks the decoded loss; a batch of window-cache items (latents + pixels) gives one finite loss
    per window, with a gradient into the part."""
    import dataclasses as dc

    from vidiff.models import UNet3DConfig
    from vidiff.parts import load_part_config
    from vidiff.random import SampleDraws
    from vidiff.training.decoded_loss import DecodedLossStage
    from vidiff.training.stages import latent_stage
    from vidiff.vae import AutoencoderKL

    net = dc.asdict(load_part_config(flow_pipe / "interpolation", UNet3DConfig))
    cfg = validate(from_dict(TrainConfig, {
        "stage": "interpolation", "data": {"kind": "latent_cache", "root": "x"}, "model": net,
        "diffusion": {"anchor": "known_flow", "sigma_data": 0.3}, "vae": str(flow_pipe / "vae"),
        "init_weights": str(flow_pipe / "interpolation"), "decoded_loss": {"enabled": True},
        "conditioning": {"min_gap": 2, "max_gap": 4, "drop_cond_prob": 0.0, "drop_text_prob": 0.0}}))
    stage = latent_stage(cfg, dataset=[])
    assert isinstance(stage, DecodedLossStage)
    vae = AutoencoderKL.load(flow_pipe / "vae").eval()
    pixels = torch.stack([_moving(5, 1, 32), _moving(5, 2, 32)])  # (2,5,32,32,3)
    with torch.no_grad():
        latents = torch.cat([vae.encode_frames(p) for p in pixels])
    context, mask = stage.text_encoder().encode(["", ""])
    batch = {"latents": latents, "pixels": pixels, "context": context, "context_mask": mask, "caption": ["", ""]}
    loss = stage.loss(stage.model, batch, SampleDraws(0, [0, 0], 3, [0, 1]), 3)
    assert loss.shape == (2,) and torch.isfinite(loss).all() and (loss > 0).all()
    loss.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.model.denoiser.parameters())
