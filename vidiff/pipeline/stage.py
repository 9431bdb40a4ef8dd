"""One diffusion stage of the pipeline (keyframes or interpolation): per-sample noise, noise augmentation of the
known frames, classifier-free guidance, and the sampler call.

Reproducibility: every random draw of a batch row comes from that row's own torch.Generator (vidiff/random.py),
seeded from the user's seed and a key naming the stage and window, so a sample never depends on the batch size
or on which other samples share its batch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from vidiff.diffusion import Denoiser, GuidedDenoiser, sample, sampling_sigmas
from vidiff.diffusion.anchor import anchor_of
from vidiff.diffusion.cond import Cond, known_volume
from vidiff.errors import InputError
from vidiff.pipeline.config import StageConfig
from vidiff.pipeline.request import check_zero_text_guidance
from vidiff.random import per_row_randn


class RowwiseNet(torch.nn.Module):
    """Runs the wrapped network one batch row at a time.

    CPU kernels may pick a different reduction order for a different batch size, which changes the last bits of
    a row's output; row by row, sample i is bit-identical whatever the batch (and the guidance passes) around it.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.config = net.config

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: Cond) -> torch.Tensor:
        c_noise = torch.as_tensor(c_noise, device=x.device).expand(x.shape[0])  # (B,)
        outs = [self.net(x[i : i + 1], c_noise[i : i + 1], cond.rows(slice(i, i + 1))) for i in range(x.shape[0])]
        return torch.cat(outs)  # (B,C,F,h,w)


class InNetDtype(torch.nn.Module):
    """Calls the network in its own dtype (bf16 / fp16 weights) and returns fp32, so that a sampler's state never
    accumulates in half precision. With fp32 weights it is the identity."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: Cond) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        if dtype == x.dtype:
            return self.net(x, c_noise, cond)
        return self.net(x.to(dtype), c_noise, None if cond is None else cond.to(dtype=dtype)).to(x.dtype)


@dataclass
class StageSettings:
    """What the caller may change per call (the rest comes from the stage's StageConfig)."""

    steps: int
    sampler: str
    text_scale: float
    image_scale: float
    rescale: float = 0.0  # guidance rescale phi
    interval: tuple[float, ...] | None = None  # guidance only for sigma in [lo, hi]
    churn: float = 0.0  # heun: EDM S_churn
    pc_steps: int = 1  # pc: corrector steps
    pc_snr: float = 0.16  # pc: corrector signal-to-noise ratio
    strength: float = 1.0  # SDEdit: the share of the sampling grid run from a noised input (1 = from pure noise)

    def sampler_options(self) -> dict:
        """The chosen sampler's own options (only those it takes; defaults leave deterministic samplers exact)."""
        if self.churn and self.sampler != "heun":
            raise InputError(f"churn: applies to the heun sampler (EDM stochastic sampling), not {self.sampler!r}")
        if self.sampler == "heun" and self.churn:
            return {"s_churn": self.churn}
        if self.sampler == "pc":
            return {"corrector_steps": self.pc_steps, "snr": self.pc_snr}
        return {}


class DiffusionStage:
    """A UNet3D wrapped by its parameterization, sampled with the settings of its StageConfig."""

    def __init__(self, net: torch.nn.Module, config: StageConfig, rowwise: bool = True, where: str = "stage"):
        self.net = net
        self.config = config
        self.schedule_sigmas = None  # (T,) sigmas of the discrete schedule, for the non-karras spacings
        if config.spacing != "karras":
            from vidiff.config import from_dict
            from vidiff.diffusion import NoiseScheduleConfig, schedule_sigmas

            self.schedule_sigmas = schedule_sigmas(from_dict(NoiseScheduleConfig, config.schedule, f"{where}.schedule"))
        wrapped = InNetDtype(RowwiseNet(net) if rowwise else net)  # rowwise: samples independent of the batch
        self.denoiser = Denoiser(wrapped, parameterization=config.parameterization, sigma_data=config.sigma_data,
                                 anchor=config.anchor)
        self.takes_known_frames = bool(getattr(net.config, "conditioning", False))

    def compile(self) -> None:
        """Compiles the network's forward with torch.compile (weights and state dict are unchanged)."""
        self.net.forward = torch.compile(self.net.forward)

    def settings(self, steps=None, sampler=None, text_scale=None, image_scale=None, rescale=None, churn=None,
                 pc_steps=None, pc_snr=None) -> StageSettings:
        """The stage's pipeline.yaml settings with the caller's overrides (None = keep)."""
        c = self.config
        pick = lambda override, default: default if override is None else override  # noqa: E731
        return StageSettings(
            steps=pick(steps, c.steps), sampler=pick(sampler, c.sampler), text_scale=pick(text_scale, c.guidance_scale),
            image_scale=pick(image_scale, c.image_guidance_scale), rescale=pick(rescale, c.guidance_rescale),
            interval=c.guidance_interval, churn=pick(churn, c.churn), pc_steps=pick(pc_steps, c.pc_steps),
            pc_snr=pick(pc_snr, c.pc_snr),
        )

    def sigmas(self, steps: int, strength: float = 1.0) -> torch.Tensor:
        """The sampling grid of `steps` steps. With strength < 1 (SDEdit, Meng et al. 2022) a grid of
        round(strength * steps) steps from the level the input is noised to: as in Stable Diffusion's img2img,
        strength is the fraction of the part's discrete VP schedule (by default SD's scaled_linear, 1000 steps):
        sigma at timestep strength * T (0.6 -> 2.28). Karras spacing from there; other spacings take that grid's
        last steps."""
        c = self.config
        if strength < 1:
            n = max(1, round(strength * steps))
            if c.spacing == "karras":
                start = float(self._vp_sigmas()[max(0, round(strength * len(self._vp_sigmas())) - 1)])
                start = min(max(start, 1.0001 * c.sigma_min), c.sigma_max)
                return sampling_sigmas(n, "karras", c.sigma_min, start, c.rho)
            full = sampling_sigmas(steps, c.spacing, c.sigma_min, c.sigma_max, c.rho, schedule_sigmas=self.schedule_sigmas)
            return full[steps - n:]
        return sampling_sigmas(steps, c.spacing, c.sigma_min, c.sigma_max, c.rho, schedule_sigmas=self.schedule_sigmas)

    def _vp_sigmas(self) -> torch.Tensor:
        """(T,) sigmas of the part's discrete VP schedule (pipeline.yaml `schedule`, SD's by default)."""
        if self.schedule_sigmas is not None:
            return self.schedule_sigmas
        from vidiff.config import from_dict
        from vidiff.diffusion import NoiseScheduleConfig, schedule_sigmas

        return schedule_sigmas(from_dict(NoiseScheduleConfig, self.config.schedule, "schedule"))

    def run(self, shape: tuple[int, int, int, int], gens: list[torch.Generator], settings: StageSettings,
            cond: Cond, null_text: tuple[torch.Tensor, torch.Tensor], callback=None,
            negative_text: Cond | None = None, init: torch.Tensor | None = None,
            rescale_given: bool = False) -> torch.Tensor:
        """Samples latents (B, *shape) = (B,C,F,h,w) under `cond` (text, frame stride, and the known latents
        (B,C,F,h,w) with known_mask (B,F) per frame or (B,F,h,w) per latent pixel, which come back exactly as
        given). null_text: the (1,L,D) / (1,L)
        encoding guidance drops the text to; negative_text: per-row (B,L,D) negative prompts that take its place;
        init: (B,C,F,h,w) latents that SDEdit starts from, noised to the first level of the strength-cut grid;
        rescale_given: settings.rescale is the caller's, not the part's pipeline.yaml (refused when unused).

        Row i draws, in order, its start noise and its noise-augmentation noise from gens[i], then the sampler's
        own draws (stochastic samplers) from the same generator.
        """
        param = next(self.net.parameters())
        # the sampler state, sigmas, known latents and guidance arithmetic stay fp32 whatever the network's dtype;
        # InNetDtype casts at the network's boundary
        device, dtype = param.device, torch.float32
        batch = len(gens)
        strength = settings.strength if init is not None else 1.0
        sigmas = self.sigmas(settings.steps, strength).to(device)  # (steps + 1,), or its SDEdit tail
        x = per_row_randn(shape, gens).to(device, dtype) * sigmas[0]  # (B,C,F,h,w)
        if strength < 1:  # SDEdit: the input at the grid's first noise level
            x = x + init.to(device, dtype)
        aug = per_row_randn(shape, gens).to(device, dtype)  # (B,C,F,h,w) drawn even when unused: fixed draw order
        if cond.has_known and not self.takes_known_frames:
            raise ValueError("this diffusion part was built without known-frame conditioning (conditioning: false)")
        known, known_mask = cond.known, cond.known_mask
        sampling = dataclasses.replace(cond, known=None, known_mask=None).to(device, dtype)
        if self.takes_known_frames:
            cond_sigma = self.config.cond_sigma
            if cond.has_known:
                known = known.to(device, dtype)
                mask = known_mask.to(device, dtype)  # (B,F) or (B,F,h,w)
                aug_known = (known + cond_sigma * aug) * known_volume(mask, (batch, *shape))  # as in training
            else:
                mask = torch.zeros(batch, shape[1], device=device, dtype=dtype)  # (B,F)
                aug_known = torch.zeros((batch, *shape), device=device, dtype=dtype)
            # as in training: the augmentation level where something is known, 0 where nothing is
            level = (mask.flatten(1).amax(dim=1) > 0).to(torch.float32) * float(cond_sigma)  # (B,)
            sampling = dataclasses.replace(sampling, known=aug_known, known_mask=mask, cond_sigma=level)
        if strength == 1 and self.config.anchor != "none":
            # an anchored part learned x0 - anchor: its prior at the top of the grid is the anchor plus noise
            anchor = anchor_of(sampling, x, self.config.anchor)
            x = x if anchor is None else x + anchor
        negative = {}
        if negative_text is not None:
            negative = dict(negative_context=negative_text.context.to(device, dtype),
                            negative_context_mask=negative_text.context_mask)
        guided = GuidedDenoiser(self.denoiser, settings.text_scale, settings.image_scale,
                                null_text[0].to(device, dtype), null_text[1], rescale=settings.rescale,
                                interval=settings.interval, **negative)
        if "full" not in guided.weights(sampling.has_known) and settings.interval is None:  # the prompt unused
            check_zero_text_guidance(bool(negative))
        if list(guided.weights(sampling.has_known)) == ["full"]:  # the conditional pass alone: no guidance
            # what only changes guidance was taken, unused, and recorded as applied
            if negative:
                raise InputError(f"negative_prompt: takes the place of the empty prompt in guidance, and this stage "
                                 f"runs without it (guidance_scale {settings.text_scale:g} = off, and no image "
                                 "guidance on known frames); give a guidance_scale other than 1 or no negative prompt")
            if rescale_given and settings.rescale > 0:
                raise InputError(f"guidance_rescale: rescales the guided estimate, and this stage runs without "
                                 f"guidance (guidance_scale {settings.text_scale:g} = off, and no image guidance on "
                                 "known frames); give a guidance_scale other than 1 or no guidance_rescale")
        out = sample(guided, x, sigmas, method=settings.sampler, cond=sampling, generator=gens, callback=callback,
                     **settings.sampler_options())
        if cond.has_known:  # known frames are returned exactly as given
            out = torch.where(known_volume(known_mask.to(device), tuple(out.shape)) > 0, known, out)
        return out
