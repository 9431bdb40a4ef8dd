"""SIGTERM (what `kill`, a job scheduler or a container stop sends) ends a command the way Ctrl-C does: exit 143
after the command's own cleanup, so a streamed output being written leaves no temporary file and the old output
stays as it was; a training stopped so resumes to the same weights (`slow`)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_generation_safety import _env, tiny_pipeline  # noqa: F401  (the tiny random pipeline fixture)
from vidiff.output_safety import is_our_temporary

REPO = Path(__file__).resolve().parents[1]


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if is_our_temporary(p.name)]


def test_sigterm_while_streaming_leaves_the_old_output_and_no_temporary(tiny_pipeline, tmp_path):
    from vidiff.io import write_video

    g = torch.Generator().manual_seed(0)
    source = write_video(tmp_path / "in.mp4", (torch.rand(160, 48, 64, 3, generator=g) * 255).to(torch.uint8), 10)
    out = tmp_path / "out" / "up.mp4"
    out.parent.mkdir()
    out.write_bytes(b"the old output")
    run = subprocess.Popen([sys.executable, "-m", "vidiff", "interpolate", str(source), "-o", str(out), "--factor",
                            "2", "--chunk", "2", "--model", str(tiny_pipeline), "--quiet"], cwd=REPO, env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _temporaries(out.parent) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the streamed output's temporary exists from the first written frame to the rename
    assert _temporaries(out.parent), "the command ended before it started writing"
    time.sleep(0.5)  # well inside the writing: 160 input frames take several seconds
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signal.SIGTERM, err
    assert "vidiff: terminated" in err and "Traceback" not in err
    assert _temporaries(out.parent) == []
    assert out.read_bytes() == b"the old output"
    assert not Path(str(out) + ".json").exists()  # no sidecar for a file that was not written


def test_main_restores_the_previous_sigterm_handler():
    from vidiff.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["interpolate", "/nonexistent/clip.mp4", "-o", "/tmp/x.mp4", "--factor", "2"]) == 2
    assert signal.getsignal(signal.SIGTERM) is before


_SECOND_CTRL_C = """
import os, signal, sys, time
from vidiff.cli import run_command

def command(args):
    try:
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C
        time.sleep(10)
    finally:
        if sys.argv[1] == "cleanup":  # the second, while the command's own exit path runs
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)

rc = run_command(command, None)
if sys.argv[1] == "after":  # the second, after the command ended (as in the interpreter's exit)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
sys.exit(rc)
"""


@pytest.mark.parametrize("when", ["cleanup", "after", "none"])
def test_a_second_ctrl_c_ends_the_command_at_once_with_one_line(when):
    """A second Ctrl-C landing in a command's exit path (a finally block, the loader's workers being stopped, the
    interpreter's exit) printed a KeyboardInterrupt traceback; it now ends the process at once, exit 130, with the
    one line said once."""
    run = subprocess.run([sys.executable, "-c", _SECOND_CTRL_C, when], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert run.returncode == 130, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("vidiff: interrupted") == 1, run.stderr


_CONSOLE = """
import importlib.abc, os, signal, sys, time

when, name = sys.argv[1:3]


class StopDuringImports(importlib.abc.MetaPathFinder):
    def find_spec(self, module, path, target=None):
        if module == "vidiff.commands" and when == "imports":  # among the CLI's first imports
            os.kill(os.getpid(), getattr(signal, name))
            time.sleep(5)
        return None

sys.meta_path.insert(0, StopDuringImports())
from vidiff.console import main

sys.argv = ["vidiff", "report", os.devnull + "-nothing-here"]  # a command that ends at once (exit 2)
rc = main()
if when == "exit":  # a signal still arriving after the command ended, during the interpreter's exit
    os.kill(os.getpid(), getattr(signal, name))
    time.sleep(5)
sys.exit(rc)
"""


@pytest.mark.parametrize("when", ["imports", "exit"])
@pytest.mark.parametrize("name, code, line", [("SIGINT", 130, "vidiff: interrupted"),
                                              ("SIGTERM", 143, "vidiff: terminated")])
def test_the_console_command_is_covered_from_its_first_import_to_its_exit(when, name, code, line):
    """The `vidiff` command installed its handlers after importing the CLI (numpy and the sub-commands): a Ctrl-C
    in the first 0.05-0.25 s printed a traceback (or numpy's "Importing the numpy C-extensions failed"), SIGTERM
    killed it without its line; one after the command ended surfaced in an atexit callback."""
    run = subprocess.run([sys.executable, "-c", _CONSOLE, when, name], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.strip().endswith(line), run.stderr


_TEARDOWN = """
import os, signal, sys, time
from vidiff.console import main


class StopInTeardown:
    def __del__(self, kill=os.kill, pid=os.getpid(), signum=getattr(signal, sys.argv[1]), sleep=time.sleep):
        kill(pid, signum)  # while the interpreter tears the modules down, after the last exit callback
        sleep(0.5)


stop = StopInTeardown()
sys.argv = ["vidiff", "report", os.devnull + "-nothing-here"]  # a command that ends at once (exit 2)
sys.exit(main())
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_in_the_interpreters_teardown_leaves_the_commands_exit_code(name):
    """After the last exit callback CPython sets the handlers back to the default action and tears the modules down
    (0.5-1.2 s with torch loaded): a Ctrl-C or SIGTERM there ended a finished command by the signal, without a line
    (-2 / -15 to a parent; 16 of about 300 signals in a sweep over the commands). It is ignored there now."""
    run = subprocess.run([sys.executable, "-c", _TEARDOWN, name], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("vidiff: error:") and len(run.stderr.splitlines()) == 1, run.stderr


_STOP_IN_AN_IMPORT = """
import sys, time
from pathlib import Path
from vidiff.cli import run_command

folder = Path(sys.argv[2])
(folder / "module_being_imported.py").write_text('''
import os, signal, sys, time

class Field:
    def __set_name__(self, owner, name):  # runs inside the class statement, as dataclasses' and torch's code does
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(0.5)

class Record:
    field = Field()

print("imported to the end", flush=True)
''')
sys.path.insert(0, str(folder))


def command(args):
    import module_being_imported  # noqa: F401
    time.sleep(10)


sys.exit(run_command(command, None))
"""


@pytest.mark.parametrize("name, code, line", [("SIGINT", 130, "vidiff: interrupted"),
                                              ("SIGTERM", 143, "vidiff: terminated")])
def test_a_stop_during_an_import_is_taken_when_the_import_is_done(name, code, line, tmp_path):
    """A Ctrl-C or SIGTERM that landed while a module was being imported raised in the middle of its code: inside
    torch's start-up it aborted the process (pybind11's `terminate called ...`, 1 of 30 SIGTERMs at 0.2-1.6 s into
    `vidiff eval fvd`), inside a class statement Python 3.11 turned it into a RuntimeError traceback. It is now
    taken just after the import: one line, exit 130 / 143."""
    run = subprocess.run([sys.executable, "-c", _STOP_IN_AN_IMPORT, name, str(tmp_path)], capture_output=True,
                         text=True, timeout=60, cwd=REPO)
    assert run.returncode == code, run.stderr
    assert run.stderr.strip() == line, run.stderr
    assert run.stdout.strip() == "imported to the end"


_LOADER_WORKER = """
import signal, sys
from vidiff.training.sample_stream import quiet_worker

quiet_worker(0)
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
for error in (ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe"),
              ValueError("a real fault")):
    try:
        raise error
    except Exception:
        sys.excepthook(*sys.exc_info())
"""


def test_a_loader_worker_leaves_ctrl_c_to_the_main_process_and_reports_only_real_faults():
    """A training loader's workers: Ctrl-C is the main process's to handle (it stops them), and a batch whose
    hand-over the interrupted main process cut short (multiprocessing's fd-sharing thread met a reset connection
    and printed a traceback) is not reported; any other error still is."""
    run = subprocess.run([sys.executable, "-c", _LOADER_WORKER], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("Traceback") == 1 and "ValueError: a real fault" in run.stderr
    assert "ConnectionResetError" not in run.stderr and "BrokenPipeError" not in run.stderr


_LOADER_SIGTERM = """
import os, signal, time, torch
from vidiff.cli_signals import Terminated, catch_sigterm
from vidiff.training.sample_stream import quiet_worker

class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 1000

    def __getitem__(self, i):
        time.sleep(0.05)
        return torch.zeros(2)

catch_sigterm()
batches = iter(torch.utils.data.DataLoader(Slow(), num_workers=2, worker_init_fn=quiet_worker))
next(batches)  # the workers run
try:
    print("running", flush=True)
    for _ in batches:
        pass
except Terminated:
    time.sleep(1)  # the cleanup of a command: a worker's death would be reported in it
    print("stopped", flush=True)
# the loader is still held at exit (as by a traceback), so multiprocessing ends its workers with SIGTERM and waits
"""


def test_sigterm_to_the_process_group_is_left_to_the_main_process_by_loader_workers():
    """`vidiff train` with train.num_workers, SIGTERM to its process group: the workers died of it, and torch's
    SIGCHLD handler raised "DataLoader worker (pid N) is killed by signal: Terminated" wherever the main process was
    in its cleanup (a traceback above "vidiff: terminated", in 10 of 15 such stops); they now leave SIGTERM to the
    main process, which stops them, as Ctrl-C. Not by ignoring it: a worker still running at exit is ended with
    SIGTERM and waited for without a limit (that hung)."""
    run = subprocess.Popen([sys.executable, "-c", _LOADER_SIGTERM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=REPO, env=_env(), start_new_session=True)
    assert run.stdout.readline() == "running\n"
    os.killpg(run.pid, signal.SIGTERM)  # a container stop or `kill -TERM -PGID`: every process of the group
    out, err = run.communicate(timeout=60)
    assert out == "stopped\n" and run.returncode == 0, err
    assert "Traceback" not in err and "killed by signal" not in err, err


_LOADER_ORPHAN = """
import os, signal, time, torch
from vidiff.training.sample_stream import quiet_worker

def slow_start(worker_id):  # a loaded machine: the trainer is killed before the worker is set up
    time.sleep(1.5)
    quiet_worker(worker_id)

batches = iter(torch.utils.data.DataLoader(range(100), num_workers=2, worker_init_fn=slow_start))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_loader_workers_of_a_trainer_killed_as_they_start_end_too():
    """kill -9 of `vidiff train` just after it forked its loader workers: torch's watchdog in a worker takes the pid
    of its parent when it is set up, and by then that was init's, so the workers polled an empty queue for ever
    (240 MB each, found 40 minutes after such a kill). A worker now ends when its trainer is gone."""
    run = subprocess.Popen([sys.executable, "-c", _LOADER_ORPHAN], stderr=subprocess.DEVNULL, cwd=REPO, env=_env(),
                           start_new_session=True)
    assert run.wait(timeout=60) == -signal.SIGKILL
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = subprocess.run(["ps", "-o", "pid=", "-g", str(run.pid)], capture_output=True, text=True).stdout
            if not left.split():
                break
            time.sleep(0.2)
        assert not left.split(), f"workers left running: {left.split()}"
    finally:
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_sigterm_during_training_then_resume_gives_the_uninterrupted_weights(tmp_path):
    """`vidiff train` stopped by SIGTERM after its first checkpoint exits 143; `--resume auto` then finishes with
    weights bit-identical to a run never stopped (`slow`: three short trainings, about 45 s)."""
    from safetensors.torch import load_file

    def train(run: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "vidiff", "train", "--config", "configs/shapes-vae.yaml",
             "--set", "data.kind=shapes", "--set", "data.num_samples=32", "--set", "train.max_steps=40",
             "--set", "train.checkpoint_every=4",
             "--set", "train.batch_size=2", "--set", f"output_dir={run}", *extra],
            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    reference = train(tmp_path / "reference")
    assert reference.wait(timeout=600) == 0, reference.stderr.read()
    stopped = train(tmp_path / "stopped")
    checkpoints = tmp_path / "stopped" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(checkpoints.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    _, err = stopped.communicate(timeout=60)
    assert stopped.returncode == 128 + signal.SIGTERM, err
    assert not (tmp_path / "stopped" / "export").exists()  # it did stop before the end
    resumed = train(tmp_path / "stopped", "--resume", "auto")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    a = load_file(tmp_path / "reference" / "export" / "model.safetensors")
    b = load_file(tmp_path / "stopped" / "export" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop", ["Terminated", "KeyboardInterrupt"])
def test_sigterm_or_ctrl_c_during_a_checkpoint_write_leaves_no_temp_folder(tmp_path, monkeypatch, stop):
    """SIGTERM (cli.Terminated) or Ctrl-C while a checkpoint's files are fsynced: the half-written
    `.tmp-step_X-*` folder is removed on the way out, and the older checkpoint stays as it was."""
    from vidiff.cli import Terminated
    from vidiff.training import checkpoint as ckpt

    exc = {"Terminated": Terminated, "KeyboardInterrupt": KeyboardInterrupt}[stop]
    root = tmp_path / "checkpoints"
    weights = {"model": {"w": torch.ones(4)}}
    old = ckpt.save_checkpoint(root, 4, weights, {"state": {"step": 4}}, "hash", keep=2)

    def interrupted(path):
        raise exc

    monkeypatch.setattr(ckpt, "_fsync_file", interrupted)
    with pytest.raises(exc):
        ckpt.save_checkpoint(root, 8, weights, {"state": {"step": 8}}, "hash", keep=2)
    assert sorted(p.name for p in root.iterdir()) == [old.name] and ckpt.verify(old)


def test_sigterm_between_the_clip_and_its_sidecar_leaves_no_sidecar_of_the_old_clip(tiny_pipeline, tmp_path,
                                                                                     monkeypatch):
    """SIGTERM after up.mp4 is replaced but before its sidecar is written: the old up.mp4.json (the previous
    run's seed and settings) is gone rather than left describing the new clip."""
    from vidiff import sidecar
    from vidiff.cli import Terminated, main
    from vidiff.io import write_video

    g = torch.Generator().manual_seed(0)
    source = write_video(tmp_path / "in.mp4", (torch.rand(3, 48, 64, 3, generator=g) * 255).to(torch.uint8), 10)
    out = tmp_path / "up.mp4"
    args = ["interpolate", str(source), "-o", str(out), "--factor", "2", "--model", str(tiny_pipeline), "--quiet"]
    assert main(args + ["--seed", "1"]) == 0
    assert json.loads(sidecar.sidecar_path(out).read_text())["seed"] == 1

    def terminated(output, record):
        raise Terminated

    monkeypatch.setattr(sidecar, "write_sidecar", terminated)
    assert main(args + ["--seed", "2"]) == 128 + signal.SIGTERM
    assert out.exists() and not sidecar.sidecar_path(out).exists()
    assert _temporaries(tmp_path) == []


def test_ctrl_c_under_the_accelerate_entry_point_is_one_line(tmp_path, monkeypatch, capsys):
    """`accelerate launch -m vidiff.train` (vidiff/train.py) printed a KeyboardInterrupt traceback on Ctrl-C
    and left SIGTERM to its default action (no cleanup); it now ends as `vidiff train` does."""
    from vidiff.train import main
    from vidiff.training.toy import ToyStage

    config = tmp_path / "toy.yaml"
    config.write_text(f"stage: toy\noutput_dir: {tmp_path / 'run'}\nmodel: {{dim: 8, width: 16}}\n"
                      "data: {kind: synthetic, num_samples: 20}\ntrain: {max_steps: 8, batch_size: 2}\n")

    def interrupted(self, model, batch, draws, step):
        raise KeyboardInterrupt

    monkeypatch.setattr(ToyStage, "loss", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["--config", str(config)]) == 130
    err = capsys.readouterr().err
    assert err.count("vidiff: interrupted") == 1 and "Traceback" not in err
    import gc

    gc.collect()  # the loop's progress bar, if still open, draws itself again when collected
    err += capsys.readouterr().err
    # a line of its own, and the last: the bar was closed first (the line used to follow the bar's text, and the
    # bar was drawn again below it)
    assert err.endswith("\nvidiff: interrupted\n") or err == "vidiff: interrupted\n", err
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_while_a_scan_worker_starts_waits_until_it_is_handed_what_it_runs(capfd):
    """Ctrl-C to the process group while `data cache` (or any folder scan) started its workers: the parent's thread
    mask did not hold it off, since another thread (torch's) takes the signal and the main thread runs the handler
    at its next bytecode; KeyboardInterrupt then landed between the worker's exec and the hand-over of what it
    runs, and the worker printed `EOFError: Ran out of input` with a traceback under "vidiff: interrupted"."""
    import multiprocessing as mp
    import threading

    from vidiff.data import safe_decode

    idle = threading.Event()
    helper = threading.Thread(target=idle.wait)  # a thread that takes the process-directed signal
    helper.start()
    ctx = mp.get_context("spawn")
    started = []

    def interrupted(*args, **kwargs):
        process = ctx.Process(*args, **kwargs)

        def start():  # the signal arrives as the worker is being started
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)
            del process.start  # the process object goes to the worker pickled
            process.start()
            started.append(process)

        process.start = start
        return process

    class Context:
        Process = staticmethod(interrupted)
        Pipe = staticmethod(ctx.Pipe)

    try:
        with pytest.raises(KeyboardInterrupt):
            safe_decode._Worker(Context(), 0, safe_decode.check_video)
    finally:
        idle.set()
        helper.join()
    assert len(started) == 1  # handed over whole, then stopped
    started[0].join(10)  # and not left running
    assert started[0].exitcode is not None
    assert "Traceback" not in capfd.readouterr().err
