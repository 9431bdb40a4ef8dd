"""What a part was trained on (`trained_on.yaml` beside its config.yaml): the record, and the latent space a part
was trained in. The checks that a request stays inside the record are vidiff/pipeline/trained_layouts.py.

A diffusion part only knows the window lengths, frame strides and known-frame patterns it saw in training; asked
for another layout it still produces something, just not what it learned. Training writes this record when it
exports a part (vidiff/training/stages.py). Pure Python, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidiff.config import from_dict, to_dict
from vidiff.errors import InputError
from vidiff.parts import TRAINED_NAME

# known-content patterns a diffusion part can be trained on: per frame (none, first, first_k, random_subset), and
# "region": frames known outside a region of latent pixels (region edits, vidiff/training/regions.py)
PATTERNS = ("none", "first", "first_k", "random_subset", "region")


@dataclass(frozen=True)
class TrainedOn:
    stage: str  # vae | keyframes | interpolation
    text_encoder: str | None = None  # text encoder reference the captions were encoded with
    latent_space: str | None = None  # sha256 of the VAE encoder side whose latents the part learned (latent_space_id)
    latent_size: tuple[int, ...] | None = None  # (h, w) of the training latents
    num_frames: tuple[int, ...] | None = None  # (min, max) frames of the model's window
    frame_strides: tuple[int, ...] | None = None  # (min, max) frame_stride inputs seen
    known_patterns: tuple[str, ...] = ()  # known-frame patterns drawn with probability > 0 (PATTERNS)
    max_first_k: int = 0  # largest k of the first_k pattern

    def __post_init__(self):
        for name in ("num_frames", "frame_strides", "latent_size"):
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or min(value) < 1):
                raise InputError(f"{TRAINED_NAME}: {name} must be two integers >= 1, got {list(value)}")
        unknown = set(self.known_patterns) - set(PATTERNS)
        if unknown:
            raise InputError(f"{TRAINED_NAME}: known_patterns: unknown {sorted(unknown)}; valid: {list(PATTERNS)}")


def write_trained_on(folder: str | Path, record: TrainedOn) -> None:
    import yaml

    from vidiff.output_safety import write_text

    write_text(Path(folder) / TRAINED_NAME, yaml.safe_dump(to_dict(record), sort_keys=False))


def read_trained_on(folder: str | Path) -> TrainedOn | None:
    import os

    path = Path(folder) / TRAINED_NAME
    if not os.path.lexists(path):
        return None  # a part from before the records: no layout checks
    from vidiff.safe_yaml import load_file

    data = load_file(path)  # a FIFO, folder or dangling link is refused there (it was taken for no record at all)
    if not isinstance(data, dict) or "stage" not in data:
        raise InputError(f"{path}: not a training record (it names no stage); delete it to run the part unchecked")
    return from_dict(TrainedOn, data, where=str(path))


def encoder_reference(text_encoder: str) -> str:
    """How a part records the text encoder it was trained with: "default", or the folder as an absolute path (a
    relative one is relative to where training ran, and means nothing beside the exported part)."""
    return text_encoder if text_encoder == "default" else str(Path(text_encoder).expanduser().resolve())


def same_text_encoder(recorded: str, ref: str) -> bool:
    """Whether a part's recorded encoder is the pipeline's (`ref`: "default" or its folder resolved against the
    pipeline folder): the same reference, the same folder, or, both folders there, the same weights (an encoder
    copied into the pipeline folder, as a pipeline is shipped). Parts recorded before the paths were absolute
    hold the path as training was given it."""
    if recorded == ref or "default" in (recorded, ref):
        return recorded == ref
    a, b = Path(recorded).expanduser(), Path(ref)
    if a.resolve() == b.resolve():
        return True
    if not (a.is_dir() and b.is_dir()):  # trained elsewhere (another machine), or recorded relative to training:
        return a.name == b.name  # the folder shipped beside the pipeline under its name cannot be compared
    from vidiff.text_folder import weights_digest

    return weights_digest(a) == weights_digest(b)


def read_trained_records(folder: Path, config) -> dict[str, TrainedOn | None]:
    """Each diffusion part's training record (None where a part has none), and each named control part's, checked
    against the pipeline's text encoder and VAE: a part trained with another encoder or in another latent space is
    an error. The VAE's latent space is hashed once, and only when a record names one."""
    from vidiff.pipeline.config import part_paths, text_encoder_ref

    paths = part_paths(folder, config)
    names = ("keyframes", "interpolation", *config.control_parts())
    records = {name: read_trained_on(paths[name]) if name in paths else None for name in names}
    latent_space = None
    for name, record in records.items():
        if record is None:
            continue
        label = paths[name].name if name in config.control_parts() else name  # a control part by its folder
        if record.text_encoder is not None and not same_text_encoder(record.text_encoder,
                                                                     text_encoder_ref(folder, config)):
            raise InputError(f"{label}/trained_on.yaml: trained with text encoder {record.text_encoder!r}, "
                             f"pipeline.yaml uses {config.text_encoder!r}")
        if record.latent_space is not None:
            latent_space = latent_space or latent_space_id(paths["vae"])
            if record.latent_space != latent_space:
                raise InputError(f"{label}/trained_on.yaml: trained in the latent space of another VAE encoder "
                                 f"than {paths['vae']} (latent_space {record.latent_space[:12]}... != "
                                 f"{latent_space[:12]}...)")
    return records


def _hash_latent_space(scaling: float, shift: float, names, data_of) -> str:
    """The latent-space id: sha256 of (scaling, shift), then of each encoder-side tensor's name and raw bytes
    (`data_of(name)`) in name order; one definition for a saved folder and a VAE in memory."""
    import hashlib

    digest = hashlib.sha256(repr((float(scaling), float(shift))).encode())
    for name in sorted(k for k in names if k.startswith(("encoder.", "quant_conv."))):
        digest.update(name.encode())
        digest.update(data_of(name))
    return digest.hexdigest()


def latent_space_id_of(vae) -> str:
    """latent_space_id of a VAE in memory, as its saved folder would hash (float32 weights, as saving writes them):
    safetensors stores each tensor's raw little-endian bytes, which are the tensor's own here."""
    import sys

    import torch

    state = vae.state_dict()

    def data_of(name: str) -> bytes:
        data = state[name].detach().to("cpu", torch.float32).contiguous().numpy()
        return (data if sys.byteorder == "little" else data.byteswap()).tobytes()

    return _hash_latent_space(vae.config.scaling_factor, vae.config.shift_factor, state, data_of)


def latent_space_id(vae_folder: str | Path) -> str:
    """sha256 of what fixes a VAE's latent space: its encoder-side tensors (encoder.*, quant_conv.*) and latent
    shift / scale. A decoder fine-tune (e.g. a temporal decoder) keeps the id, so parts trained in the old latent
    space stay valid. Read straight from the safetensors file, without torch."""
    import json
    import struct

    from vidiff.io import check_folder
    from vidiff.parts import (CONFIG_NAME, WEIGHTS_NAME, check_safetensors_header, refuse_diffusers_folder,
                              refuse_run_folder)
    from vidiff.safe_yaml import load_file

    folder = check_folder(vae_folder, "VAE part folder")  # a missing one was "model.safetensors not found"
    refuse_diffusers_folder(folder)  # a training run's `vae:` reaches it first
    refuse_run_folder(folder)
    if not (folder / WEIGHTS_NAME).is_file():  # a missing file: one line too
        raise InputError(f"VAE part folder {folder}: {WEIGHTS_NAME} not found")
    check_safetensors_header(folder / WEIGHTS_NAME)  # an empty, garbage or cut file: one line, not a traceback
    cfg = load_file(folder / CONFIG_NAME) or {}
    with open(folder / WEIGHTS_NAME, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100 << 20:
            raise InputError(f"{folder / WEIGHTS_NAME}: safetensors header of {size} bytes is not plausible")
        header = json.loads(f.read(size))

        def data_of(name: str) -> bytes:
            start, end = header[name]["data_offsets"]
            f.seek(8 + size + start)
            return f.read(end - start)

        return _hash_latent_space(cfg.get("scaling_factor", 1.0), cfg.get("shift_factor", 0.0),
                                  [k for k in header if k != "__metadata__"], data_of)
