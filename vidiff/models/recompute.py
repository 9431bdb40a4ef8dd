"""Activation recompute: a memory-for-time trade inside the blocks, switched per model.

ResBlock and TemporalConv recompute GroupNorm+SiLU in backward from its input, and GEGLU recomputes its gated
activation, instead of keeping those tensors for backward: less activation memory (what a GPU run of a large model
is short of), for more work per step. A small model on a CPU has memory to spare and the work is the cost: the
Shapes recipes' training steps run 10-16% faster with it off (docs/training.md). The values are the same either way.
Not to be confused with `gradient_checkpointing`, which recomputes whole layers.
"""
from __future__ import annotations

from torch import nn


def set_activation_recompute(model: nn.Module, enabled: bool) -> int:
    """Sets the trade on every block of `model` that offers it; returns how many blocks it reached."""
    reached = 0
    for module in model.modules():
        if hasattr(type(module), "recompute_activations"):
            module.recompute_activations = bool(enabled)
            reached += 1
    return reached
