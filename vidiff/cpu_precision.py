"""Half precision on the CPU pays only where oneDNN has kernels for it (AVX-512 or AMX). On a CPU without them it
is emulated: on an AVX2-only AMD EPYC (2 threads, tools/bench_cpu_half.py), a bf16 conv2d took 85x the fp32 time
and a 1024^2 bf16 matmul 186x; a training step of the real-footage VAE under bf16 autocast took 58 s against
1.7 s in fp32 (one thread). So a shipped config's `mixed_precision: bf16` and a command's `--dtype bf16|fp16` fall
back to fp32 there, with a warning, instead of running for days."""
from __future__ import annotations

import warnings

# the instruction-set extensions oneDNN needs for native kernels, per dtype
NEEDS = {"bfloat16": "AVX512-BF16 or AMX-BF16", "float16": "AVX512-FP16 or AMX-FP16"}


def cpu_has_fast(dtype) -> bool:
    """Whether this CPU computes in `dtype` (torch.bfloat16 / torch.float16) with native kernels."""
    import torch

    probe = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}.get(dtype)
    if probe is None:
        return True
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError):  # a torch without the probe: leave the user's choice alone
        return True


def cpu_dtype(dtype, what: str):
    """`dtype`, or torch.float32 with a warning naming `what` asked for it where this CPU would emulate it."""
    import torch

    if dtype == torch.float32 or cpu_has_fast(dtype):  # float32 is what it falls back to: never "slower than" itself
        return dtype
    name = str(dtype).removeprefix("torch.")
    warnings.warn(f"{what}: this CPU has no native {name} kernels (oneDNN needs {NEEDS.get(name, 'AMX')}), so {name} "
                  "would run tens of times slower than float32; computing in float32 instead", stacklevel=1)
    return torch.float32


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: then nothing is assumed)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_bf16_pays() -> bool:
    """Whether networks run faster in bf16 than in fp32 on this CPU: native bf16 dot products (AMX-BF16 or
    AVX512-BF16). On AMX the real-footage pipeline's fill ran 2.4-2.6x faster in bf16, its frames 52-53 dB from
    the fp32 ones (docs/benchmarks.md); AVX-512 alone (oneDNN then converts) is not counted."""
    import torch

    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags()) and cpu_has_fast(torch.bfloat16)


def usable_cores() -> int | None:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()
