"""The real-interp interpolation model's data (issue 18): every window of every training clip, in latents.

    build_window_cache(corpus, vae, out)  per clip of a prepared corpus (vidiff/data/real_footage.py), `variants`
                                          fixed "cameras" (crop scale + position, flip, time stride), each encoded
                                          once; every window of `window` frames at `hop`, with its source frames
    WindowCacheDataset(out)               items: one window's latents (and its pixels, for the flow anchor),
                                          time-reversed at random

Every random draw derives from (seed, ...) with numpy's default_rng, so a rebuilt cache and a resumed run replay
exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vidiff.data.real_footage import random_square, crop_resize, read_manifest, to_video
from vidiff.errors import InputError

CACHE_FILE = "windows.safetensors"
CACHE_INDEX = "windows.json"


def camera_variants(clip: dict, variants: int, size: int, seed: int) -> list[dict]:
    """`variants` fixed crops of one clip: square of random scale and position, a left-right flip, and for
    clips of 20 fps or more a time stride of 1 or 2 (larger motion per frame). Variant 0 is the whole centre
    square at stride 1."""
    h, w = clip["size"]
    out = []
    for v in range(variants):
        rng = np.random.default_rng([seed, v, *map(ord, clip["name"])])
        if v == 0:
            side = min(h, w)
            top, left, flip, stride = (h - side) // 2, (w - side) // 2, False, 1
        else:
            top, left, side = random_square(rng, h, w, size)
            flip = bool(rng.random() < 0.5)
            stride = int(rng.integers(1, 3)) if clip["fps"] >= 20 else 1
        out.append({"clip": clip["name"], "variant": v, "top": top, "left": left, "side": side, "flip": flip,
                    "time_stride": stride})
    return out


@torch.no_grad()
def build_window_cache(corpus: str | Path, vae, out: str | Path, size: int = 64, window: int = 9, hop: int = 1,
                       variants: int = 8, seed: int = 0, text_encoder=None, progress: bool = True,
                       pixels: bool = False) -> Path:
    """Encodes each (clip, variant) sequence once with the VAE's posterior mean (scaled latents, float16) and
    lists every window of `window` frames at `hop` with its source frame indices. Writes windows.safetensors
    (seq_K latents (C,F,h,w), with `pixels` also pix_K uint8 (F,size,size,3), the frames encoded: a part trained
    with the flow anchor computes flow on them; null_context, null_context_mask) and windows.json (the sequences
    and windows)."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from vidiff.output_safety import give_default_mode, write_text
    from vidiff.text import TextEncoder

    corpus, out = Path(corpus), Path(out)
    manifest = read_manifest(corpus)
    out.mkdir(parents=True, exist_ok=True)
    # the index is what makes `out` a cache: gone while the tensors are rewritten, written whole at the end, so a
    # stop halfway through a rerun never leaves the old index over new tensors
    (out / CACHE_INDEX).unlink(missing_ok=True)
    tensors, sequences, windows = {}, [], []
    plan = [(c, v) for c in manifest["clips"] for v in camera_variants(c, variants, size, seed)]
    device = next(vae.parameters()).device
    loaded: dict[str, torch.Tensor] = {}
    for k, (clip, var) in enumerate(tqdm(plan, desc="window cache", disable=not progress)):
        if clip["name"] not in loaded:  # one clip in memory at a time
            loaded = {clip["name"]: torch.from_numpy(np.load(corpus / clip["file"]))}
        frames = loaded[clip["name"]][:: var["time_stride"]]
        source = list(range(0, clip["frames"], var["time_stride"]))
        if len(source) < window:
            continue
        crops = crop_resize(frames, var["top"], var["left"], var["side"], size)
        if var["flip"]:
            crops = crops.flip(2)
        latents = torch.cat([vae.encode(to_video(chunk)[None].to(device))[0].cpu()
                             for chunk in crops.split(32)], dim=1)  # (C, F, h, w)
        tensors[f"seq_{k}"] = latents.to(torch.float16).contiguous()
        if pixels:
            tensors[f"pix_{k}"] = crops.contiguous()
        sequences.append({**var, "key": f"seq_{k}", "frames": source})
        for start in range(0, len(source) - window + 1, hop):
            windows.append([len(sequences) - 1, start])
    text_encoder = text_encoder or TextEncoder.load("default")
    context, mask = text_encoder.encode([""])  # the model is told nothing: the encoding of ""
    tensors["null_context"], tensors["null_context_mask"] = context[0].float(), mask[0].bool()
    save_file(tensors, str(out / CACHE_FILE))
    give_default_mode(out / CACHE_FILE)  # save_file makes it 0600
    index = {"size": size, "window": window, "hop": hop, "variants": variants, "seed": seed, "pixels": pixels,
             "text_encoder": text_encoder.identifier, "vae_scaling_factor": vae.config.scaling_factor,
             "vae_shift_factor": vae.config.shift_factor, "sequences": sequences, "windows": windows}
    write_text(out / CACHE_INDEX, json.dumps(index) + "\n")
    return out


class WindowCacheDataset(torch.utils.data.Dataset):
    """Items {"latents": (C,window,h,w) float32, "context", "context_mask", "caption": "", "index"} (and "pixels"
    uint8 (window,size,size,3) when the cache has them): one window of the cache, time-reversed with probability
    `reverse_prob` (drawn from (seed, epoch, index))."""

    def __init__(self, folder: str | Path, seed: int = 0, reverse_prob: float = 0.5):
        from safetensors.torch import load_file

        self.folder = Path(folder)
        if not (self.folder / CACHE_INDEX).is_file():
            raise InputError(f"{folder}: not a window cache (missing {CACHE_INDEX})")
        self.index = json.loads((self.folder / CACHE_INDEX).read_text())
        self.tensors = load_file(str(self.folder / CACHE_FILE))
        self.window, self.seed, self.reverse_prob, self.epoch = self.index["window"], seed, reverse_prob, 0

    def __len__(self) -> int:
        return len(self.index["windows"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def frame_indices(self, i: int) -> tuple[str, list[int]]:
        """(clip name, source frame indices) of window i."""
        seq, start = self.index["windows"][i]
        s = self.index["sequences"][seq]
        return s["clip"], s["frames"][start:start + self.window]

    def __getitem__(self, i: int) -> dict:
        seq, start = self.index["windows"][i]
        key = self.index["sequences"][seq]["key"]
        latents = self.tensors[key][:, start:start + self.window].float()
        pixels = self.tensors.get("pix" + key[3:])
        pixels = None if pixels is None else pixels[start:start + self.window]
        if np.random.default_rng([self.seed, self.epoch, i]).random() < self.reverse_prob:
            latents = latents.flip(1)
            pixels = None if pixels is None else pixels.flip(0)
        item = {"latents": latents, "context": self.tensors["null_context"],
                "context_mask": self.tensors["null_context_mask"], "caption": "", "index": i}
        return item if pixels is None else {**item, "pixels": pixels}
