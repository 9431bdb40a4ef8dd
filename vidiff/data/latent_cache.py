"""Latent cache: encode every clip once with the VAE and every caption once with the text encoder.

Training then reads latents and text embeddings from disk instead of running the encoders each step
(STYLE.md item 9). Layout of a cache folder:

    shard_00000.safetensors   latents (N,C,F,h,w), context (N,L,D), context_mask (N,L) bool, index (N,) int64
    shard_00001.safetensors   ...
    index.json                the shard list (file, start, count, bytes, sha256, captions; "replaced": the
                              clips that stand in for windows that could not be read), shapes, dtype,
                              the VAE config and weights checksum, the text encoder identifier, the dataset

index.json is written atomically (temporary file + rename) before the first shard and after each one, so an
interrupted build resumes at the first missing shard and produces the same files as an uninterrupted one. What the
index records, and what a partial cache must match to be resumed, is vidiff/data/latent_cache_index.py.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch

from vidiff.errors import InputError
from vidiff.folder_lock import folder_busy, folder_lock
from vidiff.limits import short_repr
from vidiff.output_safety import shown
from vidiff.data.latent_cache_index import (  # noqa: F401  (the index's readers and format: public here too)
    FORMAT_VERSION, INDEX_MAX_BYTES, INDEX_NAME, _difference, build_settings, cache_index, cached_latent_shape,
    latent_shape_of, latent_space_of, resume_point, shard_name, weights_checksum, write_index,
)
from vidiff.parts import file_sha256

log = logging.getLogger(__name__)
DTYPES = {"float16": torch.float16, "float32": torch.float32}
ENCODE_DTYPES = ("float32", "bfloat16")  # the encoder's arithmetic: fp32, or bf16 autocast


def _encode_batch(items: list[dict], vae, text_encoder, sample: bool, generator, encode_dtype: str) -> tuple:
    """A batch's latents and caption embeddings. The captions are encoded with their batch every time, never taken
    from an earlier batch: the encoder runs a batch at its longest caption, so an embedding carries its batch's
    rounding, and a resumed build (the same batches from its first missing shard) must give the same bytes."""
    device = next(vae.parameters()).device
    video = torch.stack([item["video"] for item in items]).to(device)  # (B, 3, F, H, W)
    captions = [item["caption"] for item in items]
    half = encode_dtype == "bfloat16"
    with torch.no_grad():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=half):
            latents = vae.encode(video, sample=sample, generator=generator).float()  # (B, C, F, h, w)
        context, mask = text_encoder.encode(captions)  # (B, L, D), (B, L); the encoder in its own dtype
    return latents, context, mask, captions


def build_latent_cache(dataset, vae, text_encoder, out_dir: str | Path, shard_size: int = 256, batch_size: int = 8,
                       dtype: str = "float16", sample: bool = False, seed: int = 0, progress: bool = True,
                       latent_space: str | None = None, encode_dtype: str = "float32") -> Path:
    """Encodes `dataset` (items {"video": (3,F,H,W) in [-1,1], "caption": str}) into a sharded cache.

    The VAE mean is stored unless `sample` (then a posterior sample, seeded from `seed` and the batch start).
    An existing cache in `out_dir` built with the same settings is continued at its first missing shard.
    `latent_space`: the VAE's `latent_space_id`, recorded in index.json so that a training run can check that its
    `vae` is the one the latents came from. `encode_dtype` "bfloat16" runs the VAE encoder under bf16 autocast: on a
    CPU with AMX about twice as fast, its latents 0.6% of their spread (RMS) from float32's on the Shapes VAE
    (docs/training.md, "The latent cache in bf16").
    """
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    if encode_dtype not in ENCODE_DTYPES:
        raise InputError(f"encode_dtype must be one of {list(ENCODE_DTYPES)}, got {encode_dtype!r}")
    if shard_size < 1 or batch_size < 1:
        raise InputError(f"shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    n = len(dataset)
    if n == 0:
        raise InputError("dataset is empty: nothing to cache")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {**build_settings(dataset, vae, text_encoder, shard_size, batch_size, dtype, sample, seed),
                "encode_dtype": encode_dtype}  # an index without it was built in float32 (resume_point)
    # one build per folder: two that both found no index.json each wrote their shards over the other's, and both
    # said the cache was ready
    with folder_lock(out, busy=_busy(out)):
        _build_locked(dataset, vae, text_encoder, out, settings, shard_size, batch_size, dtype, sample, seed,
                      progress, latent_space, encode_dtype)
    return out


def _busy(out: Path) -> str:
    return (f"--out {shown(out)}: another `vidiff data cache` is building a cache in this folder; wait for it to end "
            "or choose another folder")


def _build_locked(dataset, vae, text_encoder, out: Path, settings: dict, shard_size: int, batch_size: int,
                  dtype: str, sample: bool, seed: int, progress: bool, latent_space: str | None,
                  encode_dtype: str) -> None:
    shards = resume_point(out, settings)
    fresh = not (out / INDEX_NAME).exists()
    index = {**settings, "latent_space": latent_space, "complete": False, "shapes": None, "shards": shards}
    if shards:
        index["shapes"] = json.loads((out / INDEX_NAME).read_text())["shapes"]
    # Before the first shard: a build stopped after writing a shard but before listing it still has an index
    # whose settings let the next run continue (and rewrite that shard)
    write_index(out / INDEX_NAME, index)
    try:
        _encode_shards(dataset, vae, text_encoder, out, index, shard_size, batch_size, dtype, sample, seed, progress,
                       encode_dtype)
    except Exception:
        # an error (not a stop) before any shard was written: the fresh index would only make the next run with
        # other settings refuse this folder
        if fresh and not index["shards"] and not any(out.glob("shard_*.safetensors")):
            (out / INDEX_NAME).unlink(missing_ok=True)
        raise
    index["complete"] = True
    write_index(out / INDEX_NAME, index)


def _stand_in(dataset, number: int, item: dict) -> list | None:
    """[file, start frame] of the window that item `number` of a video-folder dataset holds when its own could not
    be read (a clip cut short of its header: the dataset gives the next clip in its place), else None."""
    if "index" not in item or "path" not in item:
        return None
    windows = getattr(dataset, "windows", None)
    planned = tuple(windows[number]) if windows is not None else (number, item.get("start"))
    if (item["index"], item.get("start")) == planned:
        return None
    root = getattr(dataset, "root", None) or dataset.folder.root
    return [Path(item["path"]).relative_to(root).as_posix(), int(item.get("start") or 0)]


def _encode_shards(dataset, vae, text_encoder, out: Path, index: dict, shard_size: int, batch_size: int, dtype: str,
                   sample: bool, seed: int, progress: bool, encode_dtype: str) -> None:
    """Encodes the shards after those `index` lists, appending each to it and rewriting index.json."""
    from safetensors.torch import save as save_tensors
    from tqdm.auto import tqdm

    from vidiff.output_safety import write_bytes

    n, shards = len(dataset), index["shards"]
    num_shards = -(-n // shard_size)
    start_clip = sum(s["count"] for s in shards)
    stand_ins = 0
    bar = tqdm(total=n, initial=start_clip, desc="latent cache", unit="clip", disable=not progress)
    for s in range(len(shards), num_shards):
        lo, hi = s * shard_size, min(n, (s + 1) * shard_size)
        parts: dict[str, list[torch.Tensor]] = {"latents": [], "context": [], "context_mask": []}
        captions: list[str] = []
        replaced: dict[str, list] = {}  # clip number -> [file, start] of the window it holds instead of its own
        for b in range(lo, hi, batch_size):
            items = [dataset[i] for i in range(b, min(hi, b + batch_size))]
            for i, item in enumerate(items, b):
                if (source := _stand_in(dataset, i, item)) is not None:
                    replaced[str(i)] = source
            generator = None
            if sample:
                device = next(vae.parameters()).device
                generator = torch.Generator(device).manual_seed(seed * 1_000_003 + b)
            latents, context, mask, batch_captions = _encode_batch(items, vae, text_encoder, sample, generator,
                                                                  encode_dtype)
            parts["latents"].append(latents.to("cpu", DTYPES[dtype]))
            parts["context"].append(context.to("cpu", DTYPES[dtype]))
            parts["context_mask"].append(mask.to("cpu", torch.bool))
            captions += batch_captions
            bar.update(len(items))
        tensors = {k: torch.cat(v).contiguous() for k, v in parts.items()}
        tensors["index"] = torch.arange(lo, hi, dtype=torch.int64)
        shapes = {k: list(v.shape[1:]) for k, v in tensors.items() if k != "index"}
        if index["shapes"] is None:
            index["shapes"] = shapes
        elif index["shapes"] != shapes:
            raise InputError(f"clips {lo}..{hi - 1} encode to {shapes}, earlier clips to {index['shapes']}: "
                             "every clip must have the same frames and size")
        file = out / shard_name(s)
        data = save_tensors(tensors)  # no metadata: its key order is not stable, and the bytes must be
        write_bytes(file, data)
        del data
        shards.append({"file": file.name, "start": lo, "count": hi - lo, "bytes": file.stat().st_size,
                       "sha256": file_sha256(file), "captions": captions, **({"replaced": replaced} if replaced else {})})
        write_index(out / INDEX_NAME, index)
        stand_ins += len(replaced)
    bar.close()
    if stand_ins:
        number, (file, start) = next((k, v) for shard in shards for k, v in shard.get("replaced", {}).items())
        log.warning("%s: %d window(s) could not be read and hold another clip's window in their place, with its "
                    "caption (index.json lists them under their shard's \"replaced\"); e.g. clip %s holds %s from "
                    "frame %d", out, stand_ins, number, file, start)


def build_latent_cache_from_folders(videos, vae, text, frames: int, size: int, out_dir, shard_size: int = 256,
                                    batch_size: int = 8, dtype: str = "float16", sample: bool = False,
                                    progress: bool = True, stride: int = 1, hop: int | None = None,
                                    windows: int | None = None, fps: float | None = None,
                                    encode_dtype: str = "float32") -> Path:
    """`vidiff data cache`: a video folder, a VAE part folder and a text encoder name or folder.

    Each video gives many windows of `frames` frames at `stride`, or resampled to `fps` (VideoWindows): every `hop`
    source frames, or `windows` spread evenly over the video, or by default back to back, so that the cache holds all
    the footage.
    """
    from vidiff.data.video_folder import VideoFolderDataset, VideoWindows
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL

    from vidiff.io import check_folder
    from vidiff.limits import MAX_FRAMES, MAX_SIDE, check_int
    from vidiff.output_safety import check_output, real_path

    check_int(frames, "--frames", 1, MAX_FRAMES)
    check_int(size, "--size", 8, MAX_SIDE)
    check_int(shard_size, "--shard-size", 1, 1_000_000)
    check_int(batch_size, "--batch-size", 1, 4096)
    check_int(stride, "--stride", 1, MAX_FRAMES)
    if fps is not None and (not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 0 < fps < math.inf):
        raise InputError(f"--fps must be a frame rate > 0, got {short_repr(fps)}")
    if fps is not None and stride != 1:
        raise InputError("give either --stride or --fps, not both (--fps resamples in time, --stride takes every "
                         "stride-th frame)")
    if hop is not None and windows is not None:
        raise InputError("give either --hop or --windows, not both")
    if hop is not None:
        check_int(hop, "--hop", 1, MAX_FRAMES)
    if windows is not None:
        check_int(windows, "--windows", 1, 1_000_000)
    if os.path.lexists(out_dir) and not Path(out_dir).is_dir():
        raise InputError(f"--out {shown(out_dir)}: exists and is not a folder")
    for flag, folder in (("--videos", videos), ("--vae", vae)):  # shards and index.json among the inputs
        check_folder(folder, flag)
        if real_path(out_dir) == real_path(folder):
            raise InputError(f"--out {shown(out_dir)}: is the {flag} folder; give the cache a folder of its own")
    if text != "default":  # TextEncoder.load's "text encoder folder not found: nowhere" did not say --text
        check_folder(text, "--text")
    check_output(Path(out_dir) / INDEX_NAME, what="--out")  # writable, before the VAE loads
    if folder_busy(Path(out_dir)):  # said before the scan and the weights; build_latent_cache's lock decides
        raise InputError(_busy(Path(out_dir)))
    from vidiff.models.vae import VAEConfig
    from vidiff.parts import load_part_config

    factor = load_part_config(vae, VAEConfig).downsample_factor  # its config only: the weights load below
    if size % factor:
        raise InputError(f"--size {size}: must be a multiple of the VAE's downsampling factor {factor} "
                         f"(e.g. {size // factor * factor or factor})")
    if encode_dtype not in ENCODE_DTYPES:
        raise InputError(f"--encode-dtype must be one of {list(ENCODE_DTYPES)}, got {short_repr(encode_dtype)}")
    if encode_dtype == "bfloat16":  # the encoder runs on the CPU here: emulated bf16 would be tens of times slower
        from vidiff.cpu_precision import cpu_dtype

        if cpu_dtype(torch.bfloat16, "--encode-dtype bfloat16") == torch.float32:
            encode_dtype = "float32"  # and index.json says so
    dataset = VideoWindows(VideoFolderDataset(videos, num_frames=frames, stride=stride, fps=fps, size=(size, size)),
                           hop=hop, per_video=windows)
    vae_model = AutoencoderKL.load(vae)
    text_encoder = TextEncoder.load(text, cache_size=0)  # each batch encoded with its captions (_encode_batch)
    from vidiff.pipeline.trained import latent_space_id

    return build_latent_cache(dataset, vae_model, text_encoder, out_dir, shard_size=shard_size,
                              batch_size=batch_size, dtype=dtype, sample=sample, progress=progress,
                              latent_space=latent_space_id(vae), encode_dtype=encode_dtype)


def __getattr__(name: str):
    """LatentCacheDataset lives in latent_cache_dataset.py; `vidiff.data.latent_cache.LatentCacheDataset` stays."""
    if name == "LatentCacheDataset":
        from vidiff.data.latent_cache_dataset import LatentCacheDataset

        return LatentCacheDataset
    raise AttributeError(f"module 'vidiff.data.latent_cache' has no attribute {name!r}")
