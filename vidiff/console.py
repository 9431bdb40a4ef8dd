"""The `vidiff` console command. Its handlers for Ctrl-C and SIGTERM are in place from the first instant of the
command, before the CLI imports numpy and its sub-commands: until a command starts there is nothing to clean up,
so a stop then ends the process at once with vidiff's one line (a Ctrl-C during the imports printed a traceback,
or numpy's "Importing the numpy C-extensions failed" as if the install were broken). The command replaces them
with its own, and puts these back when it ends, so a signal during the interpreter's exit is one line too. After the
last exit callback Python removes its handlers and tears the modules down (0.5-1.2 s with torch loaded), where a
signal ended the finished command by the signal itself, without a word (exit -2 / -15 to a parent process); the
two stops are ignored from then on, and the command ends with its own exit code."""
from __future__ import annotations

import atexit
import os
import signal
import sys


def stop_at_once(signum, frame) -> None:
    os.write(2, b"vidiff: interrupted\n" if signum == signal.SIGINT else b"vidiff: terminated\n")
    os._exit(128 + signum)


def ignore_stops_in_teardown() -> None:
    """The last exit callback (registered first): the output is complete by now, and the teardown that follows runs
    without Python's handlers (CPython sets them back to the default action, which ends the process by the signal);
    an ignored signal stays ignored through it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if getattr(signal.getsignal(signum), "__module__", "").startswith("vidiff."):  # ours (a second Ctrl-C's too)
            signal.signal(signum, signal.SIG_IGN)


def main() -> int:
    atexit.register(ignore_stops_in_teardown)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored SIGINT (a background job) stays
        signal.signal(signal.SIGINT, stop_at_once)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, stop_at_once)
    from vidiff.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
