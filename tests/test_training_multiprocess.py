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
           "2 (2 x 1 x 1): launch it with as many processes as before; or, for the same samples a step, " \
           "train.batch_size x train.grad_accum = 4 with --force; or pass --force to go on at 2" in proc.stderr
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


def _faulty(path: Path, out: Path, **model) -> Path:
    """A 2-process toy run whose rank 1 dies or hangs at a step (ToyConfig's fault injection)."""
    config = yaml.safe_load(_config(path, out, batch=2).read_text())
    config["model"].update(model)
    config["train"].update(checkpoint_every=2, max_steps=8)
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_killed_process_stops_the_other_with_one_line(tmp_path, free_port):
    """A process of the run killed (SIGKILL) mid-run: the other's collective fails at once, and it printed gloo's
    page of traceback ("Connection closed by peer ... GLHF"). Launched by hand, as torchrun would, so that no launcher
    stops the survivor first: it must stop by itself, with one line naming the last checkpoint."""
    config = _faulty(tmp_path / "die.yaml", tmp_path / "die", die_at_step=3)
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), RANK=str(rank), LOCAL_RANK=str(rank),
                   WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen([sys.executable, "-m", "vidiff.train", "--config", str(config)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        _, err = procs[0].communicate(timeout=120)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert procs[1].returncode == -9
    assert procs[0].returncode == 2, err[-3000:]
    assert "Traceback" not in err
    last = tmp_path / "die" / "checkpoints" / "step_00000002"
    assert (f"vidiff: error: process 0 of 2: the connection to the others closed: one was killed, crashed or hangs, "
            f"its own output says why; last checkpoint: {last}, go on with --resume auto") in err


def test_a_hung_process_stops_the_run_after_process_timeout_s(tmp_path, free_port):
    """A process that hangs held the others at their next collective for the backend's default, 30 minutes on
    gloo, with no say in it; train.process_timeout_s bounds the wait and the run ends naming it."""
    import time

    config = _faulty(tmp_path / "stall.yaml", tmp_path / "stall", stall_at_step=3)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    accelerate = Path(sys.executable).parent / "accelerate"
    start = time.monotonic()
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend",
                           "no", "-m", "vidiff.train", "--config", str(config), "--set",
                           "train.process_timeout_s=3"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert time.monotonic() - start < 120  # the stalled process sleeps an hour
    assert "vidiff: error: process 0 of 2: the others did not answer within 3 s (train.process_timeout_s): one was " \
           "killed, crashed or hangs" in proc.stderr, proc.stderr[-3000:]
    assert "[rank0]: Traceback" not in proc.stderr
    assert [r["step"] for r in read_metrics(tmp_path / "stall" / "metrics.jsonl")] == [1, 2, 3]
