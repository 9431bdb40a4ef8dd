"""text_to_video with user keyframes off the keyframe grid (VideoPipeline.text_to_video's body for them): the
keyframes are laid around the user's (trained_layouts.check_anchored_layout), the missing ones sampled in one
keyframe pass with the user's known, then every stretch filled at its own gap.
"""
from __future__ import annotations

import torch

from vidiff.pipeline.layout import anchored_span
from vidiff.pipeline.request import Request
from vidiff.pipeline.trained_layouts import check_anchored_layout


def around_keyframes(pipe, req: Request, pixels: dict, control, progress: bool):
    """Keyframes at layout.anchored_positions (the user's, the clip's ends and, where a stretch is too long, evenly
    spaced ones), the missing ones sampled by the keyframe part in one pass with the user's known, then every
    stretch filled at its own gap; returns text_to_video's (frames, fps)."""
    total, anchors, batch = anchored_span(req.layout), sorted(pixels), len(req.seeds)  # a short clip: lifted
    positions = check_anchored_layout(anchors, total, req.layout.keyframe_stride, pipe.config.interpolation.max_gap,
                                      pipe.trained.get("keyframes"), pipe.trained.get("interpolation"),
                                      req.force_layout)
    latents = torch.zeros((batch, *pipe._latent_shape(req, total)))  # (B,C,F,h,w)
    for index, image in pixels.items():
        latents[:, :, index] = pipe.vae.encode_frames(image[None].to(pipe._device))[:, :, 0].cpu().float()
    sampled = [p for p in positions if p not in pixels]  # keyframes the keyframe part makes
    spans = [(a, b - a) for a, b in zip(positions, positions[1:]) if b - a > 1]
    with pipe._timeline(req, [[0]] if sampled else [], progress, control=control, spans=spans) as timeline:
        if sampled:
            known_mask = torch.zeros(batch, len(positions))
            known_mask[:, [positions.index(a) for a in anchors]] = 1.0
            shape = pipe._latent_shape(req, len(positions))
            latents[:, :, positions] = timeline.keyframes(shape, "keyframes", latents[:, :, positions], known_mask,
                                                          positions=positions)
        latents = timeline.fill_spans(latents, spans, "interp")
    frames = pipe._decode(latents, progress)  # (B,F,H,W,3)
    for index, image in pixels.items():
        frames[:, index] = image
    return req.unbatch(frames[:, : req.layout.output_frames]), req.fps  # a lifted short clip: cut to the ask
