"""Sub-commands of the `vidiff` CLI, one module each (argparse at import, heavy imports inside handlers)."""


def whole_number(value: str) -> int:
    """argparse type of a count, seed or size: "16", "1e3" and "16.0" are whole numbers, as a config setting takes
    them (config._check_type); "1.5" or "abc" is refused naming the option. argparse's `int` refused "1e3"."""
    import argparse

    try:
        return int(value)  # exact, also past float precision (a seed near 2**63)
    except ValueError:
        pass
    from vidiff.limits import whole

    try:
        number = whole(float(value))
    except ValueError:
        number = None
    if number is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return number


def folder_argument(value: str) -> str:
    """argparse type of a --model folder: an empty one ("" from an unset shell variable) was read as "no --model"
    and ran the bundled pipeline without a word."""
    return _non_empty_path(value, "empty folder path; give a pipeline folder, or leave the option out")


def output_argument(value: str) -> str:
    """argparse type of what a command writes (-o, --out, --json): an empty one ("" from an unset shell variable)
    is the working folder, where `data shapes --out ""` wrote its clips (removing clip files numbered past --num)
    and `data cache --out ""` its shards, and `eval --json ""` wrote nothing without a word."""
    return _non_empty_path(value, "empty path; give the file or folder to write")


def _non_empty_path(value: str, refusal: str) -> str:
    """`path_argument(value)`, or argparse's error `refusal` when the value is empty or blank."""
    import argparse

    if not value.strip():
        raise argparse.ArgumentTypeError(refusal)
    return path_argument(value)


def path_argument(value: str) -> str:
    """argparse type of a file or folder: a leading "~" is the home folder, as the shell reads it unquoted and the
    library reads it (`--model "~/pipe"` read pipeline.yaml from the home folder and then its weights from a
    folder named "~"). An empty or blank one ("" from an unset shell variable) is refused: it was the working
    folder, and `vidiff animate "" ...` said "image .: is a directory"."""
    import argparse
    import os

    if not value.strip():
        raise argparse.ArgumentTypeError("empty path; give the file or folder to read")
    return os.path.expanduser(value)
