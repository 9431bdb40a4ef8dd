"""One writer at a time in a folder: an exclusive kernel lock (flock) on the folder itself, held for a block.

The lock is taken on a descriptor of the folder, so no lock file is left behind, and the kernel drops it when the
process dies, so a killed writer never blocks the next one. `vidiff export` waits for its turn in the folder it
writes beside; `vidiff data shapes` refuses a folder another one is writing (two runs at once interleaved their
clips, and the first to finish declared the folder complete while the other still wrote), and so does `vidiff data
cache` (two builds with other settings that started together each said the cache was ready, and it held one build's
shards, or both). A reader that finds such a folder unfinished asks `folder_busy` whether a writer is still at work,
to say so rather than "run it again". Without flock (Windows), or on a file system that does not lock folders,
there is no lock, as before.
"""
from __future__ import annotations

import logging
import os
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vidiff.errors import InputError

log = logging.getLogger(__name__)


def _open_folder(folder: Path) -> int | None:
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # a folder that can be written but not listed (mode -wx), or none: no lock
        return None


@contextmanager
def folder_lock(folder: Path, busy: str | None = None) -> Iterator[None]:
    """Holds the lock on the existing folder `folder` for the block. `busy`: the refusal raised at once (an
    InputError) when another process holds it; None waits for it instead."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = _open_folder(folder)
    if fd is None:  # as without flock
        yield
        return
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if busy is not None:
                    raise InputError(busy) from None
                # a wait with no word looked like a hang (an export beside a dataset a notebook still holds)
                log.warning("%s: waiting for another vidiff command or a dataset reading this folder to let it go",
                            folder)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system that does not lock folders (some NFS mounts): no lock, as without flock
            pass
        hold_in_this_process_only(fd)
        yield
    finally:
        let_go(fd)
        os.close(fd)  # closing drops the lock


def folder_busy(folder: Path) -> bool:
    """Whether another process holds `folder`'s lock now (a writer at work in it). The probe is a shared lock taken
    and dropped at once: probes never block each other, and a writer starting in that instant is refused as busy."""
    try:
        import fcntl
    except ImportError:
        return False
    fd = _open_folder(folder)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system that does not lock folders
        return False
    finally:
        os.close(fd)
    return False


class ReadLock:
    """A shared lock on a folder for as long as this object lives: readers of a folder of clips hold it, so that a
    writer's exclusive lock (`vidiff data shapes` rewriting the folder) is refused while they read. Without it, a
    training run or a cache build read the captions of one dataset at its start and the clips of the next one
    after. A copy sent to another process (a DataLoader worker) holds nothing, forked or spawned: a forked child
    closes its inherited descriptor, which would otherwise keep the folder locked after this process let it go
    (a persistent worker pool)."""

    def __init__(self, folder: Path, busy: str):
        self._fd = None
        try:
            import fcntl
        except ImportError:
            return
        fd = _open_folder(folder)
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(busy) from None
        except OSError:  # a file system that does not lock folders
            os.close(fd)
            return
        self._fd = fd
        _HELD.add(self)

    def __reduce__(self):
        return (_unheld, ())

    def release(self, _close=os.close) -> None:  # bound early: __del__ may run while the interpreter tears down
        if self._fd is not None:
            _close(self._fd)  # closing drops the lock
            self._fd = None

    def __del__(self):
        self.release()


_HELD: "weakref.WeakSet[ReadLock]" = weakref.WeakSet()


_HELD_FDS: set[int] = set()  # descriptors of the other locks this process holds (hold_in_this_process_only)


def hold_in_this_process_only(fd: int) -> None:
    """A forked child (a DataLoader worker) closes `fd`, a descriptor an flock is held on: the lock belongs to the
    open file, which a fork shares, so a child that outlived a killed parent (a worker notices within 5 s, a hung one
    never) kept it held, and the rerun was refused naming the dead pid. Call `let_go(fd)` before closing it."""
    _HELD_FDS.add(fd)


def let_go(fd: int) -> None:
    _HELD_FDS.discard(fd)


def _close_inherited() -> None:
    """In a forked child: drop the descriptors of the parent's locks (the lock stays the parent's)."""
    for lock in list(_HELD):
        if lock._fd is not None:
            os.close(lock._fd)
            lock._fd = None
    for fd in list(_HELD_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_FDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited)


def _unheld() -> ReadLock:
    lock = ReadLock.__new__(ReadLock)
    lock._fd = None
    return lock
