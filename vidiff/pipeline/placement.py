"""Where and in what precision a pipeline runs: `device` and `dtype` of `VideoPipeline.from_pretrained` / `.to`,
checked before any weights load or move (torch would fail later, with its own traceback)."""
from __future__ import annotations

import torch

from vidiff.errors import InputError
from vidiff.limits import short_repr

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def float32_default(method):
    """Runs `method` with torch's default dtype float32, whatever the caller set, and restores theirs after. Under
    torch.set_default_dtype(torch.float64) (common in scientific notebooks) loading built float64 modules (saved
    then refused), text_to_video made other frames and extend_video failed mid-way ("Index put requires the source
    and destination dtypes match"): the pipeline's own tensors are float32 by that default. A plain wrapper, not a
    contextlib decorator, so that warnings still point at the caller's line (caller_warning.py)."""
    import functools

    @functools.wraps(method)
    def run(*args, **kwargs):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            return method(*args, **kwargs)
        finally:
            torch.set_default_dtype(previous)

    return run


def check_placement(device, dtype, device_label: str | None = None) -> None:
    """InputError naming `device` or `dtype` when the parts could not run there (None: keep as is). `device_label`
    names the device in its errors (default "device: <device>"; the CLI's "--device <as given>")."""
    if dtype is not None and dtype not in DTYPES:
        # a string printed as the name it is not: "dtype: float16 is not one of float32, bfloat16, float16"
        got = dtype if isinstance(dtype, torch.dtype) else f"{type(dtype).__name__} {dtype!r}"
        raise InputError(f"dtype: expected torch.float32, torch.bfloat16 or torch.float16, got {got}")
    if device is None:
        return
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device: {short_repr(device)} is not a device (cpu, cuda, cuda:N, ...)") from None
    if where.type == "meta":
        raise InputError("device: meta holds shapes but no values; the pipeline can neither sample nor save there")
    label = device_label or f"device: {where}"
    if where.type not in ("cpu", "cuda"):  # mps, xpu, ...: torch fails there only once the weights have loaded
        backend = torch.backends.mps if where.type == "mps" else getattr(torch, where.type, None)
        if not getattr(backend, "is_available", lambda: False)():
            raise InputError(f"{label}: this PyTorch build has no {where.type} device here (it has "
                             f"cpu{', cuda' if torch.cuda.is_available() else ''})")
    if where.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"{label}: CUDA is not available here")
        if (where.index or 0) >= count:
            raise InputError(f"{label}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")


def warn_if_caller_autocast(device: torch.device, dtype: torch.dtype) -> None:
    """A warning when the caller's torch.autocast is on for `device` in another precision than the pipeline's
    `dtype`: it is honoured, as diffusers' pipelines honour it, but it changes the frames (bf16 autocast on the CPU
    moved the bundled Shapes pipeline's frames by up to 9 of 255 levels, mean 0.15, without a word), and the
    pipeline's own half precision (dtype=) keeps the samplers in fp32."""
    from vidiff.caller_warning import warn_at_caller

    kind = device.type
    try:
        on, cast = torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)
    except (TypeError, AttributeError):  # torch before 2.4: one function per device type
        cpu = kind == "cpu"
        on = torch.is_autocast_cpu_enabled() if cpu else kind == "cuda" and torch.is_autocast_enabled()
        cast = torch.get_autocast_cpu_dtype() if cpu else torch.get_autocast_gpu_dtype()
    if not on or cast == dtype:
        return
    name = str(cast).removeprefix("torch.")
    warn_at_caller(f"torch.autocast({kind!r}, {name}) is on around this call: the pipeline runs under it, its "
                   f"networks and text encoder computing in {name} instead of {str(dtype).removeprefix('torch.')}, "
                   "so the frames differ from those without it; VideoPipeline.from_pretrained(..., "
                   f"dtype=torch.{name}) is the pipeline's own half precision (samplers in float32), and the call "
                   "outside autocast keeps the pipeline's precision")
