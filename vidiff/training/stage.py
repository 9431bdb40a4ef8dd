"""The one protocol every training stage offers the loop (vidiff/training/loop.py).

The vae, keyframes and interpolation stages (stages.py) and the test-only toy stage (toy.py) implement it; the
loop owns everything else (data order, per-sample randomness, optimizer, LR, EMA, the non-finite guard,
checkpoints, metrics and previews), so a new stage is a new class, not a new loop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import torch

from vidiff.random import SampleDraws


@runtime_checkable
class Stage(Protocol):
    model: torch.nn.Module  # what trains; forward returns the per-sample loss (B,), so DDP / FSDP see one call
    dataset: torch.utils.data.Dataset  # map-style; items are dicts of tensors / strings
    preview: Callable[[torch.nn.Module, Path, int], None] | None  # (EMA model, folder, step) -> writes a preview

    def to(self, device) -> Stage:
        """Where frozen helpers (text encoder, VAE) load on first use."""

    def loss(self, model: torch.nn.Module, batch: dict, draws: SampleDraws, step: int) -> torch.Tensor:
        """Per-sample loss (B,) of one local batch; every random draw comes from `draws`."""

    def export(self, folder: Path, state: dict) -> None:
        """Writes the trained part (EMA weights `state`) as a part folder."""
