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


class EpochClips(Clips):
    """Cuts each clip per epoch, as VideoFolderDataset draws a window of each video from (seed, epoch, index)."""

    epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return {"video": self.videos[i] * (1 + self.epoch) / 4}


def test_the_latent_scale_is_measured_at_epoch_0_whatever_epoch_training_left(tmp_path):
    """A VAE run's export measured the clips at the epoch training had left its dataset at (train.num_workers 0): a
    `--resume auto` with nothing left to train exported the same weights with another shift / scale, and the parts
    trained on the first export were refused beside it ("trained in the latent space of another VAE")."""
    torch.manual_seed(0)
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                                  mid_attention=False)).eval()
    data = EpochClips()
    first, clip = measure_latent_normalization(vae, data, batch_size=4), data[0]["video"]
    data.set_epoch(3)  # where the training loop left it
    assert not torch.equal(data[0]["video"], clip)  # epoch 3 cuts other clips
    assert measure_latent_normalization(vae, data, batch_size=4) == first
    assert data.epoch == 3  # the dataset is left as it was found


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


def test_vae_norm_refuses_a_vae_folder_it_cannot_rewrite_before_measuring(tmp_path, capsys, monkeypatch):
    """A VAE part folder that cannot be written (read-only, another user's) was refused only when its new config
    was saved, after the VAE had loaded and encoded every clip (12.7 s for 12 Shapes clips; --num 256 by
    default)."""
    import vidiff.output_safety
    from vidiff.cli import main

    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    (tmp_path / "clips").mkdir()
    real = vidiff.output_safety._cannot_create_in
    monkeypatch.setattr(vidiff.output_safety, "_cannot_create_in",
                        lambda folder: "Operation not permitted" if folder.name == "vae" else real(folder))

    def no_load(*args, **kwargs):
        raise AssertionError("the VAE loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    rc = main(["data", "vae-norm", "--vae", str(tmp_path / "vae"), "--videos", str(tmp_path / "clips"), "--size",
               "16"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--vae" in err and "cannot write in folder" in err and "Operation not permitted" in err, err
    assert "\n" not in err
