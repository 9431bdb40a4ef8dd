"""Learning-rate schedule: linear warm-up, then optional cosine decay; a pure function of the optimizer step.

The loop counts *taken* optimizer steps (skipped non-finite steps do not advance it) and sets the LR from
this function, so there is no scheduler object whose state must be checkpointed.
"""
from __future__ import annotations

import math

from vidiff.training.config import OptimizerSection


def lr_at(opt_step: int, cfg: OptimizerSection, max_steps: int) -> float:
    """LR for the optimizer step with 0-based index `opt_step` (warm-up reaches the peak at warmup_steps)."""
    if cfg.warmup_steps > 0 and opt_step < cfg.warmup_steps:
        return cfg.lr * (opt_step + 1) / cfg.warmup_steps
    if not cfg.cosine_decay:
        return cfg.lr
    span = max(1, max_steps - cfg.warmup_steps)
    t = min(1.0, (opt_step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
