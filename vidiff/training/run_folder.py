"""A run folder (`output_dir`): what may be written into it, which checkpoint a run resumes from, and its export/,
which is replaced whole or not at all.

    output_dir/config.yaml, metrics.jsonl, loss.png, previews/, checkpoints/step_*/, export/ (config.yaml,
    model.safetensors, trained_on.yaml), and hidden .export-* folders only while an export is being swapped in.
"""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from vidiff.errors import InputError
from vidiff.parts import PART_FILES
from vidiff.training import checkpoint as ckpt


def refuse_foreign_output(run_dir: Path) -> None:
    """A run writes config.yaml and replaces export/ in its output_dir: refused (--force too) when they are not a
    run's, e.g. a user's folder that has its own config.yaml or export/ (both were silently replaced)."""
    from vidiff.safe_yaml import load_file

    export = run_dir / "export"
    if export.is_symlink() or (export.exists() and not export.is_dir()):
        raise InputError(f"output_dir {run_dir}: export is not a folder a run wrote; choose another output_dir")
    foreign = sorted(p.name for p in export.iterdir() if p.name not in PART_FILES) if export.is_dir() else []
    if foreign:
        raise InputError(f"output_dir {run_dir}: export/ holds files no run writes ({', '.join(foreign[:3])}), and "
                         "a run replaces export/; choose another output_dir")
    config = run_dir / "config.yaml"
    if config.exists():
        try:
            data = load_file(config)
        except Exception:  # noqa: BLE001 - any unreadable file is not a run's config
            data = None
        if not isinstance(data, dict) or "stage" not in data:
            raise InputError(f"output_dir {run_dir}: config.yaml is not a training config a run wrote, and a run "
                             "replaces it; choose another output_dir")


def find_resume(run_dir: Path, resume: str | None, force: bool) -> Path | None:
    root = run_dir / "checkpoints"
    if resume is None:
        if ckpt.list_checkpoints(root) and not force:
            raise InputError(f"{run_dir} already has checkpoints: pass --resume auto to continue it, or --force "
                             "to start over")
        return None
    if resume == "auto":
        return ckpt.latest_checkpoint(root)  # None: nothing complete yet, start fresh
    folder = Path(resume)
    wrong = ckpt.what_is_wrong(folder)
    if wrong is not None:
        raise InputError(f"--resume {resume}: not a complete checkpoint ({wrong}); --resume auto takes the newest "
                         "complete one")
    return folder


# ---- export/: whole or absent -----------------------------------------------------------------------------

def set_export_aside(run_dir: Path) -> None:
    """Renames export/ to a hidden name (removed later): a stop while a folder is being removed would leave a part
    of it, and `vidiff export` takes any export/ for a finished run's weights."""
    if (run_dir / "export").exists():
        (run_dir / "export").rename(run_dir / f".export-old-{secrets.token_hex(4)}")


def remove_hidden_exports(run_dir: Path) -> None:
    for p in run_dir.glob(".export-*"):  # set aside, or left by a stopped export
        shutil.rmtree(p, ignore_errors=True)


def write_export(run_dir: Path, stage, state_dict: dict) -> None:
    """stage.export into a hidden folder that takes the name export/ once complete (weights, config.yaml and
    trained_on.yaml), so a stop at any instant leaves the old export/, none, or the whole new one."""
    tmp = run_dir / f".export-{secrets.token_hex(4)}"
    try:
        stage.export(tmp, state_dict)
    except BaseException:  # an error, or Ctrl-C / SIGTERM (cli.Terminated) mid-export: the half folder goes
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_export_aside(run_dir)
    tmp.rename(run_dir / "export")
    remove_hidden_exports(run_dir)
