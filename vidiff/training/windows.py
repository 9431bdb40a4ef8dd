"""Which frames of a training clip a latent stage's step learns from: the keyframe layout (K, stride) or the
interpolation gap of each step, drawn from (seed, step) so a resume replays them; the per-step frame budget; and
the frames picked per sample. A mixin of LatentDiffusionStage (it reads `self.cfg`)."""
from __future__ import annotations

import torch

from vidiff.random import SampleDraws, generator
from vidiff.training import conditioning as cond
from vidiff.training.direction_pairs import partner_starts, start_range
from vidiff.training.sample_stream import take_rows


def _draw(lo: int, hi: int, weighting: str, g: torch.Generator) -> int:
    """An integer in lo..hi: uniform, or "proportional" (n with probability n / sum). The uniform draw is the one
    runs from before the weightings made, so their resumes replay it."""
    if weighting == "uniform":
        return int(torch.randint(lo, hi + 1, (1,), generator=g))
    values = torch.arange(lo, hi + 1, dtype=torch.float64)
    return int(values[torch.multinomial(values, 1, generator=g)])


class TrainingWindows:
    def keyframe_layout(self, seed: int, step: int) -> tuple[int, int]:
        """(K, stride) of the keyframe stage at `step`: the default layout with probability default_layout_prob,
        else K drawn by keyframe_count_weighting and the stride uniform over their ranges; drawn from (seed, step)
        alone, so a resume replays it."""
        c = self.cfg.conditioning
        g = generator(seed, step, "layout")
        if float(torch.rand((), generator=g)) < c.default_layout_prob:
            return c.num_keyframes, c.keyframe_stride
        (k_lo, k_hi), (s_lo, s_hi) = c.keyframe_counts(), c.keyframe_strides()
        k = _draw(k_lo, k_hi, c.keyframe_count_weighting, g)
        return k, int(torch.randint(s_lo, s_hi + 1, (1,), generator=g))

    def interpolation_gap(self, seed: int, step: int, total: int) -> int:
        """The interpolation stage's gap at `step` (one per step: a batch needs one window length)."""
        c = self.cfg.conditioning
        g = generator(seed, step, "gap")
        return _draw(c.min_gap, min(c.max_gap, total - 1), c.gap_weighting, g)

    def window_length(self, seed: int, step: int, total: int) -> int:
        """Model frames per sample at `step`: K keyframes, or gap + 1 for an interpolation window."""
        if self.cfg.stage == "keyframes":
            return self.keyframe_layout(seed, step)[0]
        return self.interpolation_gap(seed, step, total) + 1

    def _within_frame_budget(self, batch: dict, draws: SampleDraws, step: int) -> tuple[dict, SampleDraws]:
        """The batch's first max(1, train.max_batch_frames // window length) samples (all of them when the budget
        is off or holds them): long windows train on fewer samples, so a step costs about the same whatever the
        layout drawn. Every rank draws the same length at a step, so ranks keep equal batches."""
        budget = self.cfg.train.max_batch_frames
        if budget is None:
            return batch, draws
        n = len(draws)
        total = (batch["latents"] if "latents" in batch else batch["video"]).shape[2]
        keep = max(1, budget // self.window_length(draws.seed, step, total))
        if keep >= n:
            return batch, draws
        return take_rows(batch, n, list(range(keep))), draws.rows(list(range(keep)))

    def _frames(self, latents, draws: SampleDraws, step: int, partner: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
        """Picks the model frames per sample: (x0 (B,C,K,h,w), known mask (B,K) or (B,K,h,w), frame_stride,
        their indices in the clip (B,K)). `partner`: the reversed rows of direction pairs (direction_pairs.py)."""
        c = self.cfg.conditioning
        total = latents.shape[2]
        if self.cfg.stage == "keyframes":
            if c.max_keyframe_span() > total:
                raise ValueError(f"clips have {total} frames, fewer than the {c.max_keyframe_span()} that the "
                                 "largest keyframe layout spans")
            k, s_k = self.keyframe_layout(draws.seed, step)
            span = (k - 1) * s_k
            starts = draws.randint(*start_range(total, span, partner is not None), "start")
            if partner is not None:
                starts = partner_starts(starts, partner, total, span)
            idx = torch.stack([s + torch.arange(k) * s_k for s in starts])  # (B, K)
            mask = cond.keyframe_masks(draws, k, c, tuple(latents.shape[-2:]))
            stride = float(s_k)
        else:  # one gap per step (a batch needs one window length), drawn from (seed, step)
            gap = self.interpolation_gap(draws.seed, step, total)
            starts = draws.randint(0, total - gap - 1, "start")
            idx = torch.stack([s + torch.arange(gap + 1) for s in starts])  # (B, gap + 1)
            mask = cond.interpolation_masks(draws, gap + 1, c, tuple(latents.shape[-2:]))
            stride = 1.0
        idx = idx.to(latents.device)
        x0 = torch.stack([latents[i][:, idx[i]] for i in range(latents.shape[0])])  # (B, C, K, h, w)
        return x0, mask, stride, idx
