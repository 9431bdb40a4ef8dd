"""Real footage for the real-interp recipe (issue 18): a fixed training corpus and the VAE's dataset of augmented
crops (the interpolation model's window cache is vidiff/data/real_windows.py).

The corpus is fixed so that the evaluation stays honest: Debian opencv-doc's vtest.avi, Megamind.avi and
Megamind_bugy.avi and python3-imageio's newtonscradle.gif (tools/fetch_sample_videos.sh), plus the still images
that ship inside scikit-image (skimage/data/*.png|jpg, no download). tree.avi, cockatoo.mp4 and realshort.mp4 are
held out: `prepare_corpus` refuses them, and nothing here reads them.

    prepare_corpus(samples, out)          decodes each clip once to uint8 .npy, short side <= `short_side`
    RealFrameDataset(corpus, size)        VAE items: one random crop of a frame (or of F frames) or a still

Every random draw derives from (seed, ...) with numpy's default_rng, so a resumed run replays exactly.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from vidiff.errors import InputError

log = logging.getLogger(__name__)

TRAIN_CLIPS = ("vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "newtonscradle.gif")
HELD_OUT = ("tree.avi", "cockatoo.mp4", "realshort.mp4")  # evaluation only: never training, tuning or stopping
# scikit-image's bundled sample images (files inside the installed package; grey ones become RGB)
STILL_FILES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg", "ihc.png",
               "hubble_deep_field.jpg", "motorcycle_left.png", "motorcycle_right.png", "color.png", "camera.png",
               "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png", "page.png", "text.png",
               "clock_motion.png", "horse.png")
MANIFEST = "manifest.json"


# ---- pixels ----------------------------------------------------------------------------------------------

def crop_resize(frames: torch.Tensor, top: int, left: int, side: int, size: int) -> torch.Tensor:
    """uint8 (F,H,W,3): the square [top:top+side, left:left+side], area-resized to size x size, uint8 (F,s,s,3)."""
    x = rearrange(frames[:, top:top + side, left:left + side], "f h w c -> f c h w").float()
    if side != size:
        mode = "area" if side > size else "bilinear"
        x = F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))
    return rearrange(x.round().clamp(0, 255).to(torch.uint8), "f c h w -> f h w c")


def center_square(frames: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 (F,H,W,3) -> the centre square, area-resized to size x size (None: the square as it is)."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    return crop_resize(frames, (h - side) // 2, (w - side) // 2, side, size or side)


def shrink(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """uint8 (F,H,W,3) with the short side area-reduced to `short_side` (never enlarged)."""
    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    if scale >= 1:
        return frames
    out = []
    for chunk in frames.split(64):  # bounded memory for long clips
        x = rearrange(chunk, "f h w c -> f c h w").float()
        x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="area")
        out.append(rearrange(x.round().clamp(0, 255).to(torch.uint8), "f c h w -> f h w c"))
    return torch.cat(out)


def to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F,H,W,3) -> float (3,F,H,W) in [-1,1]."""
    return rearrange(frames, "f h w c -> c f h w").float() / 127.5 - 1.0


# ---- corpus ----------------------------------------------------------------------------------------------

def still_image_paths() -> list[Path]:
    """The bundled scikit-image sample images that are present (the package is the test / data extra)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [data / name for name in STILL_FILES if (data / name).is_file()]


def prepare_corpus(samples: str | Path, out: str | Path, short_side: int = 576, clips=TRAIN_CLIPS,
                   stills: bool = True) -> dict:
    """Decodes the training clips (and the still images) once into `out` as uint8 .npy with the short side
    area-reduced to `short_side`; writes manifest.json. A held-out clip name is an error."""
    from vidiff.image_io import read_image
    from vidiff.io import read_video
    from vidiff.output_safety import write_text

    samples, out = Path(samples), Path(out)
    for name in clips:
        if name in HELD_OUT:
            raise InputError(f"{name} is held out for evaluation and must never be used for training")
    missing = [name for name in clips if not (samples / name).is_file()]
    if missing:
        raise InputError(f"{samples}: missing {missing} (run bash tools/fetch_sample_videos.sh)")
    (out / "stills").mkdir(parents=True, exist_ok=True)
    # the manifest is what makes `out` a corpus: gone while the arrays are rewritten, written whole at the end, so
    # a stop halfway through a rerun never leaves the old manifest over some new arrays
    (out / MANIFEST).unlink(missing_ok=True)
    manifest = {"short_side": short_side, "clips": [], "stills": []}
    for name in clips:
        frames, fps = read_video(samples / name)
        small = shrink(frames, short_side)
        np.save(out / f"{name}.npy", small.numpy())
        manifest["clips"].append({"name": name, "file": f"{name}.npy", "fps": float(fps),
                                  "frames": int(small.shape[0]), "source_size": list(frames.shape[1:3]),
                                  "size": list(small.shape[1:3])})
        log.info("corpus: %s %s -> %s", name, tuple(frames.shape), tuple(small.shape))
    for path in still_image_paths() if stills else []:
        image = torch.as_tensor(np.asarray(read_image(path)))
        if image.ndim == 2:
            image = image[..., None]
        image = image[..., :3].expand(*image.shape[:2], 3) if image.shape[-1] == 1 else image[..., :3]
        small = shrink(image[None].contiguous(), 2 * short_side)[0]  # stills: more detail per image
        if min(small.shape[:2]) < 64:
            continue
        np.save(out / "stills" / f"{path.stem}.npy", small.numpy())
        manifest["stills"].append({"name": path.name, "file": f"stills/{path.stem}.npy", "size": list(small.shape[:2])})
    write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(corpus: str | Path) -> dict:
    path = Path(corpus) / MANIFEST
    if not path.is_file():
        raise InputError(f"{corpus}: not a prepared corpus (missing {MANIFEST}; run the prep step)")
    manifest = json.loads(path.read_text())
    for clip in manifest["clips"]:
        if clip["name"] in HELD_OUT:
            raise InputError(f"{path}: lists held-out clip {clip['name']}")
    return manifest


def random_square(rng: np.random.Generator, h: int, w: int, size: int) -> tuple[int, int, int]:
    """(top, left, side): side log-uniform in [size, min(h, w)] (or the whole short side if smaller)."""
    short = min(h, w)
    side = short if short <= size else int(round(np.exp(rng.uniform(np.log(size), np.log(short)))))
    return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side


# ---- the VAE's data: augmented frames, or windows of them ------------------------------------------------

class RealFrameDataset(torch.utils.data.Dataset):
    """Items {"video": float (3,num_frames,size,size) in [-1,1], "caption": ""}: `num_frames` consecutive frames
    of a random clip (clips weighted by their frame count; for clips of 20 fps or more every second frame half the
    time), or with probability `still_prob` a still image held for `num_frames` frames; one square crop of random
    scale and position for all of them, area-resized to `size`, flipped left-right half the time. num_frames 1
    feeds the per-frame VAE, more its temporal decoder. Item (epoch, index) is the same draw every time (seed,
    epoch, index)."""

    def __init__(self, corpus: str | Path, size: int = 64, seed: int = 0, length: int = 4096,
                 still_prob: float = 0.3, num_frames: int = 1):
        self.corpus, self.size, self.seed, self.length = Path(corpus), size, seed, length
        self.still_prob, self.num_frames = still_prob, num_frames
        manifest = read_manifest(corpus)
        self.clips = [np.load(self.corpus / c["file"], mmap_mode="r") for c in manifest["clips"]]
        self.clip_fps = [float(c["fps"]) for c in manifest["clips"]]
        self.stills = [np.load(self.corpus / s["file"]) for s in manifest["stills"]]
        short = [len(c) for c in self.clips if len(c) < num_frames]
        if short:
            raise InputError(f"{corpus}: a clip of {short[0]} frames is shorter than num_frames {num_frames}")
        counts = np.array([len(c) for c in self.clips], dtype=np.float64)
        self.clip_p = counts / counts.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def describe(self) -> dict:
        return {"root": str(self.corpus), "size": self.size, "seed": self.seed, "still_prob": self.still_prob,
                "num_frames": self.num_frames}

    def frames(self, index: int) -> torch.Tensor:
        """uint8 (num_frames,size,size,3) of item `index` this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n = self.num_frames
        if self.stills and rng.random() < self.still_prob:
            source = self.stills[int(rng.integers(len(self.stills)))][None].repeat(n, axis=0)
        else:
            c = int(rng.choice(len(self.clips), p=self.clip_p))
            clip = self.clips[c]
            # the time stride is drawn for clips only (n > 1), so that per-frame items draw as they always did
            step = 2 if n > 1 and self.clip_fps[c] >= 20 and len(clip) >= 2 * n - 1 and rng.random() < 0.5 else 1
            start = int(rng.integers(len(clip) - step * (n - 1)))
            source = clip[start: start + step * (n - 1) + 1: step]
        top, left, side = random_square(rng, *source.shape[1:3], self.size)
        frames = crop_resize(torch.from_numpy(np.array(source)), top, left, side, self.size)
        return frames.flip(2) if rng.random() < 0.5 else frames

    def __getitem__(self, index: int) -> dict:
        return {"video": to_video(self.frames(index)), "caption": "", "index": index}
