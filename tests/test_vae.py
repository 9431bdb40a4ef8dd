"""VAE: equivalence with diffusers' AutoencoderKL, frame slicing, parts round trip, input errors, KL loss."""
import json

import pytest
import torch
from safetensors.torch import save_file

from vidiff.config import ConfigError, from_dict
from vidiff.errors import InputError
from vidiff.vae import AutoencoderKL, VAEConfig, convert_legacy_diffusers_keys, kl_loss

TINY = VAEConfig(block_out_channels=(32, 64), layers_per_block=1, norm_groups=8, latent_channels=4,
                 sample_size=32, scaling_factor=0.5, shift_factor=0.1)


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights everywhere (GroupNorm affine too), so no parameter is silently left unused."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm_scale = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if is_norm_scale else 0.0))


def _video(b=1, f=3, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, f, size, size, generator=g) * 2 - 1


def _diffusers_folder(tmp_path, **overrides):
    diffusers = pytest.importorskip("diffusers")
    kwargs = dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                  latent_channels=4, sample_size=32, scaling_factor=0.5, shift_factor=0.1)
    kwargs.update(overrides)
    ref = diffusers.AutoencoderKL(**kwargs)
    _randomize(ref)
    ref.eval()
    folder = tmp_path / "diffusers_vae"
    ref.save_pretrained(folder, safe_serialization=True)
    return ref, folder


@pytest.mark.parametrize("overrides", [{}, {"use_quant_conv": False, "mid_block_add_attention": False}])
def test_matches_diffusers(tmp_path, overrides):
    ref, folder = _diffusers_folder(tmp_path, **overrides)
    vae = AutoencoderKL.from_diffusers(folder)
    assert vae.config.scaling_factor == 0.5 and vae.config.shift_factor == 0.1
    assert vae.config.use_quant_conv == ("use_quant_conv" not in overrides)
    video = _video()  # (1,3,3,32,32)
    images = video[0].permute(1, 0, 2, 3)  # (F,3,H,W) for diffusers' per-image API
    with torch.no_grad():
        dist = ref.encode(images).latent_dist
        mean, logvar = vae.encode_distribution(video)
        latents = vae.encode(video)
        decoded = vae.decode(latents)
        ref_decoded = ref.decode(dist.mean).sample  # our decode un-scales: latents / 0.5 + 0.1 == mean
    torch.testing.assert_close(mean[0].permute(1, 0, 2, 3), dist.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(logvar[0].permute(1, 0, 2, 3), dist.logvar, atol=1e-4, rtol=0)
    torch.testing.assert_close(latents[0].permute(1, 0, 2, 3), (dist.mean - 0.1) * 0.5, atol=1e-4, rtol=0)
    torch.testing.assert_close(decoded[0].permute(1, 0, 2, 3), ref_decoded, atol=1e-4, rtol=0)
    assert decoded.shape == video.shape and latents.shape == (1, 4, 3, 16, 16)


def test_legacy_attention_names_load(tmp_path):
    ref, folder = _diffusers_folder(tmp_path)
    from safetensors.torch import load_file

    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    legacy = {}
    for key, value in state.items():
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            if f".attentions.0.{new}." in key:
                key = key.replace(f".{new}.", f".{old}.")
                value = value[:, :, None, None] if value.ndim == 2 else value  # old conv-style weight
        legacy[key] = value
    assert any(".query." in k for k in legacy) and any(".proj_attn." in k for k in legacy)
    assert convert_legacy_diffusers_keys(legacy).keys() == state.keys()
    save_file(legacy, str(folder / "diffusion_pytorch_model.safetensors"))
    vae = AutoencoderKL.from_diffusers(folder)
    video = _video(f=2)
    with torch.no_grad():
        got = vae.decode(vae.encode(video))
        want = ref.decode(ref.encode(video[0].permute(1, 0, 2, 3)).latent_dist.mean).sample
    torch.testing.assert_close(got[0].permute(1, 0, 2, 3), want, atol=1e-4, rtol=0)


def test_sharded_diffusers_weights_load(tmp_path):
    ref, folder = _diffusers_folder(tmp_path)
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    ref.save_pretrained(folder, safe_serialization=True, max_shard_size="300KB")
    assert (folder / "diffusion_pytorch_model.safetensors.index.json").is_file()
    vae = AutoencoderKL.from_diffusers(folder)
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in ref.state_dict().items())


@pytest.mark.parametrize("shard", [None, "300KB"])
def test_fp16_variant_only_diffusers_weights_load(tmp_path, shard):
    # save_pretrained(variant="fp16") writes diffusion_pytorch_model.fp16.safetensors (sharded: .fp16-0000N-of-...
    # with diffusion_pytorch_model.safetensors.index.fp16.json); such a folder was "missing ...safetensors"
    ref, folder = _diffusers_folder(tmp_path)
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    ref.save_pretrained(folder, variant="fp16", **({"max_shard_size": shard} if shard else {}))
    assert not (folder / "diffusion_pytorch_model.safetensors").exists()
    vae = AutoencoderKL.from_diffusers(folder)
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in ref.state_dict().items())


def test_a_stable_diffusion_repository_root_names_its_vae_subfolder(tmp_path):
    from vidiff.parts import load_part_config

    ref, folder = _diffusers_folder(tmp_path)
    root = tmp_path / "sd"
    root.mkdir()
    folder.rename(root / "vae")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                        "vae": ["diffusers", "AutoencoderKL"]}))
    with pytest.raises(InputError, match=r"pipeline folder \(model_index.json\).*give its vae/ subfolder: .*sd/vae"):
        AutoencoderKL.from_diffusers(root)
    with pytest.raises(InputError, match=r"sd/vae: a diffusers VAE folder.*from_diffusers\(.*sd/vae"):
        load_part_config(root, VAEConfig)  # where a part folder is read (--vae): the subfolder and its conversion


@pytest.mark.parametrize("chunk", [1, 2])
def test_sliced_equals_unsliced(chunk):
    vae = AutoencoderKL(TINY).eval()
    _randomize(vae, seed=3)
    video = _video(b=2, f=3, size=16)  # 6 images: chunk 2 also splits across the batch boundary
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    with torch.no_grad():
        full_mean, full_logvar = vae.encode_distribution(video, frame_chunk=0)
        mean, logvar = vae.encode_distribution(video, frame_chunk=chunk)
        full_sample = vae.encode(video, sample=True, generator=g(), frame_chunk=0)
        sample = vae.encode(video, sample=True, generator=g(), frame_chunk=chunk)
        full_dec = vae.decode(full_mean, frame_chunk=0)
        dec = vae.decode(full_mean, frame_chunk=chunk)
    for a, b in ((mean, full_mean), (logvar, full_logvar), (sample, full_sample), (dec, full_dec)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)  # float rounding only (batch size changes kernels)
    assert not torch.allclose(sample, (full_mean - TINY.shift_factor) * TINY.scaling_factor)


def test_frames_are_independent():
    """Per-frame model: changing one frame changes only that frame's latents."""
    vae = AutoencoderKL(TINY).eval()
    video = _video(f=3)
    edited = video.clone()
    edited[:, :, 1] = -edited[:, :, 1]
    with torch.no_grad():
        a, b = vae.encode(video), vae.encode(edited)
    torch.testing.assert_close(a[:, :, [0, 2]], b[:, :, [0, 2]])
    assert (a[:, :, 1] - b[:, :, 1]).abs().max() > 1e-3


def test_save_load_round_trip(tmp_path):
    vae = AutoencoderKL(TINY).eval()
    _randomize(vae, seed=5)
    vae.save(tmp_path / "vae")
    assert sorted(p.name for p in (tmp_path / "vae").iterdir()) == ["config.yaml", "model.safetensors"]
    loaded = AutoencoderKL.load(tmp_path / "vae")
    assert loaded.config == vae.config
    saved = vae.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())  # the weights exactly
    video = _video()
    with torch.no_grad():  # loaded weights are channels-last (for_inference): the same sums in another order
        torch.testing.assert_close(loaded.encode(video), vae.encode(video), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(loaded.decode(vae.encode(video)), vae.decode(vae.encode(video)), atol=1e-4,
                                   rtol=1e-4)


def test_a_pickle_only_folder_names_the_command_that_converts_it(tmp_path, run_named_command, as_pickle_only):
    ref, folder = _diffusers_folder(tmp_path)
    as_pickle_only(folder / "diffusion_pytorch_model.safetensors", ref.state_dict(), "diffusion_pytorch_model.bin")
    with pytest.raises(InputError, match="python -c ") as refused:
        AutoencoderKL.from_diffusers(folder)
    run_named_command(refused.value)  # the command it names: the user's step
    vae = AutoencoderKL.from_diffusers(folder)
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in ref.state_dict().items())


def test_bin_only_folder_is_refused(tmp_path):
    _, folder = _diffusers_folder(tmp_path)
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model.bin")
    with pytest.raises(InputError, match=r"diffusion_pytorch_model\.bin.*safetensors only"):
        AutoencoderKL.from_diffusers(folder)
    (folder / "diffusion_pytorch_model.bin").unlink()
    with pytest.raises(InputError, match="missing diffusion_pytorch_model.safetensors"):
        AutoencoderKL.from_diffusers(folder)
    with pytest.raises(InputError, match="not found"):
        AutoencoderKL.from_diffusers(tmp_path / "nowhere")


def test_a_diffusers_folder_given_for_a_part_says_how_to_convert_it(tmp_path, capsys, monkeypatch):
    """A diffusers VAE folder given as `--vae` (data cache, data vae-norm, eval reconstruction) or as a training
    run's `vae:` was "not a model part folder (missing config.yaml)"; it is named, with the command that converts
    it (the conversion is the user's to run: nothing is converted silently)."""
    import shlex
    import subprocess
    import sys

    from vidiff.cli import main
    from vidiff.pipeline.trained import latent_space_id

    _, folder = _diffusers_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    given = folder.name  # as a user types it, relative
    said = "diffusers_vae: a diffusers VAE folder (config.json), not a vidiff part folder (config.yaml + " \
           "model.safetensors); convert it once and give the new folder: python -c "
    for call in (lambda: AutoencoderKL.load(given), lambda: latent_space_id(given)):  # the part loads, `vae:`
        with pytest.raises(InputError) as caught:
            call()
        assert str(caught.value).startswith(said)
    from vidiff import io

    (tmp_path / "clips").mkdir()
    io.write_video(tmp_path / "clips" / "a.mp4", torch.zeros(8, 32, 32, 3, dtype=torch.uint8).numpy(), fps=8)
    for argv in (["data", "cache", "--videos", "clips", "--vae", given, "--frames", "4", "--size", "32",
                  "--out", "cache"],
                 ["data", "vae-norm", "--vae", given, "--videos", "clips", "--size", "32"],
                 ["eval", "reconstruction", "--vae", given, "--videos", "clips"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "cache").exists() and not (folder / "config.yaml").exists()
    command = shlex.split(err.strip().split("give the new folder: ")[1])
    assert command[:2] == ["python", "-c"]
    subprocess.run([sys.executable, "-c", command[2]], check=True, cwd=tmp_path)  # the command as said works
    converted = AutoencoderKL.load(tmp_path / "diffusers_vae-vidiff")
    video = _video()
    with torch.no_grad():
        torch.testing.assert_close(converted.encode(video), AutoencoderKL.from_diffusers(folder).encode(video))
    (folder / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(InputError, match="a diffusers 'UNet2DConditionModel' folder \\(config.json\\), not a vidiff "
                                         "part folder"):
        AutoencoderKL.load(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))  # a transformers folder: no class named
    with pytest.raises(InputError, match="diffusers_vae: not a model part folder \\(missing config.yaml\\)"):
        AutoencoderKL.load(folder)


@pytest.mark.parametrize("key, value, pattern", [
    ("down_block_types", ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"], "down_block_types"),
    ("act_fn", "gelu", "act_fn"),
    ("latents_mean", [0.0, 0.0, 0.0, 0.0], "latents_mean"),
    ("some_new_option", True, "some_new_option"),
    ("_class_name", "AutoencoderTiny", "_class_name"),
    ("norm_num_groups", 7, "norm_groups"),
])
def test_unsupported_diffusers_config_is_named(tmp_path, key, value, pattern):
    _, folder = _diffusers_folder(tmp_path)
    raw = json.loads((folder / "config.json").read_text())
    raw[key] = value
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(InputError, match=pattern):
        AutoencoderKL.from_diffusers(folder)


def test_mismatched_weights_are_named(tmp_path):
    AutoencoderKL(TINY).save(tmp_path / "vae")
    cfg = (tmp_path / "vae" / "config.yaml").read_text().replace("latent_channels: 4", "latent_channels: 8")
    (tmp_path / "vae" / "config.yaml").write_text(cfg)
    with pytest.raises(InputError, match="shape"):
        AutoencoderKL.load(tmp_path / "vae")


def test_config_validation():
    with pytest.raises(ConfigError, match="frame_chunkk"):
        from_dict(VAEConfig, {"frame_chunkk": 2})
    with pytest.raises(ConfigError, match="norm_groups"):
        VAEConfig(block_out_channels=(32, 48), norm_groups=32)
    with pytest.raises(ConfigError, match="frame_chunk"):
        VAEConfig(frame_chunk=-1)
    assert from_dict(VAEConfig, {"block_out_channels": [32, 64, 64], "norm_groups": 8}).downsample_factor == 4


def test_bad_inputs_are_named():
    vae = AutoencoderKL(TINY)
    with pytest.raises(InputError, match="video"):
        vae.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="multiples of 2"):
        vae.encode(torch.zeros(1, 3, 1, 33, 32))
    with pytest.raises(InputError, match="latents"):
        vae.decode(torch.zeros(1, 3, 1, 8, 8))
    with pytest.raises(InputError, match="frames"):
        vae.encode_frames(torch.zeros(2, 32, 32, 3))  # float, not uint8
    # an empty clip is named, not a ZeroDivisionError deep in a temporal decoder's rearrange
    with pytest.raises(InputError, match="no frames"):
        vae.encode(torch.zeros(1, 3, 0, 32, 32))
    with pytest.raises(InputError, match="no empty axis"):
        vae.decode(torch.zeros(1, TINY.latent_channels, 0, 8, 8))


def test_uint8_edges():
    vae = AutoencoderKL(TINY).eval()
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        latents = vae.encode_frames(frames)
        out = vae.decode_to_frames(latents)
        video = frames.permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        torch.testing.assert_close(latents, vae.encode(video))
        expected = ((vae.decode(latents).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert latents.shape == (1, 4, 3, 16, 16)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 32, 32, 3)
    assert torch.equal(out, expected[0].permute(1, 2, 3, 0)[None])


def test_kl_loss_analytic():
    mean = torch.zeros(2, 4, 3, 5, 5)
    logvar = torch.zeros_like(mean)
    torch.testing.assert_close(kl_loss(mean, logvar), torch.zeros(2))
    mean[1] = 1.0  # KL(N(1,1) || N(0,1)) = 1/2 per element, 4*5*5 elements per frame
    torch.testing.assert_close(kl_loss(mean, logvar), torch.tensor([0.0, 50.0]))
    logvar.fill_(torch.log(torch.tensor(4.0)).item())  # var 4: 0.5 * (m^2 + 4 - 1 - ln 4) per element
    expected = 0.5 * (torch.tensor([0.0, 1.0]) + 3 - torch.log(torch.tensor(4.0))) * 100
    torch.testing.assert_close(kl_loss(mean, logvar), expected)


def test_shapes_config_trains_a_step():
    """The project's Shapes VAE size: 64x64, factor 4, 4 channels; a backward pass reaches every weight."""
    cfg = VAEConfig(block_out_channels=(32, 64, 64), layers_per_block=1, norm_groups=8, frame_chunk=4)
    vae = AutoencoderKL(cfg)
    video = _video(b=1, f=2, size=64)
    recon, mean, logvar = vae(video, generator=torch.Generator().manual_seed(0))
    assert recon.shape == video.shape and mean.shape == (1, 4, 2, 16, 16)
    loss = (recon - video).square().mean() + 1e-6 * kl_loss(mean, logvar).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())
