"""Sub-commands of the `vidiff` CLI, one module each (argparse at import, heavy imports inside handlers)."""
