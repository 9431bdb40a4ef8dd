"""A saved model part: a folder with `config.yaml` (the typed config) and `model.safetensors` (the weights).

Pipelines are folders of parts (vae/, keyframes/, interpolation/). Weights are safetensors only: nothing here ever
unpickles, and a file's header is checked before any weights load (check_safetensors_header).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

from vidiff.config import ConfigError, from_dict, to_dict
from vidiff.errors import InputError
from vidiff.limits import short_repr

T = TypeVar("T")
CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.safetensors"
TRAINED_NAME = "trained_on.yaml"  # what the part was trained on (vidiff/pipeline/trained.py); optional
PART_FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINED_NAME)
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")  # safetensors dtypes a part's weights may be saved in


def save_part(folder: str | Path, config, state_dict: dict) -> Path:
    """Writes config.yaml + model.safetensors into `folder` (each written to a temporary name, then renamed)."""
    import yaml
    from safetensors.torch import save

    from vidiff.output_safety import write_bytes, write_text

    folder = Path(folder).expanduser()  # "~/vae", as save_pretrained writes "~/my-pipe"
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    write_bytes(folder / WEIGHTS_NAME, save(tensors))  # random O_EXCL | O_NOFOLLOW temporary, fsync, rename
    write_text(folder / CONFIG_NAME, yaml.safe_dump(to_dict(config), sort_keys=False))
    return folder


def load_part_config(folder: str | Path, config_cls: type[T]) -> T:
    """Reads and validates the config of a part folder (cheap: no weights are touched)."""

    folder = Path(folder).expanduser()
    path = folder / CONFIG_NAME
    refuse_diffusers_folder(folder)
    refuse_run_folder(folder)
    if not path.is_file():
        raise InputError(f"{folder}: not a model part folder (missing {CONFIG_NAME})")
    if not (folder / WEIGHTS_NAME).is_file():
        raise InputError(f"{folder}: missing {WEIGHTS_NAME}")
    from vidiff.safe_yaml import load_file

    data = load_file(path) or {}
    try:
        return from_dict(config_cls, data, where=str(path))
    except ConfigError:
        kind = _part_kind(data)
        if kind is not None and kind != config_cls.__name__:  # a whole list of "unknown keys" hid this
            want = _KIND_NAMES.get(config_cls.__name__, config_cls.__name__)
            raise InputError(f"{folder}: holds a {_KIND_NAMES[kind]} part, not a {want} part") from None
        raise


def refuse_diffusers_folder(folder: Path) -> None:
    """InputError when `folder` is a diffusers model folder (config.json, no config.yaml) given for a part folder:
    for a diffusers AutoencoderKL (a Stable Diffusion VAE, as save_pretrained writes it), with the command that
    converts it (it was "not a model part folder (missing config.yaml)", and the conversion is not done silently)."""
    import json
    import shlex

    config = folder / "config.json"
    from vidiff.hub_folder import is_pipeline_root

    if is_pipeline_root(folder) and (folder / "vae").is_dir():
        refuse_diffusers_folder(folder / "vae")  # a Stable Diffusion repository's root: name its vae/, converted
    if (folder / CONFIG_NAME).exists() or not config.is_file():
        return
    from vidiff.safe_yaml import read_text

    try:
        kind = json.loads(read_text(config, str(config), max_bytes=1 << 20)).get("_class_name")
    except (ConfigError, ValueError, AttributeError):  # not JSON, or not an object: the plain message below
        return
    if not isinstance(kind, str):  # not diffusers' (a transformers text encoder has no _class_name)
        return
    if kind != "AutoencoderKL":
        raise InputError(f"{folder}: a diffusers {short_repr(kind, 40)} folder (config.json), not a vidiff part "
                         f"folder ({CONFIG_NAME} + {WEIGHTS_NAME})")
    whole = folder.resolve() if folder.name in ("", "..") else folder
    code = (f"from vidiff.vae import AutoencoderKL; AutoencoderKL.from_diffusers({json.dumps(str(folder))})"
            f".save({json.dumps(str(whole.parent / (whole.name + '-vidiff')))})")
    raise InputError(f"{folder}: a diffusers VAE folder (config.json), not a vidiff part folder ({CONFIG_NAME} + "
                     f"{WEIGHTS_NAME}); convert it once and give the new folder: python -c {shlex.quote(code)}")


def refuse_run_folder(folder: Path) -> None:
    """InputError when `folder` is a training run folder given for a part folder, naming its export/: its config.yaml
    is the training config and it holds no weights of its own (`init_weights: runs/x` was a FileNotFoundError
    traceback once the model was built, `--vae runs/x` "missing model.safetensors")."""
    folder = Path(folder)
    if not (folder / WEIGHTS_NAME).exists() and (folder / "export" / WEIGHTS_NAME).is_file():
        raise InputError(f"{folder}: a training run folder, not a part folder; its exported part is "
                         f"{folder / 'export'}")


_KIND_NAMES = {"VAEConfig": "VAE", "UNet3DConfig": "U-Net (keyframes / interpolation)",
               "ControlAdapterConfig": "control adapter"}


def _part_kind(data) -> str | None:
    """The name of the part config class whose fields hold every key of `data`, or None."""
    import dataclasses

    from vidiff.models.control_adapter import ControlAdapterConfig
    from vidiff.models.unet3d import UNet3DConfig
    from vidiff.models.vae import VAEConfig

    if not isinstance(data, dict) or not data:
        return None
    for cls in (VAEConfig, UNet3DConfig, ControlAdapterConfig):
        if set(data) <= {f.name for f in dataclasses.fields(cls)}:
            return cls.__name__
    return None


def load_part_weights(folder: str | Path) -> dict:
    """The part's tensors by name; InputError when any holds a NaN or an infinity (a run that diverged, or bytes
    damaged in place): such weights sampled every frame black and exited 0."""
    import torch
    from safetensors.torch import load_file

    path = Path(folder).expanduser() / WEIGHTS_NAME
    state = load_file(str(path))
    bad = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise InputError(f"{path}: {len(bad)} tensor(s) hold NaN or infinite weights (e.g. {short_repr(bad[0], 80)}); "
                         "the part diverged in training or the file is damaged")
    return state


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_safetensors_header(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Reads only the 8-byte length and the JSON header of a safetensors file; InputError if it is not one, or if
    its tensors' data does not end where the file does (a truncated or appended-to file). Returns each tensor's
    shape by name, for weights_mismatch before any weights load."""
    import json
    import struct

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= length <= min(size - 8, 100_000_000):
            raise InputError(f"{path}: not a safetensors file (bad header length)")
        raw = f.read(length)
        if json_nesting(raw) > 8:  # a real header is {name: {dtype, shape: [..], data_offsets: [..]}}: depth 3
            raise InputError(f"{path}: not a safetensors file (header nested {json_nesting(raw)} levels deep)")
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError):
            header = None
    if not isinstance(header, dict):
        raise InputError(f"{path}: not a safetensors file (unreadable header)")
    offsets = [entry.get("data_offsets") if isinstance(entry, dict) else None
               for name, entry in header.items() if name != "__metadata__"]
    if not all(isinstance(o, list) and len(o) == 2 and all(type(v) is int for v in o) for o in offsets):
        raise InputError(f"{path}: not a safetensors file (a tensor entry has no data_offsets)")
    for name, entry in header.items():  # integer / bool weights were cast into the float model without a word
        if name != "__metadata__" and entry.get("dtype") not in FLOAT_DTYPES:
            raise InputError(f"{path}: tensor {short_repr(name, 80)} is stored as {short_repr(entry.get('dtype'), 20)}; "
                             f"a part's weights are floating point ({', '.join(FLOAT_DTYPES)})")
    data = max((o[1] for o in offsets), default=0)
    if data != size - 8 - length:
        raise InputError(f"{path}: truncated or damaged safetensors file (its tensors take {data} bytes after the "
                         f"header, the file holds {size - 8 - length})")
    return {name: tuple(entry.get("shape") or ()) for name, entry in header.items() if name != "__metadata__"}


def _shape(value) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def mismatched_names(expected: dict, found: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, resized) tensor names of `found` against a model's `expected` ({name: tensor or
    shape}, e.g. a state dict, or the shapes check_safetensors_header reads)."""
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    resized = sorted(k for k in expected.keys() & found.keys() if _shape(expected[k]) != _shape(found[k]))
    return missing, unexpected, resized


def weights_mismatch(expected: dict, found: dict) -> str:
    """How the weights `found` miss a model's `expected` ones (mismatched_names): "" when every name and shape fits,
    else e.g. "3 missing (e.g. a.weight); 1 of another shape (b.bias: (4, 8) in the file, (8, 8) in the model)",
    short enough for a one-line error."""
    missing, unexpected, resized = mismatched_names(expected, found)
    parts = [f"{len(names)} {what} (e.g. {names[0]})" for what, names in (("missing", missing),
                                                                         ("unexpected", unexpected)) if names]
    if resized:
        key = resized[0]
        parts.append(f"{len(resized)} of another shape (e.g. {key}: {_shape(found[key])} in the file, "
                     f"{_shape(expected[key])} in the model)")
    return "; ".join(parts)


def json_nesting(raw: bytes) -> int:
    """Upper bound of the bracket nesting of JSON bytes (brackets inside strings counted too), in one numpy pass,
    so that a hostile 200k-deep header is refused before a recursive parser sees it."""
    import numpy as np

    data = np.frombuffer(raw, np.uint8)
    step = np.zeros(256, np.int64)
    step[[ord("{"), ord("[")]] = 1
    step[[ord("}"), ord("]")]] = -1
    return int(np.cumsum(step[data]).max(initial=0))
