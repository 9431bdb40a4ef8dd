"""Reading a training run folder for the report: regular files inside the run folder only (symlinks resolved,
FIFOs and devices refused without blocking), each with a size cap; metrics.jsonl tolerant of a torn last line;
the loss curves drawn as a PNG."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

from vidiff.errors import InputError


INLINE_MAX_BYTES = 32 << 20  # one embedded image; a preview GIF is a few hundred KB


TEXT_MAX_BYTES = 64 << 20  # metrics.jsonl, config.yaml, one eval or preview JSON


def read_run_file(path: Path, run_dir: Path, max_bytes: int, why: str = "") -> bytes:
    """The bytes of a file of the run: a regular file inside the run folder (symlinks resolved) of at most
    `max_bytes`. Opened O_NONBLOCK and checked with fstat, so a FIFO or device under that name never blocks the
    report, and a link to a file outside the run (a system file) is never copied into the page."""
    import stat

    from vidiff.output_safety import shown

    name = shown(path.relative_to(run_dir) if path.is_relative_to(run_dir) else path)
    from vidiff.output_safety import real_path

    if not real_path(path).is_relative_to(real_path(run_dir)):
        raise InputError(f"{why}{name} leads outside the run folder (a symlink); refusing to read it")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise InputError(f"{why}cannot open {name} ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{why}{name} is not a regular file (FIFO, device or folder)")
        if st.st_size > max_bytes:
            raise InputError(f"{why}{name} is {st.st_size} bytes, over the {max_bytes}-byte limit")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{why}{name} grew over the {max_bytes}-byte limit while read")
    return data


def read_inline(path: Path, run_dir: Path, max_bytes: int = INLINE_MAX_BYTES) -> bytes:
    """The bytes of an image to embed (see read_run_file)."""
    return read_run_file(path, run_dir, max_bytes, why="--inline: ")


CURVES = ("loss", "lr", "grad_norm")  # what the page draws, besides "step"


def _float_number(value) -> bool:
    """A JSON number a float holds: an integer over ~1e308 is none (the curves and the table's float() overflowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def read_metrics(path: Path, run_dir: Path | None = None) -> tuple[list[dict], int]:
    """The records of metrics.jsonl that have a numeric "step", and how many lines were skipped (a line whose step,
    loss, lr or grad_norm is an integer no float holds among them)."""
    records, skipped = [], 0
    text = read_run_file(path, run_dir or path.parent, TEXT_MAX_BYTES).decode("utf-8", "replace")
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, an integer of over 4300 digits, or nested too deep
            skipped += 1
            continue
        if isinstance(record, dict) and _float_number(record.get("step")) and all(
                _float_number(record[k]) for k in CURVES if isinstance(record.get(k), int)):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def read_json(path: Path, run_dir: Path):
    from vidiff.limits import short_repr

    try:
        return json.loads(read_run_file(path, run_dir, TEXT_MAX_BYTES)), None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, InputError):
            raise
        return None, f"{short_repr(path.name)[1:-1]}: not readable JSON ({short_repr(str(e))[1:-1]})"


def plot_curves(records: list[dict]) -> bytes:
    """PNG of loss (and lr / grad_norm when logged) against step, drawn with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in CURVES if any(isinstance(r.get(k), (int, float)) for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1)
        if key != "lr" and all(p[1] > 0 for p in points):
            ax.set_yscale("log")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
