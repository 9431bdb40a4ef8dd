"""The `vidiff` argument parser: every sub-command registered, usage errors as one line (exit 2), options never
taken by prefix, and a hint where a token that starts with "-" (a prompt "-red", a file "-dash.mp4") was read as
an option: how to give it instead.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from vidiff import __version__
from vidiff.commands import data, evaluate, export, generation, interpolate, report, train, whole_number


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2, like every other user error. Options
    are not taken by prefix: `extend --keyframe 6` was read as --keyframes 6 (extend has no --keyframe), and
    `generate --frame 5` as --frames 5."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        from vidiff.output_safety import one_line

        hint = _dash_token_hint(self, message)
        self.exit(2, f"{self.prog}: error: {one_line(message)}{hint} (see {self.prog} --help)\n")


_ARGV: list[str] = []  # the tokens parse() parses, for an error to point at the one it could not place


def _dash_token_hint(parser: argparse.ArgumentParser, message: str) -> str:
    """Where a token that starts with '-' and is no option (a prompt "-red", a file "-dash.mp4", --negative-prompt
    "-blurry", -o "-out.mp4") made the error ("the following arguments are required: video", "expected one
    argument"): how to give it instead, a prompt after `--`, a file as ./-dash.mp4. A misspelled long option
    ("--bogus") is no such token."""
    known = {option for p in _all_parsers(parser) for option in p._option_string_actions}
    for token in _ARGV[:_ARGV.index("--")] if "--" in _ARGV else _ARGV:
        # argparse itself takes "-5" and "-a red circle" (a space) as values
        if (len(token) > 1 and token[0] == "-" and token[1] != "-" and token.split("=")[0] not in known
                and " " not in token and not token[1:].replace(".", "", 1).isdigit()):
            return f"; {token!r} starts with '-', so it was read as an option: " + _how_to_give(parser, message, token)
    return ""


def _how_to_give(parser: argparse.ArgumentParser, message: str, token: str) -> str:
    """The way to give `token` as the value the parse error met it in place of: the option named in "argument
    -o/--output: expected one argument", else one of the parser's positional arguments."""
    option = re.match(r"argument (\S+): expected one argument", message)
    action = parser._option_string_actions.get(option.group(1).split("/")[-1]) if option else None
    if action is not None and "prompt" not in action.dest:
        long_name = action.option_strings[-1]
        as_file = f", or a file as `{action.option_strings[0]} ./{token}`" if _takes_a_path(action) else ""
        return f"give such a value after `=` (`{long_name}={token}`){as_file}"
    positionals = [a for a in parser._actions if not a.option_strings and a.nargs != argparse.PARSER]
    prompts = [a for a in positionals if a.dest == "prompt"]
    if option is None and positionals and (not prompts or (len(prompts) < len(positionals) and
                                                           Path(token).suffix and "/" not in token[:2])):
        return f"name a file or folder that starts with '-' as `./{token}` (or give it after the options and `--`)"
    return (f"give a prompt that starts with '-' after the options and `--` (`... -o out.mp4 -- {token}`), and such "
            f"an option value after `=` (`--negative-prompt={token}`)")


def _takes_a_path(action: argparse.Action) -> bool:
    """Whether an option's value is a file or folder: not a prompt, a number, a choice or a name (--sampler)."""
    return (not action.choices and action.type not in (int, float, whole_number) and "prompt" not in action.dest
            and action.dest not in ("device", "sampler"))


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every sub-command parser under it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_parsers(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vidiff",
        description="Video diffusion: generate clips from text, animate images, extend videos, train models.",
        epilog="Common options of generate, animate, extend and edit: --model --seed --steps --sampler --guidance "
               "--negative-prompt --device --dtype --threads (interpolate: all but --guidance and "
               "--negative-prompt). `vidiff COMMAND --help` lists every option of a command.",
    )
    parser.add_argument("--version", action="version", version=f"vidiff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (generation, interpolate, train, data, evaluate, report, export):
        module.register(sub)
    _describe_commands(parser)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """A command registered with a `help` line only (`vidiff train`, `data cache`, `eval fvd`, ...) says it at the
    top of its own --help too, as the ones with a description do."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in action.choices.items():
                if command.description is None and lines.get(name):
                    command.description = lines[name][0].upper() + lines[name][1:] + "."
                _describe_commands(command)


# Options whose value may start with "-" followed by a digit ("--keyframe -1=last.png"): argparse takes such a
# token for an option unless it is a plain number, so it is joined to its option first.
NEGATIVE_VALUE_OPTIONS = ("--keyframe",)


def join_negative_values(argv: list[str]) -> list[str]:
    """["--keyframe", "-1=a.png"] -> ["--keyframe=-1=a.png"]; every other token unchanged."""
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if token in NEGATIVE_VALUE_OPTIONS and len(nxt) > 1 and nxt[0] == "-" and nxt[1].isdigit():
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed by `parser` (built by build_parser), with the tokens kept for the dash-token hint."""
    _ARGV[:] = join_negative_values(argv)
    args, unknown = parser.parse_known_args(_ARGV)
    if unknown:  # said by the command's own parser: "see vidiff --help" pointed at a page without its options
        _command_parser(parser, _ARGV).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The parser of the (sub-)command `argv` names: `vidiff data cache ...` -> data cache's."""
    for token in argv:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:
            break
        if token in commands[0].choices:
            parser = commands[0].choices[token]
    return parser
