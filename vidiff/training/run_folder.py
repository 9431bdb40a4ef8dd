"""A run folder (`output_dir`): what may be written into it, which checkpoint a run resumes from, and its export/,
which is replaced whole or not at all.

    output_dir/config.yaml, metrics.jsonl, loss.png, previews/, checkpoints/step_*/, export/ (config.yaml,
    model.safetensors, trained_on.yaml), .lock (held by the run training there), and hidden .export-* folders only
    while an export is being swapped in.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from vidiff.errors import InputError
from vidiff.io import check_folder
from vidiff.output_safety import is_our_temporary
from vidiff.parts import PART_FILES, WEIGHTS_NAME
from vidiff.training import checkpoint as ckpt

log = logging.getLogger(__name__)


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
    if run_dir.is_dir() and not config.exists():  # config.yaml is a run's first file: the rest is someone else's
        others = sorted(p.name for p in run_dir.iterdir() if not _written_before_config(p))
        if others:
            raise InputError(f"output_dir {run_dir}: holds files that are not a training run's "
                             f"({', '.join(others[:3])}{' ...' if len(others) > 3 else ''}), and a run writes "
                             "metrics.jsonl, loss.png and export/ there; choose a new or empty folder")
    if config.exists():
        try:
            data = load_file(config)
        except Exception:  # noqa: BLE001 - any unreadable file is not a run's config
            data = None
        if not isinstance(data, dict) or "stage" not in data:
            raise InputError(f"output_dir {run_dir}: config.yaml is not a training config a run wrote, and a run "
                             "replaces it; choose another output_dir")


def check_writable(run_dir: Path, previews: bool) -> None:
    """Every name a run writes in `run_dir` can be written (tried, as the commands check their outputs), before the
    first step: a read-only checkpoints/ or previews/ of a resumed run, or a loss.png that is a folder, was met at
    the first checkpoint, preview or the export, and the steps trained since the last checkpoint were lost."""
    from vidiff.output_safety import check_output

    folders = ["checkpoints"] + (["previews"] if previews else [])
    for folder in folders:
        if (run_dir / folder).exists() and not (run_dir / folder).is_dir():
            raise InputError(f"output_dir {run_dir}: {folder} is not a folder, and the run writes its {folder} there")
    for name in ["config.yaml", "metrics.jsonl", "loss.png"] + [f"{folder}/step_00000000" for folder in folders]:
        check_output(run_dir / name, what="output_dir")  # a folder's own writability: a name in it


def _written_before_config(path: Path) -> bool:
    """What a run folder may hold before its config.yaml: the lock, export/ (its files were checked), hidden exports
    being swapped, checkpoints/ of step folders, and the temporary of a config.yaml write the run was killed in
    (the write that follows removes it; it made `--resume auto` refuse the run folder for good)."""
    if path.name in (LOCK_NAME, "export") or path.name.startswith(".export-"):
        return True
    if is_our_temporary(path.name) and path.is_file() and not path.is_symlink():
        return True
    return (path.name == "checkpoints" and path.is_dir() and not path.is_symlink()
            and all(p.name.startswith(("step_", ".tmp-")) for p in path.iterdir()))


def find_resume(run_dir: Path, resume: str | None, force: bool) -> Path | None:
    root = run_dir / "checkpoints"
    if resume is None:
        if ckpt.list_checkpoints(root) and not force:
            raise InputError(f"{run_dir} already has checkpoints: pass --resume auto to continue it, or --force "
                             "to start over")
        _refuse_finished_without_checkpoints(run_dir, force)
        return None
    if resume == "auto":
        found = ckpt.latest_checkpoint(root)
        if found is None:  # nothing complete yet: start fresh, unless that would replace a finished run's export
            _refuse_finished_without_checkpoints(run_dir, force)
        return found
    try:
        folder = check_folder(resume, "--resume")
    except InputError as e:
        raise InputError(f"{e} (--resume auto takes the newest complete checkpoint of output_dir)") from None
    wrong = ckpt.what_is_wrong(folder)
    if wrong is not None and _is_run_folder(folder):
        raise InputError(_resume_run_folder(run_dir, resume, folder))
    if wrong is not None:
        raise InputError(f"--resume {resume}: not a complete checkpoint ({wrong}); --resume auto takes the newest "
                         "complete one")
    _refuse_later_checkpoints(root, folder)
    return folder


def _is_run_folder(folder: Path) -> bool:
    return (folder / "checkpoints").is_dir() or (folder / "config.yaml").is_file()


def _resume_run_folder(run_dir: Path, resume: str, folder: Path) -> str:
    """What to give instead of a run folder to --resume (which takes a checkpoint): said "not a complete checkpoint
    (... no manifest.json)", as if the folder were a broken checkpoint."""
    auto = "--resume auto" + ("" if folder.resolve() == run_dir.resolve() else f" --set output_dir={resume}")
    found = ckpt.list_checkpoints(folder / "checkpoints")
    newest = f", or --resume {found[-1][1]} (its newest checkpoint)" if found else ""
    return (f"--resume {resume}: a run folder, not a checkpoint; to continue that run give {auto} (the newest "
            f"complete checkpoint of output_dir){newest}")


def _refuse_finished_without_checkpoints(run_dir: Path, force: bool) -> None:
    """A fresh start replaces export/, config.yaml and metrics.jsonl: with no checkpoint left to resume (deleted to
    save space), a finished run's weights would go without a word."""
    if not force and (run_dir / "export" / WEIGHTS_NAME).exists():
        raise InputError(f"output_dir {run_dir}: holds a finished run (export/) and no checkpoint to resume from; "
                         "starting over would replace it: choose another output_dir, or pass --force")


def _refuse_later_checkpoints(root: Path, folder: Path) -> None:
    """Rolling back to an earlier checkpoint in a folder that has later ones would leave them the newest: each new
    checkpoint is pruned at once (keep_checkpoints keeps the highest steps) and --resume auto goes back to them."""
    step = int(ckpt.read_manifest(folder)["step"])
    later = [p for s, p in ckpt.list_checkpoints(root) if s > step and p.resolve() != folder.resolve()]
    if later:
        names = ", ".join(p.name for p in later[:3]) + (" ..." if len(later) > 3 else "")
        whose = ("of another course of this run" if folder.resolve().parent == root.resolve() else
                 f"of the run trained there, and this checkpoint is another run's ({folder.parent.parent})")
        raise InputError(f"--resume {folder}: output_dir already holds later checkpoints ({names}) {whose}; move "
                         "them out of checkpoints/ or choose another output_dir")


# ---- the config a checkpoint was written under ------------------------------------------------------------

# When checkpoints are written and how many are kept: a resumed run with other values follows the same trajectory.
BOOKKEEPING_KEYS = ("train.checkpoint_every", "train.keep_checkpoints")


# How long the run is: "train it longer" (or stop it sooner) is resumed without --force, and said.
LENGTH_KEYS = ("train.max_steps",)


def _train_longer(resume_from: Path, before: int, now: int) -> None:
    """A run resumed with another train.max_steps: refused when the checkpoint is already past it, else warned that
    the learning-rate schedule (warm-up, cosine decay to the floor at max_steps) is laid over the new length from the
    checkpoint's step on, so the run is not the one a fresh start at that length trains."""
    import warnings

    step = int(ckpt.read_manifest(resume_from)["step"])
    if now <= step:
        raise InputError(f"train.max_steps {now}: the checkpoint {resume_from.name} is at step {step} already; give "
                         f"more steps than {step}")
    warnings.warn(f"train.max_steps {before} -> {now}: resuming at step {step} and training to {now}; the learning "
                  f"rate from here follows the schedule over {now} steps, so this is not the run a fresh start with "
                  f"{now} steps would train", stacklevel=2)


def check_same_config(run_dir: Path, resume_from: Path, written_hash: str, cfg, force: bool) -> None:
    """Refuses to resume under another config than the checkpoint's (unless --force), naming the keys that changed
    where the run folder's config.yaml, or that of the checkpoint's own run folder, is the one it was written under. Another train.max_steps alone is
    resumed with a warning (_train_longer)."""
    from vidiff.training.config import HASH_IGNORED, config_hash

    if force or written_hash == config_hash(cfg):
        return
    # a checkpoint of another run folder (--resume PATH, e.g. a branch of an earlier run into a new output_dir) was
    # written under that folder's config.yaml: the keys that changed were not named, only two hashes
    before = (_config_that_wrote(run_dir / "config.yaml", written_hash)
              or _config_that_wrote(resume_from.parent.parent / "config.yaml", written_hash))
    if before is None:
        detail = f"hash {written_hash[:12]} vs {config_hash(cfg)[:12]}"
    else:
        changed = _changed_keys(before, cfg, HASH_IGNORED)
        ignore = HASH_IGNORED + BOOKKEEPING_KEYS
        if config_hash(before, ignore) == config_hash(cfg, ignore):
            log.info("resuming with other %s (they do not change the run)", ", ".join(changed))
            return
        if config_hash(before, ignore + LENGTH_KEYS) == config_hash(cfg, ignore + LENGTH_KEYS):
            _train_longer(resume_from, before.train.max_steps, cfg.train.max_steps)
            return
        shown = [k for k in changed if k not in BOOKKEEPING_KEYS]
        detail = "changed: " + ", ".join(shown[:6]) + (" ..." if len(shown) > 6 else "")
    raise InputError(f"{resume_from}: the config changed since this checkpoint was written ({detail}); pass --force "
                     "to resume anyway")


def _config_that_wrote(path: Path, written_hash: str):
    """The run folder's config.yaml as a TrainConfig when its hash is the checkpoint's, else None. Its paths are read
    as load_train_config reads them: a run that wrote "~/clips" as it stood was refused on resume as "changed:
    data.root" once the recipe's "~/clips" was read as the home folder."""
    from vidiff.config import from_dict
    from vidiff.safe_yaml import load_file
    from vidiff.training.config import TrainConfig, config_hash, home_expanded

    try:
        before = from_dict(TrainConfig, load_file(path))  # as written: the checkpoint hashed it so
    except Exception:  # noqa: BLE001 - missing or unreadable: the message falls back to the hashes
        return None
    return home_expanded(before) if config_hash(before) == written_hash else None


def _changed_keys(before, after, ignore: tuple[str, ...]) -> list[str]:
    from vidiff.config import to_dict

    def flat(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from flat(v, f"{prefix}{k}.")
        else:
            yield prefix[:-1], node

    a, b = dict(flat(to_dict(before))), dict(flat(to_dict(after)))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in ignore)


# ---- one trainer per folder -------------------------------------------------------------------------------

LOCK_NAME = ".lock"


class RunFolderLock:
    """An exclusive lock on output_dir for the life of a run: two trainers in one folder rotated each other's
    checkpoints away and replaced each other's metrics.jsonl and export/. The lock is the kernel's (flock), so a
    killed trainer never leaves it held; the file itself stays and is harmless."""

    def __init__(self, run_dir: Path):
        self.run_dir, self._fd = run_dir, None

    def acquire(self) -> "RunFolderLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as e:
            if created:  # the folder this run just made, e.g. out of inodes or over quota at the lock file
                remove_if_unused(self.run_dir)
            raise InputError(f"output_dir {self.run_dir}: cannot create the run folder's lock file ({e.strerror})") \
                from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"output_dir {self.run_dir}: another training run (pid {holder}) is using this folder; "
                             "wait for it to end or choose another output_dir") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:  # a full disk: os.write's error names no file, and the line said "cannot write (...)"
            if created:  # still holding the lock: no other run is in the folder this one made
                remove_if_unused(self.run_dir)
            os.close(fd)
            from vidiff.output_safety import describe_write_error

            raise InputError(f"output_dir {self.run_dir}: cannot write the run folder's lock file {LOCK_NAME} "
                             f"({describe_write_error(e)})") from None
        self._fd = fd
        from vidiff.folder_lock import hold_in_this_process_only

        hold_in_this_process_only(fd)  # not by forked DataLoader workers, which outlive a killed trainer
        return self

    def release(self) -> None:
        if self._fd is not None:
            from vidiff.folder_lock import let_go

            let_go(self._fd)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def lock_for_all_ranks(accelerator, run_dir: Path) -> RunFolderLock | None:
    """The main process takes the folder's lock; every rank raises its refusal, so none waits at a barrier for a
    main process that stopped."""
    lock, refusal = None, None
    if accelerator.is_main_process:
        try:
            lock = RunFolderLock(run_dir).acquire()
        except InputError as e:
            refusal = str(e)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        refusal = broadcast_object_list([refusal])[0]
    if refusal is not None:
        if lock is not None:
            lock.release()
        raise InputError(refusal)
    return lock


def remove_if_unused(run_dir: Path) -> None:
    """Removes a run folder this run created that holds nothing but its lock file (a run refused early)."""
    try:
        if {p.name for p in run_dir.iterdir()} <= {LOCK_NAME}:
            (run_dir / LOCK_NAME).unlink(missing_ok=True)
            run_dir.rmdir()
    except OSError:
        pass


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
