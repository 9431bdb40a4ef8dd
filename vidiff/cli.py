"""`vidiff ...`: the command line, a thin layer over the library.

Each sub-command lives in vidiff/commands/<name>.py with `register(subparsers)` (argparse only, cheap to
import) and a handler that imports the heavy modules when it runs. User errors (VidiffError, ConfigError)
print one line and exit with code 2; no traceback. Ctrl-C exits 130 and SIGTERM 143, each after the command's
cleanup (no half-written output or temporary file is left). The parser is vidiff/cli_parser.py, the handling of
signals vidiff/cli_signals.py; this file runs a command and turns what ends it into one line.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from vidiff.cli_parser import build_parser, join_negative_values, parse  # noqa: F401  (public here)
from vidiff.cli_signals import (  # noqa: F401  (Terminated: public here)
    Terminated, catch_second_interrupt, catch_sigterm, restore, told_interrupted,
)

_show_warning = warnings.showwarning  # Python's printer, for warnings from elsewhere


_warned: set[str] = set()  # the warning lines said in this command: the CLI's checks and the library both warn of
# some things (a forced layout), and a run of --num N samples meets the same thing N times; each is said once


def _say_warning(text: str) -> None:
    from vidiff.output_safety import one_line

    if os.environ.get("RANK", "0") != "0":  # under `accelerate launch` every process meets the same checks: the
        return  # main one says them (each process's errors are still its own)
    line = f"vidiff: warning: {one_line(text)}"
    if line not in _warned:
        _warned.add(line)
        print(line, file=sys.stderr)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """vidiff's own warnings as one line, as its errors are; others as Python prints them."""
    if Path(filename).resolve().is_relative_to(Path(__file__).resolve().parent):
        _say_warning(str(message))
    else:
        _show_warning(message, category, filename, lineno, file, line)


class _LogWarnings(logging.Handler):
    """vidiff's logged warnings (a damaged or HDR clip, a variable frame rate) as `vidiff: warning: ...` lines, like
    its warnings; silent where the command set up a log of its own (`vidiff train`), which then prints them."""

    def emit(self, record) -> None:
        if logging.getLogger().handlers:
            return
        _say_warning(record.getMessage())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, sys.argv[1:] if argv is None else list(argv))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return run_command(args.handler, args)


def _close_progress_bars() -> None:
    """Closes the progress bars a stop left open: the one line then starts a line of its own, and no bar is drawn
    again below it when the bar is collected."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def _stdout_is_closed() -> bool:
    """Whether stdout's reader has gone (a pipe's write end reports an error once its read end is closed); if
    so, stdout is pointed at /dev/null so that the interpreter's last flush at exit does not fail again."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        closed = any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file behind stdout, or no poll on this platform
        return False
    if closed:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return closed


def run_command(handler, args: argparse.Namespace) -> int:
    """Runs a command's handler: user errors, a full disk, Ctrl-C and SIGTERM as one line each (exit 2, 2, 130,
    143). Also the entry point of `accelerate launch -m vidiff.train`."""
    from vidiff.config import ConfigError
    from vidiff.errors import VidiffError

    previous = catch_sigterm()
    previous_interrupt = catch_second_interrupt()
    logger, printer = logging.getLogger("vidiff"), _LogWarnings(logging.WARNING)
    logger.addHandler(printer)
    _warned.clear()
    try:
        with warnings.catch_warnings():  # restores the warning printer when the command ends
            warnings.showwarning = _print_warning
            return int(handler(args) or 0)
    except (VidiffError, ConfigError) as e:
        from vidiff.output_safety import one_line

        _close_progress_bars()  # the line starts a line of its own, and no bar is drawn again below it
        print(f"vidiff: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except RecursionError:  # a JSON / metrics / sidecar file nested thousands of levels deep: refused, not a crash
        _close_progress_bars()
        print("vidiff: error: an input file is nested too deeply to read (e.g. JSON with thousands of levels of "
              "brackets); nothing was written after it was met", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _close_progress_bars()
        print("vidiff: interrupted", file=sys.stderr)
        told_interrupted()
        return 130
    except Terminated:
        _close_progress_bars()
        print("vidiff: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        if not _stdout_is_closed():
            raise
        # the reader of stdout stopped (`vidiff eval shapes DIR | head`): it had what it wanted; no traceback
        return 128 + signal.SIGPIPE
    except OSError as e:  # a full disk met by a write vidiff does not wrap itself (a folder, a lock, a library's file)
        from vidiff.output_safety import FULL_ERRNOS, describe_write_error, one_line, shown

        if e.errno not in FULL_ERRNOS:
            raise
        _close_progress_bars()
        named = e.filename if e.filename2 is None else e.filename2  # a copy's or rename's second path is written
        where = f"{shown(named)}: " if named is not None else ""
        print(f"vidiff: error: {one_line(where + 'cannot write (' + describe_write_error(e) + ')')}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(printer)
        restore(previous, previous_interrupt)


if __name__ == "__main__":
    sys.exit(main())
