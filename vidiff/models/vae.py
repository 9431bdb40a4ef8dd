"""The per-frame KL autoencoder: video <-> latents, frame-sliced, loading diffusers / Stable Diffusion weights.

The network is the SD / diffusers `AutoencoderKL` (vidiff/vae_blocks.py) applied to every frame independently:
frames are folded into the batch (`'b c f h w -> (b f) c h w'`) and run `frame_chunk` images at a time, so memory
stays bounded for long clips and the result equals a single pass. With `temporal_decoder` the decoder also mixes
neighbouring frames; it then runs windows of `frame_chunk` frames plus the frames each side that they depend on,
which again equals a single pass (a clip no longer than one such window runs as one pass). Latents handed to the
rest of vidiff are scaled, `(z - shift_factor) * scaling_factor`, both values from the config (STYLE.md item 9).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from einops import rearrange
from torch import nn

from vidiff.config import ConfigError
from vidiff.limits import MAX_LAYERS_PER_LEVEL, MAX_LEVELS, MAX_WIDTH
from vidiff.errors import InputError
from vidiff.models.vae_blocks import Decoder, Encoder

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0  # clamp on the encoder's log-variance (as in LDM / diffusers)
DIFFUSERS_SCALING_DEFAULT = 0.18215  # diffusers' default when a config.json omits scaling_factor (SD 1.x VAE)
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
# Working memory of one decode pass, in floats per output pixel and frame: A x block_out_channels[0] (the finest
# level's width) + B x block_out_channels[1] (the width upsampled into it), by (temporal decoder, channels-last
# weights). Fitted to the peak RSS of fp32 decodes of 8 frames of 256x256 in one pass for widths 32/64/64,
# 64/64/128/128 and 48/96/128 (tools/bench_vae_decode.py, AVX2 EPYC, 2 threads; docs/benchmarks.md), every fit
# within 4% of its measurements, then raised 15%.
DECODE_FLOATS = {(False, True): (5.0, 1.25), (True, True): (2.65, 3.3),
                 (False, False): (5.5, 1.3), (True, False): (1.6, 5.9)}


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3  # image channels read by the encoder (RGB)
    out_channels: int = 3  # image channels written by the decoder
    latent_channels: int = 4  # channels C of the latents (B,C,F,h,w)
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)  # width per level; spatial factor 2**(levels-1)
    layers_per_block: int = 2  # ResNet blocks per encoder level (the decoder uses one more)
    norm_groups: int = 32  # GroupNorm groups; must divide every width
    mid_attention: bool = True  # self-attention in the encoder and decoder mid blocks
    use_quant_conv: bool = True  # 1x1 conv on the encoder's moments (False for some VAEs, e.g. diffusers Flux-style)
    use_post_quant_conv: bool = True  # 1x1 conv on z before the decoder
    scaling_factor: float = 1.0  # latents = (z - shift) * scale; set to ~1/std(z) of the data after training
    shift_factor: float = 0.0  # see scaling_factor
    # images per encoder / decoder pass (frames folded into the batch; with a temporal decoder, frames per decoder
    # window, plus the margin they depend on); 0 = all at once
    frame_chunk: int = 8
    # temporal layers in the decoder (Video LDM): frames of a clip decode together, with less flicker; the
    # encoder, and so the latent space, is the per-frame one
    temporal_decoder: bool = False
    sample_size: int = 64  # image size the VAE was trained at, in pixels (informational)

    def __post_init__(self):
        if not self.block_out_channels or any(not 1 <= w <= MAX_WIDTH for w in self.block_out_channels):
            raise ConfigError(f"block_out_channels: expected widths in 1..{MAX_WIDTH}, got {self.block_out_channels}")
        if len(self.block_out_channels) > MAX_LEVELS:
            raise ConfigError(f"block_out_channels: at most {MAX_LEVELS} levels, got {len(self.block_out_channels)}")
        for w in self.block_out_channels:
            if self.norm_groups <= 0 or w % self.norm_groups:
                raise ConfigError(f"norm_groups: {self.norm_groups} does not divide block_out_channels width {w}")
        for name, hi in (("in_channels", MAX_WIDTH), ("out_channels", MAX_WIDTH), ("latent_channels", MAX_WIDTH),
                         ("layers_per_block", MAX_LAYERS_PER_LEVEL)):
            if not 1 <= getattr(self, name) <= hi:  # a huge size allocated tens of GiB before any weights were read
                raise ConfigError(f"{name}: must be in 1..{hi}, got {getattr(self, name)}")
        if self.frame_chunk < 0:
            raise ConfigError(f"frame_chunk: must be >= 0 (0 = no slicing), got {self.frame_chunk}")
        if not 1e-6 <= abs(self.scaling_factor) <= 1e6:  # 1e-30 overflowed the decoder: every frame black, exit 0
            raise ConfigError(f"scaling_factor: must be within 1e-6 and 1e6 in size, got {self.scaling_factor}")
        if not abs(self.shift_factor) <= 1e6:
            raise ConfigError(f"shift_factor: must be within -1e6 and 1e6, got {self.shift_factor}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample: summed over (C,h,w) of each frame, averaged over frames.

    mean, logvar: (B,C,F,h,w) unscaled, from `encode_distribution`. Returns (B,). Averaging over frames keeps the
    weight of the term independent of clip length (a single image is F == 1).
    """
    if mean.shape != logvar.shape or mean.ndim != 5:
        raise InputError(f"kl_loss: mean and logvar must both be (B,C,F,h,w), got {tuple(mean.shape)}, "
                         f"{tuple(logvar.shape)}")
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)  # (B,C,F,h,w)
    return kl.sum(dim=(1, 3, 4)).mean(dim=1)


def _in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int, progress: bool,
               desc: str) -> torch.Tensor:
    """fn over x split along dim 0 into pieces of `chunk` (0 = one piece), concatenated back."""
    if chunk <= 0 or x.shape[0] <= chunk:
        return fn(x)
    from tqdm.auto import tqdm

    pieces = x.split(chunk, dim=0)
    return torch.cat([fn(p) for p in tqdm(pieces, desc=desc, disable=not progress, leave=False)], dim=0)


class AutoencoderKL(nn.Module):
    """Per-frame KL autoencoder. `encode(video) -> latents` (scaled), `decode(latents) -> video`."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config = config or VAEConfig()
        widths = list(config.block_out_channels)
        self.encoder = Encoder(config.in_channels, config.latent_channels, widths, config.layers_per_block,
                               config.norm_groups, config.mid_attention)
        self.decoder = Decoder(config.latent_channels, config.out_channels, widths, config.layers_per_block,
                               config.norm_groups, config.mid_attention, temporal=config.temporal_decoder)
        c = config.latent_channels
        self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1) if config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(c, c, 1) if config.use_post_quant_conv else None

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # ---- per-image passes ---------------------------------------------------------------------------------
    def _moments(self, images: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(images)  # (N, 2C, h, w)
        return moments if self.quant_conv is None else self.quant_conv(moments)

    def _decode_images(self, z: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z, num_frames)  # (N, out, H, W)

    # ---- video API ----------------------------------------------------------------------------------------
    def encode_distribution(self, video: torch.Tensor, *, frame_chunk: int | None = None,
                            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B,3,F,H,W) in [-1,1] -> (mean, logvar), each (B,C,F,h,w), unscaled (for training)."""
        self._check_video(video)
        b = video.shape[0]
        images = rearrange(video.to(self._dtype), "b c f h w -> (b f) c h w")
        chunk = self.config.frame_chunk if frame_chunk is None else frame_chunk
        moments = _in_chunks(self._moments, images, chunk, progress, "VAE encode")  # (B*F, 2C, h, w)
        moments = rearrange(moments, "(b f) c h w -> b c f h w", b=b)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, video: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None,
               frame_chunk: int | None = None, progress: bool = False) -> torch.Tensor:
        """video (B,3,F,H,W) in [-1,1] -> latents (B,C,F,h,w), scaled `(z - shift) * scale`.

        z is the posterior mean, or a draw from the posterior when `sample` (noise drawn once for the whole
        clip from `generator`, so slicing does not change it).
        """
        mean, logvar = self.encode_distribution(video, frame_chunk=frame_chunk, progress=progress)
        z = self._sample(mean, logvar, generator) if sample else mean
        return (z - self.config.shift_factor) * self.config.scaling_factor

    def decode(self, latents: torch.Tensor, *, frame_chunk: int | None = None,
               progress: bool = False) -> torch.Tensor:
        """latents (B,C,F,h,w), scaled -> video (B,3,F,H,W), roughly in [-1,1] (not clamped)."""
        if latents.ndim != 5 or latents.shape[1] != self.config.latent_channels or 0 in latents.shape:
            raise InputError(f"latents: expected (B,{self.config.latent_channels},F,h,w) with no empty axis, "
                             f"got {tuple(latents.shape)}")
        z = latents.to(self._dtype) / self.config.scaling_factor + self.config.shift_factor
        return self._decode_unscaled(z, frame_chunk, progress)

    def forward(self, video: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: video -> (reconstruction (B,3,F,H,W), mean, logvar); see `kl_loss`."""
        mean, logvar = self.encode_distribution(video)
        z = self._sample(mean, logvar, generator) if sample else mean
        return self._decode_unscaled(z, None, False), mean, logvar

    def _decode_unscaled(self, z: torch.Tensor, frame_chunk: int | None, progress: bool) -> torch.Tensor:
        b = z.shape[0]
        chunk = self.config.frame_chunk if frame_chunk is None else frame_chunk
        if self.decoder.temporal is not None:
            return self._decode_clip_windows(z, chunk, progress)
        z = rearrange(z, "b c f h w -> (b f) c h w")
        images = _in_chunks(self._decode_images, z, chunk, progress, "VAE decode")  # (B*F, 3, H, W)
        return rearrange(images, "(b f) c h w -> b c f h w", b=b)

    def decode_windows(self, num_frames: int, frame_chunk: int | None = None) -> list[tuple[int, int, int]]:
        """How `decode` splits a clip of `num_frames` frames: (lo, hi, start) per pass, frames [lo, hi) go through
        the decoder together and it keeps the frames from `start` up to the next pass's start (the clip's end for
        the last pass). A temporal decoder's pass carries
        `temporal_radius` frames of context each side; a clip that no pass could leave any frame of runs as one."""
        chunk = self.config.frame_chunk if frame_chunk is None else frame_chunk
        r = self.decoder.temporal_radius
        if chunk <= 0 or num_frames <= chunk + 2 * r:
            return [(0, num_frames, 0)]
        return [(max(0, s - r), min(num_frames, s + chunk + r), s) for s in range(0, num_frames, chunk)]

    def decode_bytes(self, num_frames: int, height: int, width: int) -> int:
        """Estimated working memory (bytes) of one decoder pass over `num_frames` frames of height x width pixels
        (DECODE_FLOATS), for choosing passes and tiles that fit a memory budget."""
        widths = self.config.block_out_channels
        finest, upsampled = widths[0], widths[1] if len(widths) > 1 else widths[0]
        channels_last = self.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        a, b = DECODE_FLOATS[self.decoder.temporal is not None, channels_last]
        return int((a * finest + b * upsampled) * self._dtype.itemsize * num_frames * height * width)

    def _decode_clip_windows(self, z: torch.Tensor, chunk: int, progress: bool) -> torch.Tensor:
        """Temporal decoder: the passes of `decode_windows`, so the result equals one pass over the whole clip."""
        from tqdm.auto import tqdm

        b, f = z.shape[0], z.shape[2]
        windows = self.decode_windows(f, chunk)
        stops = [start for _, _, start in windows[1:]] + [f]  # a pass keeps its frames up to the next pass's start
        pieces = []
        for (lo, hi, start), stop in tqdm(list(zip(windows, stops)), desc="VAE decode",
                                          disable=not progress or len(windows) == 1, leave=False):
            images = self._decode_images(rearrange(z[:, :, lo:hi], "b c f h w -> (b f) c h w"), hi - lo)
            video = rearrange(images, "(b f) c h w -> b c f h w", b=b)
            pieces.append(video[:, :, start - lo : stop - lo])
        return torch.cat(pieces, dim=2)  # (B, 3, F, H, W)

    @staticmethod
    def _sample(mean, logvar, generator):
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + (0.5 * logvar).exp() * noise

    def _check_video(self, video: torch.Tensor) -> None:
        c, s = self.config.in_channels, self.downsample_factor
        if not torch.is_tensor(video) or video.ndim != 5 or video.shape[1] != c:
            shape = tuple(video.shape) if torch.is_tensor(video) else type(video).__name__
            raise InputError(f"video: expected a float tensor (B,{c},F,H,W), got {shape}")
        if not video.is_floating_point():
            raise InputError(f"video: expected floats in [-1, 1], got dtype {video.dtype} (see encode_frames)")
        if video.shape[2] == 0 or video.shape[0] == 0:
            raise InputError(f"video: no frames to encode, got {tuple(video.shape)}")
        if video.shape[-1] % s or video.shape[-2] % s:
            raise InputError(f"video: height and width must be multiples of {s}, got {tuple(video.shape[-2:])}")

    # ---- uint8 edges --------------------------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor, **kwargs) -> torch.Tensor:
        """frames uint8 (F,H,W,3) -> latents (1,C,F,h,w); keyword arguments go to `encode`."""
        if not torch.is_tensor(frames) or frames.dtype != torch.uint8 or frames.ndim != 4:
            got = f"{frames.dtype} {tuple(frames.shape)}" if torch.is_tensor(frames) else type(frames).__name__
            raise InputError(f"frames: expected a uint8 tensor (F,H,W,3), got {got}")
        device = next(self.parameters()).device
        video = rearrange(frames.to(device), "f h w c -> 1 c f h w").to(self._dtype) / 127.5 - 1.0
        return self.encode(video, **kwargs)

    def decode_to_frames(self, latents: torch.Tensor, **kwargs) -> torch.Tensor:
        """latents (B,C,F,h,w) -> frames uint8 (B,F,H,W,3) on the CPU; keyword arguments go to `decode`."""
        with torch.no_grad():  # uint8 output: no gradient can flow, so keep no graph
            video = self.decode(latents, **kwargs).float()
        pixels = ((video.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        return rearrange(pixels, "b c f h w -> b f h w c").cpu()

    # ---- parts --------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        from vidiff.parts import save_part

        return save_part(folder, self.config, self.state_dict())

    @classmethod
    def load(cls, folder: str | Path, *, device=None, dtype: torch.dtype | None = None) -> AutoencoderKL:
        from vidiff.parts import load_part_config, load_part_weights
        from vidiff.pipeline.placement import check_placement

        check_placement(device, dtype)  # "bf16" or "mps" failed inside torch once the weights had loaded
        config = load_part_config(folder, VAEConfig)
        model = cls(config)
        load_state(model, load_part_weights(folder), str(folder))
        return for_inference(model, device, dtype)

    @classmethod
    def from_diffusers(cls, folder: str | Path, *, device=None, dtype: torch.dtype | None = None,
                       frame_chunk: int | None = None) -> AutoencoderKL:
        """Loads a diffusers-format AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors)."""
        from vidiff.models.vae_diffusers import load_diffusers_vae

        return for_inference(load_diffusers_vae(cls, folder, frame_chunk), device, dtype)


def for_inference(model: AutoencoderKL, device=None, dtype: torch.dtype | None = None) -> AutoencoderKL:
    """A loaded VAE in eval mode with its convolution weights channels-last, so that the convolutions run in that
    layout: on the CPU oneDNN then skips its reorders, and a decode of 9 frames of 240x320 took 0.70x the time, an
    encode 0.76x (AVX2 EPYC, 2 threads; 0.73x for 64x64 frames; docs/benchmarks.md). Training keeps the default
    layout, which was as fast for its 64x64 crops with the backward pass."""
    return model.to(device=device, dtype=dtype).to(memory_format=torch.channels_last).eval()


def load_state(model: nn.Module, state: dict, where: str) -> None:
    """Loads `state` into `model` strictly, naming missing / unexpected / misshapen tensors (InputError)."""
    from vidiff.parts import weights_mismatch

    why = weights_mismatch(model.state_dict(), state)
    if why:
        raise InputError(f"{where}: weights do not match the config ({why})")
    model.load_state_dict(state, strict=True)
