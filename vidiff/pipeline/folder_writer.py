"""Writing a pipeline folder in one swap, for `vidiff export` and tools that assemble one from part folders.

Refused before anything is copied: an output that is (or holds) one of the inputs, an existing folder that is no
pipeline folder (a user's own, `--force` too) or the working folder, an existing one without `--force`. The parts
are copied into a hidden folder beside the target, checked (readable weights; every part trained with the
pipeline's text encoder and VAE), and renamed into place under the folder lock, Ctrl-C and SIGTERM held for the
swap; hidden folders a killed export left are removed on the next one.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vidiff.cli_signals import signals_held
from vidiff.errors import InputError
from vidiff.parts import PART_FILES, WEIGHTS_NAME
from vidiff.pipeline.config import PIPELINE_FILE, PipelineConfig, write_pipeline_yaml

# what a pipeline folder holds (its part folders as export and save_pretrained name them): a folder holding anything
# else is no pipeline, and --force does not replace it
PIPELINE_ENTRIES = {PIPELINE_FILE, "vae", "keyframes", "interpolation", "control-keyframes", "control-interpolation"}


def refuse_existing(out: Path, overwrite: bool) -> None:
    """InputError when `out` exists and may not be replaced (no --force), or is a file."""
    if out.exists() and not overwrite:
        raise InputError(f"-o {out}: already exists (--force replaces it)")
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a folder")


def refuse_replacing_other_folders(out: Path) -> None:
    """InputError when the existing folder `out` is not a pipeline folder (nor empty), or is the working folder or
    holds it: --force renamed whatever folder -o named away and deleted it, a user's own folder with everything in
    it (`-o .` and `-o ""` ended in a traceback from the rename)."""
    from vidiff.output_safety import real_path, shown

    if not out.is_dir():
        return
    target, here = real_path(out), real_path(Path.cwd())
    if target == here or target in here.parents:
        raise InputError(f"-o {shown(out)}: is the working folder or holds it; give the pipeline folder's own name")
    refuse_other_entries(out, "-o", "so it is kept (--force too)")


def refuse_other_entries(out: Path, what: str, kept: str, entries=PIPELINE_ENTRIES,
                         holder: str = "a pipeline folder") -> None:
    """InputError naming `what` (the option or call) when the existing folder `out` holds an entry `holder` does not
    (`entries`; a temporary a stopped write left is ours): a user's own folder, whose same-named `vae/` or
    pipeline.yaml writing a pipeline there would replace. An empty folder and an earlier pipeline folder pass."""
    from vidiff.output_safety import is_our_temporary, shown

    if not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in entries and not is_our_temporary(p.name))
    if others:
        raise InputError(f"{what} {shown(out)}: exists and holds what {holder} does not ({shown(others[0])}"
                         f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}), {kept}; give a new folder, "
                         "or an earlier pipeline folder to replace")


def refuse_output_over_inputs(out: Path, inputs) -> None:
    """InputError when the folder `out` is one of `inputs` or holds one: replacing it (--force) would delete the
    input before or while it is read. Checked on resolved paths, so a symlink or `..` changes nothing."""
    from vidiff.output_safety import real_path, shown

    target = real_path(out)
    for item in inputs:
        source = real_path(item)
        if source == target or target in source.parents:
            held = "is" if source == target else "holds"
            raise InputError(f"-o {shown(out)}: {held} the input {shown(item)}; writing the pipeline there would "
                             "delete it (--force too), give another folder")


def remove_stale_exports(out: Path, older_than_s: float | None = None) -> list[Path]:
    """Removes the hidden folders a killed export of `out` left beside it (`.NAME.*.tmp`, and `.NAME.*.old` while
    `out` itself exists: without it, that folder is the only copy of the old pipeline) once they are older than a
    day, as output_safety does with its temporaries; a younger one may be another export's, still running (an
    export holds the folder's lock, vidiff/folder_lock.py, under which it removes them whatever their age:
    `older_than_s` < 0)."""
    import re
    import time

    from vidiff.output_safety import STALE_AFTER_S

    limit = STALE_AFTER_S if older_than_s is None else older_than_s
    suffixes = "|".join(re.escape(s) for s in ((".tmp", ".old") if out.exists() else (".tmp",)))
    # exactly the names mkdtemp gives this output's copies (random letters, digits and _, no dot): a glob of the name
    # took the `[` of "pipe[2]" for a pattern (a killed export's copy was never removed), and `.pipe.*.old` matched
    # the set-aside copy of a sibling "pipe.v2", the only one of that pipeline while "pipe.v2" itself is missing
    ours = re.compile(re.escape(f".{out.name}.") + r"[A-Za-z0-9_]+(" + suffixes + ")")
    try:
        entries = sorted(out.parent.iterdir())
    except OSError:  # no such folder, or one that can be written but not listed (mode -wx): none to find, as glob
        return []
    gone = []
    for folder in entries:
        if ours.fullmatch(folder.name):
            try:
                if folder.is_dir() and not folder.is_symlink() and time.time() - folder.stat().st_mtime > limit:
                    shutil.rmtree(folder)
                    gone.append(folder)
            except OSError:  # gone meanwhile, or not ours to remove: the export goes on
                continue
    return gone


def _check_weights_file(path: Path, source: Path) -> None:
    """A part's weights must be a readable safetensors file before the pipeline replaces anything: a damaged one was
    copied, the export said it was written, and `--force` had already set the old folder aside for it."""
    from safetensors import SafetensorError, safe_open

    from vidiff.output_safety import shown

    try:
        with safe_open(str(path), "pt") as f:
            if not list(f.keys()):
                raise InputError(f"{shown(source)}: {WEIGHTS_NAME} holds no tensors")
    except (SafetensorError, OSError) as e:
        raise InputError(f"{shown(source)}: {WEIGHTS_NAME} is not a readable safetensors file ({str(e)[:120]}); "
                         "nothing was exported") from None


def write_pipeline_folder(out: Path, parts: dict[str, Path], cfg: PipelineConfig, edit=None,
                          overwrite: bool = True) -> Path:
    """Copies each part folder's files into `out/<name>/` and writes pipeline.yaml, in a temporary folder beside
    `out` renamed into place when complete (replacing `out`, unless not `overwrite`). `edit(tmp)` may change the
    copies before the check that every part was trained with the pipeline's text encoder and VAE (trained_on.yaml)."""
    refuse_output_over_inputs(out, parts.values())
    refuse_replacing_other_folders(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from vidiff.folder_lock import folder_lock

    with folder_lock(out.parent):  # exports in one folder take turns
        # no other export in this folder runs while the lock is held: whatever an export left is a killed one's
        remove_stale_exports(out, older_than_s=-1.0)
        refuse_existing(out, overwrite)  # again: an export that held the lock before this one may have written it
        _write_locked(out, parts, cfg, edit)
    return out


def _write_locked(out: Path, parts: dict[str, Path], cfg: PipelineConfig, edit) -> None:
    from vidiff.output_safety import current_umask
    from vidiff.pipeline.trained import read_trained_records

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    # mkdtemp makes it 0700, which the renamed pipeline kept: other users of a shared folder could not read it
    tmp.chmod(0o777 & ~current_umask())
    old = None
    try:
        for name, src in parts.items():
            (tmp / name).mkdir()
            for file in PART_FILES:
                if (src / file).is_file():
                    _copy(src / file, tmp / name / file, out / name / file)
        if edit is not None:
            edit(tmp)
        for name in parts:
            _check_weights_file(tmp / name / WEIGHTS_NAME, parts[name])
        write_pipeline_yaml(cfg, tmp)
        try:  # parts trained with another text encoder or VAE encoder: refuse
            read_trained_records(tmp, cfg)
        except InputError as e:  # named by the folders the user gave, not the hidden copy being written
            from vidiff.output_safety import shown

            message = str(e)
            for name, src in parts.items():
                message = message.replace(str(tmp / name), shown(src))
                if message.startswith(f"{name}/"):
                    message = shown(src) + message[len(name):]
            raise InputError(message) from None
        with signals_held():  # the swap: a stop between its two renames would leave no folder under the name
            if out.exists():  # set aside, then removed: a stop mid-removal left part of the old folder under its name
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                out.rename(old)
            tmp.rename(out)
    finally:
        with signals_held():  # a Ctrl-C inside rmtree left the old pipeline (or the copy) as a hidden folder
            if tmp.exists():
                shutil.rmtree(tmp)
            if old is not None and not out.exists():  # the new folder did not take its place: the old one goes back
                old.rename(out)
            elif old is not None:
                shutil.rmtree(old)


def _copy(src: Path, dst: Path, named: Path) -> None:
    """Copies a part's file into the hidden copy of the pipeline; a full disk (or a file-size limit) is one line naming
    the file as it would be in the pipeline, not a traceback naming the hidden copy."""
    from vidiff.output_safety import OutputError, describe_write_error, shown

    try:
        shutil.copyfile(src, dst)
    except OSError as e:
        if e.filename2 is None and str(e.filename) == str(src):  # the part's own file could not be opened
            raise InputError(f"{shown(src)}: cannot read ({e.strerror})") from None
        raise OutputError(f"{shown(named)}: cannot write ({describe_write_error(e)}); nothing was exported") from None
