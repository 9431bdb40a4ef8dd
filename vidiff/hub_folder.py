"""Weights files of a model folder laid out as the Hugging Face Hub ships them (transformers' `model`, diffusers'
`diffusion_pytorch_model`): one safetensors file, a shard index, or only a variant of either (save_pretrained(
variant="fp16") writes `model.fp16.safetensors` / `model.safetensors.index.fp16.json`). Safetensors only."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vidiff.errors import InputError


@dataclass(frozen=True)
class HubWeights:
    path: Path  # the safetensors file, or the shard index
    variant: str | None  # "fp16" for model.fp16.safetensors; None for the plain name

    def files(self) -> list[Path]:
        """The safetensors files holding the tensors: the file itself, or the index's shards in name order."""
        if self.path.name.endswith(".safetensors"):
            return [self.path]
        from vidiff.limits import short_repr
        from vidiff.safe_yaml import read_text

        try:
            weight_map = json.loads(read_text(self.path, str(self.path), max_bytes=64 << 20))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            if isinstance(e, InputError) or type(e).__name__ == "ConfigError":  # read_text's own message
                raise InputError(str(e)) from None
            raise InputError(f"{self.path}: not a shard index (a JSON object with weight_map: "
                             f"{{tensor: file}}): {short_repr(str(e), 80)}") from None
        if not names:  # an empty weight_map loaded no tensor at all, and the error came from elsewhere
            raise InputError(f"{self.path}: the shard index names no shard")
        bad = [n for n in names if not isinstance(n, str) or Path(n).name != n or not n.endswith(".safetensors")]
        if bad:  # a shard outside the folder, or a pickle one, is never read
            raise InputError(f"{self.path}: shard {short_repr(bad[0], 80)} is not a .safetensors file in the folder")
        missing = [n for n in names if not (self.path.parent / n).is_file()]
        if missing:
            raise InputError(f"{self.path}: shard {missing[0]} is missing")
        return [self.path.parent / n for n in names]


def find_weights(folder: Path, stem: str) -> HubWeights | None:
    """The safetensors weights `stem` of a Hub folder (plain name first, then the one variant present); None when
    there are none. Two variants and no plain file is an InputError naming them (which one is meant is not known)."""
    for name in (f"{stem}.safetensors", f"{stem}.safetensors.index.json"):
        if (folder / name).is_file():
            return HubWeights(folder / name, None)
    # model.fp16.safetensors; its index model.safetensors.index.fp16.json, or diffusers' older
    # diffusion_pytorch_model.safetensors.fp16.index.json (still loaded by diffusers, with a deprecation warning)
    pattern = re.compile(rf"{re.escape(stem)}(?:\.safetensors\.index\.(\w+)\.json|\.safetensors\.(\w+)\.index\.json"
                         rf"|\.(\w+)\.safetensors)")
    found = {}
    for path in sorted(folder.glob(f"{stem}.*")):
        match = pattern.fullmatch(path.name)
        if match and path.is_file():
            variant = next(group for group in match.groups() if group)
            if variant not in found or path.name.endswith(".safetensors"):  # a whole file over an index, as for the
                found[variant] = HubWeights(path, variant)  # plain name and as transformers picks them
    if len(found) > 1:
        raise InputError(f"{folder}: several weight variants ({', '.join(sorted(found))}) and no {stem}.safetensors; "
                         "keep the one to use")
    return next(iter(found.values()), None)


def refuse_pipeline_root(folder: Path, component: str) -> None:
    """InputError naming the subfolder when `folder` is a whole diffusers pipeline (model_index.json with
    text_encoder/, tokenizer/, vae/ ..., as a Stable Diffusion repository is laid out) given for one of its models."""
    if is_pipeline_root(folder):
        sub = folder / component
        where = f"give its {component}/ subfolder: {sub}" if sub.is_dir() else f"it has no {component}/ subfolder"
        raise InputError(f"{folder}: a diffusers pipeline folder (model_index.json), not one model; {where}")


def is_pipeline_root(folder: Path) -> bool:
    """Whether `folder` is a whole diffusers pipeline (model_index.json and no model config.json of its own)."""
    return (folder / "model_index.json").is_file() and not (folder / "config.json").exists()
