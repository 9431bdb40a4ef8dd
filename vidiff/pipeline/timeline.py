"""The latent timeline of one request: keyframes sampled onto it, gaps filled between them, windows for extension.

A timeline is (B, C, T, h, w) latents; keyframes sit at multiples of the keyframe stride S, or, around user
keyframes off that grid, at the indices layout.anchored_positions gives (filled span by span, `fill_spans`).
`Timeline` holds what every stage call of one request shares (the two stages, the request, the encoded text, the
progress bar), so the sampling steps read as the hierarchy they are:

1. `keyframes`: the keyframe stage samples K latents, known keyframes given as known latents + mask;
2. `fill`: the interpolation stage fills each listed keyframe gap, coarse level first (layout.py), every
   window of one level in one call, each row with its own generator (vidiff/random.py);
3. `extend`: windows of K keyframes that continue a clip, each seeded by the last frames made so far.
"""
from __future__ import annotations

import dataclasses

import torch

from vidiff.diffusion.cond import Cond
from vidiff.pipeline.control import with_control
from vidiff.pipeline.layout import ExtensionWindow, Layout, interpolation_levels
from vidiff.pipeline.request import Request, StepBar
from vidiff.pipeline.stage import DiffusionStage
from vidiff.random import generators


def encode_text(text_encoder, prompts: list[str]) -> tuple[Cond, tuple[torch.Tensor, torch.Tensor]]:
    """(Cond with context (B,L,D) + mask (B,L), the null encoding of "" (1,L0,D) / (1,L0) that guidance drops to).
    One prompt per call: a batched transformer pass may round differently for another batch size."""
    rows = [text_encoder.encode([p]) for p in prompts]
    text = Cond(context=torch.cat([c for c, _ in rows]), context_mask=torch.cat([m for _, m in rows]))
    return text, text_encoder.encode([""])


def encode_negative(text_encoder, prompts: list[str] | None) -> Cond | None:
    """Per-row negative prompts as one Cond (B,L,D), padded to the longest; None when there are none."""
    from vidiff.text import read_as

    if prompts is None:
        return None
    with read_as("negative prompt"):  # a too-long one was warned about as "prompt '...'"
        rows = [text_encoder.encode([p]) for p in prompts]
    return Cond.cat([Cond(context=c, context_mask=m) for c, m in rows])


def place_keyframes(keyframe_latents: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(B,C,K,h,w) keyframes -> (B,C,F,h,w) with keyframes at 0, S, 2S, ... and zeros between."""
    b, c, k, h, w = keyframe_latents.shape
    out = keyframe_latents.new_zeros(b, c, layout.num_frames, h, w)
    out[:, :, :: layout.keyframe_stride] = keyframe_latents
    return out


@dataclasses.dataclass
class Timeline:
    keyframe_stage: DiffusionStage | None
    interpolation_stage: DiffusionStage
    max_gap: int  # largest gap the interpolation stage fills in one pass
    req: Request
    text: Cond  # the request's text, one row per sample
    null_text: tuple[torch.Tensor, torch.Tensor]
    bar: StepBar
    negative_text: Cond | None = None  # per-row negative prompts of the keyframe stage's guidance
    strength: float = 1.0  # SDEdit: how much of each stage's grid runs from the noised input (edit_video)
    fill_strength: float | None = None  # the interpolation stage's, when not `strength` (edits that follow maps)
    control: tuple[torch.Tensor, torch.Tensor] | None = None  # (maps (B,1,T,H,W), scale (B,)): control.py
    flow_anchor: torch.Tensor | None = None  # (B,C,T,h,w) for a part with anchor known_flow (optical_flow.py)

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc) -> None:  # closes the progress bar however the sampling ends
        self.bar.__exit__(*exc)

    def keyframes(self, shape: tuple[int, ...], key, known: torch.Tensor, known_mask: torch.Tensor,
                  init: torch.Tensor | None = None, positions: list[int] | None = None) -> torch.Tensor:
        """(B,C,K,h,w) keyframe latents; `known` (B,C,K,h,w) where `known_mask` (B,K) is 1 comes back as given;
        `init` (B,C,K,h,w): the latents SDEdit starts from; `positions`: the keyframes' frame indices when they
        are not the layout's grid (user keyframes anywhere), the frame stride input then their mean spacing."""
        req, stage = self.req, self.keyframe_stage
        settings = stage.settings(req.steps, req.sampler, req.guidance_scale, req.image_guidance_scale,
                                  req.guidance_rescale, req.churn, req.pc_steps, req.pc_snr)
        settings = dataclasses.replace(settings, strength=self.strength)
        if positions is None:
            positions, stride = [i * req.layout.keyframe_stride for i in range(shape[1])], req.layout.keyframe_stride
        else:
            stride = (positions[-1] - positions[0]) / (len(positions) - 1)
        cond = dataclasses.replace(self.text, known=known, known_mask=known_mask,
                                   frame_stride=torch.full((len(req.seeds),), float(stride)))
        rows = list(range(len(req.seeds)))
        cond = with_control(cond, stage, self.control, rows, [positions] * len(rows))
        return stage.run(shape, generators(req.seeds, key), settings, cond, self.null_text, self.bar.step,
                         self.negative_text, init, rescale_given=req.guidance_rescale is not None).cpu().float()

    def fill(self, timeline: torch.Tensor, gaps: list[int], key, init: torch.Tensor | None = None,
             region: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """A copy of timeline (B,C,T,h,w) with the listed keyframe gaps of the layout's grid filled (fill_spans)."""
        s = self.req.layout.keyframe_stride
        return self.fill_spans(timeline, [(g * s, s) for g in gaps], key, init, region)

    def fill_spans(self, timeline: torch.Tensor, spans: list[tuple[int, int]], key, init: torch.Tensor | None = None,
                   region: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """A copy of timeline (B,C,T,h,w) with each span (start, gap) filled between its known ends, coarse level
        first; spans of one size share each level's calls. `init` (B,C,T,h,w): the latents SDEdit re-noises the
        in-between frames from; `region` (source (B,C,T,h,w), keep (T,h,w)): region edits, where the in-between
        frames are known where keep is 1 (from source)."""
        stage, req = self.interpolation_stage, self.req
        settings = stage.settings(req.steps, req.sampler, churn=req.churn, pc_steps=req.pc_steps, pc_snr=req.pc_snr)
        strength = self.strength if self.fill_strength is None else self.fill_strength
        settings = dataclasses.replace(settings, strength=strength)
        timeline = timeline.clone()
        for size in dict.fromkeys(g for _, g in spans):  # each span size once, in order
            starts_of_size = [t for t, g in spans if g == size]
            for level, (gap, segments) in enumerate(interpolation_levels(size, self.max_gap) or []):
                step = gap // segments
                starts = [t + o for t in starts_of_size for o in range(0, size, gap)]  # every gap of this level
                self._fill_level(timeline, starts, gap, step, segments, settings, (key, level), init, region)
        return timeline

    def _fill_level(self, timeline, starts, gap, step, segments, settings, key_level, init, region) -> None:
        """Fills, in place, the windows of segments + 1 frames `step` apart that start at `starts` in every row."""
        stage = self.interpolation_stage
        rows = [(b, t) for b in range(timeline.shape[0]) for t in starts]
        pos = torch.tensor([[t + i * step for i in range(segments + 1)] for _, t in rows])  # (N, segments+1)
        known = torch.stack([timeline[b, :, p] for (b, _), p in zip(rows, pos)])  # (N,C,segments+1,h,w)
        mask = torch.zeros(len(rows), segments + 1)
        mask[:, [0, -1]] = 1.0
        if region is not None:  # per latent pixel: both ends, and the in-between frames outside the region
            source, keep = region
            for n, ((b, _), p) in enumerate(zip(rows, pos)):
                known[n, :, 1:-1] = source[b, :, p[1:-1]]
            mask = mask[:, :, None, None].repeat(1, 1, *known.shape[-2:])  # (N,segments+1,h,w)
            mask[:, 1:-1] = torch.stack([keep[p[1:-1]] for p in pos])
        key, level = key_level
        gens = [generators([self.req.seeds[b]], key, level, t)[0] for b, t in rows]
        # frame_stride: output frames between neighbouring window frames (1 for a direct pass, as trained)
        cond = dataclasses.replace(self.text.rows([b for b, _ in rows]), known=known, known_mask=mask,
                                   frame_stride=torch.full((len(rows),), float(step)))
        cond = with_control(cond, stage, self.control, [b for b, _ in rows], pos.tolist())
        if self.flow_anchor is not None:  # each window's slice (a known_flow part without it: anchor_of refuses)
            cond = dataclasses.replace(cond, anchor=torch.stack([self.flow_anchor[b, :, p] for (b, _), p in
                                                                 zip(rows, pos)]))
        start = None if init is None else torch.stack([init[b, :, p] for (b, _), p in zip(rows, pos)])
        out = stage.run(tuple(known.shape[1:]), gens, settings, cond, self.null_text, self.bar.step,
                        init=start).cpu().float()
        for (b, _), p, window in zip(rows, pos, out):
            timeline[b, :, p[1:-1]] = window[:, 1:-1]

    def extend(self, timeline: torch.Tensor, windows: list[ExtensionWindow], latent_shape,
               prior: torch.Tensor | None = None) -> torch.Tensor:
        """Samples and fills each extension window on `timeline` (B,C,T,h,w), whose first window's known
        keyframes are already encoded; returns the completed timeline. `prior` (B,C,T,h,w): latents the new
        keyframes start from (SDEdit at the timeline's strength) instead of noise."""
        k, s = self.req.layout.num_keyframes, self.req.layout.keyframe_stride
        for w_i, w in enumerate(windows):
            pos = [w.start + i * s for i in range(k)]
            known_mask = torch.zeros(timeline.shape[0], k)
            known_mask[:, : w.num_known] = 1.0
            init = None
            if prior is not None:
                init = prior[:, :, pos].clone()
                init[:, :, : w.num_known] = timeline[:, :, pos[: w.num_known]]
            kf = self.keyframes(latent_shape, ("extend", w_i), timeline[:, :, pos], known_mask, init)  # (B,C,K,h,w)
            window = timeline[:, :, w.start : pos[-1] + 1].clone()
            window[:, :, ::s] = kf
            timeline[:, :, w.start : pos[-1] + 1] = self.fill(window, extension_gaps(w, k), ("extend", w_i))
        return timeline


def extension_gaps(window: ExtensionWindow, num_keyframes: int) -> list[int]:
    """The keyframe gaps of an extension window that are new (those between known keyframes are input)."""
    return list(range(window.num_known - 1, num_keyframes - 1))


def total_steps(req: Request, gap_lists: list[list[int]], keyframe_steps: int, fill_steps: int, max_gap: int,
                strength: float = 1.0, spans: list[tuple[int, int]] | None = None,
                fill_strength: float | None = None, keyframe_passes: int = 1) -> int:
    """Sampler steps of a request: per window, the keyframe stage, then each fill level if it has gaps; with
    `spans` (user keyframes anywhere: one window, gap_lists [[...]] or [] without a keyframe pass), one fill
    call per level of each span size. SDEdit runs the tail of each grid (DiffusionStage.sigmas): `strength`
    of it, or `fill_strength` for the fills when given; `keyframe_passes` times over the keyframes (edit repeats)."""
    fill_strength = strength if fill_strength is None else fill_strength
    if strength < 1:
        keyframe_steps = max(1, round(strength * keyframe_steps)) * keyframe_passes if keyframe_steps else 0
    if fill_strength < 1:
        fill_steps = max(1, round(fill_strength * fill_steps))
    if spans is not None:
        calls = sum(len(interpolation_levels(g, max_gap) or []) for g in dict.fromkeys(g for _, g in spans))
        return keyframe_steps * len(gap_lists) + fill_steps * calls
    levels = len(interpolation_levels(req.layout.keyframe_stride, max_gap) or [])
    return sum(keyframe_steps + (fill_steps * levels if gaps else 0) for gaps in gap_lists)
