"""`vidiff ...`: the command line, a thin layer over the library.

Each sub-command lives in vidiff/commands/<name>.py with `register(subparsers)` (argparse only, cheap to
import) and a handler that imports the heavy modules when it runs. User errors (VidiffError, ConfigError)
print one line and exit with code 2; no traceback. Ctrl-C exits 130 and SIGTERM 143, each after the command's
cleanup (no half-written output or temporary file is left).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import warnings
from pathlib import Path

from vidiff import __version__
from vidiff.commands import data, evaluate, export, generation, interpolate, report, train


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2, like every other user error. Options
    are not taken by prefix: `extend --keyframe 6` was read as --keyframes 6 (extend has no --keyframe), and
    `generate --frame 5` as --frames 5."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        from vidiff.output_safety import one_line

        hint = _dash_token_hint(self, message)
        self.exit(2, f"{self.prog}: error: {one_line(message)}{hint} (see {self.prog} --help)\n")


_ARGV: list[str] = []  # the tokens main() parses, for an error to point at the one it could not place


def _dash_token_hint(parser: argparse.ArgumentParser, message: str) -> str:
    """Where a token that starts with '-' and is no option (a prompt "-red", a file "-dash.mp4", --negative-prompt
    "-blurry", -o "-out.mp4") made the error ("the following arguments are required: video", "expected one
    argument"): how to give it instead, a prompt after `--`, a file as ./-dash.mp4. A misspelled long option
    ("--bogus") is no such token."""
    known = {option for p in _all_parsers(parser) for option in p._option_string_actions}
    for token in _ARGV[:_ARGV.index("--")] if "--" in _ARGV else _ARGV:
        # argparse itself takes "-5" and "-a red circle" (a space) as values
        if (len(token) > 1 and token[0] == "-" and token[1] != "-" and token.split("=")[0] not in known
                and " " not in token and not token[1:].replace(".", "", 1).isdigit()):
            return f"; {token!r} starts with '-', so it was read as an option: " + _how_to_give(parser, message, token)
    return ""


def _how_to_give(parser: argparse.ArgumentParser, message: str, token: str) -> str:
    """The way to give `token` as the value the parse error met it in place of: the option named in "argument
    -o/--output: expected one argument", else one of the parser's positional arguments."""
    option = re.match(r"argument (\S+): expected one argument", message)
    action = parser._option_string_actions.get(option.group(1).split("/")[-1]) if option else None
    if action is not None and "prompt" not in action.dest:
        long_name = action.option_strings[-1]
        as_file = f", or a file as `{action.option_strings[0]} ./{token}`" if _takes_a_path(action) else ""
        return f"give such a value after `=` (`{long_name}={token}`){as_file}"
    positionals = [a for a in parser._actions if not a.option_strings and a.nargs != argparse.PARSER]
    prompts = [a for a in positionals if a.dest == "prompt"]
    if option is None and positionals and (not prompts or (len(prompts) < len(positionals) and
                                                           Path(token).suffix and "/" not in token[:2])):
        return f"name a file or folder that starts with '-' as `./{token}` (or give it after the options and `--`)"
    return (f"give a prompt that starts with '-' after the options and `--` (`... -o out.mp4 -- {token}`), and such "
            f"an option value after `=` (`--negative-prompt={token}`)")


def _takes_a_path(action: argparse.Action) -> bool:
    """Whether an option's value is a file or folder: not a prompt, a number, a choice or a name (--sampler)."""
    return (not action.choices and action.type not in (int, float) and "prompt" not in action.dest
            and action.dest not in ("device", "sampler"))


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every sub-command parser under it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_parsers(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vidiff",
        description="Video diffusion: generate clips from text, animate images, extend videos, train models.",
        epilog="Common options of generate, animate, extend and edit: --model --seed --steps --sampler --guidance "
               "--negative-prompt --device --dtype --threads (interpolate: all but --guidance and "
               "--negative-prompt). `vidiff COMMAND --help` lists every option of a command.",
    )
    parser.add_argument("--version", action="version", version=f"vidiff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (generation, interpolate, train, data, evaluate, report, export):
        module.register(sub)
    _describe_commands(parser)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """A command registered with a `help` line only (`vidiff train`, `data cache`, `eval fvd`, ...) says it at the
    top of its own --help too, as the ones with a description do."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in action.choices.items():
                if command.description is None and lines.get(name):
                    command.description = lines[name][0].upper() + lines[name][1:] + "."
                _describe_commands(command)


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


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so that its cleanup runs (a half-written output's temporary file is
    removed) as for Ctrl-C; the default action would end the process on the spot."""


def _raise_terminated(signum, frame):
    if not _put_off_in_an_import(signum, frame):
        raise Terminated


_PUT_OFF_AT_MOST_S = 5.0  # an import stuck longer than this (waiting on a lock, say) is interrupted where it is
_put_off_since: dict[int, float] = {}  # signal number -> when a stop that landed in an import was first put off
_resend_pending: set[int] = set()


def _put_off_in_an_import(signum, frame) -> bool:
    """A stop that lands while a module is being imported (torch alone takes 1-2 s of a command's start) is put off
    until the import is done, by sending the signal again 20 ms later; returns whether it was put off. Raised in
    the middle of a module's code, the exception met code that cannot pass it on: torch's C++ start-up calling
    back into Python aborted the process (`terminate called after throwing an instance of
    'pybind11::error_already_set'`, exit 134 with a stack of 80 lines), and Python 3.11 turned it into a
    RuntimeError traceback inside a class definition's `__set_name__` (exit 1)."""
    import threading
    import time

    while frame is not None and not frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
        frame = frame.f_back
    now = time.monotonic()
    if frame is None or now - _put_off_since.setdefault(signum, now) > _PUT_OFF_AT_MOST_S:
        _put_off_since.pop(signum, None)
        return False
    if signum not in _resend_pending:  # a second press before the resend adds nothing
        _resend_pending.add(signum)

        def resend() -> None:
            _resend_pending.discard(signum)
            os.kill(os.getpid(), signum)

        timer = threading.Timer(0.02, resend)
        timer.daemon = True
        timer.start()
    return True


_interrupt_told = False  # whether "vidiff: interrupted" is printed already


def _exit_at_once(signum, frame) -> None:
    if not _interrupt_told:
        os.write(2, b"\nvidiff: interrupted\n")
    os._exit(130)


def _first_interrupt(signum, frame) -> None:
    if _put_off_in_an_import(signum, frame):
        return
    signal.signal(signal.SIGINT, _exit_at_once)  # kept to the end of the process: its whole exit path is covered
    raise KeyboardInterrupt


def _catch_second_interrupt():
    """The first Ctrl-C raises KeyboardInterrupt as usual (the command ends: bars closed, one line, exit 130); from
    then on another Ctrl-C exits at once with that line, so it cannot land a traceback in the middle of the exit
    path (a finally block, the loader's workers being stopped). Main thread only, and only over Python's default
    handler (an ignored SIGINT, as in a background job, stays ignored); returns the handler it replaced, or None."""
    import threading

    from vidiff.console import stop_at_once

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, stop_at_once):
        return None
    return signal.signal(signal.SIGINT, _first_interrupt)


def _catch_sigterm():
    """Installs the SIGTERM handler (main thread only); returns the one it replaced, or None."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


# Options whose value may start with "-" followed by a digit ("--keyframe -1=last.png"): argparse takes such a
# token for an option unless it is a plain number, so it is joined to its option first.
NEGATIVE_VALUE_OPTIONS = ("--keyframe",)


def join_negative_values(argv: list[str]) -> list[str]:
    """["--keyframe", "-1=a.png"] -> ["--keyframe=-1=a.png"]; every other token unchanged."""
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if token in NEGATIVE_VALUE_OPTIONS and len(nxt) > 1 and nxt[0] == "-" and nxt[1].isdigit():
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _ARGV[:] = join_negative_values(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(_ARGV)
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

    previous = _catch_sigterm()
    previous_interrupt = _catch_second_interrupt()
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
        global _interrupt_told
        _close_progress_bars()
        print("vidiff: interrupted", file=sys.stderr)
        _interrupt_told = True
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
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_interrupt is not None and signal.getsignal(signal.SIGINT) is _first_interrupt:
            signal.signal(signal.SIGINT, previous_interrupt)  # not interrupted: an in-process caller gets its own back


if __name__ == "__main__":
    sys.exit(main())
