"""The plan of `vidiff interpolate` that needs no weights: how a factor splits into passes of trained gaps, the seed
step between passes, and the warnings said before a run starts (its expected CPU time, a pass over the decode
memory budget). vidiff/commands/interpolate.py runs the command; vidiff/pipeline/upconvert.py the chunks and tiles.
"""
from __future__ import annotations

from vidiff.pipeline.trained_layouts import up_conversion_passes  # noqa: F401  (the command's, moved for fill_between)

PASS_SEED_STEP = 1 << 32  # pass i's chunk j uses seed + i * PASS_SEED_STEP + j (mod 2**63): no two chunks share noise

# Seconds per output frame on a 2-core CPU at the bundled pipeline's settings (one sampling step), measured at
# 320x240 (1.87 s), 720x528 (10.2 s) and 1920x1080 (173 s; docs/real_footage.md): about A * pixels * (1 + pixels / B),
# the second factor for the tiles' overlap and the decoder's working set outgrowing the caches
CPU_S_PER_PIXEL, CPU_PIXELS_SCALE = 2.7e-5, 1e6
SLOW_WARNING_S = 600.0  # an estimate above this is said before the weights load
BF16_SPEEDUP = 2.4  # the fill in bf16 on an AMX CPU, against fp32 (320x240 and 768x576; docs/benchmarks.md)


def cpu_time_note(width: int, height: int, frames: int, speedup: float = 1.0) -> str | None:
    """A warning with the expected wall time on a CPU when it exceeds SLOW_WARNING_S, else None. `speedup`: how
    much faster than the fp32 figures above the run's precision is."""
    pixels = width * height
    per_frame = CPU_S_PER_PIXEL * pixels * (1 + pixels / CPU_PIXELS_SCALE) / speedup
    total = per_frame * frames
    if total <= SLOW_WARNING_S:
        return None
    span = f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.0f} min"
    return (f"{width}x{height} frames on the CPU: about {per_frame:.0f} s per output frame at least ({frames} frames, "
            f"~{span} on 2 cores; more sampling steps take longer); a GPU (--device cuda) or a smaller clip is faster")


def over_budget_note(width: int, height: int, factor: int, chunk: int, tile: int, multiple: int,
                     decode_memory: float, vae) -> str | None:
    """A warning when the planned pass still needs more than --decode-memory: the blend of the shortest chunk's
    tiles (24 bytes per pixel of each output frame) does not shrink with the tile (4K at --factor 8: 1.67 GiB)."""
    from vidiff.pipeline.upconvert import accumulation_bytes, decode_peak, output_length, round_up

    ph, pw = round_up(height, multiple), round_up(width, multiple)
    frames = output_length(chunk, factor)
    need = decode_peak(frames, tile, ph, pw, vae.decode_windows, vae.decode_bytes) + accumulation_bytes(frames, ph, pw)
    if need <= decode_memory * 2**30:
        return None
    return (f"{width}x{height} frames at --factor {factor}: the shortest chunk ({chunk} input frames) takes about "
            f"{need / 2**30:.1f} GiB with the blend of its tiles, over --decode-memory {decode_memory:g} GiB; it runs "
            "so (the blend holds 24 bytes per pixel of each output frame); a smaller factor per run, applied again "
            "to its output, stays inside")
