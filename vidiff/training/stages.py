"""Per-stage batch preparation and loss: `vae`, `keyframes`, `interpolation` (and the test-only `toy`).

Each stage offers the loop `model` (an nn.Module whose forward returns the per-sample loss (B,), so that DDP /
FSDP see the whole computation), `dataset`, `loss(model, batch, draws, step)`, `export(folder, state)`,
`preview` and `to(device)`. Latent stages read a latent cache when `data.kind = latent_cache`, else encode
clips on the fly with a frozen VAE part folder (`vae`).

Frame strides (what the pipeline feeds at sampling time, docs/training.md):
- keyframes: K frames at stride S from a random start; frame_stride = S. One (K, S) per step (a batch needs one
  window length), drawn from (seed, step) over the configured ranges (windows.py: `keyframe_layout`);
- interpolation: a window of gap + 1 full-rate frames, both ends known; frame_stride = 1 (neighbouring model
  frames are neighbouring frames of the final clip, per the contract), and the gap itself is visible to the
  model through the window length F = gap + 1. One gap per step, drawn from (seed, step).

Captions: with `conditioning.captions: shapes_grammar` each sample gets its own caption from the Shapes caption
grammar (vidiff/data/captions.py), drawn from its SampleDraws and encoded on the fly by the text encoder; the
cached embedding of the clip's stored caption is not used then.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from vidiff.errors import InputError
from vidiff.limits import short_repr
from vidiff.parts import save_part
from vidiff.pipeline.trained import latent_space_id
from vidiff.training import conditioning as cond
from vidiff.training.direction_pairs import pair_batch
from vidiff.training.finetune import freeze_parameters, load_start_part
from vidiff.random import SampleDraws
from vidiff.training.windows import TrainingWindows


def build_stage(cfg):
    """The stage object the loop trains (see loop.py for the protocol)."""
    if cfg.stage == "toy":
        from vidiff.training.toy import ToyStage

        return ToyStage(cfg)
    if cfg.stage == "vae":
        from vidiff.training.vae_stage import VAEStage

        return VAEStage(cfg)
    if cfg.stage == "control":
        from vidiff.training.control_stage import ControlStage

        return ControlStage(cfg)
    return latent_stage(cfg)


def latent_stage(cfg, dataset=None):
    """The keyframe / interpolation stage: the latent loss, or the decoded loss (decoded_loss.enabled)."""
    if cfg.decoded_loss.enabled:
        from vidiff.training.decoded_loss import DecodedLossStage

        return DecodedLossStage(cfg, dataset)
    return LatentDiffusionStage(cfg, dataset)


def window_cache_dataset(cfg):
    """The real-footage window cache at data.root; refused when the flow anchor needs pixels it does not hold."""
    from vidiff.data.real_windows import WindowCacheDataset

    dataset = WindowCacheDataset(cfg.data.root, seed=cfg.train.seed)
    if cfg.diffusion.anchor == "known_flow" and not dataset.index.get("pixels"):
        raise InputError(f"data.root {cfg.data.root}: diffusion.anchor known_flow computes optical flow on the "
                         "windows' frames, and this cache holds none: rebuild it with `tools/real_interp.py cache "
                         "... --pixels`")
    return dataset


def video_dataset(cfg):
    d = cfg.data
    if d.kind == "real_corpus":  # random crops; as many items as the run draws (one epoch)
        from vidiff.data.real_footage import RealFrameDataset

        return RealFrameDataset(d.root, size=d.size, seed=cfg.train.seed, num_frames=d.num_frames,
                                length=cfg.train.max_steps * cfg.train.batch_size * cfg.train.grad_accum)
    if d.kind == "shapes":
        from vidiff.data.shapes_dataset import ShapesDataset

        return ShapesDataset(d.shapes_seed, d.num_samples, d.num_frames, d.size)
    from vidiff.data.video_folder import VideoFolderDataset

    return VideoFolderDataset(d.root, num_frames=d.num_frames, stride=d.stride, fps=d.fps, size=(d.size, d.size),
                              seed=cfg.train.seed)


# ---- keyframes / interpolation ---------------------------------------------------------------------------

class DiffusionLoss(nn.Module):
    """forward = the denoiser's per-sample training loss, so a distributed wrapper sees one forward call."""

    def __init__(self, denoiser, min_snr_gamma):
        super().__init__()
        self.denoiser, self.min_snr_gamma = denoiser, min_snr_gamma

    def forward(self, x0, sigma, noise, cond) -> torch.Tensor:
        return self.denoiser.loss(x0, sigma, cond, noise=noise, min_snr_gamma=self.min_snr_gamma)


class FrozenHelpers:
    """The frozen text encoder and VAE of a latent stage, loaded on first use on the stage's device
    (`cfg.text_encoder`, `cfg.vae`); the stage sets `_text = _vae = None` and `device`."""

    def text_encoder(self):
        if self._text is None:
            from vidiff.text import TextEncoder

            # no prompt cache: the encoder runs on a batch's longest prompt, so a caption's embedding differs (in
            # float rounding) with the batch it was first encoded in, and a cached one made a step depend on the
            # steps before it, which a resumed run had not seen (its weights drifted from the uninterrupted run's)
            self._text = TextEncoder.load(self.cfg.text_encoder, device=self.device, cache_size=0)
            if self.cfg.conditioning.captions == "shapes_grammar":
                from vidiff.data.captions import plain_captions

                # Pinned instead, encoded once at load, the same on every run: the plain template is about half the
                # grammar's captions, and a step's 8 captions took 19.8 ms with them pinned against 27.1 on one
                # thread (docs/benchmarks.md, "The training loop's own overhead")
                self._text.pin(list(plain_captions()))
        return self._text

    def vae(self):
        if self._vae is None:
            from vidiff.vae import AutoencoderKL

            self._vae = AutoencoderKL.load(self.cfg.vae, device=self.device).requires_grad_(False)  # in eval mode
        return self._vae


OWN_CAPTIONS = "for your own captions set conditioning.captions=dataset (docs/training.md, 'Your own videos')"


def check_grammar_captions(dataset) -> None:
    """conditioning.captions=shapes_grammar reads a colour, shape and direction in every stored caption. The captions
    a dataset lists (a latent cache's, a video folder's) are read before the first step: one the grammar cannot read
    stopped the run at the step that first drew it, minutes in on a large cache."""
    from vidiff.data.shapes import parse_caption

    stored = getattr(dataset, "captions", None)
    bad = {c for c in dict.fromkeys(stored or ()) if None in parse_caption(c)}
    if bad:
        first = next(c for c in stored if c in bad)
        raise InputError(f"conditioning.captions=shapes_grammar: {sum(c in bad for c in stored)} of {len(stored)} "
                         f"captions of data.root name no Shapes colour, shape and direction (e.g. "
                         f"{short_repr(first, 80)}); {OWN_CAPTIONS}")


class LatentDiffusionStage(FrozenHelpers, TrainingWindows):
    def __init__(self, cfg, dataset=None):
        from vidiff.diffusion import Denoiser
        from vidiff.models import UNet3D, UNet3DConfig

        self.cfg = cfg
        self.model_cfg = cfg.model_config()
        net_cfg = dataclasses.replace(self.model_cfg, gradient_checkpointing=cfg.train.gradient_checkpointing
                                      or self.model_cfg.gradient_checkpointing)
        net = UNet3D(net_cfg)
        if cfg.init_weights is not None:
            load_start_part(net, cfg.init_weights, UNet3DConfig)
        freeze_parameters(net, cfg.train.freeze)
        denoiser = Denoiser(net, cfg.diffusion.parameterization, cfg.diffusion.sigma_data, cfg.diffusion.anchor)
        self.model = DiffusionLoss(denoiser, cfg.diffusion.min_snr_gamma)
        self.noise_cfg = cfg.noise_config()
        self._text = self._vae = self.null_text = None
        if dataset is not None:
            self.dataset = dataset
        elif cfg.data.kind == "latent_cache":
            from vidiff.data.latent_cache import LatentCacheDataset

            try:
                self.dataset = LatentCacheDataset(cfg.data.root)
            except InputError as e:  # the folder's name alone did not say which setting pointed there
                raise InputError(f"data.root: {e}") from None
        elif cfg.data.kind == "window_cache":
            self.dataset = window_cache_dataset(cfg)
        else:
            self.dataset = video_dataset(cfg)
        if cfg.conditioning.captions == "shapes_grammar":
            check_grammar_captions(self.dataset)
        self.preview = self._preview if cfg.stage == "keyframes" and cfg.vae else None
        # the export records the VAE's latent space: read now, so a missing or damaged `vae` stops the run before
        # its first step (read from a latent cache, the VAE was first touched at the export, after the training)
        self.latent_space = latent_space_id(cfg.vae) if cfg.vae else None
        self.device = torch.device("cpu")
        self.latent_size = None  # (h, w) of the training latents, once a batch has been seen

    def to(self, device):
        self.device = torch.device(device)  # frozen helpers load there on first use
        return self

    # -- batch preparation --
    def _latents_and_text(self, batch, draws: SampleDraws) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grammar = self.cfg.conditioning.captions == "shapes_grammar"
        if "latents" in batch:  # latent cache
            latents = batch["latents"].float()
            if not grammar:
                return latents, batch["context"].float(), batch["context_mask"].bool()
        else:
            with torch.no_grad():
                latents = self.vae().encode(batch["video"].to(self.device)).float()  # (B, C, F, h, w)
        captions = self.captions(list(batch["caption"]), draws) if grammar else list(batch["caption"])
        with torch.no_grad():
            context, mask = self.text_encoder().encode(captions)  # (B, L, D), (B, L)
        return latents, context.to(self.device), mask.to(self.device)

    def captions(self, stored: list[str], draws: SampleDraws) -> list[str]:
        """One grammar caption per sample, for the (colour, shape, direction) its stored caption names."""
        from vidiff.data.captions import draw_caption
        from vidiff.data.shapes import parse_caption

        c = self.cfg.conditioning
        paths = draws.step >= c.path_captions_from_step
        out = []
        for i, caption in enumerate(stored):
            attributes = parse_caption(caption)
            if None in attributes:
                raise InputError(f"conditioning.captions=shapes_grammar: caption {short_repr(caption, 80)} does not "
                                 f"name a Shapes colour, shape and direction; {OWN_CAPTIONS}")
            out.append(draw_caption(*attributes, draws.gen(i, "caption"), c.plain_caption_prob, paths))
        return out

    def loss(self, model, batch, draws: SampleDraws, step: int) -> torch.Tensor:
        batch, draws = self._within_frame_budget(batch, draws, step)
        partner = None
        if self.direction_pairs_at(step):
            batch, draws, partner = pair_batch(batch, draws)
        latents, context, context_mask = self._latents_and_text(batch, draws)
        if self.null_text is None:  # the "no text" condition: the encoding of "" by the same encoder
            self.null_text = self.text_encoder().encode([""])  # (1, L, D), (1, L)
        x0, mask, stride, idx = self._frames(latents, draws, step, partner)
        self.latent_size = tuple(x0.shape[-2:])  # (h, w), recorded in the exported part
        extra = {"anchor": self._flow_anchor(batch, idx, x0)} if self.cfg.diffusion.anchor == "known_flow" else {}
        sigma, noise, c = cond.training_inputs(x0, context, context_mask, mask, stride, draws, self.cfg.conditioning,
                                               self.noise_cfg, self.null_text, **extra)
        return model(x0, sigma, noise, c)

    def direction_pairs_at(self, step: int) -> bool:
        """Whether the batch at `step` is made of direction pairs (conditioning.direction_pairs_from_step)."""
        start = self.cfg.conditioning.direction_pairs_from_step
        return start is not None and step >= start

    def _flow_anchor(self, batch, idx: torch.Tensor, x0: torch.Tensor, with_flows: bool = False):
        """(B,C,K,h,w) the flow anchor of each sample's window, from its two end frames in pixels (the interpolation
        stage's windows: both ends known), encoded by the frozen VAE, as fill_between computes it; with_flows:
        also each sample's (F_0->1, F_1->0)."""
        from vidiff.optical_flow import flow_anchor

        if "pixels" not in batch:
            raise ValueError("diffusion.anchor: known_flow needs the window pixels: build the window cache with "
                             "pixels (tools/real_interp.py cache --pixels)")
        gap = idx.shape[1] - 1
        ends = [batch["pixels"][i][idx[i, [0, -1]].cpu()] for i in range(idx.shape[0])]  # (2,H,W,3) each
        anchors, flows = zip(*(flow_anchor(self.vae(), e, gap) for e in ends))
        anchor = torch.cat(anchors).to(x0)
        return (anchor, [f[0] for f in flows]) if with_flows else anchor

    def export(self, folder, state: dict) -> None:
        from vidiff.pipeline.trained import write_trained_on

        save_part(folder, self.model_cfg, _strip(state, "denoiser.net."))
        write_trained_on(folder, self.trained_on())

    def trained_on(self):
        """What this part learned from (vidiff/pipeline/trained.py): the pipeline keeps requests inside it."""
        from vidiff.pipeline.trained import PATTERNS, TrainedOn, encoder_reference

        c = self.cfg.conditioning
        common = dict(text_encoder=encoder_reference(self.cfg.text_encoder), latent_size=self.latent_size,
                      latent_space=self.latent_space)
        if self.cfg.stage == "keyframes":
            probs = (c.pattern_none, c.pattern_first, c.pattern_first_k, c.pattern_random_subset, c.pattern_region)
            return TrainedOn("keyframes", num_frames=c.keyframe_counts(), frame_strides=c.keyframe_strides(),
                             known_patterns=tuple(p for p, w in zip(PATTERNS, probs) if w > 0),
                             max_first_k=c.max_first_k if c.pattern_first_k > 0 else 0, **common)
        return TrainedOn("interpolation", num_frames=(c.min_gap + 1, c.max_gap + 1), frame_strides=(1, 1),
                         known_patterns=("region",) if c.pattern_region > 0 else (), **common)

    def _preview(self, ema_model, out_dir, step: int) -> None:
        from vidiff.training.preview import write_keyframe_preview

        write_keyframe_preview(self, ema_model.denoiser, out_dir, step)


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
