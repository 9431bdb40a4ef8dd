"""The Accelerator a training run works through: the launcher's settings checked and overruled where the training
config decides (mixed precision, gradient accumulation), the process group's timeout, and the plain module under
what prepare() wraps the model in (DDP, torch.compile)."""
from __future__ import annotations

import logging

import torch

from vidiff.training.config import TrainConfig
from vidiff.training.sharding import check_launch_settings

log = logging.getLogger(__name__)


def make_accelerator(cfg: TrainConfig):
    import os

    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin

    check_launch_settings()  # before Accelerate acts on them
    precision = cfg.train.mixed_precision
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()  # accelerate config / --mixed_precision
    if launcher not in ("no", precision) and os.environ.get("RANK", "0") == "0":
        # Accelerator(mixed_precision=...) overrides the launcher's: say so rather than run in another precision
        log.warning("the launcher's mixed precision %s (accelerate config or --mixed_precision) is not used: the "
                    "training config's train.mixed_precision decides (%s); to train in %s, --set "
                    "train.mixed_precision=%s", launcher, precision, launcher, launcher)
    if precision == "bf16" and not torch.cuda.is_available():
        from vidiff.cpu_precision import cpu_dtype

        # a shipped config's bf16 is for CPUs with bf16 kernels (AMX, AVX-512); emulated it runs ~60x slower
        precision = "bf16" if cpu_dtype(torch.bfloat16, "train.mixed_precision=bf16") == torch.bfloat16 else "no"
    # Without CUDA, force the CPU path: under `accelerate launch --multi_gpu` this gives a gloo process group.
    accum = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")  # accelerate's env, or a DeepSpeed config's
    if accum not in (None, str(cfg.train.grad_accum)) and os.environ.get("RANK", "0") == "0":
        # Accelerator(gradient_accumulation_steps=...) gave way to it: the accelerator synced and stepped on its own
        # count while the loop ran train.grad_accum micro-steps a step (UnboundLocalError at the first step)
        log.warning("the launcher's gradient accumulation %s (ACCELERATE_GRADIENT_ACCUMULATION_STEPS) is not used: "
                    "the training config's train.grad_accum decides (%d)", accum, cfg.train.grad_accum)
    handlers = []
    if cfg.train.process_timeout_s is not None:  # else the backend's default wait for a silent process (gloo 30 min)
        from datetime import timedelta

        from accelerate import InitProcessGroupKwargs

        handlers.append(InitProcessGroupKwargs(timeout=timedelta(seconds=cfg.train.process_timeout_s)))
    accelerator = Accelerator(mixed_precision=precision, kwargs_handlers=handlers, cpu=not torch.cuda.is_available(),
                              gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=cfg.train.grad_accum))
    if cfg.train.mixed_precision == "fp16" and accelerator.scaler is None and accelerator.is_main_process:
        # Accelerate has no fp16 autocast or loss scaler on CPU: say so instead of training in fp32 silently
        log.warning("train.mixed_precision=fp16 needs a CUDA device; on %s this run computes in fp32 (bf16 does "
                    "run on CPU)", accelerator.device)
    note = cpu_processes_note(accelerator.num_processes, torch.cuda.is_available())
    if note and accelerator.is_main_process:
        log.warning(note)
    return accelerator


def cpu_processes_note(processes: int, cuda: bool) -> str | None:
    """Processes launched for GPUs that found none train on the CPU: configs/accelerate/ddp.yaml's 8 ran as 8 CPU
    processes on a 2-core machine without a word. None where nothing is worth saying."""
    import os

    if processes < 2 or cuda:
        return None
    from vidiff.cpu_precision import usable_cores

    cores = usable_cores() or 1
    for_gpus = os.environ.get("ACCELERATE_USE_CPU", "").lower() == "false"  # --multi_gpu, or a config's use_cpu: false
    if not for_gpus and processes <= cores:
        return None
    why = " (the launch was for GPUs: --multi_gpu or an accelerate config with use_cpu: false)" if for_gpus else ""
    crowd = (f"; {processes} processes share {cores} CPU cores, so each step is slower than with {cores} or fewer"
             if processes > cores else "")
    return f"no GPU here: the {processes} processes train on the CPU{why}{crowd}"


def prepare_for_accelerate(accelerator, model, optimizer, sharded: bool):
    """(model, optimizer) through Accelerate. A model this loop sharded itself is not handed over; its optimizer
    is wrapped alone with prepare_optimizer: on GPUs Accelerate's FSDP2 mode refuses prepare(optimizer) without
    its model (it would shard the model again), while on CPU the same launch is plain MULTI_CPU and accepts it."""
    if sharded:
        return model, accelerator.prepare_optimizer(optimizer)
    return accelerator.prepare(model, optimizer)


def plain_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module under what prepare() wrapped it in: torch.compile's wrapper (a launcher's dynamo_backend) and
    DDP. Not accelerator.unwrap_model(model, keep_torch_compile=False): the keyword came in Accelerate 1.3, and
    pyproject allows 0.30, where it was a TypeError at every run's start; before 1.3 the unwrap also kept the compiled
    wrapper and pointed it at the bare module, so the training forward lost DDP's gradient sync."""
    from torch._dynamo.eval_frame import OptimizedModule
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if isinstance(model, OptimizedModule):
            model = model._orig_mod
        elif isinstance(model, (DistributedDataParallel, DataParallel)):
            model = model.module
        else:
            return model
