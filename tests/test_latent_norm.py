import pytest
import torch

from vidiff.training.latent_norm import measure_latent_normalization, normalize_vae_config
from vidiff.vae import AutoencoderKL, VAEConfig


class Clips(torch.utils.data.Dataset):
    def __init__(self, n=6):
        g = torch.Generator().manual_seed(0)
        self.videos = [torch.rand(3, 2, 16, 16, generator=g) * 2 - 1 for _ in range(n)]

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"video": self.videos[i]}


def test_calibrated_latents_have_zero_mean_and_unit_std():
    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                                  mid_attention=False, shift_factor=0.3, scaling_factor=7.0)).eval()
    data = Clips()
    shift, scale = measure_latent_normalization(vae, data, batch_size=4)
    with torch.no_grad():
        z = torch.cat([vae.encode_distribution(d["video"][None])[0] for d in data]).double()
    assert abs(shift - z.mean().item()) < 1e-9
    assert abs(scale - 1 / z.std(unbiased=False).item()) < 1e-6 * scale

    vae.config = normalize_vae_config(vae, data)  # the weights stay, the latent scale changes
    with torch.no_grad():
        latents = torch.cat([vae.encode(d["video"][None]) for d in data]).double()
    assert abs(latents.mean().item()) < 1e-5
    assert abs(latents.std(unbiased=False).item() - 1.0) < 1e-5


@pytest.mark.parametrize("flags, message", [(["--size", "0"], r"--size must be in \[8, 4096\], got 0"),
                                            (["--size", "64", "--frames", "0"], r"--frames must be in \[1, 1024\]"),
                                            (["--size", "64", "--num", "-3"], r"--num must be in \[1, 1000000\]"),
                                            (["--size", "64", "--videos", "/nonexistent"], "--videos /nonexistent: no such folder"),
                                            (["--size", "64", "--vae", __file__], r"--vae \S+\.py: is a file, not a folder")])
def test_vae_norm_arguments_are_checked_before_the_vae_loads(tmp_path, capsys, flags, message):
    import re

    from vidiff.cli import main

    argv = ["data", "vae-norm", "--vae", str(tmp_path), "--videos", str(tmp_path)]
    rc = main(argv + flags)  # tmp_path holds no VAE: loading it would fail differently
    err = capsys.readouterr().err.strip()
    assert rc == 2 and re.search(message, err) and "\n" not in err, err
