"""`--device`, `--threads` and `--dtype`: where and in what precision the networks of a generation command run
(`vidiff generate` and its siblings, `vidiff interpolate`). The checks need no torch; `resolve_device` does."""
from __future__ import annotations

import re

from vidiff.commands import whole_number
from vidiff.cpu_precision import usable_cores

DTYPES = ("fp32", "bf16", "fp16")


def add_device_arguments(p, dtype: str = "fp32", auto: bool = False, note: str = "") -> None:
    """`dtype`: the --dtype default; "auto" (offered when it is the default or with `auto`) is bf16 where the device
    computes it natively. `note`: said after the --dtype help (what another precision changes)."""
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--threads", type=whole_number, default=None, help="CPU threads for torch (default: torch's choice)")
    auto = auto or dtype == "auto"
    said = ": bf16 on a GPU or on a CPU with AMX-BF16 or AVX512-BF16, else fp32" if auto else ""
    said = f"; auto{said}" if auto and dtype != "auto" else said
    p.add_argument("--dtype", choices=DTYPES + (("auto",) if auto else ()), default=dtype,
                   help=f"precision of the networks (the samplers' state stays fp32; default {dtype}{said}){note}")


def check_device_args(args) -> None:
    """The values alone, before torch is imported: exit 2 with one line when one is wrong."""
    from vidiff.errors import InputError
    from vidiff.limits import MAX_THREADS, check_int, short_repr

    if args.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:(0|[1-9][0-9]{0,3})", args.device):
        raise InputError(f"--device {short_repr(args.device)}: use auto, cpu, cuda or cuda:N")  # torch: a traceback
    if args.threads is not None:
        check_int(args.threads, "--threads", 1, MAX_THREADS)
        cores = usable_cores()
        if cores and args.threads > cores:  # OpenMP threads then wait on each other: 1024 on 2 cores ran 20x slower
            import warnings

            warnings.warn(f"--threads {args.threads}: more than the {cores} CPU core(s) this process may use; "
                          f"threads past that wait on each other and slow the run (try --threads {cores})",
                          stacklevel=1)


def device_record(device: str, dtype) -> dict:
    """Where and in what precision the networks ran, as a sidecar or an eval's JSON records it."""
    import torch

    return {"device": device, "dtype": dtype_name(dtype), "threads": torch.get_num_threads()}


def resolve_device(args) -> str:
    """Sets torch's threads (--threads) and returns the device to run on; --device cuda without CUDA is an error."""
    import torch

    from vidiff.pipeline.placement import check_placement

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    check_placement(device, None, device_label=f"--device {args.device}")  # as from_pretrained will, naming the flag
    return device


def torch_dtype(name: str, device: str):
    """The torch dtype for `--dtype name` on `device`: on a CPU without native half-precision kernels, float32 with
    a warning (vidiff/cpu_precision.py)."""
    import torch

    if name == "auto":  # the sidecar records what this resolves to
        return auto_dtype(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
    if device == "cpu":
        from vidiff.cpu_precision import cpu_dtype

        dtype = cpu_dtype(dtype, f"--dtype {name}")
    return dtype


def auto_dtype(device: str):
    """bf16 where `device` computes it natively (a CUDA GPU with bf16; a CPU with AMX-BF16 or AVX512-BF16), else
    fp32: on such a CPU the real-footage fill ran 2.4-2.6x faster with frames 52-53 dB from fp32's."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    from vidiff.cpu_precision import cpu_bf16_pays

    return torch.bfloat16 if cpu_bf16_pays() else torch.float32


def dtype_name(dtype) -> str:
    """The `--dtype` name of a torch dtype, as sidecars record it."""
    import torch

    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def check_compile(device: str) -> None:
    """--compile on the CPU: torch.compile's kernels are C++ built at the first sampling step; without a working
    compiler that was an InvalidCxxCompiler traceback after the weights had loaded (96 s into `generate --steps 2`).
    Asked of torch's own compiler lookup now, before anything loads; where that lookup is not there (another torch
    version), nothing is said here."""
    if device != "cpu":
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        from torch._inductor.exc import InvalidCxxCompiler
    except ImportError:
        return
    try:
        get_cpp_compiler()
    except InvalidCxxCompiler as e:
        from vidiff.errors import InputError

        raise InputError(f"--compile: torch.compile needs a C++ compiler on the CPU and finds none ({e}); install "
                         "g++ (or set CXX), or leave out --compile") from None
