"""Every file vidiff writes goes through here: nothing lost, nothing overwritten, no half files.

`check_output(path, inputs=...)` is cheap (no writing) and runs in the CLI before any model loads: it refuses an
output that is, or resolves to, one of the command's inputs (same file through a symlink or hard link too), an
output that is a folder, a name too long for the temporary name, and a place where the nearest existing folder is
not writable.

`atomic_write(path, write)` creates a temporary file with a random name in the target folder, opened
O_CREAT | O_EXCL | O_NOFOLLOW (a planted symlink or an existing file under that name is never followed or
reused), calls `write(fileobj)`, fsyncs, renames it over `path` and fsyncs the folder. Renaming replaces a
symlink at `path` itself, never the file it points to. Temporaries of our own naming older than a day (left by
a kill -9) are removed on the next write to the same folder, and so is every temporary whose writer died (the
writer holds an flock on it while it writes).
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from vidiff.errors import InputError, VidiffError

NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, APFS, NTFS)
TMP_TAG = "vidiff-tmp"
# a new file, never through a planted symlink, not inherited by child processes
NEW_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
STALE_AFTER_S = 24 * 3600.0
# .<up to 40 chars of the name>.<16 hex>.vidiff-tmp<suffix>, and the older writers' .<stem>.<8 hex>.tmp<suffix>
_TMP_NAME = re.compile(r"^\..{0,255}\.[0-9a-f]{16}\." + TMP_TAG + r"(\.[A-Za-z0-9]{1,8})?$", re.S)
_LEGACY_TMP_NAME = re.compile(r"^\..{1,255}\.[0-9a-f]{8}\.tmp\.(mp4|webm|gif)$", re.S)
_STEM_KEPT = 40  # characters of the final name kept in its temporary name (for people reading a folder)


class OutputError(VidiffError):
    """An output cannot be written where asked (the message names the path and why)."""


def shown(path) -> str:
    """A path as it appears in an error message: at most ~200 characters, control characters escaped."""
    text = _printable(os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path))
    return text if len(text) <= 200 else text[:120] + "..." + text[-77:]


def one_line(message: str, limit: int = 1000) -> str:
    """An error message as one printable line of at most `limit` characters (newlines and control characters
    escaped, undecodable bytes shown as \\xNN), so that stderr holds exactly one line per error."""
    text = _printable(message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    """Control characters (newlines, terminal escapes, bidi overrides) escaped, undecodable bytes as \\xNN."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def temporary_name(path: Path) -> str:
    """A fresh random hidden name in path's folder, always well under NAME_MAX bytes."""
    suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix) else ""
    stem = path.name[:_STEM_KEPT]
    while len(stem.encode("utf-8", "surrogateescape")) > _STEM_KEPT:  # multi-byte characters
        stem = stem[:-1]
    return f".{stem}.{secrets.token_hex(8)}.{TMP_TAG}{suffix}"


def current_umask() -> int:
    """The process's umask: read from /proc where Linux gives it, since setting it to read it back is process-wide
    (another thread's files made in between would get the wrong mode)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_mode(path) -> None:
    """Gives a file another library created (safetensors' save_file makes it 0600) the mode open() would have:
    0666 less the umask, so that a shared folder's files are readable by the people it is shared with."""
    os.chmod(path, 0o666 & ~current_umask())


def is_our_temporary(name: str) -> bool:
    return bool(_TMP_NAME.match(name) or _LEGACY_TMP_NAME.match(name))


def real_path(path) -> Path:
    """The path with every symlink resolved; never raises (a symlink loop stays as far as it resolves)."""
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(folder: Path) -> Path:
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def output_path(raw, what: str = "-o") -> Path:
    """A user's output path as a Path ("~" the home folder, as the readers take it; also a "~/x.mp4" quoted on
    the command line); "out.mp4/" names a folder, which Path() would turn into the file out.mp4."""
    if isinstance(raw, (str, bytes)) and os.fsdecode(raw).endswith(os.sep):
        raise InputError(f"{what} {shown(raw)}: ends with {os.sep}, so it names a folder; give a file name")
    return Path(raw).expanduser()


def check_output(path, inputs: Iterable = (), what: str = "-o", create_folder: bool = True) -> Path:
    """Checks that `path` can be written atomically without touching any of `inputs`; returns it as a Path.

    Raises InputError naming `what` when the output is an input (or resolves to one), is a folder, has a name
    longer than NAME_MAX bytes, or when its folder does not exist (`create_folder=False`) or cannot be written.
    Nothing is created.
    """
    path = output_path(path, what)
    if not path.name or path.name in (".", ".."):
        raise InputError(f"{what} {shown(path)}: give a file name, not a folder")
    name_bytes = len(os.fsencode(path.name))
    if name_bytes > NAME_MAX:
        raise InputError(f"{what} {shown(path)}: file name is {name_bytes} bytes; the limit is {NAME_MAX}")
    if len(os.fsencode(str(path.absolute()))) > 4000:
        raise InputError(f"{what} {shown(path)}: path longer than 4000 bytes")
    for item in inputs:
        if item is None:
            continue
        item = Path(item).expanduser()
        if _same_file(path, item) or real_path(path) == real_path(item):
            raise InputError(f"{what} {shown(path)}: is the input {shown(item)}; writing it would destroy the "
                             "input, give another output name")
    try:
        st = os.stat(path)  # follows a symlink: a link to a folder is a folder
    except (FileNotFoundError, NotADirectoryError):  # the latter: a folder on the way is a file, said below
        st = None
    except OSError as e:
        raise InputError(f"{what} {shown(path)}: cannot check the output ({e.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {shown(path)}: is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {shown(path)}: exists and is not a regular file (FIFO, device or socket)")
    folder = path.parent if str(path.parent) else Path(".")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        kind = "a file, not a folder" if existing.is_file() else "not a folder"
        raise InputError(f"{what} {shown(path)}: {shown(existing)} is {kind}")
    if existing != folder and not create_folder:
        raise InputError(f"{what} {shown(path)}: folder {shown(folder)} does not exist")
    why = _cannot_create_in(existing)
    if why:
        raise InputError(f"{what} {shown(path)}: cannot write in folder {shown(existing)} ({why})")
    return path


def _cannot_create_in(folder: Path) -> str | None:
    """None when a file can be created in `folder` (tried: a temporary file is created and removed at once;
    permission bits alone say nothing for root or on read-only mounts), else the reason."""
    if hasattr(os, "O_TMPFILE"):  # Linux: an unnamed file, so a Ctrl-C at any instant leaves nothing behind
        try:
            os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600))
            return None
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):  # EISDIR: a kernel without it
                return describe_write_error(e)
    probe = folder / f".probe.{secrets.token_hex(8)}.{TMP_TAG}"  # a named probe; remove_stale_temporaries sweeps it
    try:
        os.close(os.open(probe, NEW_FILE_FLAGS, 0o600))
    except OSError as e:
        if e.errno == errno.ENOENT:  # a folder that exists and makes no files (/proc) said "No such file or directory"
            return "the folder takes no new files"
        return describe_write_error(e)
    _unlink(probe)
    return None


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S, now: float | None = None) -> int:
    """Removes our temporaries in `folder` that no writer holds any more; returns the count.

    A writer holds an exclusive flock on its temporary until it renames it, and the kernel drops the lock
    when the process dies, so a temporary whose lock is free (and that is over ORPHAN_AFTER_S old, which
    covers the instant between creating and locking it) was left by a killed writer and goes at once.
    Any temporary of our naming older than `older_than_s` goes too (also the older writers' unlocked names)."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = os.scandir(folder)
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if not entry.name.startswith(".") or not is_our_temporary(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                age = now - st.st_mtime
                if age > older_than_s or (age > ORPHAN_AFTER_S and _TMP_NAME.match(entry.name) and _orphaned(entry.path)):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue  # another writer removed or renamed it
    return removed


ORPHAN_AFTER_S = 1.0


def _orphaned(path: str) -> bool:
    """True when no process holds the writer's lock on the temporary at `path`."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): only age decides
        return False
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(fd)  # closing releases our probe lock
    return True


def _lock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass  # no flock here: stale temporaries then go by age only


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not fsync folders
    finally:
        os.close(fd)


# a write that failed for want of room: the reason is said in words, and the CLI names the file in one line
FULL_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EFBIG: "file too large: over the file-size limit (ulimit -f) or the file system's largest file"}


def describe_write_error(e: OSError) -> str:
    """Why a write failed, in words (a full disk, a quota, the file-size limit, a read-only file system)."""
    if e.errno in FULL_ERRNOS:
        return FULL_ERRNOS[e.errno]
    if e.errno == errno.EROFS:
        return "read-only file system"
    return e.strerror or str(e)[:200] or type(e).__name__


@contextmanager
def open_temporary(path) -> Iterator[tuple[object, Path]]:
    """(binary file object, temporary path) in path's folder; the caller renames it with `commit`."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{shown(path)}: cannot create folder {shown(folder)} ({describe_write_error(e)})") from None
    remove_stale_temporaries(folder)
    tmp = None
    try:
        for _ in range(8):
            # named before it exists: Ctrl-C or SIGTERM right after os.open (before the lock) still removes it
            tmp = folder / temporary_name(path)
            try:
                fd = os.open(tmp, NEW_FILE_FLAGS, 0o666)  # less the umask, as open() makes a file
                break
            except FileExistsError:
                tmp = None  # someone else's: never removed
            except OSError as e:  # nothing was created; removing the name finds nothing
                why = describe_write_error(e)
                raise OutputError(f"{shown(path)}: cannot write in {shown(folder)} ({why})") from None
        else:
            raise OutputError(f"{shown(path)}: no free temporary name in {shown(folder)}")
        _lock(fd)  # held until this process closes it or dies; see remove_stale_temporaries
        with os.fdopen(fd, "w+b") as f:
            yield f, tmp
    except BaseException:
        if tmp is not None:
            _unlink(tmp)
        raise


def _unlink(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def atomic_write(path, write: Callable[[object], None], before_replace: Callable[[], None] | None = None) -> Path:
    """Writes `path` atomically: `write(f)` fills a fresh temporary file (binary, seekable), then fsync and
    rename over `path`. On any error the temporary file is removed and `path` keeps its old content.
    `before_replace()` runs after the fsync, just before the rename (to remove files that describe the old
    `path`, such as its sidecar, while the old file is still in place)."""
    path = Path(path)
    if os.path.isdir(path):
        raise OutputError(f"{shown(path)}: is a folder; give a file name")
    tmp = None
    try:
        with open_temporary(path) as (f, tmp):
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if before_replace is not None:
                before_replace()
            os.replace(tmp, path)  # while still open and locked: no cleaner can take it for an orphan
    except OSError as e:
        if tmp is not None:
            _unlink(tmp)
        raise OutputError(f"{shown(path)}: write failed ({describe_write_error(e)})") from None
    except BaseException:
        if tmp is not None:
            _unlink(tmp)
        raise
    _fsync_dir(path.parent if str(path.parent) else Path("."))
    return path


def write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
