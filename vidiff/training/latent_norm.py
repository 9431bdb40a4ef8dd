"""Latent normalisation of a trained VAE: shift_factor and scaling_factor so that cached latents have mean 0 and
std 1 over the training data, the scale every diffusion recipe assumes (sigma_data = 1).

latents = (z - shift_factor) * scaling_factor, with shift = mean(z) and scale = 1 / std(z) over the posterior
means of `num_clips` clips (one scalar each, as in Stable Diffusion 3 / FLUX VAEs).
"""
from __future__ import annotations

import dataclasses

import torch


@torch.no_grad()
def measure_latent_normalization(vae, dataset, num_clips: int = 256, batch_size: int = 8) -> tuple[float, float]:
    """Returns (shift, scale) measured on the first `num_clips` items of `dataset` (items have "video"), as epoch 0
    cuts them where the dataset cuts its clips per epoch. A VAE run's export measured at the epoch training had left
    the dataset at (with train.num_workers 0; at 0 with workers): a `--resume auto` with nothing to train exported
    the same weights with another shift / scale, and the parts trained on the first were refused beside it."""
    from torch.utils.data import DataLoader

    n = min(num_clips, len(dataset))
    if n < 2:
        raise ValueError(f"need at least 2 clips to measure latent statistics, the dataset has {len(dataset)}")
    epoch = getattr(dataset, "epoch", None) if hasattr(dataset, "set_epoch") else None
    if epoch is not None:
        dataset.set_epoch(0)
    subset = torch.utils.data.Subset(dataset, range(n))
    total, total_sq, count = 0.0, 0.0, 0
    try:
        for batch in DataLoader(subset, batch_size=batch_size):
            mean, _ = vae.encode_distribution(batch["video"])  # (B, C, F, h, w), unscaled
            mean = mean.double()
            total += mean.sum().item()
            total_sq += mean.square().sum().item()
            count += mean.numel()
    finally:
        if epoch is not None:
            dataset.set_epoch(epoch)
    mu = total / count
    std = max(total_sq / count - mu * mu, 1e-12) ** 0.5
    return mu, 1.0 / std


def normalize_vae_config(vae, dataset, num_clips: int = 256):
    """The VAE's config with shift_factor / scaling_factor set from `dataset` (the weights are unchanged)."""
    shift, scale = measure_latent_normalization(vae, dataset, num_clips)
    return dataclasses.replace(vae.config, shift_factor=float(shift), scaling_factor=float(scale))
