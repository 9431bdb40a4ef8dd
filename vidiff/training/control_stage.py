"""Stage `control`: trains a structure-control adapter (vidiff/models/control_adapter.py) for a frozen U-Net part.

Only the adapter learns; the U-Net (`base`, a keyframe or interpolation part folder) and the VAE (`vae`) stay as
they are, so the pipeline they come from is unchanged without control. Every sample is rendered on the fly
(vidiff/data/control_maps.py) from its own SampleDraws, so a resumed run replays exactly:
- a Shapes object (colour, shape, size, background) along a random path (axis-aligned, any straight direction,
  diagonal, curved, stop-and-go) over `control.clip_frames` frames;
- the model frames, like the base part's training: keyframes: K frames at stride S (conditioning.num_keyframes /
  keyframe_stride), nothing known or (control.first_known_prob) the first one known, frame_stride S;
  interpolation: a window of gap + 1 frames (one gap per step, conditioning.min_gap..max_gap), both ends known,
  frame_stride 1;
- the maps of those frames, silhouette or blob (control.map_kinds, uniformly per sample);
- the caption "a {colour} {shape}", on axis paths with "moving {direction}" in a share control.direction_word_prob;
  the text is replaced by the encoding of "" with conditioning.drop_text_prob.
The loss is the base part's denoiser loss (diffusion.parameterization, sigma_data, noise) with the maps in Cond.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vidiff.diffusion.cond import Cond
from vidiff.random import SampleDraws, generator
from vidiff.training import conditioning as cond
from vidiff.training.finetune import load_start_part
from vidiff.training.stages import FrozenHelpers


class ControlLoss(nn.Module):
    """forward = the frozen denoiser's per-sample loss with the adapter attached; only the adapter is a submodule,
    so the optimizer, EMA and checkpoints hold the adapter alone."""

    def __init__(self, adapter: nn.Module, denoiser: nn.Module, min_snr_gamma):
        super().__init__()
        self.adapter = adapter
        object.__setattr__(self, "denoiser", denoiser)  # frozen: not a submodule
        self.min_snr_gamma = min_snr_gamma

    def forward(self, x0, sigma, noise, cond_: Cond) -> torch.Tensor:
        return self.denoiser.loss(x0, sigma, cond_, noise=noise, min_snr_gamma=self.min_snr_gamma)


class _Indices(torch.utils.data.Dataset):
    """Clips are rendered from each sample's draws; the dataset only sets the epoch length."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return {"index": index}


class ControlStage(FrozenHelpers):
    preview = None

    def __init__(self, cfg):
        from vidiff.config import from_dict
        from vidiff.diffusion import Denoiser
        from vidiff.models import UNet3D, UNet3DConfig
        from vidiff.models.control_adapter import ControlAdapter, ControlAdapterConfig
        from vidiff.parts import file_sha256, load_part_config, load_part_weights
        from vidiff.vae import VAEConfig

        self.cfg = cfg
        net = UNet3D(load_part_config(cfg.base, UNet3DConfig))
        net.load_state_dict(load_part_weights(cfg.base), strict=True)
        self.net = net.eval().requires_grad_(False)
        factor = load_part_config(cfg.vae, VAEConfig).downsample_factor
        self.adapter_cfg = from_dict(ControlAdapterConfig, {
            **cfg.model, "block_out_channels": list(net.config.block_out_channels), "downsample_factor": factor,
            "map_kinds": list(cfg.control.map_kinds), "base_sha256": file_sha256(f"{cfg.base}/model.safetensors")},
            "model")
        adapter = ControlAdapter(self.adapter_cfg)
        if cfg.init_weights is not None:  # e.g. the adapter of a base this one was fine-tuned from
            load_start_part(adapter, cfg.init_weights, ControlAdapterConfig)
        net.attach_control(adapter)
        denoiser = Denoiser(net, cfg.diffusion.parameterization, cfg.diffusion.sigma_data, cfg.diffusion.anchor)
        self.model = ControlLoss(adapter, denoiser, cfg.diffusion.min_snr_gamma)
        self.noise_cfg = cfg.noise_config()
        self.dataset = _Indices(cfg.data.num_samples)
        self.device = torch.device("cpu")
        self._text = self._vae = self.null_text = None
        self.latent_size = None

    def to(self, device):
        self.device = torch.device(device)
        self.net.to(self.device)  # the frozen U-Net (the adapter moves with the model the loop prepares)
        return self

    # -- samples --
    def window(self, draws: SampleDraws, step: int) -> tuple[list[list[int]], torch.Tensor, float]:
        """(per-sample clip frame indices, known mask (B, F), frame_stride) of the model frames."""
        k, c = self.cfg.conditioning, self.cfg.control
        b = len(draws)
        if c.stage == "keyframes":
            idx = [[i * k.keyframe_stride for i in range(k.num_keyframes)]] * b
            mask = torch.zeros(b, k.num_keyframes)
            mask[:, 0] = (draws.rand((), "first_known") < c.first_known_prob).float()
            return idx, mask, float(k.keyframe_stride)
        gap = int(torch.randint(k.min_gap, k.max_gap + 1, (1,), generator=generator(draws.seed, step, "gap")))
        starts = draws.randint(0, c.clip_frames - gap - 1, "start")
        mask = torch.zeros(b, gap + 1)
        mask[:, 0] = mask[:, -1] = 1.0
        return [list(range(s, s + gap + 1)) for s in starts], mask, 1.0

    def samples(self, draws: SampleDraws, step: int):
        """(video (B,3,F,H,W) in [-1, 1], maps (B,1,F,H,W), captions, known mask (B,F), frame_stride)."""
        from vidiff.data.control_maps import render_control_clip, sample_control_clip

        c, size = self.cfg.control, self.cfg.data.size
        idx, mask, stride = self.window(draws, step)
        videos, maps, captions = [], [], []
        for i in range(len(draws)):
            seed = int(torch.randint(0, 2**62, (1,), generator=draws.gen(i, "clip")))
            clip = sample_control_clip(np.random.default_rng(seed), c.clip_frames, size, tuple(c.paths))
            frames, kinds = render_control_clip(clip)
            pick = draws.gen(i, "map_kind")
            kind = c.map_kinds[int(torch.randint(0, len(c.map_kinds), (1,), generator=pick))]
            word = float(torch.rand((), generator=draws.gen(i, "caption"))) < c.direction_word_prob
            videos.append(torch.from_numpy(frames[idx[i]]))  # (F,H,W,3)
            maps.append(torch.from_numpy(kinds[kind][idx[i]]))  # (F,H,W)
            captions.append(clip.caption(with_direction=word))
        video = torch.stack(videos).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B,3,F,H,W)
        return video, torch.stack(maps)[:, None], captions, mask, stride

    def loss(self, model, batch, draws: SampleDraws, step: int) -> torch.Tensor:
        video, maps, captions, mask, stride = self.samples(draws, step)
        device = self.device
        with torch.no_grad():
            x0 = self.vae().encode(video.to(device)).float()  # (B,C,F,h,w)
            context, context_mask = self.text_encoder().encode(captions)
            if self.null_text is None:
                self.null_text = self.text_encoder().encode([""])
        self.latent_size = tuple(x0.shape[-2:])
        sigma, noise, c = cond.training_inputs(x0, context, context_mask, mask, stride, draws, self.cfg.conditioning,
                                               self.noise_cfg, self.null_text, known=self.net.config.conditioning,
                                               control=maps.to(device))
        return model(x0, sigma, noise, c)

    def export(self, folder, state: dict) -> None:
        from vidiff.parts import save_part
        from vidiff.pipeline.trained import TrainedOn, encoder_reference, latent_space_id, write_trained_on

        k, c = self.cfg.conditioning, self.cfg.control
        save_part(folder, self.adapter_cfg, {n[len("adapter."):]: v for n, v in state.items()
                                             if n.startswith("adapter.")})
        frames = (k.num_keyframes,) * 2 if c.stage == "keyframes" else (k.min_gap + 1, k.max_gap + 1)
        strides = (k.keyframe_stride,) * 2 if c.stage == "keyframes" else (1, 1)
        patterns = (("none", "first") if c.first_known_prob > 0 else ("none",)) if c.stage == "keyframes" else ()
        write_trained_on(folder, TrainedOn(f"control_{c.stage}", text_encoder=encoder_reference(self.cfg.text_encoder),
                                           latent_space=latent_space_id(self.cfg.vae), latent_size=self.latent_size,
                                           num_frames=frames, frame_strides=strides, known_patterns=patterns))
