"""Diffusion core: noise schedules, the parameterization wrapper, samplers and guidance (VE form x = x0 + sigma * noise)."""
from vidiff.diffusion.denoiser import Denoiser
from vidiff.diffusion.guidance import GuidedDenoiser
from vidiff.diffusion.samplers import SAMPLERS, sample
from vidiff.diffusion.schedule import (
    ZERO_SNR_SIGMA_MAX,
    NoiseScheduleConfig,
    batch_randn,
    sample_training_sigmas,
    sampling_sigmas,
    schedule_sigmas,
)

__all__ = [
    "Denoiser",
    "GuidedDenoiser",
    "NoiseScheduleConfig",
    "SAMPLERS",
    "ZERO_SNR_SIGMA_MAX",
    "batch_randn",
    "sample",
    "sample_training_sigmas",
    "sampling_sigmas",
    "schedule_sigmas",
]
