"""The Shapes dataset folder that `vidiff data shapes` writes: clip_NNNNNN.mp4 + .txt (caption) + .json (ground
truth) per clip and metadata.jsonl, written so that a stopped run is never read as a whole dataset. The domain itself
(parameters, rendering, prompts) is vidiff/data/shapes.py.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

from vidiff.data.shapes import MIN_FRAME_SIZE, check_min_speed_scale, ground_truth, iter_clip_params, render_clip
from vidiff.errors import InputError


def _atomic_write_text(path: Path, text: str) -> None:
    from vidiff.output_safety import write_text

    write_text(path, text)  # random O_EXCL | O_NOFOLLOW temporary, fsync, rename: a planted symlink is replaced


MAX_DATASET_CLIPS = 1_000_000  # clips per `vidiff data shapes` call
MAX_DATASET_SIZE = 1024  # frame side in px


def generate_shapes_dataset(out_dir: str | Path, num: int, frames: int = 16, size: int = 64, fps: float = 8,
                            seed: int = 0, progress: bool = True, min_speed_scale: float = 1.0) -> Path:
    """Writes `num` clips as clip_XXXXXX.mp4 + .txt (caption) + .json (ground truth), and metadata.jsonl."""
    from vidiff.limits import MAX_FRAMES, check_int, check_seed, short_repr
    from vidiff.output_safety import OutputError, check_output, shown
    from vidiff.video_writer import check_fps

    if not isinstance(out_dir, (str, Path)) or not str(out_dir).strip():  # "" wrote into the working folder and
        raise InputError(f"out_dir: expected a folder path, got {short_repr(out_dir)}")  # removed clips past num
    check_int(num, "num", 1, MAX_DATASET_CLIPS)
    check_int(frames, "frames", 1, MAX_FRAMES)
    check_int(size, "size", MIN_FRAME_SIZE, MAX_DATASET_SIZE)
    check_seed(seed, "seed")
    check_fps(fps, ".mp4")
    min_speed_scale = check_min_speed_scale(min_speed_scale)
    out = Path(out_dir)
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(f"--out {shown(out)}: exists and is not a folder")
    check_output(out / "metadata.jsonl", what="--out")  # the folder can be created and written
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--out {shown(out)}: cannot create the folder ({e.strerror})") from None
    from vidiff.folder_lock import folder_lock

    with folder_lock(out, busy=f"--out {shown(out)}: another `vidiff data shapes` (or other vidiff command) is "
                               "writing this folder, or a training run, `vidiff data cache` or a dataset in a Python "
                               "session is reading it; wait "
                               "for it to end or choose another folder"):
        # present until metadata.jsonl is written: a stopped run's folder (some clips, maybe an earlier run's others)
        # is refused by the video folder reader instead of being read as a whole dataset
        _atomic_write_text(out / UNFINISHED_NAME, f"vidiff data shapes --num {num} --frames {frames} --seed {seed}\n")
        clips = iter_clip_params(num, frames, size, seed, min_speed_scale)
        rows = _write_clips(out, clips, num, fps, progress)
        stale = remove_clips_from(out, num)
        if stale:
            warnings.warn(f"--out {shown(out)}: removed {stale} clip(s) numbered {num} and up, left by an earlier, "
                          "larger run (a video folder reads every clip in it)", stacklevel=1)
        _atomic_write_text(out / "metadata.jsonl", "\n".join(rows) + "\n")
        (out / UNFINISHED_NAME).unlink()
    return out


def _write_clip(out: Path, params, fps: float) -> str:
    """One clip's three files; its metadata.jsonl row."""
    from vidiff.io import write_video

    stem = f"clip_{params.index:06d}"
    # caption and ground truth first: a run killed between files never leaves a video (which a video folder reads as
    # a clip) without its caption
    _atomic_write_text(out / f"{stem}.txt", params.caption + "\n")
    _atomic_write_text(out / f"{stem}.json", json.dumps(ground_truth(params, fps), indent=1) + "\n")
    write_video(out / f"{stem}.mp4", render_clip(params), fps)
    return json.dumps({"file_name": f"{stem}.mp4", "text": params.caption})


# threads that write clips: the encoder and each file's fsync release the GIL. 2000 clips of 41 frames took 50.5 s at
# 2 threads, 75.8 at one and 62.4 at 4 on a 2-core CPU (docs/benchmarks.md, "Writing a Shapes dataset")
WRITE_THREADS = min(4, os.cpu_count() or 1)


def _write_clips(out: Path, clips, num: int, fps: float, progress: bool) -> list[str]:
    """The clips written by WRITE_THREADS threads; their metadata.jsonl rows in clip order. A clip depends only on
    (seed, index), whichever thread writes it."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="shapes")
    pending, rows = deque(), []  # a few clips ahead of the one awaited, not all of a million-clip run
    with tqdm(total=num, desc="shapes", unit="clip", disable=not progress) as bar:
        try:
            for params in clips:
                pending.append(pool.submit(_write_clip, out, params, fps))
                if len(pending) >= 4 * WRITE_THREADS:
                    rows.append(pending.popleft().result())
                    bar.update(1)
            while pending:
                rows.append(pending.popleft().result())
                bar.update(1)
        except BaseException:  # Ctrl-C, SIGTERM or a failed clip: the clips not started are not written
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    pool.shutdown(wait=True)
    return rows


UNFINISHED_NAME = ".shapes-unfinished"


def refuse_unfinished(folder: Path) -> None:
    """A folder that a `vidiff data shapes` run was writing when it stopped holds only some of its clips."""
    from vidiff.output_safety import shown

    if os.path.lexists(folder / UNFINISHED_NAME):
        from vidiff.folder_lock import folder_busy

        if folder_busy(folder):  # "run it again" would be refused while the run goes on
            raise InputError(f"{shown(folder)}: a `vidiff data shapes` run is writing this folder now (it holds some "
                             "of the clips); wait for it to end")
        raise InputError(f"{shown(folder)}: a `vidiff data shapes` run writing this folder did not finish (it "
                         f"holds some of the clips; {UNFINISHED_NAME} is there): run the same command again")


_CLIP_FILE = re.compile(r"clip_(\d{6,})\.(mp4|txt|json)")


def remove_clips_from(folder: Path, first: int) -> int:
    """Removes the clip files of our naming (clip_NNNNNN.mp4 / .txt / .json) numbered `first` and up; returns how
    many clips had files there. Anything else in the folder is left alone."""
    clips = set()
    for path in folder.iterdir():
        match = _CLIP_FILE.fullmatch(path.name)
        if match and int(match.group(1)) >= first and not path.is_dir():
            path.unlink()
            clips.add(match.group(1))
    return len(clips)
