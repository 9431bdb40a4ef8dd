"""`accelerate launch -m vidiff.train --config FILE ...`: the same options as `vidiff train`."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from vidiff.commands.train import add_arguments, run
    from vidiff.config import ConfigError
    from vidiff.errors import VidiffError

    parser = argparse.ArgumentParser(prog="python -m vidiff.train", description="Train a vidiff stage.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (VidiffError, ConfigError) as e:
        print(f"vidiff: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
