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


def test_a_run_of_two_processes_is_not_resumed_by_one_at_half_the_batch(tmp_path, free_port):
    """`vidiff train --resume auto` (one process) on a run that two processes trained went on at half the global
    batch without a word (same config hash, other losses); it is refused now, naming both batches, and with
    --force at a batch that restores the global one it logs the two processes' losses."""
    import shutil

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    two = _config(tmp_path / "two.yaml", tmp_path / "two", batch=2)
    accelerate = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend",
                           "no", "-m", "vidiff.train", "--config", str(two)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "two"
    full = read_metrics(run / "metrics.jsonl")
    shutil.rmtree(run / "checkpoints" / "step_00000020")  # as if the run had been stopped after step 10's checkpoint
    shutil.rmtree(run / "export")
    resume = [sys.executable, "-m", "vidiff.train", "--config", str(two), "--resume", "auto"]
    proc = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "its run trained on 4 samples a step (train.batch_size x train.grad_accum x processes), this launch on " \
           "2 (2 x 1 x 1): launch it with as many processes as before" in proc.stderr
    assert read_metrics(run / "metrics.jsonl") == full  # nothing written
    proc = subprocess.run([*resume, "--set", "train.batch_size=4", "--force"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in again] == list(range(1, 21))
    for ra, rb in zip(full, again):
        assert abs(ra["loss"] - rb["loss"]) <= 1e-5 * max(1.0, abs(ra["loss"])), (ra, rb)


def test_a_cpu_launch_of_two_processes_is_refused_before_anything_is_written(tmp_path):
    """`accelerate launch --num_processes 2 --cpu` runs the script once (Accelerate's simple launcher): the run
    trained alone at half the global batch asked for, without a word."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("MASTER_ADDR", None)
    config = _config(tmp_path / "two.yaml", tmp_path / "two", batch=2)
    accelerate = Path(sys.executable).parent / "accelerate"
    launch = [str(accelerate), "launch", "--cpu", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "-m", "vidiff.train", "--config", str(config)]
    proc = subprocess.run(launch[:2] + ["--num_processes", "2"] + launch[2:], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0
    assert "vidiff: error: `accelerate launch --cpu` started one process, whatever --num_processes asked" \
        in proc.stderr
    assert not (tmp_path / "two").exists()
    proc = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)  # one process, as asked
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["processes"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl")] == [1] * 20
