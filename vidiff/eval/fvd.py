"""Frechet Video Distance with a user-supplied TorchScript feature network.

FVD (Unterthiner et al., "Towards Accurate Generative Models of Video", 2018) is the Frechet distance between
Gaussians fitted to network features of two sets of clips:

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1^1/2 S2 S1^1/2)^1/2 )

vidiff ships no feature network. The usual one is an I3D exported to TorchScript (for example the file the
StyleGAN-V project publishes); any TorchScript module that maps a batch of clips to (B, D) features works.
The protocol is a parameter set, not a hidden constant: `clip_length` frames from the start of each clip,
resized to `resolution` x `resolution`, `num_samples` clips per set, and the input layout / value range the
network expects. Numbers are only comparable between runs that use the same network and protocol.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from vidiff.errors import InputError
from vidiff.io import READABLE_SUFFIXES, list_video_files

VALUE_RANGES = ("signed", "unit", "byte")  # network input in [-1,1], [0,1] or [0,255]


# ---- Frechet distance between Gaussians (float64, symmetric square roots) ----


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    tr sqrt(S1 S2) is computed as the trace of the square root of the symmetric PSD matrix
    sqrt(S1) S2 sqrt(S1) (same eigenvalues as S1 S2), so no complex parts or non-symmetric sqrtm appear.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = mu1.shape[0]
    if mu1.ndim != 1 or mu1.shape != mu2.shape or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise InputError(
            f"Frechet distance needs means (D,) and covariances (D,D) of one size; got {mu1.shape}, "
            f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eigen = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_cross = np.sqrt(np.clip(eigen, 0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_cross
    return float(max(value, 0.0))  # rounding can leave a tiny negative for equal Gaussians


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D,D) of features (N,D), float64."""
    features = np.asarray(torch.as_tensor(features).detach().cpu().double())
    if features.ndim != 2 or features.shape[0] < 2:
        raise InputError(f"features must be (N,D) with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


# ---- the feature network ----


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """Loads a TorchScript archive. Anything else (a pickled checkpoint, a state dict) is refused up front.

    A TorchScript archive is a zip whose entries sit under one folder and include `<name>/code/` (the
    serialized TorchScript source) and `<name>/constants.pkl`; a torch.save file has neither. The check runs
    before torch.jit.load, which only rebuilds TorchScript types and never runs Python's unpickler.
    """
    from vidiff.errors import VideoDecodeError
    from vidiff.video_probe import check_file

    try:  # a folder or a FIFO given was "file not found"
        path = check_file(path)
    except VideoDecodeError as e:
        raise InputError(f"--network: {e}") from None
    if not zipfile.is_zipfile(path):
        raise InputError(f"--network: {path} is not a TorchScript archive (not a zip file)")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    has_code = any(n.split("/", 2)[1:2] == ["code"] for n in names if n.count("/") >= 2)
    has_constants = any(n.endswith("/constants.pkl") for n in names)
    if not (has_code and has_constants):
        raise InputError(
            f"--network: {path} is a zip but not a TorchScript archive (no code/ or constants.pkl); "
            "export the network with torch.jit.script or torch.jit.trace and .save()"
        )
    try:
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it is still the format used
            warnings.simplefilter("ignore", DeprecationWarning)
            network = torch.jit.load(str(path), map_location=device)
    except RuntimeError as e:
        raise InputError(f"--network: {path} could not be loaded as TorchScript: {str(e).splitlines()[0]}") from None
    return network.eval()


@dataclass(frozen=True)
class FeatureProtocol:
    """How clips are fed to the feature network. Defaults follow the common I3D FVD setup."""

    clip_length: int = 16  # frames taken from the start of each clip
    resolution: int = 224  # frames are resized (bilinear, antialiased) to resolution x resolution
    num_samples: int | None = None  # clips per set; None uses every clip found
    layout: Literal["bcthw", "btchw", "bthwc"] = "bcthw"  # axis order the network expects
    value_range: Literal["signed", "unit", "byte"] = "signed"  # network input range: [-1,1], [0,1] or [0,255]
    batch_size: int = 8  # clips per forward pass

    def __post_init__(self):
        if self.clip_length < 1 or self.resolution < 1 or self.batch_size < 1:
            raise InputError("clip_length, resolution and batch_size must be positive")
        if self.num_samples is not None and self.num_samples < 2:
            raise InputError(f"num_samples must be at least 2 (a covariance needs two clips), got {self.num_samples}")
        if self.layout not in ("bcthw", "btchw", "bthwc"):
            raise InputError(f"layout must be bcthw, btchw or bthwc, got {self.layout!r}")
        if self.value_range not in VALUE_RANGES:
            raise InputError(f"value_range must be one of {', '.join(VALUE_RANGES)}, got {self.value_range!r}")


def _prepare(clips: list[torch.Tensor], protocol: FeatureProtocol) -> torch.Tensor:
    """uint8 clips (F,H,W,3), of any sizes, -> the network's input batch; each clip is resized on its own (clips of
    two sizes in one batch were stacked first and failed, so the result hung on --batch-size)."""
    size = (protocol.resolution, protocol.resolution)
    resized = []
    for clip in clips:
        frames = rearrange(clip[: protocol.clip_length].float(), "t h w c -> t c h w")  # 0..255
        if tuple(frames.shape[-2:]) != size:
            frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
        resized.append(frames)
    b = len(resized)
    batch = torch.cat(resized)  # ((b t) c h w)
    batch = {"signed": batch / 127.5 - 1, "unit": batch / 255, "byte": batch}[protocol.value_range]
    pattern = {"bcthw": "(b t) c h w -> b c t h w", "btchw": "(b t) c h w -> b t c h w", "bthwc": "(b t) c h w -> b t h w c"}
    return rearrange(batch, pattern[protocol.layout], b=b)


@torch.no_grad()
def extract_features(
    clips: Iterable,
    network: torch.nn.Module,
    protocol: FeatureProtocol = FeatureProtocol(),
    network_kwargs: dict | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Features (N, D) of uint8 clips (F,H,W,3), each at least `protocol.clip_length` frames long."""
    features, pending, count = [], [], 0
    network_kwargs = network_kwargs or {}

    def flush():
        out = network(_prepare(pending, protocol).to(device), **network_kwargs)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(pending):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(f"feature network must return (B, D) features, got {shape} for B={len(pending)}")
        if not bool(torch.isfinite(out).all()):  # the covariance's eigen-solver fails on them with a traceback
            raise InputError(f"feature network returned NaN or infinite features for clips {count - len(pending)}.."
                             f"{count - 1}")
        features.append(out.double().cpu())
        pending.clear()

    for i, clip in enumerate(clips):
        if protocol.num_samples is not None and count >= protocol.num_samples:
            break
        clip = torch.as_tensor(clip)
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise InputError(f"clip {i}: expected uint8 frames (F,H,W,3), got {clip.dtype} {tuple(clip.shape)}")
        if clip.shape[0] < protocol.clip_length:
            raise InputError(f"clip {i} has {clip.shape[0]} frames, fewer than clip_length={protocol.clip_length}")
        pending.append(clip)
        count += 1
        if len(pending) == protocol.batch_size:
            flush()
    if pending:
        flush()
    if protocol.num_samples is not None and count < protocol.num_samples:
        raise InputError(f"only {count} clips available, fewer than num_samples={protocol.num_samples}")
    if count < 2:
        raise InputError(f"FVD needs at least 2 clips per set, got {count}")
    return torch.cat(features)


# ---- clip folders ----


def video_files(folder: str | os.PathLike, name: str = "videos") -> list[Path]:
    """The video files under `folder`, subfolders included, as training reads them (`vidiff.io.list_video_files`);
    `name` is the CLI option reported in errors."""
    from vidiff.io import check_folder

    label = name if name.isupper() else f"--{name}"  # an option, or a positional argument such as FOLDER
    folder = check_folder(folder, label)
    files = list_video_files(folder)
    if not files:
        raise InputError(f"{label}: no video files ({', '.join(READABLE_SUFFIXES)}) in {folder}")
    return files


def clip_set(folder: str | os.PathLike, which: str, num_samples: int | None) -> list[Path]:
    """The first `num_samples` video files of `folder` (all with None), `which` naming it in errors ("real",
    "fake"). A folder with fewer is refused here, before any features: it was found once the network had run over
    it, and over the whole other set first, in an error naming neither folder."""
    files = video_files(folder, which)
    if num_samples is not None and len(files) < num_samples:
        raise InputError(f"--{which}: {len(files)} video file{'' if len(files) == 1 else 's'} in {folder}, fewer "
                         f"than --num {num_samples}")
    return files[:num_samples] if num_samples is not None else files


def clip_names(files: Iterable[Path], folder: str | os.PathLike) -> list[str]:
    """Each of `video_files(folder)` by its path in `folder`, '/'-separated: sub/a.mp4 is told from a.mp4."""
    return [Path(f).relative_to(Path(folder).expanduser()).as_posix() for f in files]  # video_files expands "~"


def read_clips(files: Iterable[Path], num_frames: int | None = None, size: int | None = None):
    """Yields (path, uint8 frames (F,H,W,3)) for each file, reading `num_frames` from the start (None: all). With
    `size`, each frame's centre square area-resized to size x size (real_footage.center_square), taken while the
    clip decodes: a whole 1080p clip kept at full size passed read_video's bound on decoded bytes (a minute of it
    is 10 GiB), where the eval needs 128 x 128."""
    import itertools

    import numpy as np

    from vidiff.data.real_footage import center_square
    from vidiff.io import iter_video, read_video

    for path in files:
        if size is None:
            frames, _ = read_video(path, num_frames=num_frames)
            yield path, frames
            continue
        decoded = itertools.islice(iter_video(path), num_frames)
        chunks = []
        while chunk := list(itertools.islice(decoded, 64)):  # 64 full-size frames at a time
            chunks.append(center_square(torch.from_numpy(np.stack(chunk)), size))
        if not chunks:
            raise InputError(f"{path}: no frame could be decoded")
        yield path, torch.cat(chunks)


def fvd(
    set_a,
    set_b,
    network: str | os.PathLike | torch.nn.Module,
    protocol: FeatureProtocol = FeatureProtocol(),
    network_kwargs: dict | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """FVD between two clip sets, each a folder of videos or an iterable of uint8 (F,H,W,3) clips.

    `network` is a TorchScript file (see `load_network`) or an already loaded module. Returns {"fvd", "num_a", "num_b", "feature_dim", "protocol"}.
    """
    if not isinstance(network, torch.nn.Module):
        network = load_network(network, device)
    sets = [(frames for _, frames in read_clips(clip_set(clips, which, protocol.num_samples), protocol.clip_length))
            if isinstance(clips, (str, os.PathLike)) else clips
            for which, clips in (("real", set_a), ("fake", set_b))]  # both folders listed before any features
    features = [extract_features(clips, network, protocol, network_kwargs, device) for clips in sets]
    stats_a, stats_b = feature_statistics(features[0]), feature_statistics(features[1])
    return {
        "fvd": frechet_distance(*stats_a, *stats_b),
        "num_a": int(features[0].shape[0]),
        "num_b": int(features[1].shape[0]),
        "feature_dim": int(features[0].shape[1]),
        "protocol": asdict(protocol),
    }
