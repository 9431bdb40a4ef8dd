"""Diffusion core: noise schedules, the parameterization wrapper, the score, samplers (ODE, SDE, predictor-corrector)
and guidance, all in the VE form x = x0 + sigma * noise."""
from vidiff.diffusion.denoiser import Denoiser
from vidiff.diffusion.guidance import GuidedDenoiser
from vidiff.diffusion.pc import langevin_correct
from vidiff.diffusion.samplers import SAMPLERS, sample
from vidiff.diffusion.schedule import (
    ZERO_SNR_SIGMA_MAX,
    NoiseScheduleConfig,
    sample_training_sigmas,
    sampling_sigmas,
    schedule_sigmas,
)
from vidiff.diffusion.score import score

__all__ = [
    "Denoiser",
    "GuidedDenoiser",
    "NoiseScheduleConfig",
    "SAMPLERS",
    "ZERO_SNR_SIGMA_MAX",
    "langevin_correct",
    "sample",
    "sample_training_sigmas",
    "sampling_sigmas",
    "schedule_sigmas",
    "score",
]
