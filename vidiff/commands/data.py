"""CLI: placeholder until its owner lands it."""


def register(sub) -> None:
    pass
