"""Process checks and sharded training (FSDP2: `torch.distributed.fsdp.fully_shard`) for the training loop.

Why the loop shards the model itself: Accelerate (1.15) turns the launcher's ACCELERATE_USE_FSDP into
DistributedType.FSDP only on GPU-like devices. On CPU it sets up MULTI_CPU (gloo) and `prepare(model)` would wrap
the model in DDP, silently unsharded. So whenever the launcher asks for FSDP (`accelerate launch --config_file
configs/accelerate/fsdp.yaml`), the loop applies `fully_shard` itself, on CPU and CUDA alike (one path, tested here
with 2 gloo processes), and uses the accelerator only for the process group, device, autocast, backward,
accumulation, clipping and gather. Settings read from the launcher: FSDP_MIN_NUM_PARAMS (a submodule holding at
least that many parameters not already in a smaller group becomes its own group), FSDP_RESHARD_AFTER_FORWARD.

Under sharding every parameter is a DTensor holding this rank's shard. The EMA shadow is kept the same way (an
elementwise update needs no communication); `full_state` gathers DTensors into plain CPU tensors (a collective:
every rank calls it, rank 0 writes), and `like` scatters full tensors back into the sharded layout on resume.
"""
from __future__ import annotations

import logging
import os
import re

import torch

from vidiff.errors import InputError

log = logging.getLogger(__name__)


def _flag(env, name: str, default: str = "false") -> bool:
    return env.get(name, default).strip().lower() in ("1", "true", "yes")


def check_processes(accelerator, env=None) -> None:
    """Refuses a run whose launcher started more (or fewer) processes than the accelerator joined: each
    would train alone and all would write the same run folder. Also refuses DeepSpeed (untested here)."""
    env = os.environ if env is None else env
    launched = int(env.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise InputError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but Accelerate set up "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): each would train alone into the same "
            "run folder. On CPU launch with `accelerate launch --multi_gpu --num_processes N` (DDP, gloo) or "
            "configs/accelerate/fsdp.yaml; on GPUs check that every process sees a CUDA device")
    # `accelerate launch --cpu` runs the script once with Accelerate's simple launcher whatever --num_processes
    # says; with more than one asked it sets MASTER_ADDR and no WORLD_SIZE, and the run trained alone, unsaid
    if (accelerator.num_processes == 1 and "WORLD_SIZE" not in env and "MASTER_ADDR" in env
            and _flag(env, "ACCELERATE_USE_CPU")):
        raise InputError("`accelerate launch --cpu` started one process, whatever --num_processes asked (Accelerate "
                         "runs a --cpu launch once); for N processes on CPU launch `accelerate launch --multi_gpu "
                         "--num_processes N` without --cpu (DDP, gloo), for one drop --num_processes")
    if str(accelerator.distributed_type).endswith("DEEPSPEED") or _flag(env, "ACCELERATE_USE_DEEPSPEED"):
        check_launch_settings({"ACCELERATE_USE_DEEPSPEED": "true"})


def check_launch_settings(env=None) -> None:
    """Refuses, before the Accelerator is built, what the launcher asks that `vidiff train` does not do: Accelerate
    acts on these settings while it is set up, so an FSDP config with fsdp_version 1 or fsdp_cpu_ram_efficient_loading,
    or DeepSpeed without the package, stopped there with its own traceback ("FSDP parameter initialization with
    `sync_module_states=True` is not supported on cpu") before these refusals were met."""
    env = os.environ if env is None else env
    if _flag(env, "ACCELERATE_USE_DEEPSPEED"):
        raise InputError("DeepSpeed is not supported by `vidiff train` (docs/training.md, 'DeepSpeed'): use "
                         "configs/accelerate/fsdp.yaml for sharded training or configs/accelerate/ddp.yaml")
    if not fsdp_requested(env):
        return
    if _flag(env, "FSDP_OFFLOAD_PARAMS"):
        raise InputError("fsdp_offload_params: parameter offloading is not supported by `vidiff train`; set it "
                         "to false in the accelerate config")
    if env.get("FSDP_VERSION", "2") != "2":
        raise InputError(f"fsdp_version: {env.get('FSDP_VERSION')}: `vidiff train` shards with FSDP2; set "
                         "fsdp_version: 2 in the accelerate config")
    policy = env.get("FSDP_AUTO_WRAP_POLICY", "SIZE_BASED_WRAP")
    if policy not in ("SIZE_BASED_WRAP", "NO_WRAP"):
        raise InputError(f"fsdp_auto_wrap_policy: {policy}: `vidiff train` supports SIZE_BASED_WRAP and NO_WRAP")
    # With FSDP2 Accelerate accepts it, but transformers then loads the text encoder's weights in local rank 0
    # only, leaving the other processes' empty for an FSDP broadcast this loop never makes (it shards the U-Net
    # itself); with fsdp_version 1 Accelerator() stopped on CPU ("sync_module_states=True is not supported on cpu").
    if _flag(env, "FSDP_CPU_RAM_EFFICIENT_LOADING"):
        raise InputError("fsdp_cpu_ram_efficient_loading: true: `vidiff train` builds the whole model in every "
                         "process and shards it itself (FSDP2, docs/training.md), and with it transformers would "
                         "load the text encoder in one process only; set it to false in the accelerate config "
                         "(`accelerate launch --use_fsdp` sets it true unless told)")


def peer_failure(error: BaseException, processes: int) -> str | None:
    """What a collective's error says of the other processes, in words, or None when it is not about them. gloo
    raises a plain RuntimeError ("Connection closed by peer", "Timed out waiting 8000ms for recv"), NCCL a
    DistBackendError; both came out as a page of traceback on the process left running."""
    if processes < 2:
        return None
    text = str(error)
    timed_out = re.search(r"Timed out waiting (\d+)ms", text)
    if timed_out:
        return f"the others did not answer within {int(timed_out.group(1)) / 1000:g} s (train.process_timeout_s)"
    if any(s in text for s in ("Connection closed by peer", "Connection reset by peer")):
        return "the connection to the others closed"
    dist_error = getattr(torch.distributed, "DistError", None)
    if (dist_error is not None and isinstance(error, dist_error)) or "/gloo/" in text:
        return f"a collective with the others failed ({text.splitlines()[0][:160] if text else type(error).__name__})"
    return None


def fsdp_requested(env=None) -> bool:
    """True when the launcher asks for FSDP (an `accelerate launch` config with distributed_type FSDP)."""
    return _flag(os.environ if env is None else env, "ACCELERATE_USE_FSDP")


def shard_model(model: torch.nn.Module, device: torch.device, world: int, env=None) -> list[str]:
    """Applies fully_shard in place: size-based groups bottom-up, then the root. Returns the group names."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    env = os.environ if env is None else env
    check_launch_settings({**env, "ACCELERATE_USE_FSDP": "true"})  # make_accelerator did, for the launcher's env
    policy = env.get("FSDP_AUTO_WRAP_POLICY", "SIZE_BASED_WRAP")
    min_params = int(env.get("FSDP_MIN_NUM_PARAMS", "100000000")) if policy == "SIZE_BASED_WRAP" else None
    reshard = _flag(env, "FSDP_RESHARD_AFTER_FORWARD", "true")
    mesh = init_device_mesh(device.type, (world,))
    for p in model.parameters():  # fully_shard needs contiguous parameters (the U-Net keeps convs channels-last)
        if not p.is_contiguous():
            p.data = p.data.contiguous()
    groups: list[str] = []

    def visit(name: str, module: torch.nn.Module) -> int:
        """Parameters under `module` not yet in a group; makes `module` a group when they reach min_params."""
        n = sum(visit(f"{name}.{child_name}".lstrip("."), child) for child_name, child in module.named_children())
        n += sum(p.numel() for p in module.parameters(recurse=False))
        # containers have no forward of their own, so nothing would gather their parameters
        container = isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict))
        if module is not model and min_params is not None and n >= min_params and not container:
            fully_shard(module, mesh=mesh, reshard_after_forward=reshard)
            groups.append(name)
            return 0
        return n

    visit("", model)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard)
    log.info("FSDP2 over %d processes: %d groups + the root (%s)", world, len(groups), ", ".join(groups[:8]))
    return groups


def is_sharded(t) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A DTensor gathered into a plain tensor (collective); any other tensor as it is."""
    return t.full_tensor() if is_sharded(t) else t


def full_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain CPU tensors of a (possibly sharded) state dict; every rank must call it, in the same order."""
    return {k: full_tensor(v.detach()).cpu() for k, v in state.items()}


def like(full: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`full` in the layout of `target`: this rank's shard when target is a DTensor of the same shape, else its
    memory layout (a checkpoint stores AdamW's moments contiguous, a channels-last conv weight is not, and the
    fused AdamW walks a parameter and its moments as flat memory: restored contiguous, a resumed run's second
    step mixed up elements and its losses left the uninterrupted run's)."""
    if tuple(full.shape) != tuple(target.shape):
        return full
    if is_sharded(target):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(full.to(target.device, target.dtype), target.device_mesh, target.placements)
    if full.stride() != target.stride():
        return torch.empty_like(target, dtype=full.dtype, device=full.device).copy_(full)
    return full


def shard_optimizer_state(state: dict, optimizer: torch.optim.Optimizer) -> dict:
    """A full (gathered) optimizer state dict laid out like the optimizer's parameters (sharded, or their strides)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    per_param = {pid: {key: (like(v, params[pid]) if torch.is_tensor(v) else v) for key, v in entry.items()}
                 for pid, entry in state["state"].items()}
    return {"state": per_param, "param_groups": state["param_groups"]}
