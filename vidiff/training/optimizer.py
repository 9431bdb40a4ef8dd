"""The AdamW the loop trains with, on torch's fused kernel where that kernel is safe.

torch's AdamW loops over the parameters in Python on CPU unless asked for `foreach` or `fused` (its default picks
foreach on CUDA only). The fused kernel does the whole update in one pass: on the 3 M-parameter keyframe model
7 ms a step against 27-30 ms on one CPU thread, the same weights to 1e-7 after 20 steps
(tools/bench_optimizer_step.py). It walks each parameter and its gradient as flat memory, though, so a gradient
laid out otherwise than its parameter (say a DDP bucket view of a channels-last weight) would be applied to the
wrong elements; `align_gradients` copies such a gradient into its parameter's layout before each step.
"""
from __future__ import annotations

import torch


def adamw_implementation(params: list[torch.Tensor], *, sharded: bool, loss_scaling: bool) -> dict[str, bool]:
    """The AdamW flags for these parameters: fused for plain fp32 tensors on CPU or CUDA, else foreach (FSDP's
    DTensor shards, an fp16 loss scaler, other devices or dtypes: the paths torch has long supported there)."""
    # a model's weights are Parameters; a Parameter of an FSDP shard is a DTensor, which this leaves out
    plain = all(type(p) in (torch.Tensor, torch.nn.Parameter) and p.dtype == torch.float32
                and p.device.type in ("cpu", "cuda") for p in params)
    if plain and not sharded and not loss_scaling:
        return {"fused": True, "foreach": False}
    return {"fused": False, "foreach": True}


def keep_implementation(optimizer: torch.optim.Optimizer, flags: dict[str, bool]) -> None:
    """After `load_state_dict`: a checkpoint's param groups carry the flags of the run that wrote it, and would
    otherwise switch a resumed run back to that run's implementation."""
    for group in optimizer.param_groups:
        group.update(flags)


def align_gradients(params: list[torch.Tensor]) -> None:
    """Gives each gradient its parameter's memory layout where the two differ (the fused kernel needs it)."""
    for p in params:
        g = p.grad
        if g is not None and g.stride() != p.stride():
            p.grad = torch.empty_like(p).copy_(g)
