"""The decoded loss: an interpolation part with the flow anchor learns from the frames the pipeline returns.

The real-footage pipeline (docs/real_footage.md) samples one Euler step from sigma_max. It returns the part's
denoised estimate D(anchor + sigma_max * noise) with the known ends put back, decoded by the VAE, plus the
keyframes' round-trip error carried along the flow onto each in-between frame (vidiff/pipeline/residual.py).
A latent loss knows nothing of the decoder or of the carry, which already restores part of the anchor's error
in pixels: measured, the part trained on latents lowered its own anchor's PSNR on its training clips. This loss
is the squared error of exactly those returned frames against the true in-between frames.

The VAE is frozen; the gradient flows through its decoder into the part. The decoder's backward pass is most of
the cost, so each step decodes one square of latents (`crop_box`; the same for the whole batch) and scores its
inside, a latent away from any edge that is not the frame's. The carried errors are constants of the step: the
ends are decoded whole, on their own, without a graph (the pipeline decodes them inside the whole timeline).
"""
from __future__ import annotations

import torch
from torch import nn

from vidiff.training import conditioning as cond
from vidiff.training.stages import LatentDiffusionStage

CROP_LATENTS = 10  # the decoded square's side in latents (10 of 16: 0.4 of the decoder's cost, measured)


class DecodedLoss(nn.Module):
    """forward = the per-sample (B,) decoded loss, so a distributed wrapper sees one forward call."""

    def __init__(self, denoiser, vae, carry: bool):
        super().__init__()
        self.denoiser, self.vae, self.carry = denoiser, vae, carry

    def forward(self, x0, sigma, noise, c, truth, flows, crop: tuple[int, int, int]) -> torch.Tensor:
        frames, truth = self.returned_frames(x0, sigma, noise, c, truth, flows, crop)
        return (frames[:, :, 1:-1] - truth[:, :, 1:-1]).pow(2).flatten(1).mean(1)

    def returned_frames(self, x0, sigma, noise, c, truth, flows, crop: tuple[int, int, int]):
        """(the frames fill_between would return, the true frames), both (B,3,F,H',W') in [-1, 1] over the scored
        part of the crop. x0 (B,C,F,h,w) the true latents of windows whose two ends are known; sigma (B,); noise
        like x0; c the Cond with the flow anchor; truth (B,3,F,H,W) the true frames in [-1, 1]; flows
        [(F_0->1, F_1->0)] per sample; crop (top, left, size) in latents. The pipeline's single Euler step from
        sigma returns D(anchor + sigma * noise) exactly."""
        x = c.anchor + sigma.view(-1, 1, 1, 1, 1).to(x0) * noise
        z = self.denoiser(x, sigma, c)
        z = torch.cat([x0[:, :, :1], z[:, :, 1:-1], x0[:, :, -1:]], dim=2)  # the known ends come back exactly
        latent_box, scored = crop_box(crop, tuple(x0.shape[-2:]), self.vae.downsample_factor)
        # clamped as the pipeline's uint8 frames are, before and after the carry
        frames = self.vae.decode(z[(..., *latent_box)]).float()[(..., *scored)].clamp(-1, 1)
        if self.carry:
            with torch.no_grad():
                ends = self.vae.decode(x0[:, :, [0, -1]]).float().clamp(-1, 1)  # (B,3,2,H,W)
                carried = carried_error(truth[:, :, [0, -1]] - ends, flows, x0.shape[2] - 1)
            frames = (frames + _in_pixels(carried, latent_box, scored, self.vae.downsample_factor)).clamp(-1, 1)
        return frames, _in_pixels(truth, latent_box, scored, self.vae.downsample_factor)


def _in_pixels(video: torch.Tensor, latent_box, scored, factor: int) -> torch.Tensor:
    """The scored part of a crop, cut from whole frames (B,3,F,H,W)."""
    rows, cols = (slice(b.start * factor, b.stop * factor) for b in latent_box)
    return video[..., rows, cols][(..., *scored)]


def crop_box(crop: tuple[int, int, int], latent_hw: tuple[int, int], factor: int):
    """((latent rows, latent cols) to decode, (pixel rows, pixel cols) to score within the decoded square): the
    square loses a latent of margin on each side that is not also the frame's edge, where the decoder's own
    padding would differ from the whole frame's."""
    top, left, size = crop
    h, w = latent_hw

    def score(start: int, full: int) -> slice:
        lo = 0 if start == 0 else 1
        hi = size if start + size >= full else size - 1
        return slice(lo * factor, hi * factor)

    return ((slice(top, top + size), slice(left, left + size)), (score(top, h), score(left, w)))


def carried_error(end_errors: torch.Tensor, flows, gap: int) -> torch.Tensor:
    """end_errors (B,3,2,H,W) truth - decoded at the two ends -> (B,3,gap+1,H,W): per sample, the errors carried
    along the flow to each in-between frame as fill_between's carry does (zero at the ends)."""
    from vidiff.pipeline.residual import carry_along_flow

    b, _, _, h, w = end_errors.shape
    out = end_errors.new_zeros(b, 3, gap + 1, h, w)
    for i, pair in enumerate(flows):
        error = end_errors[i].permute(1, 2, 3, 0).cpu().numpy()  # (2,H,W,3)
        carried = carry_along_flow(error, [pair], gap)[1:]  # (gap-1,H,W,3); [0] is the left end's own error
        out[i, :, 1:-1] = torch.from_numpy(carried).permute(3, 0, 1, 2).to(out)
    return out


class DecodedLossStage(LatentDiffusionStage):
    """The interpolation stage with `decoded_loss.enabled`: the same windows, anchor and conditioning as the latent
    loss, at the one noise level the pipeline samples from."""

    def __init__(self, cfg, dataset=None):
        from vidiff.vae import AutoencoderKL

        super().__init__(cfg, dataset)
        vae = AutoencoderKL.load(cfg.decoded_loss.vae or cfg.vae).requires_grad_(False)  # eval, channels-last
        self.model = DecodedLoss(self.model.denoiser, vae, cfg.decoded_loss.carry)

    def loss(self, model, batch, draws, step: int) -> torch.Tensor:
        from vidiff.random import generator

        batch, draws = self._within_frame_budget(batch, draws, step)
        latents, context, context_mask = self._latents_and_text(batch, draws)
        if self.null_text is None:
            self.null_text = self.text_encoder().encode([""])
        x0, mask, stride, idx = self._frames(latents, draws, step)
        self.latent_size = tuple(x0.shape[-2:])
        anchor, flows = self._flow_anchor(batch, idx, x0, with_flows=True)
        _, noise, c = cond.training_inputs(x0, context, context_mask, mask, stride, draws, self.cfg.conditioning,
                                           self.noise_cfg, self.null_text, anchor=anchor)
        sigma = torch.full((x0.shape[0],), float(self.cfg.decoded_loss.sigma), device=x0.device)
        truth = torch.stack([batch["pixels"][i][idx[i].cpu()] for i in range(idx.shape[0])])  # (B,F,H,W,3) uint8
        truth = truth.permute(0, 4, 1, 2, 3).to(x0.device, torch.float32) / 127.5 - 1.0
        h, w = x0.shape[-2:]
        size = min(CROP_LATENTS, h, w)
        g = generator(draws.seed, step, "decoded_crop")
        top, left = (int(torch.randint(0, n - size + 1, (1,), generator=g)) for n in (h, w))
        return model(x0, sigma, noise, c, truth, flows, (top, left, size))
