"""The temporal decoder: identity at initialisation, its receptive field, windowed decoding equal to one pass, and
fine-tuning it with the encoder frozen (latent space and normalisation unchanged)."""
import dataclasses

import pytest
import torch

from vidiff.config import ConfigError, from_dict
from vidiff.errors import InputError
from vidiff.training.config import TrainConfig, validate
from vidiff.training.finetune import freeze_parameters, load_initial_weights
from vidiff.models.vae import for_inference
from vidiff.vae import AutoencoderKL, VAEConfig

PER_FRAME = VAEConfig(block_out_channels=(16, 32), layers_per_block=1, norm_groups=8, latent_channels=4,
                      mid_attention=False, scaling_factor=0.7, shift_factor=0.05)
TEMPORAL = dataclasses.replace(PER_FRAME, temporal_decoder=True)


def _randomize(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if scale else 0.0))


def _latents(f=9, seed=0):
    return torch.randn(2, 4, f, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_zero_initialised_temporal_decoder_is_the_per_frame_decoder():
    per_frame = AutoencoderKL(PER_FRAME).eval()
    _randomize(per_frame, 1)
    temporal = AutoencoderKL(TEMPORAL).eval()
    missing = load_initial_weights(temporal, per_frame.state_dict(), "test")
    assert missing and all(k.startswith("decoder.temporal.") for k in missing)
    z = _latents()
    with torch.no_grad():
        torch.testing.assert_close(temporal.decode(z), per_frame.decode(z), atol=1e-5, rtol=1e-5)


def test_receptive_field_is_the_temporal_radius():
    vae = AutoencoderKL(TEMPORAL).eval()
    _randomize(vae, 2)
    r = vae.decoder.temporal_radius
    assert r == 2 * 3  # three blocks (mid + two up blocks), two kernel-3 convolutions each
    z = _latents(f=r + 3)
    edited = z.clone()
    edited[:, :, 0] += 1.0
    with torch.no_grad():
        a, b = vae.decode(z, frame_chunk=0), vae.decode(edited, frame_chunk=0)
    change = (a - b).abs().amax(dim=(0, 1, 3, 4))  # (F,)
    assert change[r] > 1e-4  # frame r still sees frame 0 ...
    assert change[r + 1:].max() == 0  # ... frame r + 1 does not


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_windowed_decode_equals_one_pass(chunk):
    vae = AutoencoderKL(TEMPORAL).eval()
    _randomize(vae, 3)
    z = _latents(f=20)  # longer than one window (chunk + 2 x radius 6), so every chunk runs in several passes
    assert len(vae.decode_windows(20, chunk)) > 1
    with torch.no_grad():
        whole = vae.decode(z, frame_chunk=0)
        windows = vae.decode(z, frame_chunk=chunk)
    torch.testing.assert_close(windows, whole, atol=1e-5, rtol=1e-5)


def test_decode_windows_carry_the_radius_and_a_short_clip_is_one_pass(monkeypatch):
    vae = AutoencoderKL(TEMPORAL).eval()  # radius 6
    assert vae.decode_windows(30, 8) == [(0, 14, 0), (2, 22, 8), (10, 30, 16), (18, 30, 24)]
    assert vae.decode_windows(20, 8) == [(0, 20, 0)]  # 20 <= 8 + 2 x 6: every pass would read every frame
    assert vae.decode_windows(21, 8)[0] == (0, 14, 0) and vae.decode_windows(5, 0) == [(0, 5, 0)]
    per_frame = AutoencoderKL(PER_FRAME)
    assert per_frame.decode_windows(20, 8) == [(0, 8, 0), (8, 16, 8), (16, 20, 16)]
    calls = []
    decode_images = vae._decode_images
    monkeypatch.setattr(vae, "_decode_images", lambda z, n: calls.append(n) or decode_images(z, n))
    with torch.no_grad():
        vae.decode(_latents(f=20), frame_chunk=8)
    assert calls == [20]  # once, not three passes of 14, 20 and 12 frames
    # the memory estimate: linear in frames and pixels; floats per pixel and frame A x 16 (the finest width) +
    # B x 32 (the width upsampled into it), with the channels-last constants once loaded for inference
    assert vae.decode_bytes(3, 10, 20) == 3 * vae.decode_bytes(1, 10, 20) == int(3 * (1.6 * 16 + 5.9 * 32) * 4 * 200)
    assert per_frame.decode_bytes(1, 10, 20) == int((5.5 * 16 + 1.3 * 32) * 4 * 200)
    assert for_inference(vae).decode_bytes(1, 10, 20) == int((2.65 * 16 + 3.3 * 32) * 4 * 200)


def test_temporal_decoder_save_load_round_trip(tmp_path):
    vae = AutoencoderKL(TEMPORAL).eval()
    _randomize(vae, 4)
    vae.save(tmp_path / "vae")
    loaded = AutoencoderKL.load(tmp_path / "vae")
    assert loaded.config.temporal_decoder
    z = _latents()
    saved = vae.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())  # the weights exactly
    with torch.no_grad():  # loading gives channels-last weights (for_inference): the same sums in another order
        torch.testing.assert_close(loaded.decode(z), vae.decode(z), atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="24 unexpected"):  # a per-frame config cannot take these weights silently
        AutoencoderKL.load(_with_config(tmp_path, vae, PER_FRAME))


def _with_config(tmp_path, vae, config):
    from vidiff.parts import save_part

    return save_part(tmp_path / "other", config, vae.state_dict())


def test_initial_weights_are_checked():
    vae = AutoencoderKL(PER_FRAME)
    state = AutoencoderKL(TEMPORAL).state_dict()
    with pytest.raises(InputError, match="does not have"):
        load_initial_weights(vae, state, "folder")
    bad = AutoencoderKL(PER_FRAME).state_dict()
    bad["decoder.conv_out.weight"] = torch.zeros(1)
    with pytest.raises(InputError, match="decoder.conv_out.weight"):
        load_initial_weights(vae, bad, "folder")


def test_freeze_names_whole_components():
    vae = AutoencoderKL(TEMPORAL)
    n = freeze_parameters(vae, ("encoder", "quant_conv"))
    assert n == sum(1 for k, _ in vae.named_parameters() if k.split(".")[0] in ("encoder", "quant_conv"))
    assert all(not p.requires_grad for k, p in vae.named_parameters() if k.startswith("encoder."))
    assert all(p.requires_grad for k, p in vae.named_parameters() if k.startswith("decoder."))
    with pytest.raises(ConfigError, match="'encoder2'"):
        freeze_parameters(vae, ("encoder2",))


class Clips(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"video": torch.rand(3, 4, 16, 16, generator=g) * 2 - 1, "caption": "", "index": i}


def test_decoder_fine_tune_keeps_the_latent_space(tmp_path):
    from vidiff.training.loop import train
    from vidiff.training.vae_stage import VAEStage

    start = AutoencoderKL(PER_FRAME).eval()
    _randomize(start, 5)
    start.save(tmp_path / "start")
    model = {k: v for k, v in dataclasses.asdict(TEMPORAL).items() if k not in ("scaling_factor", "shift_factor")}
    cfg = validate(from_dict(TrainConfig, {
        "stage": "vae", "output_dir": str(tmp_path / "run"), "model": model, "init_weights": str(tmp_path / "start"),
        "data": {"kind": "video_folder", "root": "unused", "num_frames": 4, "size": 16},
        "loss": {"kl_weight": 0.0, "l1_weight": 1.0, "temporal_weight": 1.0, "latent_noise_max": 0.1,
                 "sample_posterior": False},
        "optimizer": {"lr": 1e-2, "warmup_steps": 1, "cosine_decay": False},
        "train": {"max_steps": 3, "batch_size": 2, "log_every": 1, "checkpoint_every": 100, "ema_decay": 0.0,
                  "freeze": ["encoder", "quant_conv"]}}))
    stage = VAEStage(cfg, dataset=Clips())
    run = train(cfg, stage=stage)
    out = AutoencoderKL.load(run / "export")
    assert (out.config.scaling_factor, out.config.shift_factor) == (0.7, 0.05)  # kept, not measured again
    video = torch.stack([Clips()[i]["video"] for i in range(2)])
    trained, started = out.state_dict(), start.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in started.items()
               if k.startswith(("encoder.", "quant_conv.")))  # the frozen encoder did not move
    with torch.no_grad():
        torch.testing.assert_close(out.encode(video), start.encode(video), atol=1e-5, rtol=1e-5)
    assert any(trained[k].abs().max() > 0 for k in trained if k.startswith("decoder.temporal.")
               and k.endswith("conv2.weight"))  # the zero-initialised temporal layers learned something
    assert not torch.equal(trained["decoder.conv_out.weight"], started["decoder.conv_out.weight"])


def test_normalisation_is_kept_only_with_the_whole_encoder_side_frozen(tmp_path):
    from vidiff.training.vae_stage import VAEStage

    AutoencoderKL(PER_FRAME).save(tmp_path / "start")
    model = {k: v for k, v in dataclasses.asdict(TEMPORAL).items() if k not in ("scaling_factor", "shift_factor")}

    def stage(freeze):
        cfg = validate(from_dict(TrainConfig, {
            "stage": "vae", "model": model, "init_weights": str(tmp_path / "start"),
            "data": {"kind": "video_folder", "root": "unused", "num_frames": 4, "size": 16},
            "train": {"freeze": freeze}}))
        return VAEStage(cfg, dataset=Clips())

    assert stage(["encoder", "quant_conv"]).keep_normalization
    assert not stage(["encoder"]).keep_normalization  # quant_conv still moves the latents


def test_temporal_loss_is_the_frame_to_frame_change_of_the_error():
    from vidiff.training.config import LossSection
    from vidiff.training.vae_stage import VAELoss

    vae = AutoencoderKL(TEMPORAL).eval()
    w = LossSection(kl_weight=0.0, l1_weight=0.0, temporal_weight=1.0, sample_posterior=False)
    video = torch.stack([Clips()[i]["video"] for i in range(2)])
    with torch.no_grad():
        loss = VAELoss(vae, w)(video, torch.zeros(2, 4, 4, 4, 4))
        err = vae.decode(vae.encode(video)) - video
    want = (err[:, :, 1:] - err[:, :, :-1]).abs().flatten(1).mean(1)
    torch.testing.assert_close(loss, want)


def test_config_errors_name_the_key(tmp_path):
    base = {"stage": "vae", "model": {}, "data": {"kind": "video_folder", "root": "x"}}
    with pytest.raises(ConfigError, match="init_weights"):
        validate(from_dict(TrainConfig, {**base, "init_weights": str(tmp_path / "nowhere")}))
    with pytest.raises(ConfigError, match="temporal_weight"):
        validate(from_dict(TrainConfig, {**base, "loss": {"temporal_weight": -1.0}}))


def test_in_place_activations_change_no_value_and_keep_the_graph_valid():
    """Without a graph the decoder's SiLUs run in place (resnet.silu_fresh), and its residual adds always do: the
    result must be the recorded pass's, bit for bit, and the recorded pass must still differentiate (autograd
    refuses a backward through a tensor that an in-place op changed after it was saved)."""
    vae = AutoencoderKL(dataclasses.replace(TEMPORAL, mid_attention=True)).eval()
    _randomize(vae, 3)
    z = _latents(5).requires_grad_(True)
    recorded = vae.decode(z)
    recorded.square().sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with torch.inference_mode():
        assert torch.equal(vae.decode(z.detach()), recorded.detach())
