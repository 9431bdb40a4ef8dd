"""Where the bundled pipelines are installed, and what the docs' `vidiff/bundled/...` paths mean outside a clone.

The docs and recipes write the bundled folders as a clone's root sees them (`--vae vidiff/bundled/shapes/vae`,
`init_weights: vidiff/bundled/real-interp/vae`). A pip install keeps them in site-packages, so from a user's own
project folder such a path names nothing. It is still refused (a path means the folder it names, never a guess),
but the refusal says where the installed one is.
"""
from __future__ import annotations

import os
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "bundled"


def installed_in_place_of(given: str | os.PathLike) -> Path | None:
    """The installed bundled folder that a missing relative `[...]/vidiff/bundled/NAME[/PART]` means, if any."""
    given = Path(given)
    parts = given.parts
    if given.is_absolute() or os.path.lexists(given) or ".." in parts:
        return None
    starts = [i + 2 for i in range(len(parts) - 1) if parts[i:i + 2] == ("vidiff", "bundled")]
    if not starts or starts[-1] == len(parts):
        return None
    installed = BUNDLED.joinpath(*parts[starts[-1]:])
    return installed if installed.is_dir() else None


def where_installed(given: str | os.PathLike | None) -> str:
    """'' or, for a missing docs path to a bundled folder, the words that end its "no such folder" refusal."""
    installed = installed_in_place_of(given) if given else None
    if installed is None:
        return ""
    steps = " / ".join(f'"{part}"' for part in installed.relative_to(BUNDLED.parent).parts)
    try:
        here = f" here ({Path.cwd()})"
    except OSError:  # the current folder was removed
        here = " here"
    return f'{here}; the bundled one is importlib.resources.files("vidiff") / {steps}: {installed}'
