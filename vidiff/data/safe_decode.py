"""Contained probing of untrusted video files: worker processes with a watchdog and a memory limit.

A corrupt or hostile file can hang a demuxer, allocate gigabytes, or crash native code. `scan_videos`
never opens a candidate in the calling process: it `os.stat`s each path (a FIFO, directory, dangling
symlink or empty file is refused there without being opened) and hands the rest to worker processes.
Each worker runs with an address-space limit (`resource.setrlimit(RLIMIT_AS)`) and no core dumps; the
parent waits on each file for at most `timeout` seconds, then kills the worker and starts a new one.
A worker that dies (segfault, out of memory) costs only the file it was on.

In the worker a file must: pass `probe_video` (header limits, before any decoding), demux to at least one
video packet (the packets are counted: `num_frames` in the result is that count, not the header's claim,
which can be wrong, e.g. tree.avi claims 444 frames and holds 68), and decode its first frame. The count is
exact for intact files; for a file with a damaged tail it is an upper bound (the last packets may not
decode), and a dataset that asks for frames past the damage gets a VideoDecodeError and moves on.

Each skipped file is logged as one JSON line `{"event": "skip_video", "file": ..., "reason": ...}`.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import time
from dataclasses import astuple, dataclass, field, replace
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from pathlib import Path

from tqdm.auto import tqdm

from vidiff.errors import VideoDecodeError
from vidiff.io import (
    DEFAULT_LIMITS, READABLE_SUFFIXES, VideoInfo, VideoLimits, check_file, check_folder, list_video_files,
)

log = logging.getLogger(__name__)

# What a scan treats as a video (case-insensitive): every container the readers were checked on, as the video
# folders of the other commands (.mpg / .ts / .flv / .3gp clips were left out of training without a word);
# sidecars (.txt, .json, .jsonl, .csv) are never candidates.
SCAN_SUFFIXES = READABLE_SUFFIXES


@dataclass
class ScanResult:
    good: list[tuple[Path, VideoInfo]] = field(default_factory=list)  # sorted by path
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason), sorted by path


def log_skip(path, reason: str, **extra) -> None:
    """One structured line per skipped file."""
    log.warning(json.dumps({"event": "skip_video", "file": str(path), "reason": reason, **extra}))


# ---- worker side --------------------------------------------------------------------------------------


def check_video(path: str, limits: VideoLimits) -> VideoInfo:
    """Probe + count packets + decode the first frame. Runs inside a worker; raises VideoDecodeError."""
    import av

    from vidiff.io import _av_error_types, _short, probe_video, video_stream

    info = probe_video(path, limits)
    packets = 0
    first_ok = False
    lowest = highest = base = None  # the packets' earliest and latest times, in the stream's time_base
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = video_stream(container)  # the one probe_video checked
            base = stream.time_base
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # end-of-stream flush packet, or a dropped frame
                packets += 1
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is not None:
                    lowest = stamp if lowest is None else min(lowest, stamp)
                    highest = stamp if highest is None else max(highest, stamp)
                if packets > limits.max_frames:
                    raise VideoDecodeError(path, f"more than max_frames={limits.max_frames} packets")
                if not first_ok:
                    first_ok = bool(stream.codec_context.decode(packet))
        if not first_ok and packets:  # decoders with delay return the first frame at the flush
            with av.open(path, metadata_errors="ignore") as container:
                first_ok = next(iter(container.decode(video_stream(container))), None) is not None
    except VideoDecodeError:
        raise
    except _av_error_types() as e:
        if packets == 0 or not first_ok:
            raise VideoDecodeError(path, f"demux/decode failed: {_short(e)}") from None
        # a damaged tail: keep what demuxed before it (counted); reading stops at the same place
    if packets == 0:
        raise VideoDecodeError(path, "no video packets")
    if not first_ok:
        raise VideoDecodeError(path, "first frame does not decode")
    return replace(info, num_frames=packets, fps=_own_rate(info, packets, lowest, highest, base))


def _own_rate(info: VideoInfo, packets: int, lowest, highest, base) -> float:
    """The clip's rate: its frames' own mean rate where they are far sparser than its header says (an AVI whose
    index skips frame slots, as tree.avi's; a variable-rate MKV stating its timebase's 1000 fps), else the
    header's. Read at the header's rate, such a clip's windows resampled to a --fps span several times the time."""
    from vidiff.frame_timing import FrameTiming, Header, is_sparse

    if lowest is None or not base:
        return info.fps
    timing = FrameTiming(packets, float(lowest * base), float(highest * base))
    header = Header(0 if info.estimated else info.num_frames, info.fps, info.duration)
    return timing.mean_fps if is_sparse(timing, header) else info.fps


class _KeptWarnings(logging.Handler):
    """A worker's logged warnings, kept to be sent with its answer."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record) -> None:
        self.messages.append(record.getMessage())


def _worker_main(conn, memory_limit: int, check=check_video) -> None:
    import resource

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the parent while it started us
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    logging.getLogger("libav").setLevel(logging.CRITICAL)
    said = _KeptWarnings()  # the probe's warnings (transparency, HDR) go to the parent, which says them as a
    logging.getLogger("vidiff").addHandler(said)  # command does; here they reached stderr bare (logging's last resort)
    while True:
        said.messages = []
        try:
            task = conn.recv()
        except (EOFError, ConnectionResetError):  # the parent closed its end, or died (kill -9, a second Ctrl-C)
            return
        if task is None:
            return
        path, limits = task
        try:
            reply = ("ok", astuple(check(path, VideoLimits(*limits))))
        except VideoDecodeError as e:
            reply = ("bad", e.reason)
        except MemoryError:
            reply = ("bad", f"out of memory (worker limit {memory_limit >> 20} MiB)")
        except Exception as e:  # noqa: BLE001 - any other failure of a hostile file is a skip reason
            reply = ("bad", f"{type(e).__name__}: {str(e)[:200]}")
        try:
            conn.send((*reply, said.messages))
        except OSError:  # the parent is gone (killed): nobody waits for the answer, and no traceback is due
            return


# ---- parent side --------------------------------------------------------------------------------------


class _Worker:
    def __init__(self, ctx, memory_limit: int, check):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_limit, check), daemon=True)
        # Ctrl-C reaches the whole process group: the parent stops the scan (its `finally` ends the workers) and
        # prints one line, so a worker starts with SIGINT blocked (the mask survives the spawn's exec) instead of
        # printing a KeyboardInterrupt traceback of its own; a Ctrl-C meanwhile reaches the parent on unblocking.
        # The first start of a spawn also starts multiprocessing's resource tracker, which unblocks SIGINT after
        # it: started here first, or the first worker would not inherit the mask. SIGTERM waits out the start too
        # (the worker unblocks it): raised between the worker's exec and the hand-over of what it runs, the worker
        # printed an `EOFError: Ran out of input` traceback.
        # The mask holds off only this thread: another (torch's) takes the signal and this one ran the handler in
        # the middle of start(), between the exec and the hand-over (the same traceback), so the Python-level
        # handlers wait too; a stop noted meanwhile ends the started worker.
        from vidiff.cli_signals import signals_held

        resource_tracker.ensure_running()
        try:
            with signals_held():
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
                try:
                    self.proc.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                child.close()
        except BaseException:
            if self.proc.pid is not None:
                self.proc.kill()
                self.proc.join(5)
            self.conn.close()
            raise
        self.path: Path | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def scan_videos(
    folder: str | os.PathLike,
    *,
    limits: VideoLimits | None = None,
    num_workers: int = 2,
    timeout: float = 30.0,
    memory_limit: int = 2 << 30,
    suffixes: tuple[str, ...] = SCAN_SUFFIXES,
    paths: list[str | os.PathLike] | None = None,
    progress: bool = True,
) -> ScanResult:
    """Probes every video under `folder` (or exactly `paths`) in contained workers.

    `timeout`: seconds one file may take before its worker is killed; `memory_limit`: bytes of address
    space per worker (0: no limit). Never raises for a bad file; the parent never opens a candidate.
    """
    limits = limits or DEFAULT_LIMITS
    folder = Path(folder)
    if paths is None:
        check_folder(folder, "video folder")
        candidates = list_video_files(folder, tuple(s.lower() for s in suffixes))
    else:
        candidates = sorted(Path(p) for p in paths)
    result = ScanResult()
    todo: list[Path] = []
    for path in candidates:
        try:
            check_file(path)  # os.stat only: FIFOs / directories / dangling links never reach a worker
            todo.append(path)
        except VideoDecodeError as e:
            result.skipped.append((path, e.reason))
    good: dict[Path, VideoInfo] = {}
    bad: dict[Path, str] = dict(result.skipped)
    if todo:
        _run_pool(todo, limits, max(1, min(num_workers, len(todo))), timeout, memory_limit, good, bad, progress)
    result.good = sorted(good.items())
    result.skipped = sorted(bad.items())
    for path, reason in result.skipped:
        log_skip(path, reason)
    log.info(json.dumps({"event": "scan_videos", "folder": str(folder), "kept": len(result.good),
                         "skipped": len(result.skipped)}))
    return result


def _run_pool(todo, limits, num_workers, timeout, memory_limit, good, bad, progress, check=check_video) -> None:
    """Runs `check(path, limits)` (a module-level function) for each path in watched workers."""
    ctx = mp.get_context("spawn")  # no fork of a threaded parent (torch, DataLoader)
    queue = list(reversed(todo))
    limits_tuple = (limits.max_pixels, limits.max_frames, limits.max_duration)
    workers = [_Worker(ctx, memory_limit, check) for _ in range(num_workers)]
    bar = tqdm(total=len(todo), desc="scan videos", unit="file", disable=not progress, leave=False)
    try:
        while queue or any(w.path is not None for w in workers):
            for i, w in enumerate(workers):
                if w.path is None and queue:
                    w.path = queue.pop()
                    w.deadline = time.monotonic() + timeout
                    try:
                        w.conn.send((str(w.path), limits_tuple))
                    except (BrokenPipeError, OSError):
                        queue.append(w.path)
                        w.kill()
                        workers[i] = _Worker(ctx, memory_limit, check)
            busy = [w for w in workers if w.path is not None]
            now = time.monotonic()
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                         timeout=max(0.0, min(w.deadline for w in busy) - now))
            for i, w in enumerate(workers):
                if w.path is None:
                    continue
                if w.conn in ready:
                    try:
                        status, payload, said = w.conn.recv()
                    except (EOFError, OSError):
                        status, payload, said = "dead", None, []
                    for message in said:
                        log.warning("%s", message)
                else:
                    status, payload = ("dead", None) if w.proc.sentinel in ready else ("wait", None)
                if status == "wait" and time.monotonic() < w.deadline:
                    continue
                if status == "ok":
                    good[w.path] = VideoInfo(*payload)
                elif status == "bad":
                    bad[w.path] = payload
                else:
                    w.kill()
                    code = w.proc.exitcode
                    bad[w.path] = (f"timed out after {timeout:g} s" if status == "wait"
                                   else f"decoder process died (exit code {code})")
                    workers[i] = w = _Worker(ctx, memory_limit, check)
                w.path = None
                bar.update(1)
    finally:
        bar.close()
        for w in workers:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()

