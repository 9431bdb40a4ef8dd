"""How `vidiff` stops: Ctrl-C and SIGTERM become exceptions raised where the command is, so that its cleanup runs
(no half-written output or temporary file is left); a stop that lands inside a module import is put off until
the import is done; a second Ctrl-C exits at once with the same one line.
"""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager


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


_interrupt_told = False  # whether "vidiff: interrupted" is printed already (told_interrupted)


def _exit_at_once(signum, frame) -> None:
    if not _interrupt_told:
        os.write(2, b"\nvidiff: interrupted\n")
    os._exit(130)


def _first_interrupt(signum, frame) -> None:
    if _put_off_in_an_import(signum, frame):
        return
    signal.signal(signal.SIGINT, _exit_at_once)  # kept to the end of the process: its whole exit path is covered
    raise KeyboardInterrupt


def catch_second_interrupt():
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


def catch_sigterm():
    """Installs the SIGTERM handler (main thread only); returns the one it replaced, or None."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def told_interrupted() -> None:
    """Notes that the command printed "vidiff: interrupted", so that a second Ctrl-C does not print it again."""
    global _interrupt_told
    _interrupt_told = True


def restore(previous_term, previous_interrupt) -> None:
    """Puts back the handlers catch_sigterm / catch_second_interrupt replaced (an in-process caller gets its own
    back), unless a first Ctrl-C has already armed the exit at once."""
    if previous_term is not None:
        signal.signal(signal.SIGTERM, previous_term)
    if previous_interrupt is not None and signal.getsignal(signal.SIGINT) is _first_interrupt:
        signal.signal(signal.SIGINT, previous_interrupt)


@contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait until the block ends, then act as usual (main thread only). The Python-level handlers
    are swapped for ones that note the signal: a thread mask would not do, since another thread (torch's) takes a
    process-directed signal and the main thread still runs the handler at its next bytecode."""
    import threading

    names = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not None]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    before = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in names}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # handled now, by the handler that was in place
