"""Bad-file safety: a battery of broken inputs is skipped with a logged reason; nothing hangs or crashes."""
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidiff import io
from vidiff.data import safe_decode
from vidiff.errors import VideoDecodeError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from make_bad_videos import PARTIAL, make_battery  # noqa: E402


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("battery")
    return folder, make_battery(folder, bombs=True)


def decoded_count(path) -> int:
    return io.read_video(path, backend="pyav")[0].shape[0]


def test_battery_is_large_enough(battery):
    _, expected = battery
    assert sum(v is None for v in expected.values()) >= 40


def test_scan_skips_every_bad_file_with_a_logged_reason(battery, caplog):
    folder, expected = battery
    caplog.set_level(logging.WARNING, logger="vidiff.data.safe_decode")
    t0 = time.monotonic()
    result = safe_decode.scan_videos(folder, timeout=30, progress=False)
    assert time.monotonic() - t0 < 60
    kept = {p.name: info.num_frames for p, info in result.good}
    skipped = {p.name: reason for p, reason in result.skipped}
    assert set(kept) | set(skipped) == set(expected)  # sidecars (.txt / .json / .jsonl) are not candidates
    assert set(skipped) == {n for n, e in expected.items() if e is None}
    assert len(result.skipped) == sum(e is None for e in expected.values())
    for name, exp in expected.items():
        if exp is None:
            continue
        if exp == PARTIAL:
            # packets counted by the scan; the damaged last packets may not decode (an upper bound)
            assert 0 < decoded_count(folder / name) <= kept[name] <= 24, name
            assert name.startswith("data_flipped") or kept[name] < 24, name  # a cut file holds fewer packets
        else:
            assert kept[name] == exp, name
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event": "skip_video"')]
    assert {Path(line["file"]).name for line in lines} == set(skipped)
    assert all(line["reason"] for line in lines)
    assert "exceeds max_pixels" in skipped["bomb_8k_h264.mp4"]
    assert "exceeds max_duration" in skipped["bomb_long_still.mp4"]
    assert "exceeds max_frames" in skipped["avi_claims_10m_frames.avi"]
    assert "FIFO" in skipped["fifo_no_writer.mp4"] and "directory" in skipped["directory.mp4"]
    assert skipped["dangling_link.mp4"] == "file not found" and "symbolic links" in skipped["loop_a.mp4"]


def test_valid_files_read_with_their_frame_count(battery):
    folder, expected = battery
    for name, exp in expected.items():
        if exp is not None and exp != PARTIAL:
            frames, _ = io.read_video(folder / name)
            assert frames.shape[0] == exp, name


def test_in_process_reads_refuse_every_bad_file_with_a_named_error(battery):
    """In the calling process too (no worker pool): every bad file is refused by probe_video or, at the latest, by
    read_video, with a VideoDecodeError naming the file; no raw library error escapes, and no bad file reads."""
    folder, expected = battery
    refused_at_probe = 0
    for name, exp in expected.items():
        if exp is not None or name == "fifo_no_writer.mp4":  # the FIFO is for the watchdog test below
            continue
        with pytest.raises(VideoDecodeError) as caught:
            try:
                io.probe_video(folder / name)
            except VideoDecodeError:
                refused_at_probe += 1
                raise
            io.read_video(folder / name)
        assert name in str(caught.value)
    assert refused_at_probe >= 20  # most are refused from the header alone, before any frame is decoded


PROBE_MEMORY = """
import resource, sys
from vidiff import io
io.probe_video(sys.argv[1])  # warm-up: libraries loaded, one small file probed
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    io.probe_video(sys.argv[2])
    sys.exit("not refused")
except io.VideoDecodeError as e:
    reason = e.reason
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, reason)
"""


@pytest.mark.parametrize("bomb", ["bomb_8k_h264.mp4", "bomb_long_still.mp4", "y4m_60000x60000.mp4",
                                  "raw_avi_60000x60000.avi"])
def test_bombs_are_refused_at_probe_with_little_memory(battery, bomb):
    folder, _ = battery
    out = subprocess.run([sys.executable, "-c", PROBE_MEMORY, str(folder / "good_h264.mp4"), str(folder / bomb)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    extra_mib = float(out.stdout.split()[0])
    assert extra_mib < 100, out.stdout


def open_without_checks(path, limits):
    """A worker task that skips the stat check, as if the file became a FIFO after the parent looked."""
    import av

    av.open(path)  # a FIFO with no writer: blocks forever


def test_watchdog_kills_a_hanging_worker(tmp_path):
    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)
    good, bad = {}, {}
    t0 = time.monotonic()
    safe_decode._run_pool([fifo], io.DEFAULT_LIMITS, 1, 3.0, 2 << 30, good, bad, False, open_without_checks)
    assert time.monotonic() - t0 < 30
    assert bad == {fifo: "timed out after 3 s"} and not good


def test_a_dying_worker_costs_only_its_file(tmp_path):
    path = io.write_video(tmp_path / "ok.mp4", __import__("numpy").zeros((2, 16, 16, 3), "uint8"), 8)
    good, bad = {}, {}
    # 30 MiB of address space: the worker cannot even load the codec libraries and dies or fails
    safe_decode._run_pool([path], io.DEFAULT_LIMITS, 1, 20.0, 30 << 20, good, bad, progress=False)
    assert not good and path in bad
    result = safe_decode.scan_videos(tmp_path, progress=False)  # a normal scan afterwards is fine
    assert [p.name for p, _ in result.good] == ["ok.mp4"]


def test_a_scan_workers_warnings_are_said_by_the_parent(tmp_path, caplog, capfd):
    """A transparent clip's warning was logged in the scan worker, where no handler is set up: it reached stderr
    bare (logging's last resort), without the CLI's `vidiff: warning:` and outside the parent's log."""
    import av
    import numpy as np

    path = tmp_path / "cut.mov"
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0], rgba[:, :16, 3] = 255, 255  # the right half transparent
    with av.open(str(path), "w") as container:
        stream = container.add_stream("qtrle", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "argb"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")))
        container.mux(stream.encode())
    with caplog.at_level("WARNING", logger="vidiff"):
        result = safe_decode.scan_videos(tmp_path, num_workers=1, progress=False)
    assert [p.name for p, _ in result.good] == ["cut.mov"]
    said = [r for r in caplog.records if "has transparency" in r.getMessage()]
    assert len(said) == 1 and said[0].getMessage().startswith(f"{path} has transparency (50% of its first frame's")
    assert "has transparency" not in capfd.readouterr().err  # not also printed by the worker


_CTRL_C_SCRIPT = """
import multiprocessing as mp, os, signal, sys
from vidiff import io
from vidiff.data import safe_decode

if __name__ == "__main__":
    path, limits = sys.argv[1], io.DEFAULT_LIMITS
    workers = [safe_decode._Worker(mp.get_context("spawn"), 0, safe_decode.check_video) for _ in range(2)]
    for w in workers:
        w.conn.send((path, (limits.max_pixels, limits.max_frames, limits.max_duration)))
        os.kill(w.proc.pid, signal.SIGINT)  # while it starts up or probes the clip
    for w in workers:
        print(w.conn.recv()[0])
        w.conn.send(None)
        w.proc.join(10)
        print(w.proc.exitcode)
"""


def test_ctrl_c_to_the_process_group_leaves_the_scan_workers_to_the_parent(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: a scan worker used to die printing a
    KeyboardInterrupt traceback of its own (two beside the CLI's one line, `vidiff data cache` interrupted while it
    scanned). Both workers, the first included (whose start also starts multiprocessing's resource tracker), now
    carry on; the parent, whose Ctrl-C it is, ends them. A fresh process, so that no tracker runs yet."""
    path = io.write_video(tmp_path / "ok.mp4", __import__("numpy").zeros((2, 16, 16, 3), "uint8"), 8)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", _CTRL_C_SCRIPT, str(path)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.stdout.split() == ["ok", "0", "ok", "0"], run.stderr
    assert "KeyboardInterrupt" not in run.stderr


_SIGTERM_IN_START_SCRIPT = """
import multiprocessing as mp, os, signal, sys
from multiprocessing import util
from vidiff import io
from vidiff.cli import run_command
from vidiff.data import safe_decode

spawn = util.spawnv_passfds


def spawn_then_sigterm(path, args, passfds):
    pid = spawn(path, args, passfds)
    if "spawn_main" in str(args):  # a worker (not the resource tracker): after its exec, before it is sent
        os.kill(os.getpid(), signal.SIGTERM)  # what to run
    return pid


util.spawnv_passfds = spawn_then_sigterm
if __name__ == "__main__":
    sys.exit(run_command(lambda args: safe_decode.scan_videos(sys.argv[1], progress=False), None))
"""


def test_sigterm_while_a_scan_worker_starts_leaves_no_traceback(tmp_path):
    """SIGTERM to a command's process group (a job scheduler, `kill -- -PGID`) while a scan worker started: the
    parent stopped between the worker's exec and sending it what to run, and the worker printed an `EOFError: Ran
    out of input` traceback under the parent's one line (1 of 6 such signals, 1 s into `vidiff data cache`). The
    start is now whole; the worker ends quietly with its parent."""
    io.write_video(tmp_path / "ok.mp4", __import__("numpy").zeros((2, 16, 16, 3), "uint8"), 8)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", _SIGTERM_IN_START_SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=60)
    assert run.returncode == 143, run.stderr
    assert run.stderr.strip() == "vidiff: terminated", run.stderr


def test_a_worker_whose_parent_is_gone_ends_without_a_traceback(tmp_path, capfd):
    """kill -9 of a command while it scans: the orphaned worker's answer met a closed pipe and it printed a
    BrokenPipeError traceback onto the terminal. It now ends quietly."""
    import multiprocessing as mp

    path = io.write_video(tmp_path / "ok.mp4", __import__("numpy").zeros((2, 16, 16, 3), "uint8"), 8)
    limits = io.DEFAULT_LIMITS
    worker = safe_decode._Worker(mp.get_context("spawn"), 0, safe_decode.check_video)
    worker.conn.send((str(path), (limits.max_pixels, limits.max_frames, limits.max_duration)))
    worker.conn.close()  # as the parent's death closes it
    worker.proc.join(30)
    assert worker.proc.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err


def test_a_worker_whose_parent_died_with_an_answer_unread_ends_without_a_traceback(tmp_path, capfd):
    """A second Ctrl-C ends the command at once, its last answer unread: the worker's next wait for a task met a
    reset connection (ConnectionResetError, not EOFError) and printed a traceback. It now ends quietly."""
    import multiprocessing as mp

    path = io.write_video(tmp_path / "ok.mp4", __import__("numpy").zeros((2, 16, 16, 3), "uint8"), 8)
    limits = io.DEFAULT_LIMITS
    worker = safe_decode._Worker(mp.get_context("spawn"), 0, safe_decode.check_video)
    worker.conn.send((str(path), (limits.max_pixels, limits.max_frames, limits.max_duration)))
    assert worker.conn.poll(60)  # the answer has arrived; it stays unread
    worker.conn.close()
    worker.proc.join(30)
    assert worker.proc.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err
