"""Run metrics: RUN_DIR/metrics.jsonl (one JSON object per logged step), TensorBoard when it imports,
and RUN_DIR/loss.png (matplotlib, when installed). Only rank 0 makes one of these."""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)


def truncate_metrics(path: Path, after_step: int) -> None:
    """Drops lines with step > after_step (a resumed run rewrites what the killed one logged past its
    checkpoint) and any torn last line."""
    from vidiff.output_safety import write_text

    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("step", math.inf) <= after_step:
            kept.append(line)
    # Never rewritten in place: a new file (random O_EXCL temporary, fsync) replaces the old one by rename, so a
    # kill at any moment leaves either the whole old history or the whole new one.
    write_text(path, "".join(k + "\n" for k in kept))


def read_metrics(path: str | Path) -> list[dict]:
    rows = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a torn last line from a killed run
    return rows


class MetricsLogger:
    def __init__(self, run_dir: Path, resume_step: int | None):
        from vidiff.output_safety import OutputError, shown, write_text

        self.path = run_dir / "metrics.jsonl"
        if resume_step is None:
            write_text(self.path, "")  # a fresh run: an empty file replaces (never truncates) an old one
        else:
            truncate_metrics(self.path, resume_step)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o666)  # appends only; a symlink is refused
        except OSError as e:
            raise OutputError(f"{shown(self.path)}: cannot open for appending ({e.strerror})") from None
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            pass

    def log(self, row: dict) -> None:
        """Appends the row as one line. A full disk (or the file-size limit) is one line naming the file, and the
        part of the line that was written is cut off again (it was a traceback, and a torn last line)."""
        from vidiff.output_safety import OutputError, describe_write_error, shown

        line, size = memoryview((json.dumps(row) + "\n").encode()), None
        try:
            size = os.fstat(self.fd).st_size
            while line:
                line = line[os.write(self.fd, line):]
        except OSError as e:
            if size is not None:
                try:
                    os.ftruncate(self.fd, size)
                except OSError:
                    pass  # a torn last line is skipped when the metrics are read
            raise OutputError(f"{shown(self.path)}: cannot log step {row.get('step')} ({describe_write_error(e)}); "
                              "training stopped there (--resume auto continues from the last checkpoint)") from None
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tb.add_scalar(f"train/{key}", value, row["step"])

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        if self.tb is not None:
            self.tb.close()
        plot_loss(self.path, self.path.parent / "loss.png")


def plot_loss(metrics_path: Path, out: Path) -> bool:
    """Writes the loss curve (log scale) if matplotlib is installed; returns whether it did."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in read_metrics(metrics_path) if isinstance(r.get("loss"), float) and math.isfinite(r["loss"])]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    from vidiff.output_safety import atomic_write

    fig.tight_layout()
    try:
        atomic_write(out, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)
    return True
