"""Fine-tuning: start a part from saved weights (`init_weights`) and keep some of its parameters fixed
(`train.freeze`). The case it is made for: a VAE's decoder gains temporal layers and learns them on clips while
the encoder, and so the latent space the diffusion models were trained in, stays exactly as it was.
"""
from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn

from vidiff.config import ConfigError
from vidiff.errors import InputError
from vidiff.parts import WEIGHTS_NAME, check_safetensors_header, load_part_config, load_part_weights, mismatched_names

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


def load_start_part(module: nn.Module, folder: str, config_cls: type):
    """`init_weights`: the part folder's config (a run folder, a part of another kind: one line) and its weights
    copied into `module` (load_initial_weights). A part of another model, e.g. other widths, is refused from the
    file's header before any weights load, naming the config keys in which it differs (it was named by a tensor
    the model lacks, "weights the model does not have: ['down.1.0.res.skip.bias', ...]"). Returns (config,
    names of the tensors that keep their initialisation)."""
    start = load_part_config(folder, config_cls)
    saved = check_safetensors_header(f"{folder}/{WEIGHTS_NAME}")
    _, unexpected, resized = mismatched_names(module.state_dict(), saved)
    differing = _shape_keys(module, start, saved) if unexpected or resized else []
    if differing:
        raise InputError(f"init_weights {folder}: a part of another model, its weights cannot start this one "
                         f"({'; '.join(differing)})")
    return start, load_initial_weights(module, load_part_weights(folder), folder)


def _shape_keys(module: nn.Module, start, saved: dict) -> list[str]:
    """The config fields in which `start` differs from `module.config` that change the tensors `saved` names
    ({name: shape}), e.g. "block_out_channels: [16, 32] in the part, [16, 16] in this run": each is tried alone
    on a model built on the meta device (no memory). A field that only adds layers to the model (their tensors
    keep their initialisation) is not one; a value this config cannot take with the others is."""
    def shapes(config) -> dict:
        with torch.device("meta"):
            tensors = type(module)(config).state_dict()
        return {name: tuple(tensors[name].shape) if name in tensors else None for name in saved}

    here = module.config
    base, keys = shapes(here), []
    for field in dataclasses.fields(here):
        theirs, ours = getattr(start, field.name, None), getattr(here, field.name)
        if theirs is None or theirs == ours:
            continue
        try:
            changes = shapes(dataclasses.replace(here, **{field.name: theirs})) != base
        except (ConfigError, ValueError):
            changes = True
        if changes:
            keys.append(f"{field.name}: {_plain(theirs)} in the part, {_plain(ours)} in this run")
    return keys


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


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
