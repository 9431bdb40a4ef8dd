"""Fine-tuning: start a part from saved weights (`init_weights`) and keep some of its parameters fixed
(`train.freeze`). The case it is made for: a VAE's decoder gains temporal layers and learns them on clips while
the encoder, and so the latent space the diffusion models were trained in, stays exactly as it was.
"""
from __future__ import annotations

import logging

from torch import nn

from vidiff.config import ConfigError
from vidiff.errors import InputError
from vidiff.parts import mismatched_names

log = logging.getLogger("vidiff.train")


def load_initial_weights(module: nn.Module, weights: dict, where: str) -> list[str]:
    """Copies `weights` into `module`. Every saved tensor must exist in the module with the same shape; module
    parameters the file lacks (layers the new model adds) keep their initialisation. Returns their names."""
    expected = module.state_dict()
    missing, unexpected, resized = mismatched_names(expected, weights)
    if unexpected:
        raise InputError(f"init_weights {where}: weights the model does not have: {unexpected[:5]}"
                         f"{' ...' if len(unexpected) > 5 else ''}")
    if resized:
        key = resized[0]
        raise InputError(f"init_weights {where}: {key} has shape {tuple(weights[key].shape)}, the model "
                         f"{tuple(expected[key].shape)}")
    module.load_state_dict(weights, strict=False)
    if missing:
        log.info("init_weights %s: %d tensors not in the file keep their initialisation (%s%s)", where,
                 len(missing), ", ".join(missing[:3]), " ..." if len(missing) > 3 else "")
    return missing


def freeze_parameters(module: nn.Module, prefixes: tuple[str, ...]) -> int:
    """Sets requires_grad=False on parameters whose name starts with one of `prefixes` (a whole name component:
    `encoder` matches `encoder.conv_in.weight`, not `encoder2.x`). Returns how many tensors were frozen."""
    params = dict(module.named_parameters())
    for prefix in prefixes:
        if not any(_under(name, prefix) for name in params):
            raise ConfigError(f"train.freeze: {prefix!r} names no parameter of the model (top-level names: "
                              f"{sorted({n.split('.')[0] for n in params})})")
    frozen = [p for name, p in params.items() if any(_under(name, prefix) for prefix in prefixes)]
    for p in frozen:
        p.requires_grad_(False)
    return len(frozen)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")
