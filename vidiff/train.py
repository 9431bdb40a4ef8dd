"""`accelerate launch -m vidiff.train --config FILE ...`: the same options as `vidiff train`."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from vidiff.cli import run_command
    from vidiff.commands.train import add_arguments, run

    parser = argparse.ArgumentParser(prog="python -m vidiff.train", description="Train a vidiff stage.")
    add_arguments(parser)
    return run_command(run, parser.parse_args(argv))  # errors, Ctrl-C and SIGTERM as `vidiff train` has them


if __name__ == "__main__":
    sys.exit(main())
