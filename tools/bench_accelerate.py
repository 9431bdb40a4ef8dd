"""1 vs 2 Accelerate processes on this CPU: the Shapes keyframe recipe for a few dozen steps from a latent cache,
with the same global batch, as one process (2 intra-op threads) and as `accelerate launch --multi_gpu
--num_processes 2` (gloo, 1 thread each). Prints samples/s of both and their ratio, from the runs' metrics.jsonl
(the first logged window, which holds start-up, is left out).

    .venv/bin/python tools/bench_accelerate.py [--cache runs/bundle/latents] [--steps 60] [--batch 8]

The cache comes from `vidiff data cache` (tools/train_bundled.sh builds runs/bundle/latents).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def steady_rate(metrics: Path) -> tuple[float, int]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rates = [r["samples_per_s"] for r in rows[1:]]
    return sum(rates) / len(rates), rows[-1]["processes"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default="runs/bundle/latents")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=8, help="global batch (split over the processes)")
    args = p.parse_args()
    if not (Path(args.cache) / "index.json").is_file():
        sys.exit(f"--cache {args.cache}: no latent cache there (see tools/train_bundled.sh)")
    bin_dir = Path(sys.executable).parent
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for procs in (1, 2):
            out = Path(tmp) / f"p{procs}"
            sets = [f"output_dir={out}", f"data.root={args.cache}", f"train.max_steps={args.steps}",
                    f"train.batch_size={args.batch // procs}", "train.log_every=10", "train.preview_every=0",
                    f"train.checkpoint_every={args.steps}"]
            train = ["-m", "vidiff.train", "--config", str(REPO / "configs/shapes-keyframes.yaml")]
            for s in sets:
                train += ["--set", s]
            if procs == 1:
                wall = run([sys.executable, *train], threads=2)
            else:
                wall = run([str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *train],
                           threads=1)
            rate, seen = steady_rate(out / "metrics.jsonl")
            rows.append((procs, seen, rate, wall))
    print(f"{'processes':>9} {'ranks seen':>10} {'samples/s':>10} {'wall s':>8}")
    for procs, seen, rate, wall in rows:
        print(f"{procs:>9} {seen:>10} {rate:>10.2f} {wall:>8.1f}")
    print(f"2 processes / 1 process, samples/s: {rows[1][2] / rows[0][2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
