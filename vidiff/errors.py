"""Errors that users see. The CLI turns these into one line on stderr and exit code 2, with no traceback."""


class VidiffError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class InputError(VidiffError, ValueError):
    """A bad argument or file, named in the message; raised before any model weights load."""


class VideoDecodeError(VidiffError):
    """A video file that cannot be read (missing, corrupt, too large, no video stream)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
