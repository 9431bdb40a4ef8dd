"""Direction pairs for the Shapes keyframe stage (`conditioning.direction_pairs_from_step`): from that step on,
half of each batch is the other half played backwards, its caption saying the opposite direction.

A Shapes object moves in a straight line at a constant speed, so a clip reversed in time is a true clip of the
opposite direction, and with a per-frame encoder its latents are the reversed latents. A partner shares its
original's random draws (known pattern, sigma, noise, caption wording) and, where the layout leaves room, its first
keyframe: the two inputs then differ in the direction word alone while the targets move apart, which is the signal
a model needs to learn the sign of a direction word rather than only its axis.
"""
from __future__ import annotations

import torch

from vidiff.random import SampleDraws
from vidiff.training.sample_stream import take_rows


def pair_batch(batch: dict, draws: SampleDraws) -> tuple[dict, SampleDraws, torch.Tensor]:
    """The batch's first ceil(n/2) samples, then the first n - ceil(n/2) of them reversed in time with the opposite
    direction in their stored caption. Returns (batch, draws, partner (n,) bool: True for the reversed rows)."""
    from vidiff.data.shapes import OPPOSITE_DIRECTION, parse_caption, prompt_for

    n = len(draws)
    m = (n + 1) // 2
    rows = list(range(m)) + list(range(n - m))
    partner = torch.tensor([False] * m + [True] * (n - m))
    out = take_rows(batch, n, rows)
    clips = "latents" if "latents" in out else "video"
    out[clips][m:] = out[clips][m:].flip(2)  # (B, C, F, h, w): time is dim 2; take_rows copied the rows
    captions = list(out["caption"])
    for i in range(m, n):
        colour, shape, direction = parse_caption(captions[i])
        if None in (colour, shape, direction):
            raise ValueError(f"conditioning.direction_pairs_from_step: caption {captions[i]!r} does not name a Shapes colour, "
                             "shape and direction")
        captions[i] = prompt_for(colour, shape, OPPOSITE_DIRECTION[direction])
    out["caption"] = captions
    return out, draws.rows(rows), partner


def start_range(total: int, span: int, paired: bool) -> tuple[int, int]:
    """Inclusive range of a window's first frame in a clip of `total` frames. With pairs, the first keyframe is
    drawn where the window fits both forwards and backwards from it (when the clip is long enough), so that a
    reversed partner starts from the same frame."""
    if paired and 2 * span <= total - 1:
        return span, total - 1 - span
    return 0, total - 1 - span


def partner_starts(starts: list[int], partner: torch.Tensor, total: int, span: int) -> list[int]:
    """Starts in the reversed clips of the partner rows (which drew their original's start `a`): the reversed
    frame of `a` (the partner begins where its original begins, moving the other way) when it leaves room for the
    window; else the window of the original's frames played backwards."""
    out = []
    for a, is_partner in zip(starts, partner.tolist()):
        if not is_partner:
            out.append(a)
        elif a >= span:
            out.append(total - 1 - a)
        else:
            out.append(total - 1 - (a + span))
    return out
