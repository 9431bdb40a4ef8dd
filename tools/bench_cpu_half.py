"""Whether half precision pays on this CPU: oneDNN's own probes beside the time of one conv2d and one matmul in
fp32, bf16 and fp16, interleaved, median of the rounds (docs/benchmarks.md, "Half precision on a CPU without
half-precision kernels"). vidiff/cpu_precision.py falls back to fp32 where the probe says no.

    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_cpu_half.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; oneDNN kernels: "
          f"bf16 {torch.ops.mkldnn._is_mkldnn_bf16_supported()}, fp16 {torch.ops.mkldnn._is_mkldnn_fp16_supported()}")
    conv = torch.nn.Conv2d(96, 96, 3, padding=1)
    x = torch.randn(8, 96, 32, 32)
    a = torch.randn(1024, 1024)
    cases = {"conv2d 8x96x32x32, 3x3": lambda d: (conv.to(d), x.to(d)),
             "matmul 1024^2": lambda d: (a.to(d).matmul, a.to(d))}
    for name, make in cases.items():
        times = {d: [] for d in (torch.float32, torch.bfloat16, torch.float16)}
        for _ in range(args.rounds):
            for d in times:
                f, inp = make(d)
                f(inp)  # warm-up: oneDNN builds its kernel on the first call
                t = time.perf_counter()
                f(inp)
                times[d].append(time.perf_counter() - t)
        base = statistics.median(times[torch.float32])
        print(name + ": " + ", ".join(f"{str(d).removeprefix('torch.')} {statistics.median(v) * 1e3:.1f} ms "
                                      f"({statistics.median(v) / base:.1f}x)" for d, v in times.items()))


if __name__ == "__main__":
    main()
