"""Sub-commands of the `vidiff` CLI, one module each (argparse at import, heavy imports inside handlers)."""


def folder_argument(value: str) -> str:
    """argparse type of a --model folder: an empty one ("" from an unset shell variable) was read as "no --model"
    and ran the bundled pipeline without a word."""
    import argparse

    if not value.strip():
        raise argparse.ArgumentTypeError("empty folder path; give a pipeline folder, or leave the option out")
    return value
