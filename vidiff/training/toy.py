"""The `toy` stage: a tiny synthetic denoising regression that exercises the whole loop in milliseconds.

Used by the tests and by tools/kill_resume_stress.py, where the real stages would be too slow to kill and
resume dozens of times. Item i is a fixed random vector; the model learns to recover it from a noisy copy, with
the noise level and noise drawn per sample (so per-sample randomness is part of every loss). `inf_grad_steps`
/ `nan_loss_steps` inject faults at chosen steps for the non-finite guard tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidiff.parts import save_part
from vidiff.random import SampleDraws, derive_seed


@dataclass(frozen=True)
class ToyConfig:
    dim: int = 16  # feature size
    width: int = 64  # hidden width of the MLP
    inf_grad_steps: tuple[int, ...] = ()  # steps whose gradients are replaced by +inf (fault injection)
    nan_loss_steps: tuple[int, ...] = ()  # steps whose loss is NaN (fault injection)
    sleep_s: float = 0.0  # extra seconds per step, so a stress test can kill at a chosen moment
    dropout: float = 0.0  # dropout on the hidden layer (draws from the global RNG, which the loop keys per step)
    # several processes: the process of rank fault_rank kills itself (SIGKILL) or hangs at these steps
    fault_rank: int = 1
    die_at_step: int = -1
    stall_at_step: int = -1


class ToyNet(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.dim + 1, cfg.width), nn.SiLU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.width, cfg.dim))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, sigma[:, None].log()], dim=1)  # (B, dim + 1)
        return x + self.net(h)  # residual: the estimate of the clean vector


class _InfGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, float("inf"))


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, num: int, dim: int, seed: int = 0):
        self.num, self.dim, self.seed = num, dim, seed

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(derive_seed(self.seed, index, "toy-item"))
        return {"x": torch.randn(self.dim, generator=g), "index": index}


class ToyStage:
    """The stage protocol (see loop.py): model, dataset, loss(model, batch, draws, step), export, preview."""

    def __init__(self, cfg):
        self.model_cfg = cfg.model_config()
        self.model = ToyNet(self.model_cfg)
        self.dataset = ToyDataset(cfg.data.num_samples, self.model_cfg.dim)
        self.preview = None  # nothing to look at

    def to(self, device) -> "ToyStage":
        return self

    def loss(self, model, batch: dict, draws: SampleDraws, step: int) -> torch.Tensor:
        import os
        import signal
        import time

        if self.model_cfg.sleep_s:
            time.sleep(self.model_cfg.sleep_s)
        c = self.model_cfg
        if step in (c.die_at_step, c.stall_at_step) and int(os.environ.get("RANK", "0")) == c.fault_rank:
            if step == c.die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(3600)  # a hung process: the others wait at the step's collective
        x0 = batch["x"]  # (B, dim)
        sigma = (draws.randn((), "sigma") * 0.5 - 1.0).exp().to(x0.device)  # (B,) log-normal noise level
        noise = draws.randn(tuple(x0.shape[1:]), "noise", device=x0.device)  # (B, dim)
        denoised = model(x0 + sigma[:, None] * noise, sigma)
        if step in self.model_cfg.inf_grad_steps:
            denoised = _InfGrad.apply(denoised)
        per_sample = ((denoised - x0) ** 2).mean(dim=1)  # (B,)
        if step in self.model_cfg.nan_loss_steps:
            per_sample = per_sample * float("nan")
        return per_sample

    def export(self, folder, state_dict: dict) -> None:
        save_part(folder, self.model_cfg, state_dict)
