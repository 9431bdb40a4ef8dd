"""The `vidiff` console command. Its handlers for Ctrl-C and SIGTERM are in place from the first instant of the
command, before the CLI imports numpy and its sub-commands: until a command starts there is nothing to clean up,
so a stop then ends the process at once with vidiff's one line (a Ctrl-C during the imports printed a traceback,
or numpy's "Importing the numpy C-extensions failed" as if the install were broken). The command replaces them
with its own, and puts these back when it ends, so a signal during the interpreter's exit is one line too."""
from __future__ import annotations

import os
import signal
import sys


def stop_at_once(signum, frame) -> None:
    os.write(2, b"vidiff: interrupted\n" if signum == signal.SIGINT else b"vidiff: terminated\n")
    os._exit(128 + signum)


def main() -> int:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored SIGINT (a background job) stays
        signal.signal(signal.SIGINT, stop_at_once)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, stop_at_once)
    from vidiff.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
