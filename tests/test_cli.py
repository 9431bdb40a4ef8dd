import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "vidiff", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: vidiff" in out


def test_top_level_help_lists_the_common_generation_options():
    """DESIGN: `vidiff --help` lists the common options (--model --seed --steps --sampler --guidance
    --negative-prompt --device --dtype --threads); it listed only the commands. Each named option must exist."""
    from vidiff.cli import build_parser

    parser = build_parser()
    text = " ".join(parser.format_help().split())
    common = ("--model", "--seed", "--steps", "--sampler", "--guidance", "--negative-prompt", "--device", "--dtype",
              "--threads")
    assert all(option in text for option in common), text
    for command in ("generate", "animate", "extend", "edit"):
        sub = parser._subparsers._group_actions[0].choices[command]
        assert set(common) <= {o for a in sub._actions for o in a.option_strings}, command


def test_every_command_that_writes_a_clip_says_an_existing_one_is_replaced():
    """Running `generate -o a.mp4` twice replaces a.mp4 (by design, tests/test_generation_cli.py); neither --help nor
    the docs said so."""
    from vidiff.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    clip_writers = {name for name, sub in commands.items() for a in sub._actions
                    if "-o" in a.option_strings and ".mp4" in (a.help or "")}
    assert clip_writers == {"generate", "animate", "extend", "edit", "interpolate"}
    for name in clip_writers:
        output = next(a for a in commands[name]._actions if "-o" in a.option_strings)
        assert output.help.endswith("; an existing one is replaced"), (name, output.help)
    docs = " ".join((Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text().split())
    assert "An existing output clip is replaced, its sidecar with it." in docs
    assert "-o OUT` (an existing OUT is replaced;" in docs


def test_import_is_cheap():
    """`import vidiff` must not pull torch / transformers (under 2 s on this CPU; we check the modules, not the clock)."""
    # dir() lists the lazily imported VideoPipeline (a notebook's tab completion reads it), still without torch
    code = ("import sys, vidiff, vidiff.cli, vidiff.pipeline; assert 'VideoPipeline' in dir(vidiff) and 'VideoPipeline'"
            " in dir(vidiff.pipeline); print(sorted(m for m in ('torch','transformers','av','decord','accelerate') if m in "
            "sys.modules))")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert time.perf_counter() - start < 2.0


def test_a_reader_that_stops_early_gets_no_traceback():
    """`vidiff ... | head -1`: the command's other lines meet a closed pipe; it ends with 141 (SIGPIPE) and one
    line of output read, no traceback."""
    script = ("import sys, argparse\n"
              "from vidiff.cli import run_command\n"
              "def handler(args):\n"
              "    for i in range(200000):\n"
              "        print('line', i)\n"
              "sys.exit(run_command(handler, argparse.Namespace()))\n")
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = writer.stdout.readline()
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141, stderr
    assert first == b"line 0\n"
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def _options(parser, name="vidiff"):
    """(command, argparse action) for every option of every (sub-)command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _options(sub, f"{name} {sub_name}")
        else:
            yield name, action


def test_every_option_with_a_default_shows_it_in_its_help():
    """`--help` is where a user looks a default up: an option that has one says it, with its value (export's
    sampling defaults, --device auto, --batch-invariant auto, cache --dtype float16, ... said nothing)."""
    import argparse
    import re

    from vidiff.cli import build_parser

    missing = []
    for command, action in _options(build_parser()):
        default = action.default
        if default is None or default is False or default == [] or default == argparse.SUPPRESS:
            continue
        shown = re.escape(f"{default:g}" if isinstance(default, float) else str(default))
        help_text = " ".join((action.help or "").split())
        if not re.search(rf"default:? {shown}\b|\b{shown}\W* \(default\)", help_text):
            missing.append(f"{command} {action.option_strings[-1]} (default {shown}): {help_text!r}")
    assert not missing, "\n".join(missing)


def test_every_command_help_says_what_the_command_does():
    """`vidiff train --help`, `vidiff report --help`, `vidiff data cache --help`, `vidiff eval fvd --help`, ... began
    with the usage and the options: the line `vidiff --help` shows for the command was not on its own page."""
    import argparse

    from vidiff.cli import build_parser

    def pages(parser, name="vidiff"):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield f"{name} {sub_name}", sub
                    yield from pages(sub, f"{name} {sub_name}")

    found = dict(pages(build_parser()))
    assert {"vidiff train", "vidiff report", "vidiff data cache", "vidiff eval fvd", "vidiff generate"} <= set(found)
    bare = [name for name, sub in found.items() if not (sub.description or "").strip()]
    assert not bare, bare
    cache = " ".join(found["vidiff data cache"].format_help().split())
    assert "Encode a video folder once into VAE latents + text embeddings." in cache


def test_every_sampler_option_names_the_samplers():
    """`vidiff interpolate --help` and `eval interpolation --help` said "sampler name" and left the names to the
    error a wrong one gets; generate's list was typed out apart from the one the checks use."""
    from vidiff.cli import build_parser
    from vidiff.pipeline.config import SAMPLERS

    helps = {command: " ".join(action.help.split()) for command, action in _options(build_parser())
             if "--sampler" in action.option_strings}
    assert {"vidiff generate", "vidiff interpolate", "vidiff eval interpolation"} <= set(helps), helps
    for command, text in helps.items():
        assert all(name in text.replace(",", " ").split() for name in SAMPLERS), (command, text)


def test_an_empty_output_path_is_refused(tmp_path, monkeypatch, capsys):
    """An empty -o / --out / --json ("" from an unset shell variable) was the working folder: `data shapes --out ""`
    wrote its clips there and removed clip files numbered past --num, `data cache --out ""` its shards, and
    `eval shapes --json ""` wrote nothing without a word."""
    from vidiff.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip_000005.mp4").write_bytes(b"a user's own file")
    commands = [["data", "shapes", "--out", "", "--num", "1", "--no-progress"],
                ["data", "cache", "--videos", "v", "--vae", "v", "--frames", "4", "--size", "64", "--out", " "],
                ["eval", "shapes", "v", "--json", ""], ["report", "run", "-o", ""], ["export", "a", "b", "-o", ""],
                ["generate", "a red circle", "-o", ""], ["interpolate", "v.mp4", "--factor", "2", "-o", ""]]
    for argv in commands:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "empty path; give the file or folder to write" in err, (argv, err)
    assert [p.name for p in tmp_path.iterdir()] == ["clip_000005.mp4"]


def test_edit_frames_help_says_what_edit_does_with_it(capsys, tmp_path):
    """edit's --frames was 'not used' in --help and refused when given."""
    import torch

    from vidiff import io
    from vidiff.cli import build_parser, main

    edit = build_parser()._subparsers._group_actions[0].choices["edit"]
    frames = next(a for a in edit._actions if "--frames" in a.option_strings)
    assert "refused" in frames.help and "not used" not in frames.help
    io.write_video(tmp_path / "clip.mp4", torch.zeros(16, 64, 64, 3, dtype=torch.uint8), 8)
    clip = str(tmp_path / "clip.mp4")
    assert main(["edit", clip, "a red circle", "-o", str(tmp_path / "o.mp4"), "--frames", "5"]) == 2
    assert "--frames: edit keeps the clip's own length" in capsys.readouterr().err


def test_generation_options_that_default_to_the_pipeline_say_so():
    """--guidance, --churn, --keyframes, --fps, ... of generate / animate / extend / edit take pipeline.yaml's value
    when not given (extend and edit: the clip's frame rate); their help said nothing of it."""
    from vidiff.cli import build_parser

    options = {"--steps", "--sampler", "--guidance", "--image-guidance", "--guidance-rescale", "--churn",
               "--pc-steps", "--pc-snr", "--keyframes", "--stride", "--fps"}
    for command, action in _options(build_parser()):
        if command.split()[-1] in ("generate", "animate", "extend", "edit") and options & set(action.option_strings):
            assert "(default: pipeline.yaml" in action.help or "; default: pipeline.yaml)" in action.help, \
                (command, action.option_strings, action.help)


def test_more_threads_than_cores_are_warned(monkeypatch):
    """--threads 1024 on a 2-core machine ran about 20x slower than --threads 2, without a word."""
    import argparse
    import warnings

    from vidiff.commands import device_args

    monkeypatch.setattr(device_args, "usable_cores", lambda: 2)
    with pytest.warns(UserWarning, match=r"--threads 3: more than the 2 CPU core\(s\).*try --threads 2"):
        device_args.check_device_args(argparse.Namespace(device="cpu", threads=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        device_args.check_device_args(argparse.Namespace(device="cpu", threads=2))


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EDQUOT", "EFBIG"])
def test_a_full_disk_anywhere_is_one_line_naming_the_file(capsys, errno_name):
    """A write that vidiff does not wrap itself (a folder, a lock file, a library's own file) on a full disk: a
    traceback before; one line naming the file written (a copy's destination, not its source), exit 2."""
    import argparse
    import errno

    from vidiff.cli import run_command

    def full(args):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), "/runs/a/model.safetensors",
                      None, "/pipe/.pipe.x.tmp/vae/model.safetensors")

    assert run_command(full, argparse.Namespace()) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidiff: error: /pipe/.pipe.x.tmp/vae/model.safetensors: cannot write (")
    assert err.count("\n") == 1
    assert {"ENOSPC": "no space left", "EDQUOT": "disk quota", "EFBIG": "file-size limit"}[errno_name] in err

    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/x")

    with pytest.raises(PermissionError):  # any other OSError is no user's doing to name: still a traceback
        run_command(denied, argparse.Namespace())


def test_a_quoted_home_path_is_the_home_folder_in_every_command(tmp_path, monkeypatch, capsys):
    """A "~/..." quoted on the command line (the shell leaves it as it is) named a folder called "~": `generate
    --model "~/pipe"` read pipeline.yaml from the home folder but its training records and weights from "./~/pipe"
    (no layout check, then a FileNotFoundError traceback), `data shapes --out "~/shp"` made "./~/shp", and `train
    --config "~/r.yaml"` was not found."""
    from vidiff.cli import build_parser, main

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    parser = build_parser()
    for argv, dest in ((["generate", "x", "--model", "~/p", "--control", "~/c.mp4", "-o", "~/o.mp4"],
                        ("model", "control", "output")),
                       (["extend", "~/c.mp4", "x", "-o", "o.mp4"], ("video",)),
                       (["edit", "~/c.mp4", "x", "--mask", "~/m.png", "-o", "o.mp4"], ("video", "mask")),
                       (["animate", "~/a.png", "x", "-o", "o.mp4"], ("image",)),
                       (["interpolate", "~/c.mp4", "--factor", "2", "-o", "o.mp4"], ("video",)),
                       (["data", "cache", "--videos", "~/v", "--vae", "~/vae", "--text", "~/t", "--frames", "8",
                         "--size", "64", "--out", "~/c"], ("videos", "vae", "text", "out")),
                       (["eval", "fvd", "--real", "~/r", "--fake", "~/f", "--network", "~/n.pt"],
                        ("real", "fake", "network")),
                       (["eval", "shapes", "~/s"], ("folder",)), (["report", "~/run"], ("run_dir",)),
                       (["export", "~/run", "-o", "~/p"], ("run_dirs", "output")),
                       (["train", "--config", "~/r.yaml", "--resume", "~/run"], ("config", "resume"))):
        args = parser.parse_args(argv)
        for name in dest:
            value = getattr(args, name)
            assert all(str(v).startswith(str(home)) for v in (value if isinstance(value, list) else [value])), \
                (argv, name, value)
    assert parser.parse_args(["data", "cache", "--videos", "v", "--vae", "v", "--frames", "8", "--size", "64",
                              "--out", "c"]).text == "default"
    (home / "pipe").symlink_to(Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes")
    assert main(["generate", "x", "--model", "~/pipe", "--frames", "64", "--keyframes", "4", "-o", "~/o.mp4"]) == 2
    assert "x stride 21 needs keyframe stride 21 (the keyframe part was trained on stride 3..5)" in \
        capsys.readouterr().err  # the pipeline's training records were read from the home folder
    assert main(["train", "--config", "~/r.yaml"]) == 2
    assert f"config file not found: {home}/r.yaml" in capsys.readouterr().err
    assert list(cwd.iterdir()) == []


def test_a_home_path_inside_a_training_recipe_is_the_home_folder(tmp_path, monkeypatch):
    """Paths written "~/..." in a recipe were taken as they stand: `output_dir: ~/run` trained into "./~/run", then
    stopped on a FileNotFoundError traceback when the export (whose writer reads "~") was moved into place, and
    `vae: ~/vae` was refused as "model.safetensors not found"."""
    from vidiff.config import ConfigError
    from vidiff.training.config import load_train_config

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    configs = Path(__file__).resolve().parents[1] / "configs"
    cfg = load_train_config(configs / "shapes-keyframes.yaml", ["data.root=~/d", "vae=~/v", "text_encoder=~/t",
                                                                "output_dir=~/o"])
    assert (cfg.data.root, cfg.vae, cfg.text_encoder, cfg.output_dir) == tuple(f"{home}/{n}" for n in "dvto")
    assert load_train_config(configs / "shapes-keyframes.yaml").text_encoder == "default"
    for recipe, sets, said in (("shapes-keyframes", ["init_weights=~/i"], "part folder not found: {}/i"),
                               ("shapes-control-keyframes", ["base=~/b"], "got '{}/b'"),
                               ("real-interpolation", ["decoded_loss.enabled=true", "decoded_loss.vae=~/dv"],
                                "was not found: {}/dv")):
        with pytest.raises(ConfigError, match=said.format(home)):
            load_train_config(configs / f"{recipe}.yaml", sets)
    (home / "r.yaml").write_text("stage: toy\noutput_dir: ~/run\nmodel: {dim: 4, width: 8}\n"
                                 "data: {kind: synthetic, num_samples: 4}\n"
                                 "train: {max_steps: 2, batch_size: 2, log_every: 1, checkpoint_every: 2}\n")
    from vidiff.cli import main

    assert main(["train", "--config", "~/r.yaml"]) == 0
    assert (home / "run" / "export" / "model.safetensors").is_file()
    assert list(cwd.iterdir()) == []


def test_integer_options_take_whole_numbers_as_a_config_does(capsys):
    """`generate --steps 1e3`, `--frames 16.0`, `--seed 1e3` were refused as "invalid int value" while a config
    setting takes a whole-number float; a fraction or a word is refused naming the option. Every integer option
    reads its value so."""
    from vidiff.cli import build_parser, main
    from vidiff.commands import whole_number
    from vidiff.cli_parser import parse

    args = parse(build_parser(), ["generate", "x", "-o", "o.mp4", "--steps", "1e3", "--frames", "16.0", "--seed",
                                  "1e3", "--num", "2"])
    assert (args.steps, args.frames, args.seed, args.num) == (1000, 16, 1000, 2)
    assert all(type(v) is int for v in (args.steps, args.frames, args.seed))
    assert parse(build_parser(), ["generate", "x", "-o", "o.mp4", "--seed", str(2**63 - 1)]).seed == 2**63 - 1
    for bad in ("1.5", "abc", "1e400", "nan", ""):
        with pytest.raises(SystemExit) as stop:
            main(["generate", "x", "-o", "o.mp4", "--steps", bad])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --steps: expected a whole number, got {bad!r}" in err and err.count("\n") == 1
    integer_options = [(command, action.option_strings[-1]) for command, action in _options(build_parser())
                       if action.type is int]
    assert integer_options == []
    assert sum(action.type is whole_number for _, action in _options(build_parser())) > 25


def test_the_train_log_escapes_control_characters_and_keeps_one_line(capsys):
    """Under `vidiff train` the log (not the CLI's warning printer) says the data's warnings: a metadata.jsonl
    file_name holding a terminal escape sequence reached stderr raw, a newline in it split the line."""
    import logging

    from vidiff.commands.train import OneLineFormatter

    record = logging.LogRecord("vidiff.data", logging.WARNING, __file__, 1, "the captions name %d clip(s) not in the "
                               "folder, e.g. %s", (1, "a\x1b[2J\nb\u202e.mp4"), None)
    line = OneLineFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING vidiff.data: the captions name 1 clip(s) not in the folder, e.g. a\\x1b[2J\\nb\\u202e.mp4"


def test_an_option_a_command_does_not_take_points_at_that_command_s_help(capsys):
    """`vidiff extend clip.mp4 P --control maps.mp4` said "(see vidiff --help)", a page without extend's options."""
    from vidiff.cli import main

    for argv, command, unknown in ((["extend", "c.mp4", "p", "--frames", "5", "--control", "m.mp4", "-o", "o.mp4"],
                                    "vidiff extend", "--control m.mp4"),
                                   (["eval", "shapes", "outputs", "--frames", "3"], "vidiff eval shapes", "--frames 3"),
                                   (["--bogus"], "vidiff", "--bogus")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err == (f"{command}: error: unrecognized arguments: {unknown} "
                                             f"(see {command} --help)\n"), err


def test_an_empty_input_path_is_refused_by_name(capsys):
    """`vidiff animate "" ...` (an unset shell variable) said "image .: is a directory"."""
    from vidiff.cli import main

    for argv, name in ((["animate", "", "a red ball moving up", "-o", "o.mp4"], "image"),
                       (["edit", " ", "a red ball", "-o", "o.mp4"], "video"),
                       (["edit", "v.mp4", "a red ball", "--mask", "", "-o", "o.mp4"], "--mask"),
                       (["interpolate", "", "--factor", "2", "-o", "o.mp4"], "video"),
                       (["eval", "shapes", ""], "folder")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and f"argument {name}: empty path; give the file or folder to read" in err, (argv, err)
