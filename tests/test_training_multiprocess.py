"""Two processes (gloo on CPU, `accelerate launch --multi_gpu`) give the losses of one process with the same
global batch, because every draw derives from the global sample id."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from vidiff.training.logging import read_metrics

REPO = Path(__file__).resolve().parents[1]


def _config(path: Path, out: Path, batch: int) -> Path:
    path.write_text(yaml.safe_dump({
        "stage": "toy", "output_dir": str(out), "model": {"dim": 16, "width": 32},
        "data": {"kind": "synthetic", "num_samples": 30}, "optimizer": {"lr": 0.01, "warmup_steps": 5},
        "train": {"max_steps": 20, "batch_size": batch, "log_every": 1, "checkpoint_every": 10, "ema_decay": 0.9}}))
    return path


def test_two_processes_match_one(tmp_path, free_port):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    one = _config(tmp_path / "one.yaml", tmp_path / "one", batch=4)
    two = _config(tmp_path / "two.yaml", tmp_path / "two", batch=2)
    subprocess.run([sys.executable, "-m", "vidiff.train", "--config", str(one)], env=env, check=True,
                   capture_output=True)
    accelerate = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--main_process_port", str(free_port()),
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "vidiff.train", "--config",
                           str(two)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["processes"] for r in a] == [1] * 20 and [r["processes"] for r in b] == [2] * 20
    assert len(a) == len(b) == 20
    for ra, rb in zip(a, b):
        assert abs(ra["loss"] - rb["loss"]) <= 1e-5 * max(1.0, abs(ra["loss"])), (ra, rb)
        assert abs(ra["grad_norm"] - rb["grad_norm"]) <= 1e-4 * max(1.0, ra["grad_norm"])
