"""The `vae` training stage: a KL autoencoder on video clips (per-frame encoder, optional temporal decoder),
with reconstruction, edge, temporal and KL losses; exported with its latent shift / scale measured on the clips
(or kept from the start part when the encoder side is frozen)."""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from vidiff.parts import save_part
from vidiff.random import SampleDraws
from vidiff.training.finetune import freeze_parameters, load_start_part
from vidiff.training.stages import _strip, video_dataset


class VAELoss(nn.Module):
    """Frames folded into the batch by the VAE itself: reconstruction L1/L2 (+ edge L1, + temporal L1 on the
    change of the error from frame to frame) + kl_weight * KL."""

    def __init__(self, vae, loss_cfg):
        super().__init__()
        self.vae, self.w = vae, loss_cfg

    def forward(self, video: torch.Tensor, noise: torch.Tensor, latent_noise: torch.Tensor | None = None
                ) -> torch.Tensor:
        from vidiff.vae import kl_loss

        c = self.vae.config
        mean, logvar = self.vae.encode_distribution(video)  # (B, C, F, h, w) each, unscaled
        z = mean + (0.5 * logvar).exp() * noise if self.w.sample_posterior else mean  # draw: caller's noise
        latents = (z - c.shift_factor) * c.scaling_factor
        if latent_noise is not None:  # in scaled units, like a sampler's output
            latents = latents + latent_noise
        recon = self.vae.decode(latents).float()  # (B, 3, F, H, W)
        err = recon - video.float()
        loss = self.w.l1_weight * err.abs().flatten(1).mean(1)  # (B,)
        if self.w.l2_weight:
            loss = loss + self.w.l2_weight * err.square().flatten(1).mean(1)
        if self.w.edge_weight:  # L1 on horizontal and vertical finite differences
            dx = (err[..., :, 1:] - err[..., :, :-1]).abs().flatten(1).mean(1)
            dy = (err[..., 1:, :] - err[..., :-1, :]).abs().flatten(1).mean(1)
            loss = loss + self.w.edge_weight * (dx + dy)
        if self.w.temporal_weight and err.shape[2] > 1:  # flicker: the error changing from frame to frame
            dt = (err[:, :, 1:] - err[:, :, :-1]).abs().flatten(1).mean(1)
            loss = loss + self.w.temporal_weight * dt
        return loss + self.w.kl_weight * kl_loss(mean.float(), logvar.float())


class VAEStage:
    def __init__(self, cfg, dataset=None):
        from vidiff.vae import AutoencoderKL, VAEConfig

        self.model_cfg = cfg.model_config()
        self.loss_cfg = cfg.loss
        vae = AutoencoderKL(self.model_cfg)
        if cfg.init_weights is not None:
            start, _ = load_start_part(vae, cfg.init_weights, VAEConfig)
            self.model_cfg = vae.config = dataclasses.replace(self.model_cfg, shift_factor=start.shift_factor,
                                                              scaling_factor=start.scaling_factor)
        freeze_parameters(vae, cfg.train.freeze)
        # With the encoder side frozen the latent space must not move under the diffusion models trained in it:
        # the start part's latent normalisation is kept rather than measured again on these (differently cut) clips.
        encoder_side = [*vae.encoder.parameters(), *(vae.quant_conv.parameters() if vae.quant_conv else [])]
        self.keep_normalization = cfg.init_weights is not None and not any(p.requires_grad for p in encoder_side)
        self.model = VAELoss(vae, cfg.loss)
        self.dataset = video_dataset(cfg) if dataset is None else dataset
        self.preview = None

    def to(self, device):
        return self

    def loss(self, model, batch, draws: SampleDraws, step: int) -> torch.Tensor:
        video = batch["video"]  # (B, 3, F, H, W) in [-1, 1]
        b, _, f, h, w = video.shape
        s, c = self.model_cfg.downsample_factor, self.model_cfg.latent_channels
        noise = draws.randn((c, f, h // s, w // s), "posterior", device=video.device)  # (B, C, F, h, w)
        latent_noise = None
        if self.loss_cfg.latent_noise_max:
            std = draws.rand((1, 1, 1, 1), "latent_noise_std", device=video.device) * self.loss_cfg.latent_noise_max
            latent_noise = std * draws.randn((c, f, h // s, w // s), "latent_noise", device=video.device)
        return model(video, noise, latent_noise)

    def export(self, folder, state: dict) -> None:
        """Saves the EMA weights with latent shift / scale measured on the training clips (latent_norm.py), or
        the start part's when the encoder was frozen."""
        from vidiff.training.latent_norm import normalize_vae_config
        from vidiff.vae import AutoencoderKL

        weights = _strip(state, "vae.")
        if self.keep_normalization:
            save_part(folder, self.model_cfg, weights)
            return
        vae = AutoencoderKL(self.model_cfg)
        vae.load_state_dict(weights)
        save_part(folder, normalize_vae_config(vae.eval(), self.dataset), weights)
