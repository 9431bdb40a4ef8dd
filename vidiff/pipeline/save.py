"""VideoPipeline.save_pretrained: a pipeline folder that from_pretrained loads again, or nothing new at all.

Refused before anything is written: an existing folder holding what a pipeline folder does not (a user's own, as
`vidiff export -o` refuses it), a folder that would not load (half-precision parts; a VAE whose encoder is no
longer the one the parts were trained with). pipeline.yaml is removed first and written last, so a save stopped
halfway leaves a folder from_pretrained refuses, never an old pipeline.yaml over some new parts and some old ones.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vidiff.errors import InputError
from vidiff.limits import short_repr
from vidiff.pipeline.config import PIPELINE_FILE, part_paths, write_pipeline_yaml
from vidiff.pipeline.control import save_control_parts
from vidiff.pipeline.trained import TrainedOn, latent_space_id, latent_space_id_of, write_trained_on


def save_pipeline(pipe, folder: str | Path) -> Path:
    from vidiff.parts import WEIGHTS_NAME, save_part

    if not isinstance(folder, (str, Path)) or not str(folder):  # "" wrote a whole pipeline into the cwd
        raise InputError(f"save_pretrained: expected a folder path, got {short_repr(folder)}")
    check_savable(pipe)
    folder = Path(folder).expanduser()  # "~/my-pipe" made a folder named "~" in the working directory
    if folder.exists() and not folder.is_dir():
        raise InputError(f"save_pretrained: {folder} is a file, not a folder")
    config = replace(pipe.config, text_encoder=saved_text_encoder(pipe, folder))
    refuse_replacing_others(part_paths(folder, pipe.config).values())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PIPELINE_FILE).unlink(missing_ok=True)
    paths = part_paths(folder, pipe.config)
    pipe.vae.save(paths["vae"])
    write_trained_on(paths["vae"], TrainedOn("vae", latent_space=latent_space_id(paths["vae"])))
    stages = {"keyframes": pipe.keyframes, "interpolation": pipe.interpolation}
    for name, stage in stages.items():
        if stage is not None:  # None: interpolation-only
            save_part(paths[name], stage.net.config, stage.net.state_dict())
    save_control_parts(paths, stages)
    for name, record in pipe.trained.items():  # the diffusion and control parts' records go with them
        if record is not None and name in paths and (paths[name] / WEIGHTS_NAME).is_file():
            write_trained_on(paths[name], record)
    write_pipeline_yaml(config, folder)
    return folder


def saved_text_encoder(pipe, folder: Path) -> str:
    """pipeline.yaml's text_encoder for a save into `folder`: the folder of the encoder the pipeline runs with,
    relative when it lies inside `folder` (an encoder shipped with the pipeline), else absolute. pipeline.yaml's
    relative paths are read from the pipeline folder, so the name as given (one relative to the working directory,
    or to the folder the pipeline was loaded from) wrote a pipeline whose encoder was "not found". The encoder is
    referenced, not copied; one that is no longer there is refused, as the saved folder would not load."""
    import os

    from vidiff.output_safety import shown
    from vidiff.pipeline.config import text_encoder_ref
    from vidiff.text import TextEncoder

    encoder = pipe.text_encoder
    if isinstance(encoder, TextEncoder):  # what it runs with, whatever pipeline.yaml said
        if encoder.config.path == "default":
            return "default"
        source = encoder.folder
    elif pipe.config.text_encoder == "default":
        return "default"
    else:  # another object with encode(): the folder pipeline.yaml names, from where it was read
        source = Path(text_encoder_ref(pipe.folder, pipe.config) if pipe.folder is not None
                      else pipe.config.text_encoder).expanduser()
    source = Path(os.path.abspath(source))
    if not source.is_dir():
        raise InputError(f"save_pretrained: the text encoder folder {shown(source)} is no longer there, so the saved "
                         "pipeline would not load; put it back (or load the encoder from where it is now) and save")
    inside = source.resolve(), folder.expanduser().resolve()
    if inside[0].is_relative_to(inside[1]):
        return inside[0].relative_to(inside[1]).as_posix()
    return str(source)


def refuse_replacing_others(part_folders) -> None:
    """InputError before anything is written when a part folder the save writes exists as something no save left
    there: a file or a link, or a folder holding other files (a project's own `vae/` with its notes, which
    save_pretrained(".") replaced). The folder's other entries (a README, a text encoder folder pipeline.yaml names,
    .DS_Store) are left as they are, as diffusers' save_pretrained leaves them."""
    from vidiff.output_safety import shown
    from vidiff.parts import PART_FILES
    from vidiff.pipeline.folder_writer import refuse_other_entries

    for part in map(Path, part_folders):
        if part.is_symlink() or (part.exists() and not part.is_dir()):
            raise InputError(f"save_pretrained: {shown(part)}: is not a part folder (a file or a link) and would be "
                             "replaced; give a new folder, or an earlier pipeline folder to replace")
        refuse_other_entries(part, "save_pretrained:", "so nothing is saved there", set(PART_FILES), "a part folder")


def check_savable(pipe) -> None:
    """Half-precision parts, or a VAE encoder that no longer hashes to what the parts' records name (a cast to bf16
    and back rounds it): such a save would not load, and saving over the folder a pipeline came from lost it."""
    low = {p.dtype for m in (pipe.vae, *pipe._stage_nets()) for p in m.parameters()} - {torch.float32}
    if low:
        raise InputError(f"save_pretrained: the parts compute in {', '.join(sorted(map(str, low)))}; a saved "
                         "pipeline holds float32 weights: load it again without dtype and save that one")
    recorded = {r.latent_space for r in pipe.trained.values() if r is not None and r.latent_space}
    if recorded and latent_space_id_of(pipe.vae) not in recorded:  # hashed in memory: no temporary folder to leave
        raise InputError("save_pretrained: the VAE's encoder weights differ from those the parts were trained with "
                         "(a cast to bfloat16 / float16 and back rounds them), so the saved folder would not load; "
                         "save a pipeline loaded in float32 and never cast")
