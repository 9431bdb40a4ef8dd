"""What a latent cache folder records (index.json: shards, shapes, dtype, the encoders, the dataset), read back by
training's checks, and the settings an existing partial cache must match for a build to resume it (the first
setting that differs is named with the `vidiff data cache` option behind it).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from vidiff.errors import InputError
from vidiff.limits import short_repr
from vidiff.safe_yaml import read_text

INDEX_NAME = "index.json"
INDEX_MAX_BYTES = 256 * 2**20  # captions of millions of clips; a bigger index.json is no cache of ours
FORMAT_VERSION = 1


def cache_index(folder: str | Path) -> dict | None:
    """The index.json of the cache in `folder`, read with the bounded reader (a FIFO or a huge file named index.json
    is no hang), or None when there is none to read (the dataset says what is wrong with a broken one when it opens
    it). One read serves every check made of it before training."""
    path = Path(folder) / INDEX_NAME
    try:
        index = json.loads(read_text(path, str(path), max_bytes=INDEX_MAX_BYTES))
    except Exception:  # noqa: BLE001 - missing, unreadable or malformed
        return None
    return index if isinstance(index, dict) else None


def latent_shape_of(index: dict | None) -> tuple[int, ...] | None:
    """The per-clip latent shape (C, F, h, w) a cache's index records, or None."""
    try:
        return tuple(int(v) for v in index["shapes"]["latents"])
    except Exception:  # noqa: BLE001 - no index, or no readable shape in it
        return None


def latent_space_of(index: dict | None) -> str | None:
    """The latent_space_id of the VAE a cache's index says it was encoded with, or None (not recorded: a cache from
    before the record, or one built by build_latent_cache without it)."""
    space = index.get("latent_space") if index is not None else None
    return space if isinstance(space, str) else None


def cached_latent_shape(folder: str | Path) -> tuple[int, ...] | None:
    """latent_shape_of the cache in `folder` (None when there is none to read)."""
    return latent_shape_of(cache_index(folder))


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.safetensors"


def weights_checksum(module) -> str:
    """SHA-256 over the names and raw bytes of a module's state dict (any dtype, any device)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _config_dict(config) -> dict:
    import dataclasses

    from vidiff.config import to_dict

    return to_dict(config) if dataclasses.is_dataclass(config) else dict(config)


_DESCRIBING_ATTRIBUTES = ("root", "num_frames", "stride", "fps", "size", "seed")  # VideoFolderDataset's


def _describe(dataset) -> dict:
    """The dataset as index.json records it: its own describe() if it has one, else its main attributes."""
    describe = getattr(dataset, "describe", None)
    if callable(describe):
        info = describe()
    else:
        info = {a: getattr(dataset, a) for a in _DESCRIBING_ATTRIBUTES if hasattr(dataset, a)}
        info = {a: (str(v) if isinstance(v, Path) else v) for a, v in info.items()}
    return {"class": type(dataset).__name__, "length": len(dataset), **info}


def write_index(path: Path, data: dict) -> None:
    from vidiff.output_safety import write_text

    write_text(path, json.dumps(data, indent=1) + "\n")  # random O_EXCL | O_NOFOLLOW temporary, fsync, rename


def build_settings(dataset, vae, text_encoder, shard_size: int, batch_size: int, dtype: str, sample: bool,
              seed: int) -> dict:
    """What must match for an existing partial cache to be continued."""
    settings = {
        "format_version": FORMAT_VERSION,
        "num_clips": len(dataset),
        "shard_size": shard_size,
        # Batch boundaries decide the posterior noise when sampling; the mean does not depend on them.
        "batch_size": batch_size if sample else None,
        "dtype": dtype,
        "sample": sample,
        "seed": seed if sample else None,
        "vae_config": _config_dict(vae.config),
        "vae_weights_sha256": weights_checksum(vae),
        "text_encoder": text_encoder.identifier,
        "dataset": _describe(dataset),
    }
    return json.loads(json.dumps(settings))  # as index.json will hold it (tuples become lists)


# what follows from other settings: a difference in it is named only when no setting differs, the window list
# first (it says which window differs; the counts only that one does), then the captions, which are listed per
# clip: a clip added to --videos was named as "a caption of --videos changed"
_DERIVED = ("windows", "captions_sha256", "length", "num_clips")
# the `vidiff data cache` option behind a setting, named beside it
_FLAGS = {"dataset.root": "--videos", "dataset.num_frames": "--frames", "dataset.size": "--size",
          "dataset.stride": "--stride", "dataset.fps": "--fps", "dataset.hop": "--hop",
          "dataset.per_video": "--windows",
          "dataset.captions_sha256": "a caption of --videos changed",
          "dataset.windows": "where each window of --videos starts; by default back to back, then one ending at "
                             "each video's last frame",
          "shard_size": "--shard-size", "batch_size": "--batch-size", "dtype": "--dtype", "sample": "--sample",
          "encode_dtype": "--encode-dtype",
          "vae_config": "--vae", "vae_weights_sha256": "--vae", "text_encoder": "--text"}


# what decides other settings, named first: batch_size and seed are recorded only with --sample (None without), so
# a build with --sample beside one without was told "batch_size (--batch-size): None in the cache, 1 now"
_DECIDING = ("sample",)


def _setting_order(keys) -> list:
    keys = list(keys)
    return ([k for k in _DECIDING if k in keys] + [k for k in keys if k not in _DERIVED and k not in _DECIDING]
            + [k for k in _DERIVED if k in keys])


def _difference(key: str, cached, wanted) -> str:
    """The first differing entry of two settings, e.g. "dataset.root (--videos): 'a' in the cache, 'b' now": a
    dataset's description lists every window, which is no message to print whole."""
    if isinstance(cached, dict) and isinstance(wanted, dict):
        for sub in _setting_order(list(cached) + [k for k in wanted if k not in cached]):
            if cached.get(sub) != wanted.get(sub):
                return _difference(f"{key}.{sub}", cached.get(sub), wanted.get(sub))
    flag = next((f for k, f in _FLAGS.items() if key == k or key.startswith(k + ".")), None)
    named = f"{key} ({flag})" if flag else key
    if key == "dataset.windows" and isinstance(cached, list) and isinstance(wanted, list):
        # the lists' first 80 characters are the same when only a video's last windows differ
        k = next((k for k, (a, b) in enumerate(zip(cached, wanted)) if a != b), min(len(cached), len(wanted)))
        first = [short_repr(w[k], 80) if k < len(w) else "none" for w in (cached, wanted)]
        return (f"{named}: {len(cached)} in the cache, {len(wanted)} now; the first that differs, window {k}: "
                f"{first[0]} in the cache, {first[1]} now")
    return f"{named}: {short_repr(cached, 80)} in the cache, {short_repr(wanted, 80)} now"


# settings that caches built before they were recorded held implicitly
_BEFORE_RECORDED = {"encode_dtype": "float32"}


def resume_point(out: Path, settings: dict) -> list[dict]:
    """Shards already done (a prefix of the shard list), or [] for a fresh cache."""
    path = out / INDEX_NAME
    if not path.exists():
        if any(out.glob("shard_*.safetensors")):
            raise InputError(f"{out}: has shard files but no {INDEX_NAME}; use an empty folder")
        return []
    index = json.loads(read_text(path, str(path), max_bytes=INDEX_MAX_BYTES))
    for key in _setting_order(settings):
        value, cached = settings[key], index.get(key, _BEFORE_RECORDED.get(key))
        if cached != value:
            raise InputError(f"{out}: existing cache was built with a different {key} "
                             f"({_difference(key, cached, value)}); use a new folder or delete it")
    done = []
    for shard in index["shards"]:
        file = out / shard["file"]
        if not file.is_file() or file.stat().st_size != shard["bytes"]:
            break  # resume at the first missing (or half-written) shard
        done.append(shard)
    return done
