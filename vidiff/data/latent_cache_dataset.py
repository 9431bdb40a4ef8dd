"""Reading a finished latent cache (the format is described in latent_cache.py, which builds it): the index is
checked against every shard's size, shapes and (with verify=True) checksum before the first item is read."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from vidiff.data.latent_cache import FORMAT_VERSION, INDEX_MAX_BYTES, INDEX_NAME
from vidiff.errors import InputError
from vidiff.parts import file_sha256
from vidiff.safe_yaml import read_text


class LatentCacheDataset(torch.utils.data.Dataset):
    """Reads a finished cache; shards are memory-mapped, so only the rows asked for are read.

    Items: {"latents": (C,F,h,w) float32, "context": (L,D) float32, "context_mask": (L,) bool,
    "caption": str, "index": int}. `verify=True` also checks each shard's SHA-256 (reads every byte).
    """

    def __init__(self, folder: str | Path, verify: bool = False):
        from safetensors import safe_open

        self.folder = Path(folder)
        path = self.folder / INDEX_NAME
        if not path.exists():
            raise InputError(f"{self.folder}: not a latent cache (missing {INDEX_NAME})")
        try:  # a regular file of bounded size: never blocks on a FIFO named index.json
            self.index = json.loads(read_text(path, str(path), max_bytes=INDEX_MAX_BYTES))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e})") from e
        if self.index.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{path}: unknown format_version {self.index.get('format_version')!r}")
        if not self.index.get("complete"):
            from vidiff.folder_lock import folder_busy

            if folder_busy(self.folder):  # "run it again" would be refused while the build goes on
                raise InputError(f"{self.folder}: the cache is incomplete: a `vidiff data cache` is building it now; "
                                 "wait for it to end")
            raise InputError(f"{self.folder}: the cache is incomplete; run `vidiff data cache` again to finish it")
        self.shards = self.index["shards"]
        self.captions: list[str] = []
        expected_start = 0
        for shard in self.shards:
            file = self.folder / shard["file"]
            if not file.is_file():
                raise InputError(f"{file}: shard listed in {INDEX_NAME} is missing")
            if file.stat().st_size != shard["bytes"] or (verify and file_sha256(file) != shard["sha256"]):
                raise InputError(f"{file}: does not match {INDEX_NAME} (size or checksum); rebuild the cache")
            if shard["start"] != expected_start or len(shard["captions"]) != shard["count"]:
                raise InputError(f"{path}: shard list is inconsistent at {shard['file']}")
            with safe_open(str(file), framework="pt") as f:
                for key, shape in self.index["shapes"].items():
                    got = list(f.get_slice(key).get_shape())
                    if got != [shard["count"], *shape]:
                        raise InputError(f"{file}: {key} has shape {got}, {INDEX_NAME} says {[shard['count'], *shape]}")
            self.captions += shard["captions"]
            expected_start += shard["count"]
        if expected_start != self.index["num_clips"]:
            raise InputError(f"{path}: shards hold {expected_start} clips, the index says {self.index['num_clips']}")
        self._starts = [s["start"] for s in self.shards]
        self._handles: dict[int, object] = {}

    def __len__(self) -> int:
        return self.index["num_clips"]

    def contents_sha256(self) -> str:
        """The shards' checksums, from the index: a checkpoint records it, so that a run resumed on a cache built
        again in its folder is told (training/sample_stream.py: check_same_data)."""
        import hashlib

        return hashlib.sha256(json.dumps([s["sha256"] for s in self.shards]).encode()).hexdigest()

    def _handle(self, s: int):
        from safetensors import safe_open

        # Opened lazily, so each DataLoader worker maps the files itself.
        if s not in self._handles:
            self._handles[s] = safe_open(str(self.folder / self.shards[s]["file"]), framework="pt")
        return self._handles[s]

    def __getitem__(self, i: int) -> dict:
        import bisect

        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a cache of {len(self)} clips")
        i %= len(self)
        s = bisect.bisect_right(self._starts, i) - 1
        row = i - self._starts[s]
        f = self._handle(s)
        return {
            "latents": f.get_slice("latents")[row].float(),  # (C, F, h, w)
            "context": f.get_slice("context")[row].float(),  # (L, D)
            "context_mask": f.get_slice("context_mask")[row],  # (L,)
            "caption": self.captions[i],
            "index": i,
        }
