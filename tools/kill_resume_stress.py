"""Kill -9 a CPU training run at many moments (half of them while a checkpoint is being written), resume it
each time with `--resume auto`, and check that checkpoints survive everything.

    .venv/bin/python tools/kill_resume_stress.py --kills 20 --workdir /tmp/kill-stress

Checked after every kill: every folder under a final `step_X` name verifies against its manifest (so no
incomplete checkpoint can ever be picked); the newest one lost at most one checkpoint interval of logged
steps; the next run resumes from it. At the end: the run completes, no temp folders remain, and its logged
losses are bit-identical to an uninterrupted reference run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidiff.training import checkpoint as ckpt  # noqa: E402
from vidiff.training.logging import read_metrics  # noqa: E402

CONFIG = """\
stage: toy
output_dir: {out}
model: {{dim: 64, width: 512, sleep_s: 0.01, dropout: {dropout}}}
data: {{kind: synthetic, num_samples: 200}}
optimizer: {{lr: 0.003, warmup_steps: 10}}
train: {{max_steps: {steps}, batch_size: 8, log_every: 1, checkpoint_every: {every}, keep_checkpoints: 2,
        ema_decay: 0.99, seed: 3}}
"""


def _launch(cfg: Path, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "vidiff.train", "--config", str(cfg), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_tmp(root: Path, proc: subprocess.Popen, min_step: int, timeout: float) -> bool:
    """Polls until a `.tmp-step_X-*` folder with X >= min_step exists (that save is in progress); False if the
    run ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if root.is_dir():
            for p in os.scandir(root):
                if p.name.startswith(".tmp-step_") and int(p.name.split("_")[1].split("-")[0]) >= min_step:
                    return True
        time.sleep(0.0002)
    return False


def _wait_for_step(metrics: Path, proc: subprocess.Popen, step: int, timeout: float) -> None:
    """Waits until the run has logged `step` (or ended)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if metrics.is_file() and max((r["step"] for r in read_metrics(metrics)), default=0) >= step:
            return
        time.sleep(0.01)


def _check_invariants(root: Path, every: int, metrics: Path) -> int:
    """Returns the step of the checkpoint the next run resumes from (0 when none)."""
    for step, folder in ckpt.list_checkpoints(root):
        if not ckpt.verify(folder):
            raise AssertionError(f"incomplete checkpoint under a final name: {folder}")
    latest = ckpt.latest_checkpoint(root)
    resume_step = 0 if latest is None else json.loads((latest / "state.json").read_text())["step"]
    logged = max((r["step"] for r in read_metrics(metrics)), default=0) if metrics.is_file() else 0
    if logged - resume_step > every:
        raise AssertionError(f"lost {logged - resume_step} steps (> one interval of {every})")
    return resume_step


def run_stress(workdir: Path, kills: int, steps: int = 120, every: int = 10, seed: int = 0, log=print,
               dropout: float = 0.0) -> dict:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    ref_cfg, cfg = workdir / "reference.yaml", workdir / "stress.yaml"
    ref_cfg.write_text(CONFIG.format(out=workdir / "reference", steps=steps, every=every, dropout=dropout))
    cfg.write_text(CONFIG.format(out=workdir / "stressed", steps=steps, every=every, dropout=dropout))
    root, metrics = workdir / "stressed" / "checkpoints", workdir / "stressed" / "metrics.jsonl"
    ref = _launch(ref_cfg, ["--force"])
    _, err = ref.communicate()
    if ref.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{err}")
    done = {"kills": 0, "during_save": 0, "resumed": 0}
    first, resume_step = True, 0
    while done["kills"] < kills:
        proc = _launch(cfg, ["--force"] if first else ["--resume", "auto"])
        done["resumed"] += int(not first)  # every run after a kill resumes from the newest complete checkpoint
        first = False
        want_save = done["during_save"] < (kills + 1) // 2
        if want_save:  # the second save after the resume point, so that every round makes progress
            in_save = _wait_for_tmp(root, proc, resume_step + 2 * every, timeout=300)
        else:  # a random moment: some steps past the resume point, plus a random fraction of a step
            _wait_for_step(metrics, proc, resume_step + rng.randint(1, 2 * every), timeout=300)
            time.sleep(rng.uniform(0.0, 0.03))
            in_save = False
        if proc.poll() is not None:  # finished before we could kill it: start over from scratch
            log(f"run ended before kill {done['kills'] + 1}; restarting the stressed run")
            first = True
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done["kills"] += 1
        done["during_save"] += int(in_save)
        resume_step = _check_invariants(root, every, metrics)
        log(f"kill {done['kills']}/{kills} ({'during a save' if in_save else 'at a random moment'}): "
            f"resumes from step {resume_step}")
    final = _launch(cfg, ["--resume", "auto"])
    _, err = final.communicate()
    if final.returncode != 0:
        raise AssertionError(f"final resume failed:\n{err}")
    done["resumed"] += 1
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
    if leftovers:
        raise AssertionError(f"temp folders left after the final save: {leftovers}")
    got = {r["step"]: r["loss"] for r in read_metrics(metrics)}
    want = {r["step"]: r["loss"] for r in read_metrics(workdir / "reference" / "metrics.jsonl")}
    if got != want:
        bad = [s for s in want if got.get(s) != want[s]][:5]
        raise AssertionError(f"logged losses differ from the uninterrupted run at steps {bad}")
    done["identical_losses"] = True
    done["identical_weights"] = _same_weights(workdir / "reference", workdir / "stressed")
    if not done["identical_weights"]:
        raise AssertionError("final model / EMA weights differ from the uninterrupted run")
    return done


def _same_weights(ref_run: Path, run: Path) -> bool:
    """The final checkpoints' model and EMA tensors, and the exported (EMA) part, equal bit for bit."""
    from safetensors.torch import load_file

    pairs = [(ref_run / "export" / "model.safetensors", run / "export" / "model.safetensors")]
    ref_ckpt, ckpt_dir = ckpt.latest_checkpoint(ref_run / "checkpoints"), ckpt.latest_checkpoint(run / "checkpoints")
    pairs += [(ref_ckpt / f.name, ckpt_dir / f.name) for f in sorted(ref_ckpt.glob("*.safetensors"))]
    for a, b in pairs:
        ta, tb = load_file(a), load_file(b)
        if ta.keys() != tb.keys() or any(not ta[k].equal(tb[k]) for k in ta):
            return False
    return len(pairs) > 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=10, help="checkpoint interval (steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout of the toy model (0.1: the issue's check)")
    args = parser.parse_args()
    result = run_stress(args.workdir, args.kills, args.steps, args.every, args.seed, dropout=args.dropout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
