"""Warnings said at the caller's line: the first frame outside the library (and outside torch, whose no_grad wrapper
sits around several methods), so a notebook shows the user's call that met the warning, not a line of vidiff's
or "torch/utils/_contextlib.py" (as if torch had warned), and Python's once-per-line rule counts the user's lines.
The command line is a caller like any other: its frames are where its warnings stop, inside the package, where its
one-line printer knows them (cli._print_warning)."""
from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.realpath(__file__))
# the command line (and `python -m vidiff.train`) calls the library as a user does
_CALLERS = {"cli.py", "console.py", "__main__.py", "train.py", "commands"}
_TORCH = f"{os.sep}torch{os.sep}"


def _in_library(filename: str) -> bool:
    path = os.path.realpath(filename)
    if path.startswith(_PACKAGE + os.sep):
        return path[len(_PACKAGE) + 1:].split(os.sep)[0] not in _CALLERS
    return _TORCH in path


def warn_at_caller(message: str) -> None:
    """warnings.warn(message) attributed to the first frame outside vidiff's library code and torch."""
    level, frame = 2, sys._getframe(1)  # level 2: the function that called this one
    while frame is not None and _in_library(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)
