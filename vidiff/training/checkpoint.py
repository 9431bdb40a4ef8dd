"""Checkpoints that survive a kill at any moment, in safetensors + JSON only (nothing is ever unpickled).

Writing (rank 0): files go to `checkpoints/.tmp-step_X-<random>/`, each fsynced; `manifest.json` (sha256 of
every file, step, config hash) is written last and fsynced; the folder is renamed to `step_XXXXXXXX` and the
parent directory fsynced. Only then are old checkpoints rotated and stale temp folders removed. A folder
without a verifying manifest is never loaded, and only files the manifest names are ever opened.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from pathlib import Path

import torch

from vidiff.errors import InputError
from vidiff.parts import file_sha256

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
_NAME = re.compile(r"^step_(\d{8,})$")


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- optimizer state <-> (tensors, JSON) ----------------------------------------------------------------

def flatten_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch optimizer state_dict -> (tensors keyed `state.<param>.<key>`, JSON-able structure)."""
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- writing ------------------------------------------------------------------------------------------

def save_checkpoint(root: str | Path, step: int, tensors: dict[str, dict[str, torch.Tensor]],
                    jsons: dict[str, dict], config_hash: str, keep: int) -> Path:
    """Atomically writes checkpoint `step` under `root`: `tensors` maps a file stem to a state dict
    (written as <stem>.safetensors), `jsons` a file stem to a JSON object. Returns the final folder.
    A read-only, full or vanished folder is a CheckpointWriteError (one line; older checkpoints untouched)."""
    from safetensors import SafetensorError

    root = Path(root)
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{step_dir_name(step)}-{secrets.token_hex(4)}"
        tmp.mkdir()
        final = _write_checkpoint(root, tmp, step, tensors, jsons, config_hash)
    except BaseException as e:  # a write error, or Ctrl-C / SIGTERM (cli.Terminated) mid-write: the half folder goes
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, (OSError, SafetensorError)):
            raise
        from vidiff.output_safety import describe_write_error

        if not isinstance(e, OSError):  # safetensors' Rust writer says "I/O error: File too large (os error 27)"
            code = re.search(r"\(os error (\d+)\)", str(e))
            e = OSError(int(code.group(1)), str(e)[:200]) if code else OSError(None, str(e)[:200])
        why = describe_write_error(e)
        raise CheckpointWriteError(f"checkpoint folder {root}: cannot write checkpoint step {step} ({why}); the "
                                   "previous checkpoints are unchanged") from None
    rotate(root, keep)
    return final


class CheckpointWriteError(InputError):
    """The checkpoint folder is read-only, full or gone: a one-line error, the older checkpoints untouched."""


def _write_checkpoint(root: Path, tmp: Path, step: int, tensors: dict, jsons: dict, config_hash: str) -> Path:
    from safetensors.torch import save_file

    from vidiff.output_safety import give_default_mode

    final = root / step_dir_name(step)
    files = {}
    for stem, sd in tensors.items():
        path = tmp / f"{stem}.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(path))
        give_default_mode(path)  # save_file makes it 0600: teammates sharing the run folder could not read it
        files[path.name] = path
    for stem, obj in jsons.items():
        path = tmp / f"{stem}.json"
        path.write_text(json.dumps(obj, indent=1, sort_keys=True))
        files[path.name] = path
    for path in files.values():
        _fsync_file(path)
    manifest = {"format": 1, "step": step, "config_hash": config_hash,
                "files": {name: file_sha256(p) for name, p in sorted(files.items())},
                "sizes": {name: p.stat().st_size for name, p in sorted(files.items())}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _fsync_file(tmp / MANIFEST)
    _fsync_dir(tmp)
    if final.exists():  # a checkpoint of the same step (e.g. re-saved after resume): replace it
        remove_checkpoint(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    _VERIFIED[final] = _fingerprint(final)  # hashed just now
    return final


# folder -> (name, size, mtime_ns) of its files when it last verified in full: rotation re-hashes a checkpoint
# only when one of its files changed since (or it was never verified in this process).
_VERIFIED: dict[Path, tuple] = {}


def _fingerprint(folder: Path) -> tuple:
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def _verified_in_full(folder: Path) -> bool:
    fingerprint = _fingerprint(folder)
    if fingerprint and _VERIFIED.get(folder) == fingerprint:
        return True
    ok = verify(folder)
    if ok:
        _VERIFIED[folder] = fingerprint
    return ok


def remove_checkpoint(folder: Path) -> None:
    """Renames a checkpoint to a temp name, then removes it: a kill while its files go never leaves a part of it
    under its step_X name (rotation then took it for a corrupt checkpoint, and said so; a resume skipped it with a
    warning)."""
    doomed = folder.with_name(f".tmp-removed-{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(doomed)
    except OSError:
        doomed = folder
    shutil.rmtree(doomed, ignore_errors=True)


def rotate(root: Path, keep: int) -> None:
    """Keeps the `keep` newest checkpoints that verify in full (manifest, sizes, sha256); removes older ones
    and every temp folder. A corrupt or incomplete checkpoint never counts toward `keep` and is removed, so
    it can never push a good one out."""
    good, bad = [], []
    for _, folder in reversed(list_checkpoints(root)):  # newest first
        if keep > 0 and len(good) >= keep:
            remove_checkpoint(folder)
            _VERIFIED.pop(folder, None)
        elif _verified_in_full(folder):
            good.append(folder)
        else:
            log.warning("removing corrupt or incomplete checkpoint %s (it does not verify against its manifest)",
                        folder)
            bad.append(folder)
    for folder in bad:
        remove_checkpoint(folder)
        _VERIFIED.pop(folder, None)
    for p in root.iterdir():
        if p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True)


# ---- reading ------------------------------------------------------------------------------------------

def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every `step_X` folder, oldest first (complete or not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return sorted(found)


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: incomplete checkpoint (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        int(manifest["step"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: unreadable manifest ({e})") from None
    for name in files:
        if "/" in name or name.startswith(".") or not name.endswith((".safetensors", ".json")):
            raise InputError(f"{path}: manifest names an unexpected file {name!r}")
    return manifest


def verify(folder: str | Path, quick: bool = False) -> bool:
    """True when the manifest exists and every file it names is present (and, unless quick, hashes match)."""
    return what_is_wrong(folder, quick) is None


def what_is_wrong(folder: str | Path, quick: bool = False) -> str | None:
    """Why `folder` is not a complete checkpoint, naming the file (None when it verifies)."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except InputError as e:
        return str(e)
    sizes = manifest.get("sizes", {})
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if name in sizes and path.stat().st_size != sizes[name]:
            return f"{path} holds {path.stat().st_size} bytes, {MANIFEST} says {sizes[name]}"
        if not quick and file_sha256(path) != digest:
            return f"{path} does not match the sha256 in {MANIFEST}"
    return None


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest checkpoint whose manifest verifies (sha256 of every file); incomplete ones are skipped."""
    for step, folder in reversed(list_checkpoints(root)):
        if verify(folder):
            return folder
        log.warning("skipping incomplete or corrupt checkpoint %s", folder)
    return None


def load_checkpoint(folder: str | Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]], dict[str, dict]]:
    """(manifest, tensors by stem, JSON objects by stem) of a verified checkpoint. Only the files the manifest
    names are opened, with safetensors or json: any other file in the folder is ignored."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not verify(folder):
        raise InputError(f"{folder}: checkpoint does not verify against its {MANIFEST} (incomplete or altered)")
    manifest = read_manifest(folder)
    tensors, jsons = {}, {}
    for name in manifest["files"]:
        path = folder / name
        try:
            if name.endswith(".safetensors"):
                tensors[name[: -len(".safetensors")]] = load_file(str(path))
            else:
                jsons[name[: -len(".json")]] = json.loads(path.read_text())
        except (SafetensorError, ValueError, OSError) as e:
            raise InputError(f"{path}: not a valid {path.suffix} file ({e})") from None
    return manifest, tensors, jsons


def load_model_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], folder: Path) -> None:
    """The checkpoint's weights into `model`; a checkpoint of another stage or model size is refused in one line."""
    from vidiff.parts import weights_mismatch

    why = weights_mismatch(model.state_dict(), weights)
    if why:
        raise InputError(f"{folder}: its weights do not fit this stage's model ({why}): a checkpoint of another stage "
                         "or model config")
    model.load_state_dict(weights)
