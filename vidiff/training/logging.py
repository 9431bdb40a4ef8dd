"""Run metrics: RUN_DIR/metrics.jsonl (one JSON object per logged step), TensorBoard when it imports,
and RUN_DIR/loss.png (matplotlib, when installed). Only rank 0 makes one of these."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


def truncate_metrics(path: Path, after_step: int) -> None:
    """Drops lines with step > after_step (a resumed run rewrites what the killed one logged past its
    checkpoint) and any torn last line."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("step", math.inf) <= after_step:
            kept.append(line)
    path.write_text("".join(k + "\n" for k in kept))


def read_metrics(path: str | Path) -> list[dict]:
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a torn last line from a killed run
    return rows


class MetricsLogger:
    def __init__(self, run_dir: Path, resume_step: int | None):
        self.path = run_dir / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")
        else:
            truncate_metrics(self.path, resume_step)
        self.file = open(self.path, "a")
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            pass

    def log(self, row: dict) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tb.add_scalar(f"train/{key}", value, row["step"])

    def close(self) -> None:
        self.file.close()
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
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return True
