"""What is written next to each generated clip: a JSON sidecar (prompt, seed, settings, model checksum, version,
elapsed time) and, on request, a contact sheet (a PNG grid of the frames)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidiff import __version__

SIDECAR_SUFFIX = ".json"


def sidecar_path(output: str | Path) -> Path:
    """out.mp4 -> out.mp4.json"""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def contact_sheet_path(output: str | Path) -> Path:
    """out.mp4 -> out.sheet.png"""
    output = Path(output)
    return output.with_name(output.stem + ".sheet.png")


def numbered_outputs(output: str | Path, count: int) -> list[Path]:
    """out.mp4 for one sample; out_000.mp4, out_001.mp4, ... for several, with as many digits as the last number
    needs (--num 1001: out_0000 ... out_1000; out_1000 was listed between out_100 and out_101)."""
    output = Path(output)
    if count == 1:
        return [output]
    width = max(3, len(str(count - 1)))
    return [output.with_name(f"{output.stem}_{i:0{width}d}{output.suffix}") for i in range(count)]


def weights_checksum(model_folder: str | Path, parts: dict[str, Path]) -> dict[str, str]:
    """sha256 of each part's model.safetensors, plus one over all of them ("pipeline")."""
    import hashlib

    from vidiff.parts import WEIGHTS_NAME, file_sha256

    sums = {name: file_sha256(Path(folder) / WEIGHTS_NAME) for name, folder in sorted(parts.items())}
    sums["pipeline"] = hashlib.sha256("".join(f"{k}:{v};" for k, v in sums.items()).encode()).hexdigest()
    return sums


def build_sidecar(
    *, command: str, prompt: str, seed: int, settings: dict, model_folder: str | Path, checksums: dict[str, str],
    elapsed_s: float, output: str | Path, inputs: dict | None = None,
) -> dict:
    return {
        "command": command,
        "prompt": prompt,
        "seed": seed,
        "settings": settings,
        "inputs": inputs or {},
        "model": {"folder": str(Path(model_folder).resolve()), "sha256": checksums},
        "vidiff_version": __version__,
        "elapsed_s": round(float(elapsed_s), 3),
        "output": Path(output).name,
    }


def write_sidecar(output: str | Path, record: dict) -> Path:
    """Writes out.mp4.json atomically (random temporary name opened O_EXCL | O_NOFOLLOW, fsync, rename)."""
    from vidiff.output_safety import write_text

    return write_text(sidecar_path(output), json.dumps(record, indent=2, sort_keys=False) + "\n")


def remove_descriptions(output: str | Path) -> None:
    """Removes output's sidecar and contact sheet (and syncs the folder): they describe the clip about to be
    replaced, and a stop before the new ones are written must not leave them next to the new clip."""
    import os

    from vidiff.output_safety import _fsync_dir

    output = Path(output)
    for path in (sidecar_path(output), contact_sheet_path(output)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    _fsync_dir(output.parent if str(output.parent) else Path("."))


def contact_sheet(frames, columns: int = 8, gap: int = 2, background: int = 128) -> np.ndarray:
    """uint8 (F,H,W,3) -> one uint8 image (rows*H + gaps, columns*W + gaps, 3), frames left to right, top to bottom."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"contact_sheet: expected uint8 frames (F,H,W,3), got {frames.dtype} {frames.shape}")
    count, height, width, _ = frames.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    sheet = np.full((rows * height + (rows + 1) * gap, columns * width + (columns + 1) * gap, 3), background, np.uint8)
    for i in range(count):
        r, c = divmod(i, columns)
        top, left = gap + r * (height + gap), gap + c * (width + gap)
        sheet[top : top + height, left : left + width] = frames[i]
    return sheet


def write_contact_sheet(output: str | Path, frames, columns: int = 8) -> Path:
    """Writes out.sheet.png atomically, like every other output."""
    from PIL import Image

    from vidiff.output_safety import atomic_write

    sheet = Image.fromarray(contact_sheet(frames, columns))
    return atomic_write(contact_sheet_path(output), lambda f: sheet.save(f, format="PNG"))


def output_files(output: str | Path, count: int, contact_sheets: bool) -> list[Path]:
    """Every file a generation command writes: the clips, their sidecars and (on request) contact sheets."""
    files = []
    for clip in numbered_outputs(output, count):
        files += [clip, sidecar_path(clip)] + ([contact_sheet_path(clip)] if contact_sheets else [])
    return files
