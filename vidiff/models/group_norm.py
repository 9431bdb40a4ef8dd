"""GroupNorm with a faster path for half precision on the CPU.

oneDNN's channels-last GroupNorm in bf16 / fp16 is several times slower than the same tensor normalised in the
contiguous layout when its planes are small (the U-Net at 16 x 16 latents and below): on a Xeon with AMX, one thread,
(32, 32, 16, 16) in bf16 took 4.8 ms channels-last against 0.4 ms through the contiguous layout, copies included
(docs/benchmarks.md, "bf16 on a CPU: the norms and the attention"). Larger planes (the VAE at 64 x 64, real footage)
are faster channels-last, and so is fp32; those take nn.GroupNorm's own path. The values are the same either way:
only the memory order of the computation differs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# planes of at most this many positions take the contiguous layout: 16 x 16 latents and below (at 32 x 32,
# channels-last was already the faster)
SMALL_PLANE = 256
_HALF = (torch.bfloat16, torch.float16)


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm (the same parameters and state dict), through the contiguous layout for a small half-precision
    channels-last tensor on the CPU (the module's doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.ndim == 4 and x.dtype in _HALF and x.shape[2] * x.shape[3] <= SMALL_PLANE
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
            out = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return out.contiguous(memory_format=torch.channels_last)
        return super().forward(x)
