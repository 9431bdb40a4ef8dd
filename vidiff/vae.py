"""`vidiff.vae`: the public home of the VAE, which lives in vidiff/models/vae.py (+ vae_blocks.py, vae_diffusers.py)."""
from vidiff.models.vae import DIFFUSERS_SCALING_DEFAULT, AutoencoderKL, VAEConfig, kl_loss
from vidiff.models.vae_diffusers import convert_legacy_diffusers_keys, vae_config_from_diffusers

__all__ = ["AutoencoderKL", "DIFFUSERS_SCALING_DEFAULT", "VAEConfig", "convert_legacy_diffusers_keys", "kl_loss",
           "vae_config_from_diffusers"]
