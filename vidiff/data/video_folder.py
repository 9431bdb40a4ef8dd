"""A folder of video clips with captions, as a map-style torch Dataset.

Captions come from `metadata.jsonl` / `metadata.csv` (`file_name`, `text`; with both, the jsonl wins) or a sidecar
`<clip>.txt` (the sidecar wins). `.json` files (e.g. Shapes ground truth) are never read as videos or captions.
Files are scanned once in contained workers (`safe_decode.scan_videos`); bad ones are skipped and counted.

Every random draw (clip start) derives from (seed, epoch, index) only, so an epoch replays exactly for any
number of DataLoader workers. A file that fails at read time is replaced by the next index (index + 1,
index + 2, ...), logged, never raised.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import Dataset

from vidiff.data.safe_decode import log_skip, scan_videos
from vidiff.errors import InputError, VideoDecodeError
from vidiff.io import VideoLimits, check_folder, frame_index, frame_step, read_video

log = logging.getLogger(__name__)


CAPTION_MAX_BYTES = 64 << 20  # a metadata file; a sidecar caption is far smaller


def read_caption_text(path: Path) -> str:
    """A caption file's text: UTF-8, with the byte-order mark Windows editors and Excel's "CSV UTF-8" put first
    dropped (it was kept in the caption, or hid the csv's first column name). Anything else is refused in one line
    naming the file (a Latin-1 caption was a UnicodeDecodeError traceback naming none)."""
    from vidiff.safe_yaml import read_text

    return read_text(path, str(path), max_bytes=CAPTION_MAX_BYTES)


def read_sidecar_caption(path: Path) -> str:
    """A `<clip>.txt` caption, its Windows (CRLF) and old Mac (CR) line ends read as "\\n", as text mode reads a file
    (Notepad's "\\r" stayed in the caption). The metadata files' texts are kept as written: csv reads a row's line
    end itself, and a jsonl text is a JSON string whose "\\r" was written on purpose."""
    return re.sub(r"\r\n?", "\n", read_caption_text(path)).strip()


def clip_key(file_name: str) -> str:
    """A metadata row's file_name written as the clips are keyed, by their path in the folder ('sub/a.mp4'):
    "./a.mp4", a Windows "sub\\a.mp4" or "sub//a.mp4" named no clip, which trained with the empty caption. The case
    is kept (names are matched as the folder spells them)."""
    name = re.sub(r"/+", "/", file_name.replace("\\", "/"))
    while name.startswith("./"):
        name = name[2:]
    return name


def read_captions(root: Path) -> dict[str, str]:
    """file_name (relative to root, '/'-separated, see `clip_key`) -> caption, from metadata.jsonl or metadata.csv."""
    jsonl, table = root / "metadata.jsonl", root / "metadata.csv"
    captions = _read_metadata(jsonl, _jsonl_rows(jsonl)) if jsonl.is_file() else {}
    if table.is_file():
        extra = _read_metadata(table, _csv_rows(table))
        if jsonl.is_file():  # the csv filled the clips the jsonl lacks, without a word
            log.warning("%s: both metadata.jsonl and metadata.csv are here: metadata.jsonl wins for a clip both name "
                        "(%d), metadata.csv captions only the %d clip(s) metadata.jsonl does not name", root,
                        len(extra.keys() & captions.keys()), len(extra.keys() - captions.keys()))
        captions = {**extra, **captions}
    return captions


def _read_metadata(path: Path, rows) -> dict[str, str]:
    """One metadata file's captions from its (line, file_name, text) rows. A clip named on several lines takes the
    last one's text, said once naming the lines (the later rows silently won)."""
    captions: dict[str, str] = {}
    lines: dict[str, list[int]] = {}
    for n, name, text in rows:
        key = clip_key(name)
        captions[key] = text
        lines.setdefault(key, []).append(n)
    repeated = [f"{key} (lines {', '.join(map(str, ns))})" for key, ns in lines.items() if len(ns) > 1]
    if repeated:
        log.warning("%s: %d clip(s) named on more than one line, each captioned by its last: %s%s", path,
                    len(repeated), "; ".join(repeated[:3]), "; ..." if len(repeated) > 3 else "")
    return captions


def jsonl_lines(path: Path):
    """(line number from 1, line) of each non-blank line of a JSON-lines caption file, read as captions are read
    (read_caption_text). Lines end at "\n" only: splitlines() also split at U+2028 / U+0085, which
    json.dumps(ensure_ascii=False) leaves raw inside a caption, and the row was refused as "Unterminated string"."""
    for n, line in enumerate(read_caption_text(path).split("\n"), 1):
        if line.strip():
            yield n, line


def _jsonl_rows(path: Path):
    for n, line in jsonl_lines(path):
        try:
            row = json.loads(line)
            name, text = row["file_name"], row["text"]
        except (ValueError, RecursionError, KeyError, TypeError) as e:  # ValueError: also a 5000-digit integer
            raise InputError(f"{path}:{n}: needs a JSON object with 'file_name' and 'text' ({e})") from None
        wrong = [f"{key} is {json.dumps(value)[:40]}" for key, value in (("file_name", name), ("text", text))
                 if not isinstance(value, str)]
        if wrong:  # a null text trained as the caption "None", a list as "['a red circle']"
            raise InputError(f"{path}:{n}: 'file_name' and 'text' must be JSON strings ({', '.join(wrong)})")
        yield n, name, text


def _csv_rows(path: Path):
    text = read_caption_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_csv_delimiter(text.split("\n", 1)[0]))
    if not reader.fieldnames or not {"file_name", "text"} <= set(reader.fieldnames):
        raise InputError(f"{path}: needs the columns file_name and text (it has {reader.fieldnames})")
    for row in reader:
        if row["file_name"] is None or row["text"] is None:  # a short row: csv fills the missing cells with None
            raise InputError(f"{path}:{reader.line_num}: needs a file_name and a text")
        yield reader.line_num, row["file_name"], row["text"]


def _csv_delimiter(header: str) -> str:
    """The delimiter that splits the header line into file_name and text: Excel separates with tabs in "Unicode
    Text" (its UTF-16, saved again as UTF-8) and with semicolons in "CSV" where the decimal mark is a comma; both
    were "needs the columns file_name and text (it has ['file_name\\ttext'])". A comma otherwise."""
    for delimiter in (",", "\t", ";"):
        if {"file_name", "text"} <= {cell.strip().strip('"') for cell in header.split(delimiter)}:
            return delimiter
    return ","


def _say_caption_gaps(root: Path, captions: dict[str, str], used: set[str], uncaptioned: int, clips: int) -> None:
    """Metadata rows that name no clip of the folder (a typo, a clip not copied) and clips without a caption are
    said, once per dataset: both trained silently before."""
    ghosts = sorted(set(captions) - used)
    if ghosts:
        log.warning("%s: the captions name %d clip(s) not in the folder or not readable, e.g. %s", root, len(ghosts),
                    ghosts[0])
    if uncaptioned:
        log.warning("%s: %d of %d clips have no caption (no <clip>.txt, no metadata row, or an empty one): they "
                    "train with the empty prompt", root, uncaptioned, clips)


class VideoFolderDataset(Dataset):
    """Yields {"video": float (3,F,H,W) in [-1,1], "caption": str, "path": str, "index": int}.

    num_frames: frames per clip; stride: source frames between clip frames, or fps: a target frame rate
    (not both); size: (H, W) output, after resizing the shorter side and a centre crop.
    """

    def __init__(self, root, num_frames: int, stride: int = 1, fps: float | None = None,
                 size: tuple[int, int] = (64, 64), seed: int = 0, limits: VideoLimits | None = None,
                 scan_workers: int = 2, scan_timeout: float = 30.0, max_retries: int = 16):
        self.root = check_folder(root, "video folder")
        from vidiff.data.shapes_folder import refuse_unfinished

        refuse_unfinished(self.root)
        from vidiff.folder_lock import ReadLock
        from vidiff.output_safety import shown

        # held while this dataset lives: `vidiff data shapes` into the folder is refused meanwhile
        self._read_lock = ReadLock(self.root, f"{shown(self.root)}: a `vidiff data shapes` (or other vidiff command) "
                                              "is writing this folder now; wait for it to end")
        try:
            self._scan(num_frames, stride, fps, size, seed, limits, scan_workers, scan_timeout, max_retries)
        except BaseException:  # a refused dataset held in a traceback (a notebook's) kept the folder locked
            self._read_lock.release()
            raise

    def _scan(self, num_frames, stride, fps, size, seed, limits, scan_workers, scan_timeout, max_retries) -> None:
        """The rest of __init__, with the folder's read lock held: checks the settings, scans the clips."""
        if not isinstance(num_frames, int) or num_frames < 1:
            raise InputError(f"num_frames must be a positive integer, got {num_frames!r}")
        if len(size) != 2 or min(size) < 1:
            raise InputError(f"size must be (H, W) with positive values, got {size!r}")
        if fps is not None and not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps < math.inf):
            raise InputError(f"fps must be a positive number or None, got {fps!r}")
        if fps is not None and stride != 1:
            raise InputError("give either stride or fps, not both")
        self.num_frames, self.stride, self.fps, self.size = num_frames, stride, fps, tuple(size)
        self.seed, self.epoch, self.max_retries = seed, 0, max_retries
        self.limits = limits
        scan = scan_videos(self.root, limits=limits, num_workers=scan_workers, timeout=scan_timeout, progress=False)
        captions = read_captions(self.root)
        self.items: list[tuple[Path, int, float, str]] = []  # (path, usable start positions, source fps, caption)
        self.spans: list[int] = []  # source frames one clip of item i covers
        self.orientations: list[tuple[int, bool]] = []  # item i's (rotation, mirrored), from the scan's probe
        self.skipped: list[tuple[Path, str]] = list(scan.skipped)
        odd_sidecars: list[Path] = []  # a <clip>.txt that is a folder, FIFO, device or dangling link
        for path, info in scan.good:
            step = frame_step(info.fps, stride, fps)
            span = frame_index(num_frames - 1, 0, step) + 1  # source frames one clip covers
            if span > info.num_frames:
                reason = f"too short: {info.num_frames} frames, a clip needs {span}"
                log_skip(path, reason)
                self.skipped.append((path, reason))
                continue
            sidecar = path.with_suffix(".txt")
            rel = path.relative_to(self.root).as_posix()
            has_sidecar = sidecar.is_file()
            if not has_sidecar and os.path.lexists(sidecar):
                odd_sidecars.append(sidecar)
            caption = read_sidecar_caption(sidecar) if has_sidecar else captions.get(rel, "").strip()
            self.items.append((path, info.num_frames - span + 1, info.fps, caption))
            self.spans.append(span)
            self.orientations.append((info.rotation, info.mirrored))
        if not self.items:
            raise InputError(f"video folder {self.root}: no usable clips" + _skip_summary(self.skipped))
        if fps is None:  # a stride keeps the rates' ratio (30 and 8 fps at stride 2 read as 15 and 4)
            _say_mixed_rates(self.root, [item[2] / stride for item in self.items])
        named = {p.relative_to(self.root).as_posix() for p, _ in [*scan.good, *scan.skipped]}
        if odd_sidecars:  # they counted silently as "no caption" (a FIFO is never opened: it would block)
            log.warning("%s: %d caption file(s) are not regular files (a folder, FIFO, device or dangling link), "
                        "e.g. %s: read as no sidecar caption", self.root, len(odd_sidecars), odd_sidecars[0])
        _say_caption_gaps(self.root, captions, named, sum(1 for item in self.items if not item[3]), len(self.items))
        self.read_failures = 0  # per process (each DataLoader worker counts its own)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def captions(self) -> list[str]:
        """Each clip's caption, in item order (as a latent cache lists them)."""
        return [caption for _, _, _, caption in self.items]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def contents_sha256(self) -> str:
        """Which clips the folder gives, with their captions: a checkpoint records it, so that a run resumed after
        clips were added, removed or recaptioned is told (training/sample_stream.py: check_same_data)."""
        import hashlib

        clips = [[path.relative_to(self.root).as_posix(), caption] for path, _, _, caption in self.items]
        return hashlib.sha256(json.dumps(clips).encode()).hexdigest()

    def clip_start(self, index: int) -> int:
        """The random start of clip `index` this epoch: a function of (seed, epoch, index) only."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(self.items[index][1]))

    def __getitem__(self, index: int) -> dict:
        return self.read_clip(index, self.clip_start)

    def read_clip(self, index: int, start_of) -> dict:
        """Item `index` from source frame start_of(i); a clip that fails to read is replaced by the next."""
        for attempt in range(self.max_retries):
            i = (index + attempt) % len(self.items)
            path, _, _, caption = self.items[i]
            try:
                frames, _ = read_video(path, self.num_frames, self.stride, start_of(i), self.fps, limits=self.limits,
                                       source_fps=self.items[i][2],  # the scan's: the frames' own where it differs
                                       orientation=self.orientations[i])  # the scan's: no first frame decoded again
            except VideoDecodeError as e:
                self.read_failures += 1
                log_skip(path, e.reason, stage="read", replaced_by=(i + 1) % len(self.items))
                continue
            return {"video": self.to_video(frames), "caption": caption, "path": str(path), "index": i}
        raise VideoDecodeError(self.root, f"{self.max_retries} clips in a row failed to read from index {index}")

    def to_video(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (F,H,W,3) -> float (3,F,H,W) in [-1,1]: shorter side resized, then centre crop."""
        h, w = self.size
        x = rearrange(frames, "f h w c -> f c h w").float()
        scale = max(h / x.shape[2], w / x.shape[3])
        new = (max(h, round(x.shape[2] * scale)), max(w, round(x.shape[3] * scale)))
        x = F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)  # (F,3,h',w')
        top, left = (new[0] - h) // 2, (new[1] - w) // 2
        x = x[:, :, top : top + h, left : left + w]
        return rearrange(x / 127.5 - 1.0, "f c h w -> c f h w").clamp(-1, 1)


class VideoWindows(Dataset):
    """Many windows of each clip of a VideoFolderDataset, so that a latent cache of a few long videos holds all of
    their footage: every window `hop` source frames apart, or `per_video` windows spread evenly over each clip, or by
    default back to back and then one last window ending at the clip's last frame, overlapping the one before, when
    they leave a tail (covering each video end to end). Items are those of the folder, plus "start" (source frame).
    """

    def __init__(self, folder: VideoFolderDataset, hop: int | None = None, per_video: int | None = None):
        if hop is not None and per_video is not None:
            raise InputError("give either a hop or windows per video, not both")
        for name, value in (("hop", hop), ("windows per video", per_video)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        self.folder, self.hop, self.per_video = folder, hop, per_video
        self.windows: list[tuple[int, int]] = []  # (item of the folder, start in source frames)
        for i, (_, usable, _, _) in enumerate(folder.items):
            if per_video is not None:
                n = min(per_video, usable)
                starts = [round(k * (usable - 1) / (n - 1)) for k in range(n)] if n > 1 else [0]
            else:
                starts = list(range(0, usable, hop or folder.spans[i]))
                if hop is None and starts[-1] != usable - 1:  # a tail: one more window, ending at the end
                    starts.append(usable - 1)
            self.windows += [(i, s) for s in starts]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        i, start = self.windows[index]
        # a clip that fails to read is replaced by the next clip of the folder, from its first frame
        item = self.folder.read_clip(i, lambda j: start if j == i else 0)
        return {**item, "start": start if item["index"] == i else 0}

    def describe(self) -> dict:
        """For the latent cache's index.json: what the windows are and where each one starts."""
        import hashlib

        f = self.folder
        # the captions too: a cache built before a caption was fixed was continued (or kept) with the old one
        captions = hashlib.sha256(json.dumps([item[3] for item in f.items]).encode()).hexdigest()
        return {"root": str(f.root), "num_frames": f.num_frames, "stride": f.stride, "fps": f.fps,
                "size": list(f.size), "hop": self.hop, "per_video": self.per_video, "captions_sha256": captions,
                "windows": [[f.items[i][0].relative_to(f.root).as_posix(), start] for i, start in self.windows]}


def _skip_summary(skipped: list[tuple[Path, str]]) -> str:
    """Why the clips were skipped, for the one-line error: the count and the commonest reason with an example."""
    if not skipped:
        return " (no video files found)"
    from collections import Counter

    # "too short: 41 frames, a clip needs 100" -> "too short" counted together
    kinds = Counter(reason.split(":")[0] for _, reason in skipped)
    kind, count = kinds.most_common(1)[0]
    path, reason = next((p, r) for p, r in skipped if r.split(":")[0] == kind)
    return f" ({len(skipped)} skipped; {count} of them {kind}, e.g. {path.name}: {reason[:160]})"


def _say_mixed_rates(root: Path, rates: list[float]) -> None:
    """Clips at several frame rates read at their own: a window of F frames then spans another length of time in
    each, and the motion per frame differs (they were cached and trained so without a word)."""
    low, high = min(rates), max(rates)
    if high > low * 1.01:  # 29.97 and 30 fps are the same motion
        log.warning("%s: the clips' frame rates differ (%.4g to %.4g fps) and each is read at its own; give --fps "
                    "(`vidiff data cache`) or data.fps (a training config) to resample them to one rate", root, low,
                    high)
